"""One node cycle as data: the snapshot, the events of the cores, the node's decision. Pure.

The daemon (``daemon.py``) builds a :class:`Snapshot` once per tick, feeds the cores'
events through :func:`fold_events` (which returns the next :class:`NodeState` plus the
actions the events ask for), then calls :func:`decide` for the node-level policy, and
executes the actions. Every decision carries a one-sentence reason (STYLE principle 3).
Imports nothing from asyncio, subprocess or socket.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum

from clusterd.membership import events as ev


class Phase(str, Enum):
    STARTING = "starting"      # before the first cycle
    RUNNING = "running"
    LEAVING = "leaving"        # SIGTERM / leave op: stop services, announce, exit


@dataclass(frozen=True)
class NodeState:
    """What the node knows from its cores' events (replaced, never mutated)."""

    epoch: int = 0
    members: frozenset[int] = frozenset()
    coordinator: int | None = None
    quorate: bool = False
    votes: int = 0
    quorum: int = 0
    incarnation: int = 0
    conflict: ev.ConfigConflict | None = None
    last_rejected: ev.ConfigRejected | None = None

    @property
    def view_label(self) -> str:
        return str(self.epoch) if self.epoch else "-"


@dataclass(frozen=True)
class WriteConfig:
    data: bytes
    version: int
    sha256: str
    reason: str


@dataclass(frozen=True)
class StopServices:
    reason: str


@dataclass(frozen=True)
class PersistIncarnation:
    incarnation: int
    reason: str


@dataclass(frozen=True)
class Report:
    """Log one line at ``level`` (``debug``/``info``/``warning``/``error``); what the
    cores already logged themselves is reported at debug only."""

    level: str
    message: str


@dataclass(frozen=True)
class AnnounceLeave:
    reason: str


@dataclass(frozen=True)
class Exit:
    code: int
    reason: str


Action = WriteConfig | StopServices | PersistIncarnation | Report | AnnounceLeave | Exit


@dataclass(frozen=True)
class Snapshot:
    """Immutable view of the node at the start of a cycle."""

    now: float
    phase: Phase
    state: NodeState
    services_running: int = 0          # services this node runs (0 until resources land)
    in_flight: tuple[str, ...] = ()    # subjects of tracked slow actions
    leave_announced: bool = False


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    reason: str


def fold_events(state: NodeState, events: Iterable[ev.Event]) -> tuple[NodeState, list[Action]]:
    """Apply the cores' events to the node state; return the actions they require."""
    actions: list[Action] = []
    for e in events:
        if isinstance(e, ev.ViewInstalled):
            state = replace(state, epoch=e.view.epoch, members=e.view.nodeids,
                            coordinator=e.view.coordinator)
            actions.append(Report("debug", f"installed {e.view}: {e.reason}"))
        elif isinstance(e, ev.QuorumChanged):
            state = replace(state, quorate=e.quorate, votes=e.votes, quorum=e.quorum)
            actions.append(Report("warning" if not e.quorate else "debug",
                                  f"quorum {'gained' if e.quorate else 'lost'} "
                                  f"({e.votes}/{e.quorum} votes): {e.reason}"))
            if not e.quorate:
                actions.append(StopServices(f"quorum lost: {e.reason}"))
        elif isinstance(e, (ev.NodeJoined, ev.NodeLeft)):
            actions.append(Report("info", e.reason if e.reason.startswith("node ")
                                  else f"node {e.nodeid} {e.reason}"))
        elif isinstance(e, ev.NodeFailed):
            actions.append(Report("warning", e.reason if e.reason.startswith("node ")
                                  else f"node {e.nodeid} failed: {e.reason}"))
        elif isinstance(e, ev.MustStopServices):
            actions.append(StopServices(e.reason))
        elif isinstance(e, ev.IncarnationChanged):
            state = replace(state, incarnation=e.incarnation, epoch=0, members=frozenset(),
                            coordinator=None)
            actions.append(PersistIncarnation(e.incarnation, e.reason))
        elif isinstance(e, ev.WriteConfig):
            state = replace(state, conflict=None)
            actions.append(WriteConfig(e.data, e.version, e.sha256, e.reason))
        elif isinstance(e, ev.ConfigConflict):
            state = replace(state, conflict=e)
            actions.append(Report("error", f"config conflict with node {e.peer}: {e.reason}"))
        elif isinstance(e, ev.ConfigRejected):
            state = replace(state, last_rejected=e)
            actions.append(Report("error", f"config_version {e.version} refused: {e.reason}"))
    return state, actions


def decide(snap: Snapshot) -> Decision:
    """Node-level policy for this cycle (membership and config policy live in the cores)."""
    if snap.phase is Phase.LEAVING:
        if snap.services_running:
            return Decision((StopServices("leaving: stopping services before announcing"),),
                            f"leaving: {snap.services_running} service(s) still running")
        if snap.in_flight:
            return Decision((), f"leaving: waiting for {', '.join(snap.in_flight)}")
        if not snap.leave_announced:
            return Decision((AnnounceLeave("clean shutdown"),),
                            "leaving: services stopped, announcing the leave")
        return Decision((Exit(0, "left the cluster cleanly"),), "leaving: done")
    s = snap.state
    if not s.members:
        return Decision((), "waiting to join a view")
    label = "quorate" if s.quorate else "inquorate"
    return Decision((), f"member of view {s.epoch} ({len(s.members)} members, {label}, "
                        f"{s.votes}/{s.quorum} votes)")
