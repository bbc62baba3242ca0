"""Quorum leases aggregated up the dissemination tree (``clusterd.membership.leasetree``)
alone in its simulator (``tests/sim/leasetree_sim.py``) at 3, 30, 100 and 300 nodes: not
the daemon, which does not use it yet (docs/architecture.md, "Planned: membership at 300
nodes").

Per size, without faults: the messages and bytes each node sends a second, the most a
node sends a round (the root or an inner node: a grant and one down per child), and the
time from a view's install to every member holding a certificate (the first view: a new
incarnation promises nothing for its first lease). With a partition (1 to n/2 nodes cut off):
how long the minority stays quorate after the cut (at most a lease). Runnable alone:
``.venv/bin/python tests/bench/bench_leasetree.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "sim")]

from clusterd.membership.leasetree import LeaseParams
from clusterd.membership.tree import Tree
from leasetree_sim import check_load, draw, run

SIZES = (3, 30, 100, 300)


def measure(n: int) -> dict[str, Any]:
    started = time.perf_counter()
    sim = run(draw(1, n, horizon=10.0))
    check_load(sim)
    st, rounds = sim.stats, sim.now / sim.p.period
    row: dict[str, Any] = {
        "n": n, "depth": Tree.of(range(n)).depth,
        "msgs": (sum(st.grants.values()) + sum(st.downs.values())) / n / sim.now,
        "bytes": sum(st.bytes.values()) / n / sim.now,
        "max_round": max((st.grants[i] + st.downs[i]) / rounds for i in sim.nodes),
        "to_cert": max(st.to_cert), "biggest": st.biggest}
    cut = [run(draw(seed, n, horizon=6.0, partition=True)).stats.minority_quorate
           for seed in range(1, 4)]
    row["minority"] = max(cut)
    row["wall"] = time.perf_counter() - started
    print(f"{n} nodes: {row['msgs']:.2f} msgs and {row['bytes']:.0f} bytes a node a "
          f"second, at most {row['max_round']:.1f} a round, install -> all certified "
          f"{row['to_cert']:.2f} s, minority quorate {row['minority']:.2f} s after a cut "
          f"[{row['wall']:.0f} s wall]", flush=True)
    return row


def main() -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    p = LeaseParams()
    rows = [measure(n) for n in SIZES]
    lines = [
        ("## Quorum leases aggregated up a tree, alone in their simulator "
        "(bench_leasetree.py, issue 18)"), "",
        (f"Measured {when} UTC. `membership/leasetree.py` alone in "
         "`tests/sim/leasetree_sim.py`, not the daemon: it is not wired in yet. Round "
         f"{p.period * 1000:.0f} ms, lease {p.lease:g} s, fan-out 8, link delays "
         "0.5-5 or 1-20 ms (plus as much jitter), per-node clock offsets and 100 ppm "
         "drift, no loss. Install -> all certified: the first view, from the install on "
         "the first member to a certificate at the last (a new incarnation promises its "
         "vote to nothing for its first lease; a view change costs the same: the vote "
         "stays promised to the old view for up to a lease). Minority quorate: the "
         "longest, over 3 seeds, that a node of the smaller side of a cut (1 to n/2 of "
         "the nodes) still held a certificate after the cut."), "",
        ("| nodes | depth | msgs/node/s | bytes/node/s | most msgs a node sends a round "
         "| install -> all certified (s) | minority quorate after a cut (s) | "
         "biggest message (bytes) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['n']} | {r['depth']} | {r['msgs']:.2f} | {r['bytes']:.0f} | "
                     f"{r['max_round']:.1f} | {r['to_cert']:.2f} | {r['minority']:.2f} | "
                     f"{r['biggest']} |")
    lines += ["", ("About 2 messages a node a round (a grant up, a down from the parent's "
                   "fan-out) at every size, against 3(n-1) heartbeats a second today; the "
                   "most a node sends is its grant and one down per child (9). The "
                   "minority's certificate lapses within a lease of the cut, as the "
                   "safety argument says it must."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
