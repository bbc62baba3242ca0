"""The node's fencing, sans-IO: how membership and peers feed the pure policy, and when
this node shares its fence state.

:func:`clusterd.fencing.policy.step` decides; this core decides *what it is told and
when*, which is protocol too, and which the simulator must run exactly as the daemon
does (issue 14: nothing copied into ``tests/sim``). Both drivers use it:
``node/fencing_glue.py`` (with :class:`~clusterd.fencing.runtime.Fencer`, which runs the
agents, writes the intents and arms the timer) and ``tests/sim/fencing_sim.py`` (with a
fake agent and a simulated disk).

The rules it holds:

* **Views.** A new agreed view goes to the policy with the members' names and
  incarnations, who left cleanly and who announced a restart; so does a change of quorum
  in the same view. Quorum for fencing is the reported flag *and* the exact lease check
  (:func:`quorate_now`): the flag lags a loss by ``LOSS_GRACE`` so that services do not
  flap, but a minority must not fence in that window (F2).
* **Right before any other event** (a fence result, a request, a tick, a peer's state)
  the current view's quorum is checked again, since leases lapse between the node's
  cycles; a *new* view waits for the cycle, which knows who left cleanly.
* **Peers.** A ``fence.state`` message is taken only from the current incarnation of a
  view member (or from a node outside the view, which may be joining: the merge is
  monotone); a malformed one is dropped with a warning.
* **Broadcasts.** This node's fence state goes to every member when it changes, on a new
  view, every :data:`~clusterd.fencing.exchange.RESEND` seconds while an operation is
  open, and in answer to a peer that holds an older copy (at most once per
  :data:`REPLY_GAP`).
* **Services.** How many services each node holds reaches the policy when it changes
  (the two_node fence delay follows the services).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clusterd import events as ev
from clusterd.fencing.exchange import (
    CH_FENCE,
    RESEND,
    FenceStateMessage,
    MessageError,
    digest,
    fit,
    peer_behind,
)
from clusterd.fencing.policy import next_wakeup, step
from clusterd.fencing.state import (
    Event,
    FenceStep,
    FencingState,
    PeerFenceState,
    ServicesRunning,
    ViewChanged,
    ViewLost,
)
from clusterd.membership import standing
from clusterd.membership.host import AppReceived
from clusterd.wire.limit import RefusalLog, oversize

REPLY_GAP = 0.5      # at most one answer to stale peers per this many seconds
_OWNED = frozenset({"started", "starting", "stopping", "failed", "recovering"})


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


@dataclass(frozen=True)
class ViewFacts:
    """What the membership core says at one instant: the agreed view (None: in no view),
    quorum for fencing (:func:`quorate_now`) and why not (:func:`not_quorate_note`)."""

    view: Any
    quorate: bool
    note: str = ""

    @classmethod
    def of(cls, membership: Any, now: float) -> ViewFacts:
        if membership.view is None:
            return cls(None, False, "this node is in no view")
        quorate = quorate_now(membership, now)
        return cls(membership.view, quorate,
                   "" if quorate else not_quorate_note(membership, now))


@dataclass(frozen=True)
class FencingOut:
    """What one input produced: the policy's steps in order (log each ``reason``, carry
    out its ``actions``), a ``fence.state`` payload to send to every member now (on
    :data:`CH_FENCE`), and warnings for the log (a peer's malformed message)."""

    steps: tuple[FenceStep, ...] = ()
    broadcast: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()


class FencingCore:
    """One node's fencing feed (see the module docstring). ``state`` is the policy's
    state; ``names`` maps nodeids to node names (from the running cluster.conf)."""

    def __init__(self, state: FencingState, names: Mapping[int, str]) -> None:
        self.state = state
        self.names = dict(names)
        self.peer_drops = 0
        self._view_key: tuple[Any, bool] | None = None
        self._sent_digest: tuple | None = None
        self._sent_at = float("-inf")
        self._counts: dict[str, int] = {}
        self.refusals = RefusalLog(logging.getLogger(__name__), state.local,
                                   level=logging.WARNING)

    @property
    def view_key(self) -> tuple[Any, bool] | None:
        """The (view id, quorate) the policy last took in (None: no view yet)."""
        return self._view_key

    # ------------------------------------------------------------------ inputs
    def on_cycle(self, events: Iterable[ev.Event], counts: Mapping[str, int] | None,
                 now: float, wall: float, facts: ViewFacts) -> FencingOut:
        """After each batch of the membership core's events: the view and quorum (with
        clean leaves and restarts), the services held per node (``counts``: None when
        unknown), peers' fence state, then this node's broadcast when due."""
        events = list(events)
        left = [e for e in events if isinstance(e, ev.NodeLeft)]
        before = self._view_key
        steps = self._sync(facts, now, left_clean={e.nodeid for e in left if not e.hold},
                           restarting={e.nodeid for e in left if e.hold}, force=bool(left))
        force = self._view_key != before
        if counts is not None and dict(counts) != self._counts:
            self._counts = dict(counts)
            steps.append(self._step(ServicesRunning(dict(counts)), now))
        warnings: list[str] = []
        if facts.view is not None:
            for e in events:
                if isinstance(e, AppReceived) and e.channel == CH_FENCE:
                    force = self._on_peer(e, facts, now, steps, warnings) or force
        return self._out(steps, now, wall, facts, force=force, warnings=warnings)

    def handle(self, event: Event, now: float, wall: float, facts: ViewFacts) -> FencingOut:
        """Any other event (a result, a request, an acknowledgement, a tick): quorum in
        the known view is refreshed first (leases lapse between cycles)."""
        steps = []
        key = self._view_key
        if facts.view is None or key is None or key[0] == facts.view.vid:
            steps = self._sync(facts, now)
        steps.append(self._step(event, now))
        return self._out(steps, now, wall, facts)

    def take(self, result: FenceStep, now: float, wall: float, facts: ViewFacts) -> FencingOut:
        """A step computed elsewhere on the current state (the control ops)."""
        self.state = result.state
        return self._out([result], now, wall, facts)

    def due(self, now: float) -> bool:
        """A pending attempt or delay is due (the driver feeds a ``Tick``)."""
        wake = next_wakeup(self.state)
        return wake is not None and wake <= now

    # ------------------------------------------------------------------ internals
    def _step(self, event: Event, now: float) -> FenceStep:
        result = step(self.state, event, now)
        self.state = result.state
        return result

    def _sync(self, facts: ViewFacts, now: float, left_clean: Iterable[int] = (),
              restarting: Iterable[int] = (), force: bool = False) -> list[FenceStep]:
        view = facts.view
        if view is None:
            if self._view_key is not None and self._view_key[1]:
                self._view_key = (None, False)
                return [self._step(ViewLost("dropped from the view while alive"), now)]
            return []
        key = (view.vid, facts.quorate)
        if key == self._view_key and not force:
            return []
        self._view_key = key
        return [self._step(ViewChanged.from_membership(
            view, self.names, facts.quorate, left_clean=left_clean, restarting=restarting,
            not_quorate="" if facts.quorate else facts.note), now)]

    def _on_peer(self, e: AppReceived, facts: ViewFacts, now: float,
                 steps: list[FenceStep], warnings: list[str]) -> bool:
        """Merge a peer's fence state; True when it holds an older copy and should hear
        ours now."""
        name = self.names.get(e.src)
        known = facts.view.incarnation_of(e.src)
        if name is None or (known is not None and known != e.incarnation):
            # a member's message must come from its current incarnation; a node outside
            # the view (joining: its view may lag ours) is heard, the merge being monotone
            self.peer_drops += 1
            return False
        try:
            msg = FenceStateMessage.from_wire(e.payload)
        except MessageError as exc:
            self.peer_drops += 1
            warnings.append(f"bad fence.state message from {name} ignored: {exc}")
            return False
        steps.extend(self._sync(facts, now))
        steps.append(self._step(PeerFenceState(name, msg), now))
        return peer_behind(self.state, msg) and now - self._sent_at >= REPLY_GAP

    def _out(self, steps: list[FenceStep], now: float, wall: float, facts: ViewFacts,
             force: bool = False, warnings: Iterable[str] = ()) -> FencingOut:
        state = self.state
        payload = None
        if facts.view is not None and state.ops and (
                force or digest(state) != self._sent_digest
                or (state.open_ops() and now - self._sent_at >= RESEND)):
            payload = FenceStateMessage.build(state, facts.view.epoch, now, wall).to_wire()
            size = oversize(payload)
            if size is not None:     # the size limit, checked where the message is built
                payload, dropped = fit(payload)
                self.refusals.refuse(now, CH_FENCE, size, f"sent without its {dropped} "
                                     "oldest operations (completed ones first)",
                                     what="message whole")
            self._sent_digest = digest(state)
            self._sent_at = now
        return FencingOut(tuple(steps), payload, tuple(warnings))
