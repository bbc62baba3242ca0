"""The cluster sizes clusterd is tested at (issue 18): one place for both limits.

A cluster.conf beyond them is accepted, with a warning that names the tested limit
(``ccs_config_validate`` prints it; the daemon logs it when it loads such a config):
nothing refuses it, but nothing has measured it either. The figures behind them are in
docs/benchmarks.md (placement for 1,000 services on 300 nodes) and docs/services-wire.md
(services reports in parts).
"""

from __future__ import annotations

TESTED_NODES = 300
TESTED_SERVICES = 1000


def scale_notes(nodes: int, services: int) -> list[tuple[str, str]]:
    """(what, reason) for each count over its tested limit (empty: within both)."""
    out = []
    if nodes > TESTED_NODES:
        out.append(("clusternodes", (f"{nodes} nodes: more than the {TESTED_NODES} nodes "
                    "clusterd is tested with; accepted, but membership and placement at "
                    "this size are not measured")))
    if services > TESTED_SERVICES:
        out.append(("rm", (f"{services} services: more than the {TESTED_SERVICES} "
                    "services clusterd is tested with; accepted, but service reports and "
                    "placement at this size are not measured")))
    return out
