"""Fencing policy: a pure state machine (no asyncio, no subprocess, no socket).

``step(state, event, now) -> FenceStep(state, actions, reason)``; ``now`` is monotonic seconds.
The rules (DESIGN 5, RHCS fenced.8, RELIABILITY T9, T12-T16, T18, T19, T22, T26):

* A node removed from a **quorate** view without a clean leave gets a fence intent, due
  after ``post_fail_delay``. Losses seen while inquorate are remembered and become intents
  when quorum returns. Inquorate partitions never fence and never recover.
* Only the coordinator of a quorate view executes (``RunFence``), except a fence of the
  coordinator itself, which the next member by nodeid runs (``FencingState.executor_of``).
  When the executor changes, the new one takes over every open intent it now runs (a run
  owned by someone else is re-run: an extra ``off`` is harmless, a lost one is not).
* ``recovery_allowed(state, node)`` is False while an intent is open, and for a lost node
  until it was fenced, acknowledged (``fence_ack_manual``) or left cleanly.
* A member whose leave announced a restart that keeps its services running is neither
  fenced nor recovered for ``restart_grace``; not back by then, it is lost (``restarts``).
* Failures retry with exponential backoff (1, 2, 4 ... capped at 30 s) forever.
* Requests for the same node merge into the one open operation (one op id per node).
* Rejoin: a node lost uncleanly that comes back with a **new incarnation** before its fence
  ran (it was reset and restarted, RHCS "a failed node that is reset and rejoins before
  being fenced is not fenced") has its intent cancelled and its failure count cleared
  (pacemaker PR #665). A node that comes back with the **same** incarnation was paused or
  partitioned and may still act on stale ownership (T12): it is still fenced. Manual and
  stop-failure requests end only by success or acknowledgement. A victim fenced and back
  with a new incarnation is not fenced again; the disappearance of an incarnation that was
  already fenced starts nothing (no fence loop, T19).
* Startup: when the cluster first becomes quorate, configured nodes never seen are fenced
  after ``post_join_delay`` unless they join first; none with ``clean_start``; with
  ``post_join_delay=-1`` they are never fenced and their recovery waits for them (or ack).
  "Never seen" means by this daemon: a completed operation restored from disk or learned
  from a peer belongs to an earlier failure and never stands in for a fence of this one
  (a closed op settles an open intent only if it finished after the intent was opened,
  ``intents.confirms``).
* two_node: the side running (more) services fences at once, the other waits
  ``two_node_delay``; tie: the lower nodeid is undelayed (fence-agents PR #308).
* The policy holds no device: the executor builds the plan from the config in force at
  run time (T26).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from types import MappingProxyType

from clusterd.fencing import restarts
from clusterd.fencing.exchange import merge_peer
from clusterd.fencing.intents import merge_learned
from clusterd.fencing.state import (
    NEVER,
    AckResult,
    ConfigChanged,
    Event,
    FenceAcked,
    FenceNode,
    FenceOp,
    FencePhase,
    FenceRequested,
    FenceResult,
    FenceStep,
    FencingState,
    IntentsLearned,
    Origin,
    PeerFenceState,
    PersistIntents,
    PolicyConfig,
    RunFence,
    ServicesRunning,
    Tick,
    ViewChanged,
    ViewLost,
    with_item,
)

__all__ = [
    "AckResult",
    "ConfigChanged",
    "FenceAcked",
    "FenceOp",
    "FencePhase",
    "FenceRequested",
    "FenceResult",
    "FenceStep",
    "FencingState",
    "IntentsLearned",
    "Origin",
    "PeerFenceState",
    "PersistIntents",
    "PolicyConfig",
    "RunFence",
    "ServicesRunning",
    "Tick",
    "ViewChanged",
    "ViewLost",
    "backoff",
    "next_wakeup",
    "recovery_allowed",
    "recovery_blocked",
    "step",
]


def backoff(attempts: int, config: PolicyConfig) -> float:
    """Delay before retry number ``attempts`` + 1: base * 2^(attempts-1), capped."""
    if attempts <= 0:
        return 0.0
    return min(config.backoff_base * (2 ** min(attempts - 1, 30)), config.backoff_cap)


def recovery_allowed(state: FencingState, node: str) -> bool:
    """May services last owned by ``node`` be started elsewhere?"""
    if not state.quorate:
        return False
    return not recovery_blocked(state, node)


def recovery_blocked(state: FencingState, node: str) -> bool:
    """Does what this node knows forbid recovering ``node``'s services, whatever its own
    quorum flag says (a view's leases lag its installation by a round trip)? A member
    reports the nodes it blocks, and the coordinator recovers a node only if no member of
    its quorate view blocks it: one fresh daemon's ignorance never outvotes another
    member's knowledge that the node was lost and not yet fenced."""
    return not _settled(state, node)


def _settled(state: FencingState, node: str) -> bool:
    op = state.ops.get(node)
    if op is not None and op.phase.open:
        return False
    if node in state.members:
        return True
    info = state.nodes.get(node, FenceNode())
    if info.lost or restarts.waiting(info, _covered(state, node, info.incarnation)):
        return False
    # a never-seen node: only once startup fencing was decided (domain started)
    return info.seen or state.domain_started


def next_wakeup(state: FencingState) -> float | None:
    """When the runtime should send the next Tick (None: nothing is waiting)."""
    due = restarts.deadlines(state)
    due += [op.not_before for node, op in state.ops.items()
            if op.phase in (FencePhase.PENDING, FencePhase.FAILED) and op.not_before < NEVER
            and state.executes(node)]
    return min(due) if due else None


def _two_node_extra(state: FencingState, victim: str) -> float:
    cfg = state.config
    if not cfg.two_node:
        return 0.0
    mine, theirs = state.services.get(state.local, 0), state.services.get(victim, 0)
    if mine != theirs:
        return 0.0 if mine > theirs else cfg.two_node_delay
    local_id, victim_id = cfg.nodeids.get(state.local, 0), cfg.nodeids.get(victim, 0)
    return 0.0 if local_id < victim_id else cfg.two_node_delay


def _open(state: FencingState, node: str, origin: Origin, requester: str, now: float,
          delay: float, incarnation: str | None) -> tuple[FencingState, str]:
    """Create the node's operation, or merge into the open one."""
    op = state.ops.get(node)
    if op is not None and op.phase.open:
        if requester in op.requesters:
            return state, f"fence of {node} already pending ({op.op_id})"
        merged = replace(op, requesters=(*op.requesters, requester),
                         not_before=min(op.not_before, now + delay)
                         if origin is Origin.MANUAL else op.not_before)
        return replace(state, ops=with_item(state.ops, node, merged)), \
            f"merged {requester} request into {op.op_id}"
    generation = (op.generation + 1) if op is not None else 1
    not_before = NEVER if delay == NEVER else now + delay
    new = FenceOp(node=node, generation=generation, origin=origin, phase=FencePhase.PENDING,
                  since=now, not_before=not_before, incarnation=incarnation,
                  requesters=(requester,))
    due = "never" if delay == NEVER else f"{delay:g}s"
    note = f"fence intent {new.op_id} for {node} ({origin.value}, due in {due})"
    return replace(state, ops=with_item(state.ops, node, new)), note


def _covered(state: FencingState, node: str, incarnation: str | None) -> bool:
    op = state.ops.get(node)
    return (op is not None and op.phase in (FencePhase.DONE, FencePhase.ACKED)
            and incarnation is not None and incarnation in op.covers)


def _reconcile(state: FencingState, now: float, notes: list[str]) -> FencingState:
    """In a quorate view: turn remembered losses and never-seen nodes into intents."""
    if not state.quorate:
        return state
    state = restarts.expire(state, now, partial(_covered, state), notes)
    cfg = state.config
    for node in sorted(cfg.nodeids):
        if node in state.members or node == state.local:
            continue
        info = state.nodes.get(node, FenceNode())
        op = state.ops.get(node)
        if op is not None and op.phase.open:
            continue
        if info.lost:
            delay = cfg.post_fail_delay + _two_node_extra(state, node)
            state, note = _open(state, node, Origin.MEMBERSHIP, "membership", now, delay,
                                info.incarnation)
            notes.append(note)
        elif (not info.seen and not state.domain_started and not cfg.clean_start
              and (op is None or not op.phase.open)):
            # never seen by this daemon: a completed operation in its record belongs to
            # an earlier failure and says nothing about what the node runs now
            delay = NEVER if cfg.post_join_delay < 0 else float(cfg.post_join_delay)
            state, note = _open(state, node, Origin.STARTUP, "startup", now, delay, None)
            notes.append(note)
    return replace(state, domain_started=True)


def _on_view(state: FencingState, ev: ViewChanged, now: float, notes: list[str]) -> FencingState:
    before = state.members
    nodes = dict(state.nodes)
    ops = dict(state.ops)
    for node, inc in ev.members.items():
        prior = nodes.get(node, FenceNode())
        nodes[node] = FenceNode(seen=True, incarnation=inc)
        if prior.restart_until is not None and node not in before:
            notes.append(f"{node} is back after its restart (incarnation {inc})")
        op = ops.get(node)
        if op is not None and not op.phase.open and inc in op.covers \
                and before.get(node) != inc:
            # that incarnation is alive after the operation (an acknowledgement that was
            # wrong): the operation does not cover it, its next loss is fenced again
            ops[node] = replace(op, covers=op.covers - {inc})
            notes.append(f"{node} incarnation {inc} is back after {op.op_id}: that "
                         f"operation does not cover it any more")
        if op is None or not op.phase.open:
            continue
        if prior.lost and prior.incarnation == inc and op.incarnation in (None, inc):
            # the incarnation this node saw lost is back, never reset: an intent about it
            # (or a peer's startup intent about no incarnation, adopted here) still fences
            if op.incarnation is None:
                ops[node] = replace(op, origin=Origin.MEMBERSHIP, incarnation=inc)
            if node not in before:
                notes.append(f"{node} is back with the same incarnation {inc}: still "
                             f"fenced ({op.op_id})")
            nodes[node] = prior
            continue
        if op.origin is Origin.STARTUP or (
                op.origin is Origin.MEMBERSHIP and inc != op.incarnation):
            if op.phase is FencePhase.RUNNING and op.executor == state.local:
                notes.append(f"{node} rejoined (incarnation {inc}) while being fenced; "
                             f"the running attempt decides")
                continue
            # a copy of someone else's run: its executor may be gone or restarted (its
            # result would never come); a success that does come still overrides this
            ops[node] = replace(op, phase=FencePhase.CANCELLED, finished=now, attempts=0)
            notes.append(f"{node} rejoined with a new incarnation before being fenced: "
                         f"{op.op_id} cancelled, failure count cleared")
        elif node not in before and prior.incarnation == inc:
            notes.append(f"{node} is back with the same incarnation {inc}: still fenced "
                         f"({op.op_id})")
    for node, inc in before.items():
        if node in ev.members:
            continue
        if node in ev.left_clean:
            nodes[node] = FenceNode(seen=True, incarnation=inc, left_clean=True)
            notes.append(f"{node} left cleanly: not fenced")
        elif node in ev.restarting:
            nodes[node] = restarts.departed(node, inc, now, state, notes)
        elif _covered(state, node, inc):
            nodes[node] = FenceNode(seen=True, incarnation=inc)
            notes.append(f"{node} (incarnation {inc}) is gone after its fence: not fenced again")
        else:
            nodes[node] = FenceNode(seen=True, incarnation=inc, lost=True, lost_at=now)
            notes.append(f"{node} lost from the view")
    for node in sorted((ev.left_clean | ev.restarting) - set(before) - set(ev.members)):
        # a leave that arrived after the view change that dropped the node: that
        # incarnation stopped its services before it left (or holds them for its next
        # incarnation), so no fence follows (one already running decides)
        info = nodes.get(node, FenceNode())
        if not info.lost:
            continue
        hold = node in ev.restarting
        how = "announced its restart" if hold else "left cleanly"
        nodes[node] = (restarts.departed(node, info.incarnation or "", now, state, notes)
                       if hold else replace(info, lost=False, left_clean=True))
        op = ops.get(node)
        if op is not None and op.phase.open and op.phase is not FencePhase.RUNNING \
                and op.origin is Origin.MEMBERSHIP:
            ops[node] = replace(op, phase=FencePhase.CANCELLED, finished=now, attempts=0)
            notes.append(f"{node} {how} after the view change: {op.op_id} cancelled")
        else:
            notes.append(f"{node} {how} after the view change: not fenced")
    state = replace(state, members=MappingProxyType(dict(ev.members)), quorate=ev.quorate,
                    coordinator=ev.coordinator, nodes=MappingProxyType(nodes),
                    ops=MappingProxyType(ops),
                    domain_started=state.domain_started or (ev.quorate and ev.joined_running))
    if state.quorate:
        ops = dict(state.ops)
        for node, op in state.ops.items():
            if op.phase is FencePhase.RUNNING and op.executor != state.local \
                    and state.executes(node):
                ops[node] = replace(op, phase=FencePhase.PENDING, not_before=min(op.not_before, now))
                notes.append(f"taking over {op.op_id} from {op.executor or 'a former coordinator'}")
        state = replace(state, ops=MappingProxyType(ops))
    if not ev.quorate and ev.not_quorate:
        notes.append(f"{ev.not_quorate}: no fencing, no recovery")
    return _reconcile(state, now, notes)


def _on_result(state: FencingState, ev: FenceResult, now: float, notes: list[str]) -> FencingState:
    op = state.ops.get(ev.node)
    # a success of an attempt cancelled meanwhile (its victim rejoined and a peer closed the
    # intent) is still a fact: the machine's power was cut, whatever incarnation it ran.
    # Ignoring it would leave that incarnation's loss unfenced and fence the next one
    # (a node that reboots faster than its fence completes would be killed in a loop).
    late_success = (op is not None and ev.ok and op.op_id == ev.op_id
                    and op.phase is FencePhase.CANCELLED)
    if op is None or op.op_id != ev.op_id or not (op.phase.open or late_success):
        notes.append(f"stale fence result for {ev.op_id} ignored")
        return state
    if op.phase is not FencePhase.RUNNING and not ev.ok and op.executor == state.local:
        notes.append(f"stale failure for {ev.op_id} ignored (not running here)")
        return state
    if ev.ok:
        covers = {op.incarnation} if op.incarnation else set()
        if ev.node in state.members:
            covers.add(state.members[ev.node])
        done = replace(op, phase=FencePhase.DONE, finished=now, method=ev.method, last_error="",
                       covers=frozenset(covers))
        info = replace(state.nodes.get(ev.node, FenceNode()), lost=False)
        notes.append(f"{ev.node} fenced ({op.op_id}, method {ev.method or '?'})"
                     + (" although the intent was cancelled meanwhile" if late_success else "")
                     + ": recovery allowed")
        return replace(state, ops=with_item(state.ops, ev.node, done),
                       nodes=with_item(state.nodes, ev.node, info))
    inc = state.members.get(ev.node)
    if op.origin is not Origin.MANUAL and inc is not None and inc != op.incarnation:
        notes.append(f"fence of {ev.node} failed but it rejoined with a new incarnation: "
                     f"{op.op_id} cancelled")
        return replace(state, ops=with_item(state.ops, ev.node,
                                       replace(op, phase=FencePhase.CANCELLED, finished=now,
                                               attempts=0, last_error=ev.error)))
    attempts = op.attempts if op.phase is FencePhase.RUNNING else op.attempts + 1  # remote run
    wait = backoff(attempts, state.config)
    failed = replace(op, phase=FencePhase.FAILED, last_error=ev.error, not_before=now + wait,
                     attempts=attempts)
    notes.append(f"fence of {ev.node} failed (attempt {attempts}): {ev.error}; "
                 f"retry in {wait:g}s, recovery stays blocked")
    return replace(state, ops=with_item(state.ops, ev.node, failed))


def _on_ack(state: FencingState, ev: FenceAcked, now: float,
            notes: list[str]) -> tuple[FencingState, AckResult]:
    op = state.ops.get(ev.node)
    if op is None or not op.phase.open:
        notes.append(f"acknowledgement for {ev.node} refused: no pending fence operation")
        return state, AckResult(ev.node, False, f"no pending fence operation for {ev.node}")
    if ev.node in state.members:
        why = (f"{ev.node} is a member of the current view (its heartbeats are heard), so it "
               f"is not off; acknowledgement refused")
        notes.append(why)
        return state, AckResult(ev.node, False, why)
    info = state.nodes.get(ev.node, FenceNode())
    covers = {i for i in (op.incarnation, info.incarnation) if i}
    acked = replace(op, phase=FencePhase.ACKED, finished=now, started=now, method="manual ack",
                    requesters=(*op.requesters, f"ack:{ev.by}"), covers=frozenset(covers))
    info = replace(info, lost=False)
    notes.append(f"{ev.node} acknowledged as fenced by {ev.by} ({op.op_id})")
    return replace(state, ops=with_item(state.ops, ev.node, acked),
                   nodes=with_item(state.nodes, ev.node, info)), AckResult(ev.node, True, op.op_id)


def _dispatch(state: FencingState, now: float, notes: list[str]) -> tuple[FencingState, list]:
    if not state.quorate:
        return state, []
    actions = []
    ops = dict(state.ops)
    for node, op in sorted(state.ops.items()):
        if op.phase in (FencePhase.PENDING, FencePhase.FAILED) and op.not_before <= now \
                and state.executes(node):
            run = replace(op, phase=FencePhase.RUNNING, attempts=op.attempts + 1,
                          executor=state.local, started=now)
            ops[node] = run
            actions.append(RunFence(node, run.op_id, run.attempts))
            notes.append(f"fencing {node} ({run.op_id}, attempt {run.attempts})")
    return replace(state, ops=MappingProxyType(ops)), actions


def _specific(state: FencingState) -> FencingState:
    """An open intent with no incarnation (a startup intent, possibly a peer's) about a
    node this daemon saw lost is an intent about that lost incarnation: its reappearance
    unreset must not cancel it (issue 11)."""
    changed = {}
    for node, op in state.ops.items():
        info = state.nodes.get(node)
        if op.phase.open and op.incarnation is None and info is not None and info.lost \
                and info.incarnation is not None:
            changed[node] = replace(op, origin=Origin.MEMBERSHIP, incarnation=info.incarnation)
    if not changed:
        return state
    return replace(state, ops=MappingProxyType({**state.ops, **changed}))


def _open_ids(state: FencingState) -> frozenset[tuple[str, str]]:
    return frozenset((op.op_id, op.phase.value) for op in state.ops.values()
                     if op.phase.open or op.phase is FencePhase.DONE)


def step(state: FencingState, event: Event, now: float) -> FenceStep:
    notes: list[str] = []
    extra: list = []
    if isinstance(event, ViewChanged):
        new = _on_view(state, event, now, notes)
    elif isinstance(event, ViewLost):
        new = replace(state, quorate=False)
        if state.quorate:
            notes.append(f"no view ({event.reason or 'dropped'}): no fencing, no recovery "
                         f"until a quorate view is agreed")
    elif isinstance(event, FenceRequested):
        if event.node not in state.config.nodeids:
            return FenceStep(state, (AckResult(event.node, False, f"unknown node {event.node}"),),
                        f"fence request for unknown node {event.node} refused")
        new, note = _open(state, event.node, Origin.MANUAL, event.requester, now, 0.0,
                          state.members.get(event.node) or state.nodes.get(
                              event.node, FenceNode()).incarnation)
        notes.append(note + (f": {event.reason}" if event.reason else ""))
    elif isinstance(event, FenceResult):
        new = _on_result(state, event, now, notes)
    elif isinstance(event, FenceAcked):
        new, ack = _on_ack(state, event, now, notes)
        extra.append(ack)
    elif isinstance(event, ServicesRunning):
        new = replace(state, services=MappingProxyType(dict(event.counts)))
    elif isinstance(event, ConfigChanged):
        new = _reconcile(replace(state, config=event.config), now, notes) \
            if state.domain_started else replace(state, config=event.config)
    elif isinstance(event, IntentsLearned):
        new = merge_learned(state, event, now, notes)
    elif isinstance(event, PeerFenceState):
        new = merge_peer(state, event.message, event.source, now, notes)
    elif isinstance(event, Tick):
        due = any(t <= now for t in restarts.deadlines(state))
        new = _reconcile(state, now, notes) if due else state
    else:
        raise TypeError(f"unknown fencing event {event!r}")
    new = _specific(new)
    new, runs = _dispatch(new, now, notes)
    actions: list = [*runs, *extra]
    if _open_ids(new) != _open_ids(state):
        actions.append(PersistIntents())
    return FenceStep(new, tuple(actions), "; ".join(notes) or "no change")
