"""The status document (control op ``status``; what clustat renders). Pure.

Shape: docs/architecture.md "Status document". Additions made here, all optional for
readers: ``cluster.config_conflict`` (``null`` or ``{"peer", "version", "sha256"}``),
``cluster.config_accepted`` (a quorate view accepted the running config) and
``cluster.config_unaccepted`` (peers outside the view that run a config no quorate view
accepted: ``[{"peer", "version", "sha256"}]``),
``local.incarnation``, ``local.state`` (``starting|running|leaving``), ``local.pid``,
``local.version`` (clusterd's), ``log_lost`` and ``wire`` (packets accepted, drops by
reason, inbox overflow, ``lease_rtt``: per peer name, seconds from one of this node's
heartbeats to the peer's lease ack of it); ``quorum.two_node`` and ``quorum.override`` (``null``, or the
expected votes set by hand: ``{"expected_votes", "configured", "origin", "epoch",
"unconfirmed"}``, the members that have not confirmed it yet by name); per node
``address`` (what its packets come from), ``joined`` (unix time) and ``joined_view`` (the
view epoch) of the last time it joined this node's view, ``null``/0 if it never did;
``services_locked``: ``clusvcadm -l`` is in force (nothing starts or moves);
``qdisk``: ``null`` without a quorum disk, else its device, votes, this node's state on it
(``none|available|bid|master``), the master, score, online nodes, whether its votes count
here (``granted``) and the last I/O error (``clusterd.qdisk.runner.QdiskRunner.status``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StatusNode:
    name: str
    nodeid: int
    votes: int = 1
    address: str = ""


@dataclass(frozen=True)
class Conflict:
    peer: str
    version: int
    sha256: str


@dataclass(frozen=True)
class StatusInput:
    """Everything the status document is built from, captured once per cycle."""

    cluster_name: str
    cluster_id: int
    config_version: int
    config_sha256: str
    nodes: tuple[StatusNode, ...]
    local_nodeid: int
    incarnation: int
    epoch: int = 0
    members: frozenset[int] = frozenset()
    coordinator: int | None = None
    quorate: bool = False
    votes: int = 0
    expected_votes: int = 0
    quorum: int = 0
    config_holders: int = 1
    conflict: Conflict | None = None
    config_accepted: bool = True
    unaccepted: tuple[Conflict, ...] = ()     # peers running a config no quorate view took
    state: str = "starting"
    services: tuple[Mapping[str, Any], ...] = ()
    fencing: tuple[Mapping[str, Any], ...] = ()
    log_lost: int = 0
    pid: int = 0
    wire: Mapping[str, Any] = field(default_factory=dict)
    extra_nodes: tuple[StatusNode, ...] = field(default_factory=tuple)
    standby: frozenset[str] = frozenset()     # node names in standby (services admin state)
    locked: bool = False                      # services locked (clusvcadm -l)
    two_node: bool = False
    override: Mapping[str, Any] | None = None  # expected votes set by hand (cman_tool)
    joined: Mapping[int, tuple[int, float]] = field(default_factory=dict)  # epoch, unix time
    version: str = ""                         # clusterd's
    qdisk: Mapping[str, Any] | None = None    # the quorum disk (clusterd.qdisk.runner)

    @property
    def local_name(self) -> str:
        for n in self.nodes:
            if n.nodeid == self.local_nodeid:
                return n.name
        return "?"


def _node_entry(n: StatusNode, s: StatusInput, estranged: bool) -> dict[str, Any]:
    online = n.nodeid in s.members
    epoch, when = s.joined.get(n.nodeid, (0, None))
    return {"name": n.name, "nodeid": n.nodeid, "state": "online" if online else "offline",
            "local": n.nodeid == s.local_nodeid, "estranged": estranged,
            "rgmanager": online, "votes": n.votes, "standby": n.name in s.standby,
            "address": n.address, "joined": when, "joined_view": epoch}


def build_status(s: StatusInput) -> dict[str, Any]:
    nodes: Sequence[dict[str, Any]] = (
        [_node_entry(n, s, False) for n in s.nodes]
        + [_node_entry(n, s, True) for n in s.extra_nodes])
    conflict = None
    if s.conflict is not None:
        conflict = {"peer": s.conflict.peer, "version": s.conflict.version,
                    "sha256": s.conflict.sha256}
    return {
        "cluster": {"name": s.cluster_name, "id": s.cluster_id, "generation": s.epoch,
                    "config_version": s.config_version, "config_sha256": s.config_sha256,
                    "config_holders": s.config_holders, "config_conflict": conflict,
                    "config_accepted": s.config_accepted,
                    "config_unaccepted": [{"peer": c.peer, "version": c.version,
                                           "sha256": c.sha256} for c in s.unaccepted]},
        "quorum": {"quorate": s.quorate, "votes": s.votes, "expected_votes": s.expected_votes,
                   "quorum": s.quorum, "two_node": s.two_node,
                   "override": dict(s.override) if s.override is not None else None},
        "local": {"name": s.local_name, "nodeid": s.local_nodeid,
                  "incarnation": s.incarnation, "state": s.state, "pid": s.pid,
                  "version": s.version},
        "view": {"epoch": s.epoch, "members": sorted(s.members),
                 "coordinator": s.coordinator},
        "nodes": sorted(nodes, key=lambda n: n["nodeid"]),
        "services": [dict(x) for x in s.services],
        "services_locked": s.locked,
        "fencing": [dict(x) for x in s.fencing],
        "qdisk": dict(s.qdisk) if s.qdisk is not None else None,
        "log_lost": s.log_lost,
        "wire": dict(s.wire),
    }
