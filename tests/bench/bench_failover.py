"""Failover figures on a private lab: the outage an HTTP client sees while it polls the
floating address of ``web`` (ip + ocf:heartbeat:nginx) every 20 ms, for

* the owner powered off (through its BMC; fencing with the real fence_ipmilan included),
* ``clusvcadm -r`` to another member,
* nginx SIGKILLed on the owner (a status check fails, the service restarts in place),

and, for the power-off case, the time from node loss to fence confirmed split into
detection (power off -> the coordinator logs the node failed), delay (-> the fence agent
starts) and agent run time (-> "fenced", off confirmed). Medians of RUNS runs with min/max.
The outage is the longest gap between two successful answers around the event (the
client's per-request timeout, 0.1 s, bounds the resolution). The lab (prefix ``rhcf``,
198.18.5.0/24) is brought up for the run and removed afterwards; the deployment is
tests/lab_tests/test_services_lab.py's ``SvcLab``.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from clusterlab import Lab
from clusterlab.spec import LabSpec
from clusterlab.teardown import teardown

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab_tests"))
from test_services_lab import UNIT, SvcLab, samples  # the deployment of the lab test

PREFIX, SUBNET, NODES = "rhcf", "198.18.5.0/24", 3
RUNS = 5


def _gap(path: Path, start: float, end: float) -> float:
    """Longest time between successful answers in [start - 1, end]."""
    ok = [t for t, body in samples(path) if body != "-" and start - 1 <= t <= end]
    return max((b - a for a, b in itertools.pairwise(ok)), default=float("nan"))


def _journal(s: SvcLab, names: list[str], after: float) -> list[tuple[float, str]]:
    """The daemons' journal lines (unix time, text) on ``names`` since ``after``."""
    lines = []
    for name in names:
        text = s.lab.exec(name, ["journalctl", "-u", UNIT, "-o", "short-unix", "--no-pager",
                                 "--since", f"@{int(after) - 1}"], check=False,
                          timeout=60).stdout
        for line in text.splitlines():
            t, _, rest = line.partition(" ")
            try:
                if float(t) >= after:
                    lines.append((float(t), rest))
            except ValueError:
                continue
    return sorted(lines)


def _first(lines: list[tuple[float, str]], *needles: str) -> float:
    return next((t for t, text in lines if all(n in text for n in needles)), float("nan"))


def _stats(values: list[float]) -> str:
    return (f"{statistics.median(values):.2f} s (min {min(values):.2f}, "
            f"max {max(values):.2f})")


def _rejoined(s: SvcLab, via: str) -> bool:
    out = s.cli(via, "clustat", "--format", "json")
    if out.returncode:
        return False
    doc = json.loads(out.stdout)
    return len(doc["view"]["members"]) == NODES and doc["quorum"]["quorate"]


def main() -> str:
    spec = LabSpec.create(PREFIX, NODES, SUBNET)
    teardown(spec)
    out: dict[str, list[float]] = {"poweroff": [], "relocate": [], "nginx": [],
                                   "detect": [], "delay": [], "agent": []}
    tmp = Path(tempfile.mkdtemp(prefix="rhc-bench-failover-"))
    lab = Lab.up(nodes=NODES, prefix=PREFIX, subnet=SUBNET, progress=lambda _m: None)
    poll = None
    try:
        s = SvcLab(lab, max_restarts=1000)
        s.install()
        for name in s.names:
            s.start(name)
        s.wait("web answering", lambda: s.answer() in s.names, timeout=120)
        log = tmp / "client.log"
        poll = s.poller(log, 0.02)
        for _ in range(RUNS):
            owner = s.answer()
            target = next(n for n in s.names if n != owner)
            t0 = time.time()
            res = s.cli(target, "clusvcadm", "-r", "web", "-m", target)
            if res.returncode:
                raise RuntimeError(f"clusvcadm -r failed: {res.stdout}{res.stderr}")
            s.wait("client on the target", lambda target=target: s.answer() == target)
            time.sleep(0.5)   # let the poller record answers after the move (measurement)
            out["relocate"].append(_gap(log, t0, time.time()))
            print(f"relocate {owner} -> {target}: {out['relocate'][-1]:.3f} s", flush=True)
        for _ in range(RUNS):
            owner = s.answer()
            before = (s.service(owner) or {}).get("restarts", 0)
            t0 = time.time()
            s.kill_nginx(owner)
            s.wait("restarted in place", lambda owner=owner, before=before: (
                s.service(owner) or {}).get("restarts", 0) > before and s.answer() == owner)
            time.sleep(0.5)
            out["nginx"].append(_gap(log, t0, time.time()))
            print(f"nginx killed on {owner}: {out['nginx'][-1]:.3f} s", flush=True)
        for _ in range(RUNS):
            owner = s.answer()
            others = [n for n in s.names if n != owner]
            nodeid = s.names.index(owner) + 1
            t0 = time.time()
            lab.power(owner, "off", wait=False)
            s.wait("web answers from another node", lambda owner=owner: s.answer() not in
                   ("", owner), timeout=120)
            time.sleep(0.5)
            out["poweroff"].append(_gap(log, t0, time.time()))
            lines = _journal(s, others, t0)
            detect = _first(lines, "clusterd.node.daemon", f"node {nodeid} ", "fail")
            started = _first(lines, f"fencing {owner} (")
            fenced = _first(lines, f"{owner} fenced (")
            out["detect"].append(detect - t0)
            out["delay"].append(started - detect)
            out["agent"].append(fenced - started)
            print(f"power-off {owner}: outage {out['poweroff'][-1]:.3f} s, detect "
                  f"{out['detect'][-1]:.3f}, delay {out['delay'][-1]:.3f}, agent "
                  f"{out['agent'][-1]:.3f}", flush=True)
            if not lab.is_on(owner):
                lab.power(owner, "on")
            lab.wait_for(lambda owner=owner: lab.ssh_ok(owner), 90, f"{owner} back")
            s.stop(owner)
            s.start(owner)
            via = others[0]
            s.wait("three members again", lambda via=via: _rejoined(s, via), timeout=90)
    finally:
        if poll is not None:
            poll.terminate()
            poll.wait(timeout=10)
        teardown(spec)
    return "\n".join([
        "## Failover (bench_failover.py)",
        "",
        (f"A client polls the floating address of `web` (ip + ocf:heartbeat:nginx) every "
        f"20 ms from the lab's client namespace; {RUNS} runs per case, median (min, max) of "
        "the longest gap between two answers. Defaults: token 1000 ms, post_fail_delay 0, "
        "fence_ipmilan against the emulated BMC."),
        "",
        "| case | client-visible outage | target |",
        "|---|---|---|",
        f"| owner powered off (fencing included) | {_stats(out['poweroff'])} | < 3 s |",
        f"| `clusvcadm -r` | {_stats(out['relocate'])} | < 0.5 s |",
        (f"| nginx killed (restart in place) | {_stats(out['nginx'])} | status interval + "
        "restart |"),
        "",
        "Node loss to fence confirmed (power-off case):",
        "",
        "| part | time |",
        "|---|---|",
        f"| detection (power off -> node failed in the log) | {_stats(out['detect'])} |",
        f"| delay (-> fence agent started) | {_stats(out['delay'])} |",
        f"| agent run (-> off confirmed) | {_stats(out['agent'])} |",
        "",
    ])


if __name__ == "__main__":
    print(main())
