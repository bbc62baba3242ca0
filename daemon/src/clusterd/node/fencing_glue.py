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
decides).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from clusterd import events as ev
from clusterd.errors import ClusterError, FatalError
from clusterd.fencing.exchange import (
    CH_FENCE,
    RESEND,
    FenceStateMessage,
    MessageError,
    digest,
    peer_behind,
)
from clusterd.fencing.runtime import Fencer
from clusterd.fencing.state import (
    ConfigChanged,
    FenceStep,
    PeerFenceState,
    PolicyConfig,
    ServicesRunning,
    ViewChanged,
    ViewLost,
)
from clusterd.membership import standing
from clusterd.membership.host import AppReceived

if TYPE_CHECKING:
    from clusterd.conf import ClusterConf
    from clusterd.node.daemon import Daemon

logger = logging.getLogger(__name__)

INTENTS_FILE = "fence-intents.json"
REPLY_GAP = 0.5      # at most one answer to stale peers per this many seconds
_OWNED = frozenset({"started", "starting", "stopping", "failed", "recovering"})


def service_counts(rows: Any) -> dict[str, int]:
    """Services held per owner, from the services layer's merged rows."""
    counts: dict[str, int] = {}
    for row in (rows or {}).values():
        status = getattr(row, "status", None)
        owner = getattr(status, "owner", None)
        state = getattr(getattr(status, "state", None), "value", "")
        if owner and state in _OWNED:
            counts[owner] = counts.get(owner, 0) + 1
    return counts


def quorate_now(membership: Any, now: float) -> bool:
    """Quorum for fencing: the reported flag *and* the exact lease check. The flag lags a
    loss by LOSS_GRACE (so services do not flap), but a partition's minority must not
    open and run fence operations in that window: inquorate partitions never fence."""
    if not membership.quorum.quorate:
        return False
    exact = getattr(membership, "is_quorate", None)
    return True if exact is None else bool(exact(now))


def not_quorate_note(membership: Any, now: float) -> str:
    """Why fencing and recovery are off in the current view, from the same standing the
    node's view line states ('' while a new view waits one lease round trip for its
    backing: not worth a line, and the backing or the quorum loss that follows is
    logged)."""
    q = standing.of_core(membership, now)
    return q.fencing_note() if q is not None else "this node is in no view"


class FencingGlue:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        rt = daemon.rt
        self.fencer = Fencer(rt.local.name, PolicyConfig.from_conf(rt.conf),
                             conf_provider=lambda: rt.conf,
                             intents_path=os.path.join(daemon.opts.state_dir, INTENTS_FILE))
        try:
            self.fencer.load()
        except ClusterError as exc:
            raise FatalError(f"cannot start: fence intents: {exc}") from None
        self.fencer.register(daemon.registry)
        daemon.sections["fencing"] = self.fencer.status_section
        self._view_key: tuple | None = None
        self._sent_digest: tuple | None = None
        self._sent_at = float("-inf")
        self._counts: dict[str, int] = {}
        self.peer_drops = 0
        self.fencer.listeners.append(self._after_step)
        self.fencer.before_step = self._sync_quorum

    def on_events(self, events: Iterable[ev.Event]) -> None:
        """After each batch of core events: services counts, a changed view/quorum, peers'
        fence state, then our own broadcast when due."""
        events = list(events)
        before = self._view_key
        left = [e for e in events if isinstance(e, ev.NodeLeft)]
        left_clean = {e.nodeid for e in left if not e.hold}
        restarting = {e.nodeid for e in left if e.hold}   # keep their services running
        self._sync_view(left_clean, restarting, force=bool(left))
        new_view = self._view_key != before
        self._feed_services()
        view = self.daemon.rt.core.membership.view
        if view is None:
            return
        for e in events:
            if isinstance(e, AppReceived) and e.channel == CH_FENCE:
                self._on_peer(e, view)
        self._broadcast(force=new_view)

    def _sync_quorum(self) -> None:
        """Right before the policy takes any event (``Fencer.before_step``): a lapse or
        return of quorum in the view it knows, or the loss of every view. Leases lapse
        between daemon cycles, and an inquorate node must never start a fence agent (F2).
        A new view waits for the cycle, which knows who left cleanly or restarts."""
        view = self.daemon.rt.core.membership.view
        if view is None or self._view_key is None or self._view_key[0] == view.vid:
            self._sync_view()

    def _sync_view(self, left_clean: set[int] = frozenset(), restarting: set[int] = frozenset(),
                   force: bool = False) -> bool:
        """Tell the policy about a new view or a change of quorum (the exact lease check);
        True when it was a change. Also run right before the policy takes any other
        event (``Fencer.before_step``): leases lapse between daemon cycles, and an
        inquorate node must never start a fence agent (F2)."""
        core = self.daemon.rt.core.membership
        view = core.view
        if view is None:
            if self._view_key is not None and self._view_key[1]:
                self._view_key = (None, False)
                self.fencer.handle(ViewLost("dropped from the view while alive"))
            return False
        endpoint = getattr(self.daemon.rt, "endpoint", None)
        now = endpoint.clock() if endpoint else time.monotonic()
        quorate = quorate_now(core, now)
        key = (view.vid, quorate)
        new_view = key != self._view_key
        if new_view or force:
            self._view_key = key
            names = {n.nodeid: n.name for n in self.daemon.rt.conf.nodes}
            self.fencer.handle(ViewChanged.from_membership(
                view, names, quorate, left_clean=left_clean, restarting=restarting,
                not_quorate=not_quorate_note(core, now) if not quorate else ""))
        return new_view

    # ------------------------------------------------------------------ peers
    def _on_peer(self, e: AppReceived, view: Any) -> None:
        node = self.daemon.rt.conf.node_by_id(e.src)
        known = view.incarnation_of(e.src)
        if node is None or (known is not None and known != e.incarnation):
            # a member's message must come from its current incarnation; a node outside
            # the view (joining: its view may lag ours) is heard, the merge being monotone
            self.peer_drops += 1
            logger.debug("node %s: fence.state from node %d incarnation %d ignored",
                         self.fencer.local, e.src, e.incarnation)
            return
        try:
            msg = FenceStateMessage.from_wire(e.payload)
        except MessageError as exc:
            self.peer_drops += 1
            logger.warning("node %s: bad fence.state message from %s ignored: %s",
                           self.fencer.local, node.name, exc)
            return
        self.fencer.handle(PeerFenceState(node.name, msg))
        if peer_behind(self.fencer.state, msg) and time.monotonic() - self._sent_at >= REPLY_GAP:
            self._broadcast(force=True)

    def _after_step(self, result: FenceStep) -> None:
        if digest(result.state) != self._sent_digest:
            self._broadcast(force=True)

    def _broadcast(self, force: bool = False) -> None:
        rt = self.daemon.rt
        endpoint = getattr(rt, "endpoint", None)
        view = rt.core.membership.view
        state = self.fencer.state
        if endpoint is None or view is None or not state.ops:
            return
        now = time.monotonic()
        if not force and (now - self._sent_at < RESEND or not state.open_ops()):
            return          # periodic resend only while an operation is open
        msg = FenceStateMessage.build(state, view.epoch, self.fencer.clock(),
                                      self.fencer.wall())
        try:
            out = rt.core.send_app(None, CH_FENCE, msg.to_wire(), endpoint.clock())
        except ValueError as exc:
            logger.error("node %s: fence state not broadcast: %s", self.fencer.local, exc)
            return
        self._sent_digest = digest(state)
        self._sent_at = now
        endpoint.send(out)

    # ------------------------------------------------------------------ services
    def _feed_services(self) -> None:
        glue = getattr(self.daemon, "services_glue", None)
        counts = service_counts(getattr(glue, "rows", None))
        if counts != self._counts:
            self._counts = counts
            self.fencer.handle(ServicesRunning(counts))

    def on_conf(self, conf: ClusterConf) -> None:
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

    async def close(self) -> None:
        await self.fencer.close()
