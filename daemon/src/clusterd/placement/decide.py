"""``decide(snapshot) -> Decision``: what should happen to every service now (pure).

Rules, each with the RHCS source it comes from (paths in the RHCS trees named in
shared/reference/RHCS-SEMANTICS.md), and where we do better, why:

* Inquorate: stop every running service, start nothing (rgmanager.8 "HOW IT WORKS").
* Services are evaluated in config order (rgmanager's eval_groups walks the tree).
* One action per service: a service with an action in flight is only waited for
  (STYLE principle 6; rgmanager held the group lock).
* Frozen services are skipped entirely: no status recovery, no failover
  (clusvcadm.8 -Z; groups.c skips frozen groups).
* disabled stays disabled (rgmanager.8 SERVICE STATES).
* failed (a stop failed, resources in an unknown state): never started elsewhere while
  the owner may still hold them (rg_state.c: failed needs an admin). We improve on
  RHCS: with fencing configured the owner is fenced (FenceRequired) and, once fencing is
  confirmed, the service is recovered; without fencing it stays blocked (Pacemaker
  cts-scheduler stop-failure-no-fencing; RELIABILITY T13).
* Owner left the membership: recovered only when it is confirmed fenced or left cleanly
  (fenced.8: recovery waits for fencing; DESIGN section 5), then placed like a start.
* autostart="0": a stopped service is marked disabled once quorum is formed
  (groups.c consider_start(), "Mark non-autostart services as disabled").
* depend: a service starts only when its dependency is started; with depend_mode=hard
  a running dependent stops when its dependency is down; a failover whose dependency is
  down leaves it stopped (rg_state.c handle_start_req(); service.sh.in).
* Start/failover target: the best node with score BEST (rg_state.c: automatic starts
  need FOD_BEST; groups.c best_target_node() for failover); none -> stays stopped
  (restricted: "Restricted domain unavailable", groups.c check_rdomain_crash()).
* Failback / move into the domain: a started service moves when another node scores
  strictly higher than its owner (groups.c consider_relocate()); nofailback makes the
  owner score BEST, so it stays (rgmanager.8 nofailback). As in rgmanager, this is a
  reaction to that node coming online (eval_groups() on a node-up event): a node that
  was already up when the service was placed (e.g. an admin relocated it with
  `clusvcadm -r`) does not pull it back. Unknown times count as "came up after".
* Standby nodes take nothing and their services are relocated (or stopped when nowhere
  else may take them). RHCS had no standby; this follows DESIGN section 4 "node standby".
* Status failure on a live owner -> recovery policy (rg_state.c handle_recover_req(),
  restart_counter.c): disable; relocate; restart (past max_restarts within
  restart_expire_time: relocate, or restart in place when no other node may take it);
  restart-disable (past the threshold: disable; commit 51f2f313).
* recovering (an in-place start failed, the service is stopped): placed on another node
  that has not failed to start it in this round, else stopped (rg_state.c "#71:
  Relocating failed service").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clusterd.placement.domains import RUNNING, Ranker, Score
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


@dataclass
class _Pass:
    snap: Snapshot
    rank: Ranker
    actions: list[PlacementAction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fence_asked: set[str] = field(default_factory=set)

    @property
    def occ(self) -> dict[str, set[str]]:
        return self.rank.occ

    def move(self, service: str, target: str | None) -> None:
        self.rank.move(service, target)


def decide(snap: Snapshot) -> Decision:
    if not snap.quorate:
        return _inquorate(snap)
    p = _Pass(snap, Ranker(snap))
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
    busy = snap.busy(svc.name)
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
    ctx = p.rank.context(svc)
    cand = p.rank.pick(ctx, exclude=exclude)
    if cand is None:
        detail = p.rank.explain_none(ctx, exclude)
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
        ctx = p.rank.context(svc)
        cand = p.rank.pick(ctx, exclude={owner}, minimum=Score.GOOD)
        if cand is None:
            p.move(svc.name, None)     # explained as it leaves: free on its old node
            detail = p.rank.explain_none(ctx, {owner})
            p.actions.append(Stop(svc.name, owner, f"stop {svc.name} on {owner}: node in standby and no "
                                                   f"other node may take it ({detail})"))
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
    rank = p.rank
    ctx = rank.context(svc)
    score = rank.score(ctx, owner)
    if score is Score.BEST and not st.status_failed:
        return      # the common case: where it should be, and nothing outranks BEST
    if score is Score.ILLEGAL:
        # Running where it may not run (the domain was made restricted, or two services
        # ended up with an exclusive one): move it; a restricted-domain violation with
        # nowhere legal to go is stopped, never left running outside the domain.
        why = rank.candidate(ctx, owner).why
        cand = rank.pick(ctx, exclude={owner}, minimum=Score.GOOD)
        dom = snap.domain(svc.domain)
        if cand is not None:
            p.move(svc.name, cand.node)
            p.actions.append(Relocate(svc.name, owner, cand.node,
                                      f"relocate {svc.name} from {owner} ({why}) to {cand.node}"))
        elif dom is not None and dom.restricted and not dom.has(owner):
            p.move(svc.name, None)
            p.actions.append(Stop(svc.name, owner, f"stop {svc.name} on {owner}: {why}, and no "
                                                   f"member may take it"))
        else:
            p.notes.append(f"{svc.name} on {owner}: {why}; no better node")
        return
    if st.status_failed:
        _recover(p, svc, st, owner)
        return
    if st.placed_at is not None and rank.latest_up is not None and rank.latest_up <= st.placed_at:
        return      # no node came up since it was placed: none can pull it (see _came_up_since)
    node = rank.best(ctx, exclude={owner}, minimum=Score.GOOD)
    if node is not None and rank.score(ctx, node) > score and _came_up_since(snap, node, st):
        cand, here = rank.candidate(ctx, node), rank.candidate(ctx, owner)
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
    cand = p.rank.pick(p.rank.context(svc), exclude={owner}, minimum=Score.GOOD)
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
