"""The placement decision as it was written before the decision path was made fast
(clusterd.placement at commit 8d08520: every service scores every node with its reason
and sorts them): the straightforward reference test_placement_fast.py compares
``decide()`` with. Kept verbatim except for the names (``reference_decide``) and
``Snapshot.busy``, spelled out as the linear scan it was."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from clusterd.placement.domains import RUNNING, Candidate, Score, explain_reasons
from clusterd.placement.model import (
    Decision,
    DependMode,
    Fence,
    FenceRequired,
    InFlightKind,
    MarkState,
    PlacementAction,
    Recovery,
    Relocate,
    Restart,
    ServiceDef,
    ServiceState,
    ServiceStatus,
    Snapshot,
    Start,
    Stop,
)


def occupancy(snap: Snapshot) -> dict[str, set[str]]:
    """node -> services running there or on their way there (in-flight starts/relocations)."""
    occ: dict[str, set[str]] = {n.name: set() for n in snap.nodes}
    for st in snap.states:
        owner = snap.node(st.owner)
        if st.state in RUNNING and owner is not None and owner.online:
            occ[owner.name].add(st.name)
    for f in snap.in_flight:
        if f.kind in (InFlightKind.START, InFlightKind.RELOCATE, InFlightKind.RESTART) and f.node:
            for services in occ.values():
                services.discard(f.service)
            occ.setdefault(f.node, set()).add(f.service)
    return occ


def _hard_constraints(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]]
                      ) -> dict[str, str | None]:
    """node -> why it can never take ``svc`` right now (None: it may)."""
    st = snap.state(svc.name)
    failed = set(st.start_failed)
    exclusive_on = {}
    exclusive = snap.exclusive - {svc.name}
    if exclusive:       # only those: scanning every running service per service was
        for node, services in occ.items():   # quadratic (1,000 services: 1 s a pass)
            for name in services & exclusive:
                exclusive_on[node] = name
    out: dict[str, str | None] = {}
    for info in snap.nodes:
        node = info.name
        if not info.online:
            out[node] = "offline"
        elif info.standby:
            out[node] = "in standby: takes no services"
        elif node in failed:
            out[node] = "a start failed there during this recovery"
        elif svc.exclusive and (others := occ.get(node, set()) - {svc.name}):
            out[node] = f"exclusive service needs an empty node; it runs {', '.join(sorted(others))}"
        elif node in exclusive_on:
            out[node] = f"runs exclusive service {exclusive_on[node]}"
        else:
            out[node] = None
    return out


def _domain_scores(snap: Snapshot, svc: ServiceDef, available: list[str]) -> list[Candidate]:
    dom = snap.domain(svc.domain)
    if dom is None:
        why = "no failover domain" if not svc.domain else f"domain {svc.domain} does not exist"
        return [Candidate(n, Score.BEST, why) for n in available]
    avail = set(available)
    up = [m.name for m in dom.members if m.name in avail]
    kind = "restricted" if dom.restricted else "unrestricted"
    st = snap.state(svc.name)
    running = st.state in RUNNING and st.owner is not None
    prio = {m.name: dom.priority(m.name) for m in dom.members}
    best = min((prio[m] for m in up), default=0)
    out = []
    for node in available:
        if node not in prio:
            if not up:
                out.append(Candidate(node, Score.ILLEGAL, f"restricted domain {dom.name} has no member available")
                           if dom.restricted else
                           Candidate(node, Score.BEST, f"no member of {kind} domain {dom.name} is available"))
            elif dom.restricted:
                out.append(Candidate(node, Score.ILLEGAL, f"not a member of restricted domain {dom.name}"))
            else:
                out.append(Candidate(node, Score.GOOD, f"not a member of {kind} domain {dom.name}; "
                                                       "members are available"))
        elif not dom.ordered:
            out.append(Candidate(node, Score.BEST, f"member of unordered domain {dom.name}"))
        elif prio[node] <= best:
            if dom.nofailback and running and st.owner != node and st.owner in avail:
                out.append(Candidate(node, Score.BETTER, f"highest-priority member ({prio[node]}) of "
                                                         f"{dom.name}, but nofailback keeps it on {st.owner}"))
            else:
                out.append(Candidate(node, Score.BEST, f"highest-priority available member ({prio[node]}) "
                                                       f"of ordered domain {dom.name}"))
        elif dom.nofailback and running and st.owner == node:
            out.append(Candidate(node, Score.BEST, f"current owner, member ({prio[node]}) of {dom.name} "
                                                   "with nofailback"))
        else:
            out.append(Candidate(node, Score.BETTER, f"member ({prio[node]}) of ordered domain {dom.name}; "
                                                     f"a higher-priority member ({best}) is available"))
    return out


def score_all(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]] | None = None
              ) -> list[Candidate]:
    """Every configured node with its score and the reason, best first."""
    occ = occupancy(snap) if occ is None else occ
    blocked = _hard_constraints(snap, svc, occ)
    scored = {c.node: c for c in _domain_scores(snap, svc, [n for n, why in blocked.items() if why is None])}
    dom = snap.domain(svc.domain)
    prio = {m.name: dom.priority(m.name) for m in dom.members} if dom else {}
    other = 102 if dom is not None and dom.ordered else 0
    out = []
    for info in snap.nodes:
        c = scored.get(info.name) or Candidate(info.name, Score.ILLEGAL, blocked[info.name] or "")
        here = occ.get(info.name, ())
        load = len(here) - (svc.name in here)
        out.append(((-int(c.score), prio.get(info.name, other), load, info.nodeid, info.name), c))
    out.sort(key=lambda rc: rc[0])
    return [c for _, c in out]


def pick(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]],
         exclude: Iterable[str] = (), minimum: Score = Score.BEST) -> Candidate | None:
    """The best node with at least ``minimum`` (automatic placement needs BEST)."""
    skip = set(exclude)
    for c in score_all(snap, svc, occ):
        if c.node not in skip and c.score >= minimum:
            return c
    return None


def score_of(snap: Snapshot, svc: ServiceDef, node: str, occ: Mapping[str, set[str]]) -> Candidate:
    return next(c for c in score_all(snap, svc, occ) if c.node == node)


def explain_none(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]],
                 exclude: Iterable[str] = ()) -> str:
    """Why no node qualifies: every node with its reason (the text is bounded since
    the reference was taken: ``explain_reasons`` writes it for both)."""
    skip = set(exclude)
    return explain_reasons([(c.node, c.why if c.node not in skip or c.score is Score.ILLEGAL
                             else "the node it leaves") for c in score_all(snap, svc, occ)])


@dataclass
class _Pass:
    snap: Snapshot
    occ: dict[str, set[str]]
    actions: list[PlacementAction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fence_asked: set[str] = field(default_factory=set)

    def move(self, service: str, target: str | None) -> None:
        for services in self.occ.values():
            services.discard(service)
        if target is not None:
            self.occ.setdefault(target, set()).add(service)


def reference_decide(snap: Snapshot) -> Decision:
    if not snap.quorate:
        return _inquorate(snap)
    p = _Pass(snap, occupancy(snap))
    for svc in snap.services:
        _evaluate(p, svc)
    if p.actions:
        reason = "; ".join(a.reason for a in p.actions)
        if p.notes:
            reason += " (also: " + "; ".join(p.notes) + ")"
    else:
        reason = "nothing to do: " + ("; ".join(p.notes) if p.notes else "every service is where it should be")
    return Decision(tuple(p.actions), reason)


def _inquorate(snap: Snapshot) -> Decision:
    actions: list[PlacementAction] = []
    for st in snap.states:
        owner = snap.node(st.owner)
        if st.state in RUNNING and owner is not None and owner.online:
            actions.append(Stop(st.name, owner.name, f"quorum lost: stopping {st.name} on {owner.name}"))
    what = "; ".join(a.reason for a in actions) if actions else "no service is running here"
    return Decision(tuple(actions), f"inquorate, nothing may start: {what}")


def _dep_up(snap: Snapshot, svc: ServiceDef) -> bool:
    if not svc.depend:
        return True
    dep = snap.state(svc.depend)
    owner = snap.node(dep.owner)
    return dep.state in (ServiceState.STARTED, ServiceState.STARTING) and owner is not None and owner.online


def _evaluate(p: _Pass, svc: ServiceDef) -> None:
    snap = p.snap
    st = snap.state(svc.name)
    busy = next((f for f in snap.in_flight if f.service == svc.name), None)
    if busy is not None:
        p.notes.append(f"{svc.name}: {busy.kind.value} in flight{f' on {busy.node}' if busy.node else ''}")
        return
    if st.frozen:
        p.notes.append(f"{svc.name} is frozen: not evaluated")
        return
    if st.state is ServiceState.DISABLED:
        return
    owner = snap.node(st.owner)
    if st.state is ServiceState.FAILED:
        _failed(p, svc, st)
        return
    if st.state is ServiceState.RECOVERING:
        _place(p, svc, st, f"start failed on {', '.join(st.start_failed) or st.owner or 'its node'}",
               exclude=set(st.start_failed), recovering=True)
        return
    if st.state in RUNNING and st.owner:
        if owner is None or not owner.online:
            if owner is not None and not owner.safe_to_take_over:
                p.notes.append(f"{svc.name}: owner {owner.name} is gone; recovery waits until it is "
                               f"fenced (fencing {owner.fence.value})")
                return
            how = "left cleanly" if owner is not None and owner.left_cleanly else "was fenced"
            _place(p, svc, st, f"owner {st.owner} {how}", exclude={st.owner}, recovering=True)
            return
        if st.state is not ServiceState.STARTED:
            p.notes.append(f"{svc.name} is {st.state.value} on {owner.name}")
            return
        _started(p, svc, st, owner.name)
        return
    # stopped (or never started)
    if not svc.autostart:
        p.actions.append(MarkState(svc.name, ServiceState.DISABLED,
                                   f"{svc.name} has autostart=0: marked disabled after quorum formed"))
        return
    if not _dep_up(snap, svc):
        p.notes.append(f"{svc.name} waits for its dependency {svc.depend}")
        return
    _place(p, svc, st, "stopped", exclude=set(), recovering=False)


def _place(p: _Pass, svc: ServiceDef, st: ServiceStatus, why: str, exclude: set[str],
           recovering: bool) -> None:
    snap = p.snap
    if recovering and not _dep_up(snap, svc):
        p.move(svc.name, None)
        p.actions.append(MarkState(svc.name, ServiceState.STOPPED,
                                   f"{svc.name}: {why}; dependency {svc.depend} is not running, marked stopped"))
        return
    cand = pick(snap, svc, p.occ, exclude=exclude)
    if cand is None:
        detail = explain_none(snap, svc, p.occ, exclude)
        dom = snap.domain(svc.domain)
        if recovering:
            p.move(svc.name, None)
            label = "Restricted domain unavailable" if dom is not None and dom.restricted else "no eligible node"
            p.actions.append(MarkState(svc.name, ServiceState.STOPPED,
                                       f"{svc.name}: {why}; {label}, marked stopped ({detail})"))
        else:
            p.notes.append(f"{svc.name} stays stopped, no eligible node ({detail})")
        return
    p.move(svc.name, cand.node)
    p.actions.append(Start(svc.name, cand.node, f"start {svc.name} on {cand.node} ({why}; {cand.why})"))


def _started(p: _Pass, svc: ServiceDef, st: ServiceStatus, owner: str) -> None:
    snap = p.snap
    info = snap.node(owner)
    if info is not None and info.standby:
        cand = pick(snap, svc, p.occ, exclude={owner}, minimum=Score.GOOD)
        if cand is None:
            p.move(svc.name, None)
            p.actions.append(Stop(svc.name, owner, f"stop {svc.name} on {owner}: node in standby and no "
                                                   f"other node may take it ({explain_none(snap, svc, p.occ, {owner})})"))
        else:
            p.move(svc.name, cand.node)
            p.actions.append(Relocate(svc.name, owner, cand.node,
                                      f"evacuate {svc.name} from standby node {owner} to {cand.node} ({cand.why})"))
        return
    if svc.depend_mode is DependMode.HARD and not _dep_up(snap, svc):
        p.move(svc.name, None)
        p.actions.append(Stop(svc.name, owner, f"stop {svc.name} on {owner}: hard dependency "
                                               f"{svc.depend} is not running"))
        return
    ranked = score_all(snap, svc, p.occ)
    here = next(c for c in ranked if c.node == owner)
    cand = next((c for c in ranked if c.node != owner and c.score >= Score.GOOD), None)
    dom = snap.domain(svc.domain)
    if here.score is Score.ILLEGAL:
        # Running where it may not run (the domain was made restricted, or two services
        # ended up with an exclusive one): move it; a restricted-domain violation with
        # nowhere legal to go is stopped, never left running outside the domain.
        if cand is not None:
            p.move(svc.name, cand.node)
            p.actions.append(Relocate(svc.name, owner, cand.node,
                                      f"relocate {svc.name} from {owner} ({here.why}) to {cand.node}"))
        elif dom is not None and dom.restricted and not dom.has(owner):
            p.move(svc.name, None)
            p.actions.append(Stop(svc.name, owner, f"stop {svc.name} on {owner}: {here.why}, and no "
                                                   f"member may take it"))
        else:
            p.notes.append(f"{svc.name} on {owner}: {here.why}; no better node")
        return
    if st.status_failed:
        _recover(p, svc, st, owner)
        return
    if cand is not None and cand.score > here.score and _came_up_since(snap, cand.node, st):
        p.move(svc.name, cand.node)
        p.actions.append(Relocate(svc.name, owner, cand.node,
                                  f"relocate {svc.name} from {owner} to {cand.node}: {cand.why} "
                                  f"outranks {owner} ({here.why})"))


def _recover(p: _Pass, svc: ServiceDef, st: ServiceStatus, owner: str) -> None:
    snap = p.snap
    what = f"{svc.name} failed its status check on {owner}"
    if svc.recovery is Recovery.DISABLE:
        p.move(svc.name, None)
        p.actions.append(Stop(svc.name, owner, f"{what}; recovery=disable: disabling",
                              ServiceState.DISABLED))
        return
    if svc.recovery is Recovery.RELOCATE:
        _relocate_or_restart(p, svc, owner, f"{what}; recovery=relocate")
        return
    expire = svc.restart_expire_time
    recent = [t for t in st.restarts if expire <= 0 or snap.now - t < expire]
    if svc.max_restarts > 0 and len(recent) >= svc.max_restarts:
        window = f" within {expire:g}s" if expire > 0 else ""
        over = f"{what}; restart threshold exceeded ({len(recent)} restarts{window}, max_restarts={svc.max_restarts})"
        if svc.recovery is Recovery.RESTART_DISABLE:
            p.move(svc.name, None)
            p.actions.append(Stop(svc.name, owner, f"{over}: disabling", ServiceState.DISABLED))
        else:
            _relocate_or_restart(p, svc, owner, f"{over}: attempting to relocate")
        return
    limit = f" of {svc.max_restarts}" if svc.max_restarts > 0 else ""
    p.actions.append(Restart(svc.name, owner, f"{what}; restarting in place (restart {len(recent) + 1}{limit})"))


def _relocate_or_restart(p: _Pass, svc: ServiceDef, owner: str, why: str) -> None:
    cand = pick(p.snap, svc, p.occ, exclude={owner}, minimum=Score.GOOD)
    if cand is None:
        p.actions.append(Restart(svc.name, owner, f"{why}; no other node may take it, restarting on {owner}"))
        return
    p.move(svc.name, cand.node)
    p.actions.append(Relocate(svc.name, owner, cand.node, f"{why} to {cand.node} ({cand.why})"))


def _failed(p: _Pass, svc: ServiceDef, st: ServiceStatus) -> None:
    snap = p.snap
    owner = snap.node(st.owner)
    if owner is None:
        p.notes.append(f"{svc.name} is failed with no known owner: blocked until an admin checks its "
                       f"resources and disables it (clusvcadm -d)")
        return
    if owner.safe_to_take_over:
        _place(p, svc, st, f"stop failed on {owner.name}, which is now fenced", exclude={owner.name},
               recovering=True)
        return
    if not owner.fencing_configured:
        p.notes.append(f"{svc.name} is blocked: its stop failed on {owner.name}, which has no fencing; "
                       f"it is never started elsewhere until an admin checks {owner.name} and runs "
                       f"clusvcadm -d {svc.name}")
        return
    fencing = owner.fence is Fence.PENDING or any(
        f.kind is InFlightKind.FENCE and owner.name in (f.node, f.service) for f in snap.in_flight)
    if fencing or owner.name in p.fence_asked:
        p.notes.append(f"{svc.name}: waiting for fencing of {owner.name} (its stop failed there)")
        return
    p.fence_asked.add(owner.name)
    p.actions.append(FenceRequired(owner.name, f"fence {owner.name}: stop of {svc.name} failed there; "
                                               f"{svc.name} runs nowhere until {owner.name} is fenced"))


def _came_up_since(snap: Snapshot, node: str, st: ServiceStatus) -> bool:
    """Did ``node`` come online after the service was placed on its owner?"""
    info = snap.node(node)
    if info is None or info.up_since is None or st.placed_at is None:
        return True
    return info.up_since > st.placed_at
