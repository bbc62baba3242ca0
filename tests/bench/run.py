"""Run every benchmark and rewrite docs/benchmarks.md.

Each ``tests/bench/bench_<topic>.py`` exposes ``main() -> str``: it runs its measurements
(medians of several runs with min/max), prints its figures as it goes, and returns a
markdown section. This runner calls them in name order (or only those named on the command
line), prints each section and writes the report with the machine it ran on.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPORT = HERE.parent.parent / "docs" / "benchmarks.md"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    return module


def _machine() -> str:
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return (f"{platform.node() or 'host'}: {os.cpu_count()} cores, {mem_kb // 1024 // 1024 + 1} GiB, "
            f"Linux {platform.release()}, Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="topics to run (e.g. lab membership); default all")
    args = parser.parse_args(argv)
    benches = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {f"bench_{name}" for name in args.only}
        unknown = wanted - {p.stem for p in benches}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        benches = [p for p in benches if p.stem in wanted]
    sections, failed = [], []
    for path in benches:
        print(f"== {path.stem}", flush=True)
        try:
            sections.append(_load(path).main().rstrip() + "\n")
        except Exception:  # a broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(path.stem)
            sections.append(f"## {path.stem}\n\nFailed in this run; see the console output.\n")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = ("# Benchmarks\n\n"
              f"Written by `make bench` on {when}, {_machine()}.\n"
              "Figures are medians of several runs with min and max; timings are never asserted "
              "in tests.\n\n")
    REPORT.write_text(header + "\n".join(sections))
    print(f"wrote {REPORT}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
