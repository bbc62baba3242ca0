"""Playbook figures on a lab of its own (prefix rhcp, subnet 198.18.3.0/24, 3 bare nodes):
bootstrap + services from bare nodes to a quorate cluster with `web` started, the no-op
re-run, the collection's config modules over the running cluster (config_modules.yml: a
no-op run of every config module and a run that changes one service, medians of 5 runs
each), and a rolling upgrade to a build with a bumped local version with the longest
outage of web seen by a client polling every 20 ms.

Runnable alone (root): .venv/bin/python tests/bench/bench_playbooks.py
`main()` returns a markdown section for docs/benchmarks.md. One run of the playbooks (a
bootstrap from bare nodes takes minutes on 2 cores); the lab is removed at the end.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from clusterlab import Lab
from clusterlab.teardown import teardown

PREFIX, SUBNET = "rhcp", "198.18.3.0/24"
ADDRESS = "198.18.3.50"
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _roll_module():
    path = REPO / "molecule" / "upgrade" / "roll.py"
    spec = importlib.util.spec_from_file_location("rhc_roll", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _services_vars(tmp: Path) -> Path:
    """The example services with the floating address moved into this lab's subnet."""
    text = (REPO / "playbooks" / "group_vars" / "all" / "services.yml").read_text()
    path = tmp / "services.yml"
    path.write_text(yaml.safe_dump(yaml.safe_load(text.replace("198.18.0.50", ADDRESS))))
    return path


def _playbook(args: list[str]) -> tuple[float, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    start = time.monotonic()
    done = subprocess.run([str(BIN / "ansible-playbook"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"ansible-playbook {' '.join(args)} failed:\n{done.stdout[-3000:]}")
    return took, done.stdout


def _changed(output: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", output.split("PLAY RECAP")[-1]))


CONFIG_RUNS = 5


def _config_modules(inv: list[str]) -> tuple[list[float], list[float], list[int], list[int]]:
    """Wall times and changed counts of config_modules.yml: no-op, then one service changed
    (web's recovery toggled between relocate and restart, so every run changes it)."""
    book = str(Path(__file__).resolve().parent / "config_modules.yml")
    noop, change, noop_changed, change_changed = [], [], [], []
    for run in range(CONFIG_RUNS):
        took, out = _playbook([book, *inv])
        noop.append(took)
        noop_changed.append(_changed(out))
        recovery = "restart" if run % 2 == 0 else "relocate"
        took, out = _playbook([book, *inv, "-e", f"web_recovery={recovery}"])
        change.append(took)
        change_changed.append(_changed(out))
    return noop, change, noop_changed, change_changed


def _span(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"


def main() -> str:
    lab = Lab.up(prefix=PREFIX, subnet=SUBNET, progress=lambda m: print(f"  lab: {m}"))
    try:
        with tempfile.TemporaryDirectory(prefix="rhcp-bench-") as tmp:
            # a snapshot of daemon/: work landing there meanwhile must not turn the no-op
            # re-run into an upgrade
            snapshot = Path(tmp) / "daemon"
            shutil.copytree(REPO / "daemon", snapshot,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            inv = ["-i", str(lab.inventory_path), "-e", f"@{_services_vars(Path(tmp))}",
                   "-e", f"cluster_node_daemon_src={snapshot}"]
            boot, _ = _playbook(["playbooks/site.yml", *inv])
            print(f"  bootstrap + services from bare nodes: {boot:.1f} s", flush=True)
            noop, out = _playbook(["playbooks/site.yml", *inv])
            changed = _changed(out)
            print(f"  no-op re-run: {noop:.1f} s, changed={changed}", flush=True)
            conf_noop, conf_change, noop_changed, change_changed = _config_modules(inv[:2])
            print(f"  config modules, no-op: {_span(conf_noop)}, changed={noop_changed}; "
                  f"one service changed: {_span(conf_change)}, changed={change_changed}",
                  flush=True)
            summary, _ = _roll_module().roll(lab, "bench1", ADDRESS, tuple(inv[:4]))
            print(f"  rolling upgrade: {summary}", flush=True)
    finally:
        teardown(lab.spec)
    return f"""## Playbooks (bench_playbooks.py)

Own lab (3 bare nodes, prefix {PREFIX}); one run each; the wheelhouse build on the
controller is included when the daemon source changed since the last build.

| figure | value |
|---|---|
| bootstrap.yml + services.yml, bare nodes -> quorate cluster, `web` started | {boot:.1f} s |
| no-op re-run of both | {noop:.1f} s (changed={changed}) |
| every config module of the collection, no-op (config_modules.yml, median of {CONFIG_RUNS}) | {_span(conf_noop)} (changed={max(noop_changed)}) |
| the same run changing one service (web's recovery), median of {CONFIG_RUNS} | {_span(conf_change)} (changed={min(change_changed)}-{max(change_changed)}) |
| rolling_upgrade.yml, 3 nodes, to a bumped build | {summary['seconds']} s (rc={summary['rc']}) |
| longest outage of `web` during the upgrade (client every 20 ms) | {summary['longest_outage_s']} s |
| most nodes holding the floating address at once (sampled every 0.3 s) | {len(summary['most_holders'])} |
| versions after the upgrade | {', '.join(f'{k} {v}' for k, v in sorted(summary['versions'].items()))} |
"""


if __name__ == "__main__":
    print(main())
