"""What the node hands each of its parts (fencing, services): an explicit interface
instead of a back-pointer to the daemon.

A part sees the membership core (its view, quorum and lease check: the one source of
the view), the running cluster.conf, the node's clocks, a way to send an authenticated
application message, the daemon's phase, its state directory, and the control registry
and status sections it plugs into. Nothing else: a part cannot reach into another part
or into the daemon, and a test builds a ``NodePort`` from plain values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clusterd.conf import ClusterConf


@dataclass
class NodePort:
    name: str                                   # this node's name
    nodeid: int
    state_dir: str
    membership: Callable[[], Any]               # the membership core, read at each use
    conf: Callable[[], ClusterConf]             # the running cluster.conf
    send_app: Callable[[int | None, str, Mapping[str, Any]], None]   # seal and send now
    phase: Callable[[], str] = lambda: "running"   # the daemon's phase (DaemonPhase value)
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    registry: Any = None                        # control OpRegistry the part registers on
    sections: dict[str, Callable[[], tuple[Mapping[str, Any], ...]]] = field(
        default_factory=dict)                   # status document sections by name

    def names(self) -> dict[int, str]:
        """Node names by nodeid, from the running config."""
        return {n.nodeid: n.name for n in self.conf().nodes}
