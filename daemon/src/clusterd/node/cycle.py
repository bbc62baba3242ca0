"""One node cycle as data: the snapshot, the events of the cores, the node's decision. Pure.

The daemon (``daemon.py``) builds a :class:`NodeSnapshot` once per tick, feeds the cores'
events through :func:`fold_events` (which returns the next :class:`NodeState` plus the
actions the events ask for), then calls :func:`decide` for the node-level policy, and
executes the actions. Every decision carries a one-sentence reason (STYLE principle 3).
Imports nothing from asyncio, subprocess or socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

from clusterd import events as ev
from clusterd.fencing.state import RESTART_GRACE
from clusterd.membership.host import IncarnationOutdated, PeersSeen
from clusterd.membership.standing import ViewQuorum


class DaemonPhase(str, Enum):
    STARTING = "starting"      # before the first cycle
    RUNNING = "running"
    LEAVING = "leaving"        # SIGTERM / leave op: stop services, announce, exit
    RESTARTING = "restarting"  # SIGTERM of a restart / leave op mode=restart: announce a
                               # restart keeping the services running, exit (shutdown.py)


@dataclass(frozen=True)
class NodeState:
    """What the node knows from its cores' events (replaced, never mutated). Not the
    view: the membership core is its one source (the status, the log context and every
    part read it there)."""

    quorate: bool = False              # the core's reported flag (QuorumChanged)
    incarnation: int = 0
    conflict: ev.ConfigConflict | None = None
    last_rejected: ev.ConfigRejected | None = None
    restarting: tuple[tuple[int, float], ...] = ()  # peers restarting with their services
                                                    # held: (nodeid, end of their grace)
    stop_due: float | None = None      # quorum lost while peers restart: stop services then


@dataclass(frozen=True)
class ApplyConfig:
    data: bytes
    version: int
    sha256: str
    reason: str
    accepted: bool = True              # also keep it as the accepted copy (first)


@dataclass(frozen=True)
class KeepAccepted:
    """The running config is now accepted: keep it as the accepted copy."""

    data: bytes
    version: int
    reason: str


@dataclass(frozen=True)
class KeepPending:
    """A config no quorate view accepted was replaced: keep it as a pending proposal."""

    data: bytes
    version: int
    message: str


@dataclass(frozen=True)
class StopServices:
    reason: str


@dataclass(frozen=True)
class PersistIncarnation:
    incarnation: int
    reason: str


@dataclass(frozen=True)
class PersistPeers:
    """Write the highest incarnation and protocol version accepted from each peer."""

    peers: tuple[tuple[int, tuple[int, int]], ...]


RESTART_EXIT = 75  # EX_TEMPFAIL: systemd (Restart=on-failure) starts clusterd again


@dataclass(frozen=True)
class Report:
    """Log one line at ``level`` (``debug``/``info``/``warning``/``error``); what the
    cores already logged themselves is reported at debug only."""

    level: str
    message: str


@dataclass(frozen=True)
class AnnounceLeave:
    reason: str
    hold: bool = False                 # a restart: the services keep running


@dataclass(frozen=True)
class Exit:
    code: int
    reason: str


NodeAction = (ApplyConfig | KeepAccepted | KeepPending | StopServices | PersistIncarnation
              | PersistPeers | Report | AnnounceLeave | Exit)


@dataclass(frozen=True)
class NodeSnapshot:
    """Immutable view of the node at the start of a cycle."""

    now: float
    phase: DaemonPhase
    state: NodeState
    services_running: int = 0          # services this node runs (0 until resources land)
    services_busy: int = 0             # service operations (start, stop ...) in flight
    in_flight: tuple[str, ...] = ()    # subjects of tracked slow actions
    leave_announced: bool = False
    quorum: ViewQuorum | None = None   # read from the membership core at ``now``


@dataclass(frozen=True)
class NodeDecision:
    """``settled`` False: the reason describes a transient state (a new view waiting one
    lease round trip for its backing); the daemon logs it at debug, not info."""

    actions: tuple[NodeAction, ...]
    reason: str
    settled: bool = True


def _about(nodeid: int, reason: str, names: Mapping[int, str]) -> str:
    """``reason`` ("node 3 left cleanly ...") with the node's name as its subject."""
    name = names.get(nodeid, f"node {nodeid}")
    subject = f"node {nodeid} "
    return name + " " + (reason.removeprefix(subject))


def _quorum_lost(state: NodeState, why: str, now: float, names: Mapping[int, str],
                 actions: list[NodeAction]) -> NodeState:
    """Quorum lost: stop the services, unless members left announcing a restart that keeps
    their services (their grace not over): then they hold theirs and this node holds its
    own until they are back or their grace ends. Nobody recovers them meanwhile: a quorate
    partition must fence this node first (a member that never heard of it holds the
    services that run nowhere it knows, and startup fencing follows post_join_delay)."""
    until = max((t for _n, t in state.restarting), default=now)
    if until <= now:
        actions.append(Report("warning", f"quorum lost: {why}"))
        actions.append(StopServices(f"quorum lost: {why}"))
        return state
    who = ", ".join(names.get(n, f"node {n}") for n, _t in state.restarting)
    actions.append(Report("warning", f"quorum lost: {why}; {who} restart(s) keeping their "
                                     f"services: this node keeps its own running until "
                                     f"quorum is back, at most {until - now:.0f}s more"))
    return replace(state, stop_due=until)


def fold_events(state: NodeState, events: Iterable[ev.Event], *,
                names: Mapping[int, str] | None = None, left: bool = False,
                now: float = 0.0, grace: float = RESTART_GRACE
                ) -> tuple[NodeState, list[NodeAction]]:
    """Apply the cores' events to the node state; return the actions they require.
    ``names`` maps nodeids to node names for the log; ``left``: this node announced its
    leave, so the quorum it loses thereby is no loss (its services were stopped first).
    ``now`` (monotonic) and ``grace`` time peers that restart keeping their services."""
    names = names or {}
    actions: list[NodeAction] = []
    if state.restarting:
        state = replace(state, restarting=tuple((n, t) for n, t in state.restarting if t > now))
    for e in events:
        if isinstance(e, ev.ViewInstalled):
            actions.append(Report("debug", f"installed {e.view}: {e.reason}"))
        elif isinstance(e, ev.QuorumChanged):
            state = replace(state, quorate=e.quorate, stop_due=None)
            if e.quorate or left:
                actions.append(Report("debug", f"quorum {'gained' if e.quorate else 'given up'}"
                                               f": {e.reason}"))
            else:
                state = _quorum_lost(state, e.reason, now, names, actions)
        elif isinstance(e, (ev.NodeJoined, ev.NodeLeft)):
            actions.append(Report("info", _about(e.nodeid, e.reason, names)))
            others = tuple((n, t) for n, t in state.restarting if n != e.nodeid)
            hold = isinstance(e, ev.NodeLeft) and e.hold
            state = replace(state, restarting=others + (((e.nodeid, now + grace),)
                                                        if hold else ()))
        elif isinstance(e, ev.NodeFailed):
            why = e.reason if e.reason.startswith("node ") else f"failed: {e.reason}"
            actions.append(Report("warning", _about(e.nodeid, why, names)))
        elif isinstance(e, ev.MustStopServices):
            # dropped from the view while alive: out of every view until it rejoins
            actions.append(StopServices(e.reason))
        elif isinstance(e, PeersSeen):  # only the latest record set needs writing
            actions = [a for a in actions if not isinstance(a, PersistPeers)]
            actions.append(PersistPeers(e.peers))
        elif isinstance(e, IncarnationOutdated):
            why = (f"node {e.peer} has seen incarnation {e.seen} of this node, above the "
                   f"running {e.incarnation}: restarting to run a later one")
            actions += [PersistIncarnation(e.seen, why), Exit(RESTART_EXIT, why)]
        elif isinstance(e, ev.WriteConfig):
            state = replace(state, conflict=None)
            actions.append(ApplyConfig(e.data, e.version, e.sha256, e.reason, e.accepted))
        elif isinstance(e, ev.ConfigAccepted):
            actions.append(KeepAccepted(e.data, e.version, e.reason))
        elif isinstance(e, ev.ConfigDisplaced):
            actions.append(KeepPending(e.data, e.version, e.reason))
        elif isinstance(e, ev.ConfigConflict):
            state = replace(state, conflict=e)
            actions.append(Report("error", f"config conflict with node {e.peer}: {e.reason}"))
        elif isinstance(e, ev.ConfigRejected):
            state = replace(state, last_rejected=e)
            actions.append(Report("error", f"config_version {e.version} refused: {e.reason}"))
    if state.stop_due is not None and now >= state.stop_due and not state.quorate:
        why = "quorum lost and the restarting members did not come back in time"
        actions += [Report("warning", why), StopServices(why)]
        state = replace(state, stop_due=None)
    return state, actions


def _restart(snap: NodeSnapshot) -> NodeDecision:
    """A restart keeps the services running for the next daemon, which re-adopts them:
    let service operations in flight finish (an agent killed mid-start leaves a half-done
    service), announce the restart, exit at once."""
    if snap.services_busy:
        return NodeDecision((), f"restarting: waiting for {snap.services_busy} service "
                                "operation(s) in flight")
    if snap.in_flight:
        return NodeDecision((), f"restarting: waiting for {', '.join(snap.in_flight)}")
    if not snap.leave_announced:
        return NodeDecision((AnnounceLeave("restart", hold=True),),
                            f"restarting: announcing a restart that keeps "
                            f"{snap.services_running} service(s) running")
    return NodeDecision((Exit(0, "restarting"),),
                        f"restarting: done, {snap.services_running} service(s) left running "
                        "for the next daemon")


def decide(snap: NodeSnapshot) -> NodeDecision:
    """Node-level policy for this cycle (membership and config policy live in the cores)."""
    if snap.phase is DaemonPhase.RESTARTING:
        return _restart(snap)
    if snap.phase is DaemonPhase.LEAVING:
        if snap.services_running:
            return NodeDecision((StopServices("leaving: stopping services before announcing"),),
                                f"leaving: {snap.services_running} service(s) still running")
        if snap.in_flight:
            return NodeDecision((), f"leaving: waiting for {', '.join(snap.in_flight)}")
        if not snap.leave_announced:
            return NodeDecision((AnnounceLeave("clean shutdown"),),
                                "leaving: services stopped, announcing the leave")
        return NodeDecision((Exit(0, "left the cluster cleanly"),), "leaving: done")
    q = snap.quorum
    if q is None:
        return NodeDecision((), "waiting to join a view")
    return NodeDecision((), q.line(), settled=q.settled)
