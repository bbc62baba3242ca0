"""Run the benchmarks and update docs/benchmarks.md.

Each ``tests/bench/bench_<topic>.py`` exposes ``main() -> str``: it runs its measurements
(medians of several runs with min/max), prints its figures as it goes, and returns a
markdown section. This runner calls them in name order (or only those named on the command
line), prints each section and updates the report: the sections of the topics it ran are
replaced, every other section is kept as it was, with the date of its own last run (a
``<!-- bench: TOPIC DATE -->`` line before each section records it). A topic whose run
fails keeps its previous figures under a note saying the new run failed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPORT = HERE.parent.parent / "docs" / "benchmarks.md"
MARK = re.compile(r"^<!-- bench: (?P<topic>[A-Za-z0-9_.-]+) (?P<when>[^>]*?) -->\n", re.MULTILINE)
LEGACY_WHEN = re.compile(r"Written by `make bench` on (?P<when>[^,]+?),")


@dataclass(frozen=True)
class Section:
    topic: str   # bench_<topic>.py; "" for an unattributed section of an old report
    when: str    # when it was last run ("" if unknown)
    text: str    # the markdown, from its "## " heading on


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    return module


def _machine() -> str:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return (f"{platform.node() or 'host'}: {os.cpu_count()} cores, {mem_kb // 1024 // 1024 + 1} GiB, "
            f"Linux {platform.release()}, Python {platform.python_version()}")


def _legacy_topic(heading: str, topics: Iterable[str]) -> str:
    """Which topic a section of a report written before the markers belongs to: its
    heading names ``bench_<topic>.py`` or starts with the topic's name."""
    low = heading.lower()
    for topic in topics:
        if f"bench_{topic}.py" in low or re.match(rf"##\s+{re.escape(topic)}\b", low):
            return topic
    return ""


def parse_report(text: str, topics: Iterable[str]) -> list[Section]:
    """The sections of an existing report, in order (the header is not a section)."""
    topics = list(topics)
    marks = list(MARK.finditer(text))
    if marks:
        out = []
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            out.append(Section(m["topic"], m["when"], text[m.end():end].strip("\n") + "\n"))
        return out
    legacy = LEGACY_WHEN.search(text)
    when = legacy["when"] if legacy else ""
    parts = re.split(r"(?m)^(?=## )", text)
    notes = " ".join(line for line in parts[0].splitlines()[1:] if line.strip()
                     and not line.startswith(("Written by", "Figures are medians")))
    out = []
    for part in parts[1:]:
        head, _, body = part.strip("\n").partition("\n")
        if notes:  # the old header's remarks on that run stay with its figures
            body = f"\n_Run of {when or 'an earlier date'}: {notes}_\n{body}"
        out.append(Section(_legacy_topic(head, topics), when, f"{head}\n{body}\n"))
    return out


def merge_report(old: list[Section], new: Mapping[str, str], failed: Iterable[str],
                 when: str, order: Iterable[str]) -> list[Section]:
    """Replace the sections of the topics run now (``new``), keep every other one; a
    failed topic keeps its old figures under a note (or gets a failure notice)."""
    failed = set(failed)
    by_topic = {s.topic: s for s in old if s.topic}
    out = []
    for topic in order:
        if topic in new:
            out.append(Section(topic, when, new[topic].strip("\n") + "\n"))
        elif topic in failed:
            prev = by_topic.get(topic)
            note = f"The run of {when} failed (see its console output)"
            if prev is None:
                out.append(Section(topic, when, f"## {topic}\n\n{note}.\n"))
            else:
                head, _, body = prev.text.partition("\n")
                out.append(Section(topic, prev.when, f"{head}\n\n_{note}; the figures below "
                                                     f"are from {prev.when}._\n{body}"))
        elif topic in by_topic:
            out.append(by_topic[topic])
    out += [s for s in old if not s.topic or s.topic not in set(order)]
    return out


def render_report(sections: list[Section], when: str, ran: Iterable[str], machine: str) -> str:
    dated = ", ".join(f"{s.topic} {s.when}" for s in sections if s.topic and s.when)
    header = ("# Benchmarks\n\n"
              f"Written by `make bench` (`tests/bench/run.py`); last run {when} "
              f"({', '.join(ran) or 'nothing'}) on {machine}.\n"
              f"Each section was last run: {dated or 'unknown'}.\n"
              "Figures are medians of several runs with min and max; timings are never asserted "
              "in tests.\n")
    body = "".join(f"\n<!-- bench: {s.topic or 'unattributed'} {s.when} -->\n{s.text}"
                   for s in sections)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="topics to run (e.g. lab membership); default all")
    args = parser.parse_args(argv)
    benches = sorted(HERE.glob("bench_*.py"))
    every = [p.stem.removeprefix("bench_") for p in benches]
    if args.only:
        wanted = {f"bench_{name}" for name in args.only}
        unknown = wanted - {p.stem for p in benches}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        benches = [p for p in benches if p.stem in wanted]
    new, failed = {}, []
    for path in benches:
        topic = path.stem.removeprefix("bench_")
        print(f"== {path.stem}", flush=True)
        try:
            new[topic] = _load(path).main()
        except Exception:  # noqa: BLE001 - a broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(topic)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    old = parse_report(REPORT.read_text(), every) if REPORT.exists() else []
    sections = merge_report(old, new, failed, when, every)
    ran = [p.stem.removeprefix("bench_") for p in benches]
    REPORT.write_text(render_report(sections, when, ran, _machine()))
    print(f"wrote {REPORT} (replaced: {', '.join(new) or 'none'}; kept the other sections)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
