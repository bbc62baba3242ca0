"""Gathering the status document (control op ``status``) from the live node.

:class:`StatusPublisher` reads the runtime (membership, configsync, the packet guard,
the endpoint, the running config) and what it is handed explicitly (the daemon's phase,
the active key id, dropped events, lost log records, the standby nodes, the sections the
services and fencing layers plug in) into a :class:`~clusterd.node.status.StatusInput`,
and builds the document with the pure :func:`~clusterd.node.status.build_status`. A
build that fails is logged and the last document stays.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from clusterd import __version__
from clusterd.node.status import Conflict, StatusInput, build_status

if TYPE_CHECKING:
    from clusterd.node.wiring import Runtime

# the daemon's log lines, under the daemon's logger name as before this module existed
logger = logging.getLogger("clusterd.node.daemon")

Sections = dict[str, Callable[[], tuple[Mapping[str, Any], ...]]]


class StatusPublisher:
    def __init__(self, *, name: str, rt: Runtime, phase: Callable[[], str],
                 key_id: Callable[[], str], events_dropped: Callable[[], int],
                 log_lost: Callable[[], int], standby: Callable[[], Iterable[str]],
                 sections: Sections, locked: Callable[[], bool] = lambda: False) -> None:
        self.name = name
        self.rt = rt
        self._phase = phase
        self._key_id = key_id
        self._events_dropped = events_dropped
        self._log_lost = log_lost
        self._standby = standby
        self._locked = locked
        self.sections = sections
        self.document: dict[str, Any] = {}

    def publish(self, now: float) -> None:
        try:
            self.document = build_status(self._input(now))
        except Exception:
            logger.exception("node %s: building the status document failed", self.name)

    def _input(self, now: float) -> StatusInput:
        rt, m, sync = self.rt, self.rt.core.membership, self.rt.core.configsync
        view, q = m.view, m.quorum
        members = view.nodeids if view else frozenset()
        conflict = None
        for peer, (version, sha) in sorted(sync.conflicts.items()):
            node = rt.conf.node_by_id(peer)
            conflict = Conflict(node.name if node else str(peer), version, sha)
            break
        unaccepted = tuple(Conflict(n.name if (n := rt.conf.node_by_id(peer)) else str(peer),
                                    version, sha)
                           for peer, (version, sha) in sorted(sync.unaccepted_peers.items()))
        return StatusInput(
            cluster_name=rt.conf.name, cluster_id=rt.mcfg.cid,
            config_version=sync.running.version, config_sha256=sync.running.sha256,
            nodes=rt.status_nodes(), local_nodeid=rt.local.nodeid, incarnation=m.inc,
            epoch=view.epoch if view else 0, members=members,
            coordinator=view.coordinator if view else None,
            quorate=q.quorate, votes=q.votes, expected_votes=q.expected_votes,
            quorum=q.quorum, config_holders=sync.holders(now, members - {rt.local.nodeid}),
            conflict=conflict, config_accepted=sync.accepted, unaccepted=unaccepted,
            state=self._phase(), pid=os.getpid(), wire=self._wire(),
            services=self._section("services"), fencing=self._section("fencing"),
            qdisk=next(iter(self._section("qdisk")), None),
            log_lost=self._log_lost(), standby=frozenset(self._standby()), locked=self._locked(),
            two_node=m.cfg.two_node, override=self._override(m), version=__version__,
            joined={n: (epoch, time.time() - (now - at))
                    for n, (epoch, at) in m.joined.items()})

    def _override(self, m: Any) -> dict[str, Any] | None:
        """The expected votes set by hand, with the members yet to confirm them by name."""
        doc = m.expected.status()
        if doc is not None:
            doc["unconfirmed"] = [n.name if (n := self.rt.conf.node_by_id(peer)) else str(peer)
                                  for peer in doc["unconfirmed"]]
        return doc

    def _wire(self) -> dict[str, Any]:
        guard = self.rt.core.guard
        endpoint = self.rt.endpoint
        return {"accepted": guard.accepted, "drops": dict(guard.drops),
                "key": self._key_id(), "clear_refused": self.rt.core.clear_refused,
                "protocol": guard.version,
                "peer_protocols": {str(n): v for n, v in sorted(guard.heard_versions.items())},
                "inbox_overflow": endpoint.overflow if endpoint else 0,
                "lease_rtt": {self._name(n): round(v, 6) for n, v in
                              sorted(self.rt.core.membership.table.rtt.items())},
                "events_dropped": self._events_dropped()}

    def _name(self, nodeid: int) -> str:
        node = self.rt.conf.node_by_id(nodeid)
        return node.name if node is not None else str(nodeid)

    def _section(self, name: str) -> tuple[Mapping[str, Any], ...]:
        provider = self.sections.get(name)
        return tuple(provider()) if provider is not None else ()
