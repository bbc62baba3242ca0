"""The coordinator's cycle (pure): reports + admin state + fencing -> commands.

Only the coordinator of the current quorate view runs :func:`step`. It keeps a small
memory (:class:`CoordState`, replaced each cycle): commands in flight (acked through the
target's report: ``busy`` = running, ``done`` = finished; a command neither running nor
done after ``ACK_TIMEOUT`` was lost and is forgotten, so placement re-decides), targets
of manual or policy relocations (stop on the owner first, then start on the target),
ghost claims placement cleared, and services it gave up on until the next view.
Commands are tagged (view epoch, op id ``EPOCH.SEQ``); a node executes only commands of
its current view's coordinator (``model.accept_command``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from clusterd.placement import decide as placement_decide
from clusterd.placement.model import (
    Decision,
    FailoverDomain,
    FenceRequired,
    InFlight,
    InFlightKind,
    MarkState,
    Relocate,
    Restart,
    ServiceDef,
    ServiceState,
    Snapshot,
    Start,
    Stop,
)
from clusterd.services.merge import Row, build_snapshot
from clusterd.services.model import AdminState, Command, CommandKind, NodeReport

ACK_TIMEOUT = 3.0
_KIND = {CommandKind.START: InFlightKind.START, CommandKind.STOP: InFlightKind.STOP,
         CommandKind.RESTART: InFlightKind.RESTART,
         CommandKind.CONVALESCE: InFlightKind.RESTART}


@dataclass(frozen=True)
class Pending:
    op_id: str
    node: str
    kind: CommandKind
    sent: float


@dataclass(frozen=True)
class CoordState:
    epoch: int = 0
    seq: int = 0
    pending: Mapping[str, Pending] = field(default_factory=dict)
    targets: Mapping[str, str] = field(default_factory=dict)
    cleared: frozenset[tuple[str, str]] = frozenset()
    gave_up: frozenset[str] = frozenset()
    # when each live node came up and each service was placed on its owner (coordinator's
    # monotonic clock): failback reacts to a better node coming up, as rgmanager's did
    up_since: Mapping[str, float] = field(default_factory=dict)
    placed: Mapping[str, tuple[str | None, float]] = field(default_factory=dict)
    # a manual relocation's remaining candidates after its target, original owner last
    # (rgmanager handle_relocate_req: every permissible node, then back on the owner)
    walks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def for_epoch(self, epoch: int) -> CoordState:
        """A new view: commands of the old one are not tracked, given-up services are
        evaluated again (rgmanager re-evaluates stopped services on transitions)."""
        if epoch == self.epoch:
            return self
        return CoordState(epoch, 0, {}, dict(self.targets), self.cleared,
                          up_since=self.up_since, placed=self.placed, walks=dict(self.walks))


@dataclass(frozen=True)
class Inputs:
    defs: tuple[ServiceDef, ...]
    domains: tuple[FailoverDomain, ...]
    rows: Mapping[str, Row]
    nodes: tuple[tuple[str, int, bool], ...]
    live: Mapping[str, NodeReport]
    admin: AdminState
    recovery_allowed: Callable[[str], bool]
    now: float            # monotonic (command acks)
    wall: float           # wall clock (restart history)
    # configured nodes outside the view whose services may not be recovered yet (never
    # heard from, or left unfenced: its last report may lag what it was told to start):
    # a service that runs nowhere we know of may run there
    unknown: frozenset[str] = frozenset()
    # live members with a fence operation open against them: they take no service
    unfit: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CoordinatorOutcome:
    state: CoordState
    commands: tuple[tuple[str, Command], ...]   # (node name, command)
    admin: AdminState
    fence: tuple[FenceRequired, ...]
    reason: str
    snapshot: Snapshot | None = None


class _Out:
    def __init__(self, cs: CoordState, admin: AdminState) -> None:
        self.seq = cs.seq
        self.epoch = cs.epoch
        self.pending = dict(cs.pending)
        self.targets = dict(cs.targets)
        self.walks = dict(cs.walks)
        self.cleared = set(cs.cleared)
        self.gave_up = set(cs.gave_up)
        self.commands: list[tuple[str, Command]] = []
        self.admin = admin
        self.fence: list[FenceRequired] = []
        self.notes: list[str] = []
        self.up_since = dict(cs.up_since)
        self.placed = dict(cs.placed)

    def send(self, node: str, service: str, kind: CommandKind, now: float, *,
             count: bool = False, final: ServiceState = ServiceState.STOPPED) -> None:
        self.seq += 1
        op = f"{self.epoch}.{self.seq}"
        self.commands.append((node, Command(self.epoch, op, service, kind, count, final)))
        self.pending[service] = Pending(op, node, kind, now)

    def state(self) -> CoordState:
        return CoordState(self.epoch, self.seq, self.pending, self.targets,
                          frozenset(self.cleared), frozenset(self.gave_up),
                          up_since=self.up_since, placed=self.placed, walks=self.walks)


def _track_times(o: _Out, inp: Inputs) -> None:
    """Remember when each live node came up and when each service got its owner."""
    o.up_since = {name: o.up_since.get(name, inp.now) for name in inp.live}
    placed: dict[str, tuple[str | None, float]] = {}
    for svc, row in inp.rows.items():
        owner = row.status.owner
        prev = o.placed.get(svc)
        if prev is None:
            # placed before this coordinator knew it (e.g. a coordinator that just joined
            # is itself the node-up event): older than any node's arrival
            placed[svc] = (owner, float("-inf"))
        elif prev[0] != owner:
            placed[svc] = (owner, inp.now)
        else:
            placed[svc] = prev
    o.placed = placed


def _expire(o: _Out, inp: Inputs) -> None:
    for svc, p in list(o.pending.items()):
        rep = inp.live.get(p.node)
        local = rep.get(svc) if rep is not None else None
        if local is None or local.done == p.op_id:
            del o.pending[svc]
        elif local.busy != p.op_id and inp.now - p.sent > ACK_TIMEOUT:
            o.notes.append(f"{p.kind.value} {svc} on {p.node} (op {p.op_id}) was not "
                           f"acknowledged within {ACK_TIMEOUT:g}s; deciding again")
            del o.pending[svc]


def _unknown_holds(o: _Out, inp: Inputs) -> set[str]:
    """Services that run nowhere we know of while a node whose state is unknown may run
    them (issue 11): never started until that node joins or is fenced."""
    if not inp.unknown:
        return set()
    # owned by no live member: unowned, or last seen on a node that left (a recovery:
    # the unknown node may have recovered it already, its report not yet out)
    held = {svc for svc, row in inp.rows.items()
            if row.status.owner not in inp.live and not row.busy}
    if held:
        nodes = ", ".join(sorted(inp.unknown))
        o.notes.append(f"not starting {', '.join(sorted(held))}: {nodes} may run "
                       f"{'it' if len(held) == 1 else 'them'} (outside the view and not "
                       f"fenced yet: never heard from, or its last report may lag what it "
                       f"was told to start); waiting for {nodes} to join or be fenced")
    return held


def _manual(o: _Out, inp: Inputs, excluded: set[str], held: set[str]) -> None:
    """Relocation targets, admin stops and duplicate claims, before placement."""
    for svc, target in list(o.targets.items()):
        row = inp.rows.get(svc)
        if row is None:
            del o.targets[svc]
            continue
        if svc in held:
            excluded.add(svc)
            continue
        st = row.status
        if svc in o.pending or row.busy:
            excluded.add(svc)
        elif st.owner is None and st.state in (ServiceState.STOPPED, ServiceState.RECOVERING):
            del o.targets[svc]
            if inp.admin.locked:
                o.walks.pop(svc, None)
                o.notes.append(f"{svc} not started on {target}: services are locked")
                continue
            rep = inp.live.get(target)
            if rep is not None and not rep.leaving and target not in inp.admin.standby:
                o.send(target, svc, CommandKind.START, inp.now)
                o.notes.append(f"start {svc} on {target} (requested target)")
                excluded.add(svc)
        elif st.owner == target or st.owner not in inp.live:
            del o.targets[svc]
        elif st.state is ServiceState.STARTED:
            o.send(st.owner, svc, CommandKind.STOP, inp.now)
            o.notes.append(f"stop {svc} on {st.owner} to move it to {target}")
            excluded.add(svc)
    _walk(o, inp, excluded, held)
    for svc in inp.admin.disabled | inp.admin.stopped:
        row = inp.rows.get(svc)
        if row is None or svc in o.pending or row.busy or svc in excluded:
            continue
        st = row.status
        if st.owner in inp.live and st.state is ServiceState.STARTED:
            final = (ServiceState.DISABLED if svc in inp.admin.disabled
                     else ServiceState.STOPPED)
            o.send(st.owner, svc, CommandKind.STOP, inp.now, final=final)
            o.notes.append(f"stop {svc} on {st.owner}: {final.value} by an admin")
            excluded.add(svc)
    for svc, row in inp.rows.items():
        for dup in row.duplicates:
            if svc not in o.pending and not row.busy:
                o.send(dup, svc, CommandKind.STOP, inp.now)
                o.notes.append(f"{svc} also runs on {dup} (owner {row.status.owner}): "
                               f"stopping the duplicate")
                excluded.add(svc)


def _walk(o: _Out, inp: Inputs, excluded: set[str], held: set[str]) -> None:
    """A manual relocation whose target could not start the service goes on to the next
    candidate, and finally back to the original owner. A start is sent only while the
    service runs nowhere (no claim, nothing in flight), so it is never on two nodes."""
    for svc, rest in list(o.walks.items()):
        row = inp.rows.get(svc)
        if row is None or svc in inp.admin.disabled | inp.admin.stopped:
            del o.walks[svc]
            continue
        st = row.status
        if svc in o.targets or svc in o.pending or row.busy or svc in held:
            excluded.add(svc)          # still stopping on the owner, or a start running
            continue
        if st.owner is not None or st.state not in (ServiceState.STOPPED,
                                                     ServiceState.RECOVERING):
            del o.walks[svc]           # it runs (or failed) somewhere: the walk is over
            continue
        while rest and not inp.admin.locked:
            node, rest = rest[0], rest[1:]
            rep = inp.live.get(node)
            if rep is None or rep.leaving or node in inp.admin.standby:
                continue
            o.send(node, svc, CommandKind.START, inp.now)
            o.notes.append(f"start {svc} on {node} (relocation: the previous target did "
                           f"not start it)")
            excluded.add(svc)
            break
        if rest or svc in excluded:
            o.walks[svc] = rest
        else:
            del o.walks[svc]


def _apply(o: _Out, inp: Inputs, decision: Decision) -> None:
    # disabled services are added in one new admin state at the end, not one per action
    # (8,000 services that never autostart: 8,000 copies of a growing set, 0.3 s)
    disable: set[str] = set()
    for a in decision.actions:
        if inp.admin.locked and isinstance(a, Start | Restart | Relocate):
            # clusvcadm -l (rgmanager rg_lockall): nothing starts until -u; stops still run
            o.notes.append(f"services are locked: {type(a).__name__.lower()} of "
                           f"{a.service} held back")
            continue
        if isinstance(a, Start):
            o.send(a.node, a.service, CommandKind.START, inp.now)
        elif isinstance(a, Stop):
            if a.final_state is ServiceState.DISABLED:
                disable.add(a.service)
            o.send(a.node, a.service, CommandKind.STOP, inp.now, final=a.final_state)
        elif isinstance(a, Restart):
            o.send(a.node, a.service, CommandKind.RESTART, inp.now, count=True)
        elif isinstance(a, Relocate):
            o.targets[a.service] = a.target
            o.send(a.source, a.service, CommandKind.STOP, inp.now)
        elif isinstance(a, MarkState):
            row = inp.rows.get(a.service)
            if a.state is ServiceState.DISABLED:
                disable.add(a.service)
            elif row is not None and row.status.owner is not None:
                o.cleared.add((row.status.owner, a.service))
            else:
                o.gave_up.add(a.service)
        elif isinstance(a, FenceRequired):
            o.fence.append(a)
    if disable:
        o.admin = o.admin.change(disabled=o.admin.disabled | disable)


def step(cs: CoordState, inp: Inputs,
         decide: Callable[[Snapshot], Decision] = placement_decide) -> CoordinatorOutcome:
    o = _Out(cs, inp.admin)
    _track_times(o, inp)
    _expire(o, inp)
    held = _unknown_holds(o, inp)
    excluded: set[str] = set(o.gave_up) | held
    _manual(o, inp, excluded, held)
    pending = [InFlight(svc, _KIND[p.kind], p.node) for svc, p in o.pending.items()]
    snap = build_snapshot(defs=inp.defs, domains=inp.domains, rows=inp.rows, nodes=inp.nodes,
                          live=inp.live, admin=inp.admin, quorate=True,
                          recovery_allowed=inp.recovery_allowed, pending=pending,
                          now=inp.wall, exclude=frozenset(excluded), unfit=inp.unfit,
                          up_since=o.up_since,
                          placed_at={s: t for s, (owner, t) in o.placed.items() if owner})
    decision = decide(snap)
    _apply(o, inp, decision)
    reason = decision.reason
    if o.notes:
        reason = "; ".join(o.notes) + "; " + reason
    return CoordinatorOutcome(o.state(), tuple(o.commands), o.admin, tuple(o.fence), reason, snap)


def issue(cs: CoordState, admin: AdminState, node: str, service: str, kind: CommandKind,
          now: float) -> tuple[CoordState, Command]:
    """One command outside a cycle (clusvcadm -R, a retried stop of a failed service)."""
    o = _Out(cs, admin)
    o.send(node, service, kind, now)
    return o.state(), o.commands[0][1]
