"""Failover figures on a private lab: the outage an HTTP client sees while it polls the
floating address of ``web`` (ip + ocf:heartbeat:nginx) every 20 ms, for

* the owner powered off (through its BMC; fencing with the real fence_ipmilan included),
* ``clusvcadm -r`` to another member,
* nginx SIGKILLed on the owner (a status check fails, the service restarts in place),

``clusvcadm -r`` is measured twice: nginx as ``ocf:heartbeat:nginx`` (its stop loop sleeps
1 s before it looks again) and nginx as a ``systemd`` resource (the operator's alternative:
systemd's stop returns as soon as nginx's fast shutdown has ended). For each case the run
with the median outage is drawn as a timeline (docs/bench/failover-<case>.png): the
client's answers (which node, or no answer) and the events from the daemons' journals
(the fault, fence started/confirmed, each resource's start and stop on its node).

And, for the power-off case, the time from node loss to fence confirmed split into
detection (power off -> the coordinator logs the node failed), delay (-> the fence agent
starts) and agent run time (-> "fenced", off confirmed). Medians of RUNS runs with min/max.
The outage is the longest gap between two successful answers around the event (the
client's per-request timeout, 0.1 s, bounds the resolution: a request sent while the
address moves is lost and only the next one, up to 0.12 s later, can succeed). The lab (prefix ``rhcf``,
198.18.5.0/24) is brought up for the run and removed afterwards; the deployment is
tests/lab_tests/test_services_lab.py's ``SvcLab``.
"""

from __future__ import annotations

import itertools
import json
import re
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
DOCS = Path(__file__).resolve().parents[2] / "docs" / "bench"
_FENCE_AGENT = re.compile(r"clusterd\.fencing\.runtime: node \S+: fencing \S+ \(\S+, attempt "
                          r"\d+\): method .* action (?!on,)\S+, agent timeout")
_FENCED = re.compile(r"fencing: \S+ fenced \(")
_OP = re.compile(r"node (\S+): service:web: (start|stop) (\S+): (\S+) in ([0-9.]+)s")


class Run:
    """One measured event: the outage and what is needed to draw its timeline."""

    def __init__(self, outage: float, t0: float, samples: list[tuple[float, str]],
                 lines: list[tuple[float, str]], fault: str) -> None:
        self.outage, self.t0, self.samples, self.lines, self.fault = (
            outage, t0, samples, lines, fault)


def _window(path: Path, t0: float, end: float) -> list[tuple[float, str]]:
    return [(t, b) for t, b in samples(path) if t0 - 1 <= t <= end]


def plot(run: Run, nodes: list[str], title: str, out: Path, op: re.Pattern[str] = _OP,
         answered: str = "client answered (node)") -> None:
    """The client's answers over time (one row per node, failures on their own row) with
    the fault, fencing and every resource start/stop (a bar on the node that ran it);
    ``op`` finds the resource operations in the journal lines (node, action, resource,
    result, seconds), by default those of ``web``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {n: i + 1 for i, n in enumerate(nodes)}
    fig, ax = plt.subplots(figsize=(10, 3.6))
    pts = [(t - run.t0, rows.get(b, 0)) for t, b in run.samples]
    ok = [(x, y) for x, y in pts if y]
    bad = [(x, y) for x, y in pts if not y]
    if ok:
        ax.scatter(*zip(*ok), s=6, color="tab:green", label=answered)
    if bad:
        ax.scatter(*zip(*bad), s=6, color="tab:red", label="client: no answer")
    ax.axvline(0, color="black", lw=1)
    ax.text(0, len(nodes) + 0.55, " " + run.fault, fontsize=8, va="center")
    colors = {"start": "tab:blue", "stop": "tab:orange"}
    seen: set[str] = set()
    stacked: dict[tuple[str, str], int] = {}
    for t, text in run.lines:
        m = op.search(text)
        if m and m.group(1) in rows and not m.group(3).startswith("service:"):
            node, action, res, _rc, dur = m.groups()
            k = stacked[(node, action)] = stacked.get((node, action), -1) + 1
            x1 = t - run.t0
            y = rows[node] + (0.16 if action == "stop" else -0.16) * (1 + k % 2)
            lab = f"resource {action}" if action not in seen else None
            seen.add(action)
            ax.barh(y, max(float(dur), 0.004), left=x1 - float(dur), height=0.12,
                    color=colors[action], label=lab)
            ax.text(x1, y, f" {action} {res.split(':')[0]} {float(dur):.2f}s", fontsize=6,
                    va="center")
        for needle, label, color in ((_FENCE_AGENT, "fence agent started", "tab:purple"),
                                     (_FENCED, "fence confirmed", "tab:purple")):
            if needle.search(text) and label not in seen:
                seen.add(label)
                ax.axvline(t - run.t0, color=color, lw=1, ls="--" if "start" in label else "-")
                ax.text(t - run.t0, len(nodes) + (0.05 if "agent" in label else 0.3), " " + label, fontsize=7,
                        color=color, va="center")
    ax.set_yticks([0, *rows.values()], ["no answer", *rows])
    ax.set_ylim(-0.5, len(nodes) + 0.8)
    ax.set_xlabel(f"seconds since the fault (outage {run.outage:.2f} s)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.outage)[len(runs) // 2]


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


def _relocations(s: SvcLab, log: Path, runs: list[Run], label: str) -> None:
    for _ in range(RUNS):
        owner = s.answer()
        target = next(n for n in s.names if n != owner)
        t0 = time.time()
        res = s.cli(target, "clusvcadm", "-r", "web", "-m", target)
        if res.returncode:
            raise RuntimeError(f"clusvcadm -r failed: {res.stdout}{res.stderr}")
        s.wait("client on the target", lambda target=target: s.answer() == target)
        time.sleep(0.5)   # let the poller record answers after the move (measurement)
        end = time.time()
        runs.append(Run(_gap(log, t0, end), t0, _window(log, t0, end),
                        _journal(s, s.names, t0 - 0.5), f"clusvcadm -r -m {target}"))
        print(f"relocate ({label}) {owner} -> {target}: {runs[-1].outage:.3f} s", flush=True)


def _deploy(lab: Lab, web: str) -> SvcLab:
    s = SvcLab(lab, max_restarts=1000, web=web)
    s.install()
    for name in s.names:
        s.start(name)
    s.wait("web answering", lambda: s.answer() in s.names, timeout=120)
    return s


def main() -> str:
    spec = LabSpec.create(PREFIX, NODES, SUBNET)
    teardown(spec)
    runs: dict[str, list[Run]] = {"poweroff": [], "relocate": [], "relocate_systemd": [],
                                  "nginx": []}
    out: dict[str, list[float]] = {"detect": [], "delay": [], "agent": []}
    tmp = Path(tempfile.mkdtemp(prefix="rhc-bench-failover-"))
    lab = Lab.up(nodes=NODES, prefix=PREFIX, subnet=SUBNET, progress=lambda _m: None)
    poll = None
    try:
        s = _deploy(lab, "systemd")
        log = tmp / "client-systemd.log"
        poll = s.poller(log, 0.02)
        _relocations(s, log, runs["relocate_systemd"], "systemd")
        poll.terminate()
        poll.wait(timeout=10)
        s = _deploy(lab, "ocf")
        log = tmp / "client.log"
        poll = s.poller(log, 0.02)
        _relocations(s, log, runs["relocate"], "ocf")
        for _ in range(RUNS):
            owner = s.answer()
            before = (s.service(owner) or {}).get("restarts", 0)
            t0 = time.time()
            s.kill_nginx(owner)
            s.wait("restarted in place", lambda owner=owner, before=before: (
                s.service(owner) or {}).get("restarts", 0) > before and s.answer() == owner)
            time.sleep(0.5)
            end = time.time()
            runs["nginx"].append(Run(_gap(log, t0, end), t0, _window(log, t0, end),
                                     _journal(s, [owner], t0 - 0.5),
                                     f"nginx SIGKILLed on {owner}"))
            print(f"nginx killed on {owner}: {runs['nginx'][-1].outage:.3f} s", flush=True)
        for _ in range(RUNS):
            owner = s.answer()
            others = [n for n in s.names if n != owner]
            t0 = time.time()
            lab.power(owner, "off", wait=False)
            s.wait("web answers from another node", lambda owner=owner: s.answer() not in
                   ("", owner), timeout=120)
            time.sleep(0.5)
            end = time.time()
            lines = _journal(s, others, t0 - 0.5)
            runs["poweroff"].append(Run(_gap(log, t0, end), t0, _window(log, t0, end),
                                        lines, f"{owner} powered off"))
            after = [(t, x) for t, x in lines if t >= t0]
            detect = _first(after, "clusterd.node.daemon", f": {owner} failed")
            started = _first(after, f"fencing {owner} (", "action off, agent timeout")
            fenced = _first(after, f"{owner} fenced (")
            out["detect"].append(detect - t0)
            out["delay"].append(started - detect)
            out["agent"].append(fenced - started)
            print(f"power-off {owner}: outage {runs['poweroff'][-1].outage:.3f} s, detect "
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
    titles = {"poweroff": "owner powered off (fence_ipmilan, then recovery elsewhere)",
              "relocate": "clusvcadm -r, nginx as ocf:heartbeat:nginx",
              "relocate_systemd": "clusvcadm -r, nginx as a systemd resource",
              "nginx": "nginx SIGKILLed (status check fails, restart in place)"}
    for case, title in titles.items():
        plot(_median_run(runs[case]), [f"node{i}" for i in range(1, NODES + 1)],
             f"{title}: median run", DOCS / f"failover-{case.replace('_', '-')}.png")
    fig = {case: f"[timeline](bench/failover-{case.replace('_', '-')}.png)" for case in titles}
    outage = {case: _stats([r.outage for r in rs]) for case, rs in runs.items()}
    ops = _op_medians(runs["relocate"]), _op_medians(runs["relocate_systemd"])
    return "\n".join([
        "## Failover (bench_failover.py)",
        "",
        (f"A client polls the floating address of `web` (ip + nginx) every 20 ms from the "
         f"lab's client namespace (0.1 s per-request timeout); {RUNS} runs per case, median "
         "(min, max) of the longest gap between two answers. Defaults: token 1000 ms, "
         "post_fail_delay 0, fence_ipmilan against the emulated BMC. Each timeline shows "
         "the median run."),
        "",
        "| case | client-visible outage | target | timeline |",
        "|---|---|---|---|",
        (f"| owner powered off (fencing included) | {outage['poweroff']} | < 3 s | "
         f"{fig['poweroff']} |"),
        (f"| `clusvcadm -r`, nginx as `ocf:heartbeat:nginx` | {outage['relocate']} | "
         f"< 0.5 s | {fig['relocate']} |"),
        (f"| `clusvcadm -r`, nginx as a `systemd` resource | "
         f"{outage['relocate_systemd']} | < 0.5 s | {fig['relocate_systemd']} |"),
        (f"| nginx killed (restart in place, ocf) | {outage['nginx']} | status interval "
         f"+ restart | {fig['nginx']} |"),
        "",
        ("Where a relocation's time goes (medians over the runs, from the daemons' "
        "journals: each resource op's duration, and the hand-over = old owner's last stop "
        "done -> new owner's first start begun, i.e. report, coordinator cycle and "
        "command):"),
        "",
        "| part | ocf:heartbeat:nginx | systemd nginx |",
        "|---|---|---|",
        *(f"| {k} | {ops[0].get(k, float('nan')):.3f} s | {ops[1].get(k, float('nan')):.3f} s |"
          for k in ("stop nginx", "stop ip", "hand-over", "start ip", "start nginx")),
        "",
        ("The OCF agent's stop is the floor of the OCF case: it sends SIGTERM, finds the "
         "master still alive at once and sleeps 1 s before it looks again (then its "
         "`pgrep` sweep), however fast nginx exits. That is the agent, not the cluster; "
         "the same service with nginx as a `systemd` resource (Type=forking, SIGTERM = "
         "nginx's fast shutdown, our agent polls `is-active` from 20 ms) meets the target. "
         "Neither case overlaps the old and new owner: stop completes before start is "
         "sent."),
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


def _op_medians(runs: list[Run]) -> dict[str, float]:
    """Median duration of each resource op and of the hand-over between the owners."""
    parts: dict[str, list[float]] = {}
    for run in runs:
        stops, starts = [], []
        for t, text in run.lines:
            m = _OP.search(text)
            if not m or t < run.t0 or m.group(3).startswith("service:"):
                continue
            _node, action, res, _rc, dur = m.groups()
            key = f"{action} {'ip' if res.startswith('ip:') else 'nginx'}"
            parts.setdefault(key, []).append(float(dur))
            (stops if action == "stop" else starts).append((t, float(dur)))
        if stops and starts:
            parts.setdefault("hand-over", []).append(
                min(t - d for t, d in starts) - max(t for t, _ in stops))
    return {k: statistics.median(v) for k, v in parts.items()}


if __name__ == "__main__":
    print(main())
