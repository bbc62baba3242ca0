"""Placement figures (issue 18, item 2): how long one placement decision takes for 1,000
services on 300 nodes (``clusterd.placement.decide`` on a ``Snapshot``, as the
coordinator runs it every services cycle), against the token (1 s): a coordinator's loop
must never hold that long.

Pure, in-process: snapshots built directly (as tests/unit/placement/placement_builder.py
builds them), no daemon. 20 failover domains of 15 nodes (ordered, priorities 1..3),
services spread over them, one depending on the service before it every tenth. Scenarios:
steady (every service started where it belongs: nothing to do), cold start (every
service stopped with autostart: 1,000 starts to choose), recovery (10 nodes lost and
fenced: their services placed elsewhere) and inquorate. Wall-clock medians of ``RUNS``
runs with min and max. Runnable alone: ``.venv/bin/python tests/bench/bench_placement.py``.
"""

from __future__ import annotations

import statistics
import time

from clusterd.conf.limits import TESTED_NODES, TESTED_SERVICES
from clusterd.placement import (
    DependMode,
    DomainMember,
    FailoverDomain,
    Fence,
    NodeInfo,
    Recovery,
    ServiceDef,
    ServiceState,
    ServiceStatus,
    Snapshot,
    decide,
)

RUNS = 7
TOKEN = 1.0
DOMAINS = 20
LOST = 10
NOW = 10_000.0


def _nodes(lost: frozenset[str] = frozenset()) -> tuple[NodeInfo, ...]:
    return tuple(NodeInfo(f"node{i}", i, f"node{i}" not in lost, False,
                          Fence.CONFIRMED if f"node{i}" in lost else Fence.NONE,
                          False, True, 50.0) for i in range(1, TESTED_NODES + 1))


def _domains() -> tuple[FailoverDomain, ...]:
    per = TESTED_NODES // DOMAINS
    return tuple(FailoverDomain(f"dom{d}", tuple(
        DomainMember(f"node{d * per + k + 1}", k % 3 + 1) for k in range(per)), True,
        False, False) for d in range(DOMAINS))


def _services() -> tuple[ServiceDef, ...]:
    return tuple(ServiceDef(f"service:s{i}", f"dom{i % DOMAINS}", True, False,
                            Recovery.RELOCATE, 0, 0.0,
                            f"service:s{i - 1}" if i % 10 == 9 else None, DependMode.HARD)
                 for i in range(TESTED_SERVICES))


def _owner(i: int) -> str:
    per = TESTED_NODES // DOMAINS
    d = i % DOMAINS
    return f"node{d * per + (i // DOMAINS) % per + 1}"


def snapshot(scenario: str) -> Snapshot:
    services = _services()
    lost = frozenset(f"node{k * (TESTED_NODES // LOST) + 1}" for k in range(LOST)) \
        if scenario == "recovery" else frozenset()
    if scenario == "cold start":
        states = tuple(ServiceStatus(s.name, ServiceState.STOPPED, None) for s in services)
    else:
        states = tuple(ServiceStatus(s.name, ServiceState.STARTED, _owner(i), placed_at=100.0)
                       for i, s in enumerate(services))
    return Snapshot(scenario != "inquorate", _nodes(lost), services, _domains(), states, (),
                    NOW)


def _timed(snap: Snapshot) -> tuple[list[float], int]:
    times, actions = [], 0
    for _ in range(RUNS):
        started = time.perf_counter()
        decision = decide(snap)
        times.append(time.perf_counter() - started)
        actions = len(decision.actions)
    return times, actions


def main() -> str:
    lines = [(f"## Placement at {TESTED_SERVICES:,} services on {TESTED_NODES} nodes "
             "(bench_placement.py)"), "",
             (f"One `clusterd.placement.decide` on a Snapshot of {TESTED_SERVICES:,} services "
              f"and {TESTED_NODES} nodes ({DOMAINS} ordered failover domains of "
              f"{TESTED_NODES // DOMAINS} nodes, a hard dependency every tenth service), "
              f"wall-clock median (min-max) of {RUNS} runs, one core. The coordinator "
              "runs one per services cycle, on its event loop; the token is "
              f"{TOKEN:g} s."), "",
             "| scenario | actions | decide | share of the token |", "|---|---|---|---|"]
    worst = 0.0
    for scenario in ("steady", "cold start", "recovery", "inquorate"):
        times, actions = _timed(snapshot(scenario))
        med = statistics.median(times)
        worst = max(worst, max(times))
        lines.append(f"| {scenario} | {actions} | {med * 1000:.0f} ms ({min(times) * 1000:.0f}"
                     f"-{max(times) * 1000:.0f}) | {100 * med / TOKEN:.0f} % |")
        print(lines[-1], flush=True)
    lines += ["", (f"The slowest run of any scenario took {worst * 1000:.0f} ms, "
                   f"{100 * worst / TOKEN:.0f} % of the token. Recovery: {LOST} nodes lost "
                   "and fenced, their services placed on the rest of their domains.")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
