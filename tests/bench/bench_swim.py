"""The SWIM + Lifeguard failure detector alone (``clusterd.membership.swim``) in its own
simulator (``tests/sim/swim_sim.py``) at 3, 30, 100 and 300 nodes: not the daemon, which
does not use it yet (docs/architecture.md, "Planned: membership at 300 nodes").

Per size: the messages and bytes each node sends per second at rest (no loss); the time
from a crash to the first suspicion and to every responsive node's Failed (median and
max over several crashes and seeds); and false suspicions and false failures per
node-hour (distinct (node, incarnation) episodes of a node that did not crash) at 0, 5
and 20 % loss and with 10 % of the nodes saturated (every message and timer handled
50-500 ms late). Runnable alone: ``.venv/bin/python tests/bench/bench_swim.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "sim")]

from clusterd.membership.swim import SwimConfig
from swim_sim import SwimNet, check, draw, run

# size -> (seeds, crashes per seed, seconds of each false-suspicion run)
PLAN = {3: (4, 1, 900.0), 30: (3, 2, 180.0), 100: (2, 3, 60.0), 300: (1, 3, 20.0)}
CONDITIONS = (("0 % loss", {}), ("5 % loss", {"loss": 0.05}),
              ("20 % loss", {"loss": 0.2}), ("10 % saturated", {"saturated": 0.1}))


def _crash_times(sim: SwimNet) -> tuple[list[float], list[float]]:
    first, every = [], []
    for t, v in sim.scn.crashes:
        first.append(sim.stats.suspected[v] - t)
        every.append(max(sim.stats.failed[(o, v)] for o in sim.nodes
                         if sim.responsive(o)) - t)
    return first, every


def _per_hour(sim: SwimNet) -> dict[str, float]:
    hours = sim.scn.n * sim.now / 3600.0
    st = sim.stats
    responsive = [(v, i) for v, i in st.failed_live if sim.responsive(v)]
    return {"susp": len(st.suspected_live) / hours, "fail": len(st.failed_live) / hours,
            "fail_resp": len(responsive) / hours}


def measure(n: int) -> dict[str, Any]:
    seeds, crashes, seconds = PLAN[n]
    started = time.perf_counter()
    first: list[float] = []
    every: list[float] = []
    for seed in range(1, seeds + 1):
        sim = run(draw(seed, n, horizon=20.0, crashes=crashes))
        check(sim)
        f, e = _crash_times(sim)
        first += f
        every += e
    row: dict[str, Any] = {"n": n, "first": first, "every": every}
    for name, kw in CONDITIONS:
        if "saturated" in kw:                  # one node of 3 (10 % rounds to none)
            kw = {"saturated": max(0.1, 1 / n)}
        sim = run(draw(100 + n, n, horizon=seconds, crashes=0, **kw))
        row[name] = _per_hour(sim)
        if not kw:
            row["msgs"] = sum(sim.stats.sent.values()) / n / sim.now
            row["bytes"] = sum(sim.stats.bytes.values()) / n / sim.now
    row["wall"] = time.perf_counter() - started
    print(f"{n} nodes: {row['msgs']:.2f} messages and {row['bytes']:.0f} bytes a node a "
          f"second; crash -> first suspicion {statistics.median(first):.2f} s (max "
          f"{max(first):.2f}), -> all failed {statistics.median(every):.2f} s (max "
          f"{max(every):.2f}); per node-hour "
          + "; ".join(f"{name}: {row[name]['susp']:.0f} suspicions, {row[name]['fail']:.1f} "
                      f"failures ({row[name]['fail_resp']:.1f} of responsive nodes)"
                      for name, _ in CONDITIONS)
          + f" [{row['wall']:.0f} s wall]", flush=True)
    return row


def main() -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    cfg = SwimConfig()
    rows = [measure(n) for n in PLAN]
    lines = [
        ("## SWIM + Lifeguard failure detector, alone in its simulator (bench_swim.py, "
        "issue 18)"), "",
        (f"Measured {when} UTC. The detector alone (`membership/swim.py`) in its own "
         "discrete-event simulator (`tests/sim/swim_sim.py`), not the daemon: it is not "
         f"wired in yet. Period {cfg.period * 1000:.0f} ms (token/3), probe timeout "
         f"{cfg.probe_timeout * 1000:.0f} ms, k = {cfg.indirect}, lambda = "
         f"{cfg.retransmit_mult}, suspicion {cfg.suspicion_mult:g}-"
         f"{cfg.suspicion_mult * cfg.suspicion_max_mult:g} x max(1, log10 n) periods; link "
         "delays 0.5-5 or 1-20 ms. Crash times: virtual seconds, median (max) over "
         "several crashes and seeds, to every responsive node's Failed. False suspicions "
         "and failures: distinct (node, incarnation) episodes of nodes that did not "
         "crash, per node-hour of simulated time; saturated nodes (one at 3 nodes) "
         "handle every message and timer 50-500 ms late, in order."), "",
        ("| nodes | msgs/node/s | bytes/node/s | crash -> first suspicion (s) | crash -> "
         "all failed (s) | " + " | ".join(f"{name}: false susp. / false failures "
                                          "(of responsive) per node-h"
                                          for name, _ in CONDITIONS) + " |"),
        "|---|---|---|---|---|" + "---|" * len(CONDITIONS),
    ]
    for r in rows:
        cells = [f"{r['n']}", f"{r['msgs']:.2f}", f"{r['bytes']:.0f}",
                 f"{statistics.median(r['first']):.2f} ({max(r['first']):.2f})",
                 f"{statistics.median(r['every']):.2f} ({max(r['every']):.2f})"]
        cells += [f"{r[name]['susp']:.0f} / {r[name]['fail']:.1f} ({r[name]['fail_resp']:.1f})"
                  for name, _ in CONDITIONS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", ("Messages per node stay at 2 a period (one probe, one ack) at every "
                   "size; detection grows as log n (the suspicion timeout). At 3 nodes a "
                   "probe has one relay, not three, hence more false suspicions. A "
                   "saturated "
                   "node is suspected, refutes and is suspected again all the time, and "
                   "its own false suspicions of others cost them suspicions, not "
                   "failures (Lifeguard's local health slows it down; a suspect gets a "
                   "last probe before it is declared failed). The wall time is this "
                   "process's for all n detectors: "
                   + ", ".join(f"{r['n']} nodes {r['wall']:.0f} s" for r in rows) + "."),
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
