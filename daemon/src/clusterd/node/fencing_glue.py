"""Wire the fencing layer (``clusterd.fencing.runtime.Fencer``) into the node.

The fencer registers ``fence.node`` / ``fence.ack`` / ``fence.status`` / ``fence.verify``
on the control registry, fills the status document's ``fencing`` section, keeps its
intents beside the incarnation in the state dir, and hears about every agreed view
(members with their incarnations, quorum, coordinator, who left cleanly and who
restarts keeping its services), every new cluster.conf, how many services each node
owns (the two_node fence delay follows the services) and the fence state of the other
members (``fence.state`` app messages, :mod:`clusterd.fencing.exchange`). It broadcasts
its own fence state on change, on a new view and every ``RESEND`` seconds while an
operation is open, so every member shows the same operations and persists the same
intents. Only the quorate coordinator executes fence operations (the fencing policy
decides). What the policy is told and when is :class:`clusterd.fencing.core.FencingCore`
(the simulator drives the same core); this adapter only moves its outputs: log lines,
agent runs and intents (the ``Fencer``), broadcasts (the port's ``send_app``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from clusterd import events as ev
from clusterd.conf import ClusterConf
from clusterd.errors import ClusterError, FatalError
from clusterd.fencing.core import ViewFacts
from clusterd.fencing.exchange import CH_FENCE
from clusterd.fencing.runtime import Fencer
from clusterd.fencing.state import ConfigChanged, PolicyConfig
from clusterd.node.port import NodePort

logger = logging.getLogger(__name__)

INTENTS_FILE = "fence-intents.json"

__all__ = ["INTENTS_FILE", "FencingGlue"]


class FencingGlue:
    def __init__(self, port: NodePort) -> None:
        self.port = port
        self.fencer = Fencer(port.name, PolicyConfig.from_conf(port.conf()),
                             conf_provider=port.conf,
                             intents_path=os.path.join(port.state_dir, INTENTS_FILE),
                             clock=port.clock, wall=port.wall, names=port.names())
        try:
            self.fencer.load()
        except ClusterError as exc:
            raise FatalError(f"cannot start: fence intents: {exc}") from None
        if port.registry is not None:
            self.fencer.register(port.registry)
        port.sections["fencing"] = self.fencer.status_section
        self.fencer.facts = self.facts
        self.fencer.broadcast = self._broadcast

    @property
    def peer_drops(self) -> int:
        return self.fencer.core.peer_drops

    def facts(self, now: float) -> ViewFacts:
        return ViewFacts.of(self.port.membership(), now)

    def on_events(self, events: Iterable[ev.Event],
                  counts: Mapping[str, int] | None = None) -> None:
        """After each batch of core events: a changed view/quorum, the services held per
        node (``counts``, see :func:`clusterd.fencing.core.service_counts`; None:
        unchanged), peers' fence state, then our own broadcast when due."""
        now = self.port.clock()
        core = self.fencer.core
        self.fencer.carry_out(core.on_cycle(events, counts, now, self.port.wall(),
                                            self.facts(now)))

    def _broadcast(self, payload: dict[str, Any]) -> None:
        try:
            self.port.send_app(None, CH_FENCE, payload)
        except ValueError as exc:   # the core fits it first (fencing.exchange.fit)
            self.fencer.core.refusals.refuse(self.port.clock(), CH_FENCE, 0,
                                             f"not broadcast ({exc})")

    def on_conf(self, conf: ClusterConf) -> None:
        self.fencer.core.names = {n.nodeid: n.name for n in conf.nodes}
        self.fencer.handle(ConfigChanged(PolicyConfig.from_conf(conf)))

    def recovery_allowed(self, node: str) -> bool:
        return self.fencer.recovery_allowed(node)

    def members(self) -> frozenset[str]:
        """The members of the last view the fencing policy took in."""
        return frozenset(self.fencer.state.members)

    def recovery_blocked(self, node: str) -> bool:
        return self.fencer.recovery_blocked(node)

    def fence_open(self, node: str) -> bool:
        return self.fencer.fence_open(node)

    def state_token(self) -> object:
        """The fencing policy's state (frozen): every answer above is a pure function of
        it, so an equal token means equal answers (the services glue's idle ticks)."""
        return self.fencer.state

    async def close(self) -> None:
        await self.fencer.close()

