"""The membership in the simulator at 3, 30 and 100 nodes (issue 18; 300 with
``RHC_BENCH_SIM_300=1``, not run so far): the real cores on a virtual clock and a
network of 0.5-5 ms delays, the invariants checked incrementally (``SimNet``).

Per size: when the first agreed view of every node formed (virtual s), the datagrams
and bytes each node sends per simulated second at rest, the wall time one simulated
second of rest costs this process (all n cores in one process: the simulator's own cost
grows as n^2 with all-to-all heartbeats), and the time from a node's crash to every
survivor running one agreed view without it (virtual s, median of 3). Runnable alone:
``.venv/bin/python tests/bench/bench_sim_scale.py``.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "sim")]

from harness import SimNet

SIZES = (3, 30, 100) + ((300,) if os.environ.get("RHC_BENCH_SIM_300") else ())
CRASHES = 3


def _agreed_without(sim: SimNet, victim: int) -> bool:
    views = {x.core.membership.view.vid if x.core.membership.view else None
             for x in sim.live()}
    if len(views) != 1 or None in views:
        return False
    view = sim.live()[0].core.membership.view
    return victim not in view.nodeids


def measure(n: int, seed: int = 1) -> dict[str, Any]:
    started = time.perf_counter()
    sim = SimNet(n, seed, incremental=True)
    formed = sim.settle(limit=120.0)
    form_wall = time.perf_counter() - started
    sim.tap = []
    t = time.perf_counter()
    sim.run_for(2.0)
    rest_wall = (time.perf_counter() - t) / 2.0
    sent = len(sim.tap) / n / 2.0
    sent_bytes = sum(len(d) for _s, _d, d in sim.tap) / n / 2.0
    sim.tap = None
    crash = []
    for k in range(CRASHES):
        victim = n - k
        at = sim.now
        sim.crash(victim)
        while not _agreed_without(sim, victim):
            sim.run_for(0.005)
            if sim.now - at > 60:
                raise AssertionError(f"{n} nodes: no agreed view without node {victim}")
        crash.append(sim.now - at)
        sim.start(victim)              # back, and the whole cluster again before the next
        sim.settle(limit=60.0)
    row = {"n": n, "formed": formed, "form_wall": form_wall, "rest_wall": rest_wall,
           "sent": sent, "bytes": sent_bytes, "crash": crash}
    print(f"{n} nodes: formed at {formed:.2f} s virtual ({form_wall:.1f} s wall); at rest "
          f"{sent:.1f} datagrams and {sent_bytes:.0f} bytes sent per node per s, "
          f"{rest_wall:.2f} s wall per simulated s; crash -> agreed view "
          f"{', '.join(f'{c:.3f}' for c in crash)} s", flush=True)
    return row


def main() -> str:
    logging.disable(logging.CRITICAL)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]
    rows = [measure(n) for n in SIZES]
    lines = [
        "## Membership in the simulator (bench_sim_scale.py, issue 18)", "",
        (f"Measured {when}, load average {load:.2f} before, one process. The real cores, "
        "all-to-all heartbeats (every token/3 to every peer), token 1 s, network delay "
        "0.5-5 ms, invariants checked incrementally. Crash: the highest-numbered node "
        f"killed, {CRASHES} times in a row, to every survivor running one agreed view "
        "without it (virtual seconds, median (min-max))."), "",
        ("| nodes | first agreed view (virtual s) | datagrams sent per node per s | bytes sent "
        "per node per s | wall s per simulated s at rest | crash -> agreed view (s) |"),
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["crash"]
        lines.append(f"| {r['n']} | {r['formed']:.2f} | {r['sent']:.1f} | {r['bytes']:.0f} | "
                     f"{r['rest_wall']:.3f} | {statistics.median(c):.3f} ({min(c):.3f}-"
                     f"{max(c):.3f}) |")
    lines += ["", ("Datagrams per node grow as 3(n-1) a second: what a SWIM-style "
              "membership would make flat (docs/architecture.md, \"Planned: membership at "
              "300 nodes\"). The wall time per simulated second is the simulator's own "
              "cost for all n nodes in one process. 300 nodes (RHC_BENCH_SIM_300=1) were "
              "not run here: from 30 to 100 nodes forming grew about as n^3 and a "
              "simulated second of rest as n^2, which puts 300 at roughly a quarter of "
              "an hour to form and 45 s of wall time per simulated second (an estimate, "
              "not a measurement)."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
