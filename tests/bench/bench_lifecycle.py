"""Node add and remove figures (issue 16) on a lab of its own (prefix rhcl, subnet
198.18.22.0/24, 4 bare nodes): node1-node3 bootstrapped with site.yml and the services of
the molecule lifecycle scenario (molecule/lifecycle: its group_vars, and its platforms'
groups as the inventory molecule would write), then cycles of that scenario's own steps,
run as verify.yml runs them (molecule/lifecycle/lifecycle.py, one JSON line each):

  add     site.yml adds node4 while a client polls web and web2 every 20 ms
  remove  web relocated onto node4, then remove_node.yml drains and removes node4 while the
          client polls both: web moves once, web2 stays put

Each step also checks what it must (nothing moves during the add, nobody fenced, a re-run
changes nothing...) and fails the benchmark if a check does not hold. Up to RUNS cycles, as
long as the next one is expected to end within BUDGET_S of the first; medians and each run.

Runnable alone (root): .venv/bin/python tests/bench/bench_lifecycle.py
`main()` returns a markdown section for docs/benchmarks.md; the lab is removed at the end.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
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

PREFIX, SUBNET, NODES = "rhcl", "198.18.22.0/24", 4
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIO = REPO / "molecule" / "lifecycle"
RUNS = 3
BUDGET_S = 600.0   # for the add/remove cycles (not the lab's bring-up and bootstrap)
SERVICES = ("web", "web2")   # web moves at the removal, web2 stays put (lifecycle.py)


# ------------------------------------------------------------------- pure helpers
def scenario_inventory(molecule_yml: str) -> dict:
    """The groups molecule's own inventory gives the scenario's platforms (node1-node3 in
    ``cluster_initial``); the lab's inventory holds the hosts' connection and BMC vars."""
    groups: dict[str, dict] = {}
    for platform_ in yaml.safe_load(molecule_yml)["platforms"]:
        for group in platform_.get("groups") or ():
            groups.setdefault(group, {"hosts": {}})["hosts"][platform_["name"]] = {}
    return {"all": {"children": groups}}


def step_summary(stdout: str) -> dict:
    """The one JSON line a lifecycle.py step printed (the last line that is a JSON object
    with a ``step``); ValueError if there is none."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "step" in data:
                return data
    raise ValueError(f"no step summary in the output: {stdout[-500:]!r}")


def cycle_figures(add: dict, remove: dict) -> dict:
    """The figures of one add + remove cycle from the two steps' summaries."""
    out = {"add_s": add["add_s"], "add_step_s": add["step_s"],
           "remove_s": remove["remove_s"], "remove_step_s": remove["step_s"],
           "relocate_s": remove["relocate_s"], "web_after": remove["web_after"]}
    for phase, summary in (("add", add["client_during_add"]),
                           ("remove", remove["client_during_remove"])):
        for name in SERVICES:
            seen = summary[name]
            out[f"{phase}_{name}"] = {"polls": seen["polls"], "failed": seen["failed_polls"],
                                      "outage_s": seen["outage_s"],
                                      "gap_s": seen.get("longest_gap_s")}
    return out


def span(values: list[float], unit: str = " s", digits: int = 2) -> str:
    """``median (min-max)``, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}{unit}"
    return (f"{statistics.median(values):.{digits}f}{unit} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def client_cell(seen: list[dict]) -> str:
    """What the client saw of one service in each run: outage, failed polls of how many,
    and the longest time between two answers (the client's own resolution on this host)."""
    failed = ", ".join(f"{s['failed']}/{s['polls']}" for s in seen)
    gaps = [s["gap_s"] for s in seen if s["gap_s"] is not None]
    gap = f"; longest time between two answers {span(gaps)}" if gaps else ""
    return f"{span([s['outage_s'] for s in seen], digits=3)}; failed polls {failed}{gap}"


def section(runs: list[dict], *, when: str, host: str, others: str,
            load: tuple[float, float], up_s: float, boot_s: float, cycles_s: float,
            total_s: float) -> str:
    """The markdown section from the cycles' figures and how they were measured."""
    n = len(runs)
    note = (f"{n} add/remove cycles" if n == RUNS else
            f"{n} add/remove cycle{'s' if n > 1 else ''} of the {RUNS} planned (the next "
            f"would not have ended within {BUDGET_S / 60:.0f} min of the first)")

    busy = (f"with other work running (the labs of other sessions: {others}), so these "
            f"are the times of a shared, busy host" if others else "with no other lab up")

    # one line in the report: the text below is re-flowed
    intro = " ".join(f"""
Measured {when} on {host}, on a lab of its own ({NODES} bare nodes, prefix {PREFIX}),
{busy}: load average {load[0]:.1f} at the start and {load[1]:.1f} at the end. node1-node3
bootstrapped with site.yml and the lifecycle scenario's services (web on node1, web2 on
node2, each a floating address + nginx; {boot_s:.0f} s after {up_s:.0f} s of lab bring-up),
then {note} of the scenario's own steps (molecule/lifecycle/lifecycle.py): `add` = site.yml
with node4 in the inventory; `remove` = web relocated onto node4, then remove_node.yml -e
node=node4 (drain: web relocates to a survivor, node4 leaves). The first add installs
everything on a bare node4; remove_node.yml leaves the software there, so the later adds
reuse it. A client in the client namespace polls web and web2 every 20 ms (0.2 s timeout per
poll, so one failed poll is about 0.2 s); outage = the longest time from the last answer
before failed polls to the first answer after them. Every run also passed the steps' checks
(node4 fenceable, nobody fenced, nothing but web moved, each re-run changes nothing). Median
(min-max) of the runs; {cycles_s / 60:.1f} min of cycles, {total_s / 60:.1f} min in all.
""".split())

    def col(key: str, first: int = 0) -> list:
        return [r[key] for r in runs[first:]]

    later = "run 2" if n == 2 else f"runs 2-{n}"
    readd = (f"| add node4 again ({later}: the software remove_node.yml left on it) | "
             f"{span(col('add_s', 1), digits=1)} |\n" if n > 1 else "")
    each = "; ".join(
        f"run {i}: add {r['add_s']:.1f} s (web {r['add_web']['outage_s']:.3f} s, "
        f"web2 {r['add_web2']['outage_s']:.3f} s), remove {r['remove_s']:.1f} s "
        f"(web {r['remove_web']['outage_s']:.3f} s, to {r['web_after']}; "
        f"web2 {r['remove_web2']['outage_s']:.3f} s)" for i, r in enumerate(runs, 1))
    return f"""## Node add and remove (bench_lifecycle.py)

{intro}

| figure | value |
|---|---|
| add node4, bare (run 1: site.yml installs it, node4 joins) | {runs[0]['add_s']:.1f} s |
{readd}| outage of web during the add (does not move; target none) | {client_cell(col('add_web'))} |
| outage of web2 during the add (does not move; target none) | {client_cell(col('add_web2'))} |
| remove node4 with drain (remove_node.yml, web running on node4) | {span(col('remove_s'), digits=1)} |
| outage of web during the removal (moves once, to {', '.join(sorted(set(col('web_after'))))}) | {client_cell(col('remove_web'))} |
| outage of web2 during the removal (stays put; target none) | {client_cell(col('remove_web2'))} |
| relocate.yml putting web on node4 before the removal | {span(col('relocate_s'), digits=1)} |
| whole add step (the add, its checks, a no-op re-run of site.yml, a refused node id) | {span(col('add_step_s'), digits=1)} |
| whole remove step (relocation, removal, checks, no-op re-run, a refused unknown node) | {span(col('remove_step_s'), digits=1)} |

Each run: {each}.
"""


# ------------------------------------------------------------------- the lab
def _env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}:{os.environ.get('PATH', '')}",
                RHC_LAB_PREFIX=PREFIX, RHC_LAB_SUBNET=SUBNET,
                RHC_LAB_INVENTORY=f"/run/{PREFIX}-lab/inventory.yml",
                MOLECULE_EPHEMERAL_DIRECTORY=str(tmp))


def _bootstrap(inventories: list[str], snapshot: Path, tmp: Path) -> float:
    """Converge as the scenario does: site.yml on the group cluster_initial."""
    argv = [str(BIN / "ansible-playbook"), "playbooks/site.yml"]
    for source in inventories:
        argv += ["-i", source]
    argv += ["-e", f"cluster_node_daemon_src={snapshot}", "-e", "cluster_group=cluster_initial"]
    start = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=_env(tmp), capture_output=True, text=True,
                          check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"site.yml (bootstrap) failed:\n{done.stdout[-3000:]}")
    return time.monotonic() - start


def _step(step: str, inventories: list[str], snapshot: Path, tmp: Path) -> dict:
    argv = [sys.executable, str(SCENARIO / "lifecycle.py"), step, "--daemon-src", str(snapshot)]
    for source in inventories:
        argv += ["--inventory", source]
    done = subprocess.run(argv, cwd=REPO, env=_env(tmp), capture_output=True, text=True,
                          check=False, timeout=1800)
    try:
        summary = step_summary(done.stdout)
    except ValueError:
        raise RuntimeError(f"lifecycle.py {step} (rc {done.returncode}) printed no summary:\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}") from None
    if done.returncode != 0 or not summary.get("ok"):
        raise RuntimeError(f"lifecycle.py {step} failed: {json.dumps(summary)}")
    return summary


def _others() -> str:
    """Other labs up beside this one (their network namespaces), for the section's note."""
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    prefixes = sorted({line.split()[0].split("-")[0] for line in done.stdout.splitlines()
                       if line.strip() and not line.startswith(f"{PREFIX}-")})
    return ", ".join(prefixes)


def main() -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    others_before, load_before = _others(), os.getloadavg()[0]
    started = time.monotonic()
    lab = Lab.up(nodes=NODES, prefix=PREFIX, subnet=SUBNET,
                 progress=lambda m: print(f"  lab: {m}", flush=True))
    runs: list[dict] = []
    try:
        up_s = time.monotonic() - started
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-bench-") as name:
            tmp = Path(name)
            snapshot = tmp / "daemon"   # work landing in daemon/ meanwhile must not matter
            shutil.copytree(REPO / "daemon", snapshot,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            inv = tmp / "inventory"   # as molecule's: the platforms' groups + group_vars
            inv.mkdir()
            (inv / "hosts.yml").write_text(yaml.safe_dump(
                scenario_inventory((SCENARIO / "molecule.yml").read_text())))
            (inv / "group_vars").symlink_to(SCENARIO / "group_vars")
            inventories = [str(lab.inventory_path), str(inv)]
            boot_s = _bootstrap(inventories, snapshot, tmp)
            print(f"  bootstrap node1-node3 + web, web2 (site.yml): {boot_s:.1f} s", flush=True)
            cycles_start = time.monotonic()
            while len(runs) < RUNS:
                cycle_start = time.monotonic()
                add = _step("add", inventories, snapshot, tmp)
                remove = _step("remove", inventories, snapshot, tmp)
                figures = cycle_figures(add, remove)
                figures["cycle_s"] = time.monotonic() - cycle_start
                runs.append(figures)
                print(f"  run {len(runs)}: {json.dumps(figures)}", flush=True)
                if time.monotonic() - cycles_start + figures["cycle_s"] > BUDGET_S:
                    break
            cycles_s = time.monotonic() - cycles_start
    finally:
        teardown(lab.spec)
    total_s = time.monotonic() - started
    others_after, load_after = _others(), os.getloadavg()[0]
    others = ", ".join(sorted(set(filter(None, (others_before + ", " + others_after)
                                         .split(", ")))))
    return section(runs, when=when, host=f"{platform.node() or 'this host'} "
                   f"({os.cpu_count()} cores)", others=others, load=(load_before, load_after),
                   up_s=up_s, boot_s=boot_s, cycles_s=cycles_s, total_s=total_s)


if __name__ == "__main__":
    print(main())
