"""Outage per kind of owner failure (issue 11), on a private lab: a client polls the floating
address of ``web`` (ip + ocf:heartbeat:nginx) every 20 ms while the owner

* crashes with its BMC answering (a panicked server: it answers neither its peers nor the
  client, its BMC does; the real fence_ipmilan powers it off),
* is powered off through its BMC,
* has its clusterd paused (SIGSTOP past the token: nginx keeps answering until the fence),
* is partitioned from its peers only (the client still reaches it until it stops web on
  quorum loss, then the majority fences it and recovers web).

``RUNS`` runs per kind: median (min, max) of the client-visible outage (the longest gap
between two successful answers), and where the time goes, from the survivors' journals:
detection (fault -> the node is failed in a survivor's log), fence (-> the coordinator
logs it fenced, off confirmed through the BMC) and start (-> the first answer from the new
owner). Then the time ``systemctl restart`` of clusterd takes on one node and on every
node at once, and whether anything moved or was fenced (it must not).
The lab (prefix ``rhco``, 198.18.6.0/24) is brought up for the run and removed afterwards;
the deployment is tests/lab_tests/test_services_lab.py's ``SvcLab``. ``RHC_BENCH_TOKEN_MS``
adds a ``<totem token="..."/>`` to the deployed cluster.conf (default: none, i.e. the
daemon's default token of 1000 ms).
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clusterlab import Lab, net
from clusterlab.render import partition_targets
from clusterlab.spec import LabSpec
from clusterlab.teardown import teardown

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab_tests"))
from test_services_lab import UNIT, SvcLab, samples  # the deployment of the lab test

PREFIX, SUBNET, NODES = "rhco", "198.18.6.0/24", 3
RUNS = 5
TOKEN_MS = os.environ.get("RHC_BENCH_TOKEN_MS", "")  # "" = the daemon's default token
KINDS = {
    "crash": "owner crashed, BMC answering (links gone)",
    "poweroff": "owner powered off",
    "paused": "owner's clusterd paused (SIGSTOP)",
    "partition": "owner partitioned from its peers",
}


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"{statistics.median(values):.2f} s ({min(values):.2f}, {max(values):.2f})")


def _gap(path: Path, start: float, end: float) -> float:
    ok = [t for t, who in samples(path) if who not in ("", "-") and start - 1.0 <= t <= end]
    return max((b - a for a, b in itertools.pairwise(ok)), default=float("nan"))


def _first_answer(path: Path, after: float, not_from: str) -> float:
    return min((t for t, who in samples(path)
                if t >= after and who not in ("", "-", not_from)),
               default=float("nan"))


def _journal_first(s: SvcLab, names: list[str], after: float, needle: str) -> float:
    times = [t for n in names if s.lab.is_on(n) for t in s.journal_unix(n, needle) if t >= after]
    return min(times, default=float("nan"))


def _fault(s: SvcLab, kind: str, owner: str, others: list[str]) -> None:
    if kind == "crash":                  # nothing reaches it but its BMC (on the host side)
        n = s.lab.node(owner)
        targets = (*partition_targets(s.lab.spec, n, None), s.lab.spec.client_address)
        net.partition(s.lab.spec, n, targets, "both")
    elif kind == "poweroff":
        s.lab.power(owner, "off", wait=False)
    elif kind == "paused":
        s.lab.exec(owner, ["systemctl", "kill", "--kill-who=main", "--signal=SIGSTOP", UNIT])
    elif kind == "partition":
        s.lab.partition(owner, peers=others)


def _members(s: SvcLab, via: str) -> int:
    return len(s.members(via))


def _restore(s: SvcLab, owner: str, via: str) -> None:
    lab = s.lab
    if not lab.is_on(owner):
        lab.power(owner, "on")
    lab.wait_for(lambda: lab.ssh_ok(owner), 90, f"{owner} back")
    lab.heal(owner)
    s.stop(owner)
    s.start(owner)
    s.wait("three members again", lambda: _members(s, via) == NODES, timeout=120)


def _measure(s: SvcLab, log: Path, kind: str, out: dict[str, list[float]]) -> None:
    owner = s.answer()
    others = [n for n in s.names if n != owner]
    t0 = time.time()
    _fault(s, kind, owner, others)
    s.wait(f"web answers from a survivor ({kind})",
           lambda: s.answer() not in ("", owner), timeout=180)
    time.sleep(0.5)
    end = time.time()
    out["outage"].append(_gap(log, t0, end))
    detect = _journal_first(s, others, t0, f": {owner} failed")
    fenced = _journal_first(s, others, t0, f"{owner} fenced (")
    answer = _first_answer(log, t0, owner)
    out["detect"].append(detect - t0)
    out["fence"].append(fenced - detect)
    out["start"].append(answer - fenced)
    print(f"{kind} {owner}: outage {out['outage'][-1]:.3f} s (detect {detect - t0:.3f}, "
          f"fence {fenced - detect:.3f}, start {answer - fenced:.3f})", flush=True)
    _restore(s, owner, others[0])


def _restart_time(s: SvcLab, names: list[str], log: Path) -> tuple[float, float, str]:
    """Seconds for ``systemctl restart`` (the slowest of ``names``), the client-visible gap,
    and what moved or was fenced ('' when nothing: the same owner and nginx process, no
    fence agent run on any node since the restart began)."""
    owner = s.answer()
    pid = _nginx_pid(s, owner)
    t0 = time.time()

    def restart(name: str) -> float:
        start = time.monotonic()
        s.lab.exec(name, ["systemctl", "restart", UNIT], timeout=120)
        return time.monotonic() - start

    with ThreadPoolExecutor(len(names)) as pool:
        took = max(pool.map(restart, names))
    s.wait("three members again", lambda: _members(s, s.names[0]) == NODES, timeout=120)
    time.sleep(2.0)
    gap = _gap(log, t0, time.time())
    what = []
    if s.answer() != owner or _nginx_pid(s, owner) != pid:
        what.append(f"web moved or restarted (was {owner} pid {pid})")
    runs = [n for n in s.names for t in s.journal_unix(n, ", attempt ") if t >= t0]
    if runs:
        what.append(f"{len(runs)} fence agent run(s) logged on {sorted(set(runs))}")
    return took, gap, "; ".join(what)


def _nginx_pid(s: SvcLab, name: str) -> str:
    return s.lab.exec(name, ["cat", "/opt/rhc-services-test/nginx.pid"], check=False).stdout.strip()


def main() -> str:
    spec = LabSpec.create(PREFIX, NODES, SUBNET)
    teardown(spec)
    out = {kind: {"outage": [], "detect": [], "fence": [], "start": []} for kind in KINDS}
    restarts: list[tuple[str, float, float, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="rhc-bench-outage-"))
    lab = Lab.up(nodes=NODES, prefix=PREFIX, subnet=SUBNET, progress=lambda _m: None)
    poll = None
    try:
        s = SvcLab(lab)
        if TOKEN_MS:
            s.conf, subs = re.subn(r'(<cman port="\d+"/>)',
                                   rf'\1<totem token="{int(TOKEN_MS)}"/>', s.conf, count=1)
            assert subs == 1, "no <cman port=.../> in the deployed cluster.conf"
        s.install()
        for name in s.names:
            s.start(name)
        s.wait("web answering", lambda: s.answer() in s.names, timeout=180)
        log = tmp / "client.log"
        poll = s.poller(log, 0.02)
        # the first fault must find the client answering (else its gap is not measured)
        s.wait("the client answering", lambda: log.exists() and any(
            who not in ("", "-") for _, who in samples(log)), timeout=60)
        for kind in KINDS:
            for _ in range(RUNS):
                _measure(s, log, kind, out[kind])
        one: Callable[[], list[str]] = lambda: [s.answer()]
        for label, names in (("one node (the owner)", one), ("every node at once",
                                                              lambda: list(s.names))):
            for _ in range(RUNS):
                took, gap, moved = _restart_time(s, names(), log)
                restarts.append((label, took, gap, moved))
                print(f"restart {label}: {took:.2f} s, client gap {gap:.3f} s, "
                      f"moved/fenced: {moved or 'nothing'}", flush=True)
    finally:
        if poll is not None:
            poll.terminate()
            poll.wait(timeout=10)
        teardown(spec)
    rows = [f"| {KINDS[k]} | {_stats(v['outage'])} | {_stats(v['detect'])} | "
            f"{_stats(v['fence'])} | {_stats(v['start'])} |" for k, v in out.items()]
    rrows = []
    for label in dict.fromkeys(r[0] for r in restarts):
        mine = [r for r in restarts if r[0] == label]
        rrows.append(f"| {label} | {_stats([r[1] for r in mine])} | "
                     f"{_stats([r[2] for r in mine])} | "
                     f"{sum(bool(r[3]) for r in mine)} of {len(mine)} |")
    return "\n".join([
        "## Outage per failure kind (bench_outage.py)",
        "",
        (f"A client polls the floating address of `web` (ip + ocf:heartbeat:nginx) every "
         f"20 ms from the lab's client namespace; {RUNS} runs per kind, median (min, max). "
         f"{('Token ' + TOKEN_MS + ' ms (RHC_BENCH_TOKEN_MS). ') if TOKEN_MS else ''}"
         "Outage = longest gap between two answers; detect = fault -> a survivor logs the "
         "node failed; fence = -> fenced (off confirmed by fence_ipmilan through the BMC, "
         "roles' settings: power_wait=0); start = -> first answer from the new owner. "
         "The phases come from journal receive times, which can lag a log line by a few "
         "hundred ms on a busy machine (a negative start is that lag); the outage is the "
         "client's own measure. "
         "Targets (issue 11): crashed with BMC answering < 1.5 s median, powered off "
         "< 1.3 s. A crash is emulated by cutting the node off from its peers, the "
         "floating range and the client (its BMC, on the host side, still answers)."),
        "",
        "| failure | outage | detect | fence | start |",
        "|---|---|---|---|---|",
        *rows,
        "",
        ("`systemctl restart` of clusterd (a restart is not a leave: services keep running, "
         "nothing moves, nobody is fenced):"),
        "",
        "| restarted | command time | client-visible gap | runs where web moved or a fence ran |",
        "|---|---|---|---|",
        *rrows,
        *[f"- {label}, run {i}: {what}" for i, (label, _t, _g, what) in
          enumerate(restarts, 1) if what],
        "",
    ])


if __name__ == "__main__":
    print(main())
