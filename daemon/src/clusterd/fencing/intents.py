"""The persisted fence intents (pure): record <-> state, and merging a peer's record.

The runtime writes ``to_record(state, ...)`` to ``/var/lib/clusterd/fence-intents.json``
(atomically, see :func:`clusterd.fencing.store.write_intents`) whenever a step returns
``PersistIntents``, and builds its first state with ``restore(...)``: the intent to fence
survives a restart of the fencer (pacemaker PR #1072). Peers exchange the same record
(``IntentsLearned``) so any member can take over when the coordinator changes.

Times: the state uses monotonic seconds; the record stores wall-clock seconds.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

from clusterd.errors import ClusterError
from clusterd.fencing.state import (
    NEVER,
    FenceNode,
    FenceOp,
    FencePhase,
    FencingState,
    IntentsLearned,
    Origin,
    PolicyConfig,
    with_item,
)

RECORD_VERSION = 1
CONFIRM_SLACK = 0.25         # seconds (see ``confirms``)
INTERRUPTED = "attempt interrupted: clusterd restarted while the agent ran"
DEFAULT_PATH = "/var/lib/clusterd/fence-intents.json"


class IntentsError(ClusterError):
    """The persisted intents file cannot be read (kept, not silently dropped)."""


def _wall(mono: float | None, now: float, wall_now: float) -> float | None:
    return None if mono is None else round(wall_now - (now - mono), 3)


def _mono(wall: float | None, now: float, wall_now: float) -> float | None:
    return None if wall is None else now - (wall_now - float(wall))


def op_to_dict(op: FenceOp, now: float, wall_now: float) -> dict[str, Any]:
    return {"node": op.node, "generation": op.generation, "origin": op.origin.value,
            "phase": op.phase.value, "since": _wall(op.since, now, wall_now),
            "attempts": op.attempts, "last_error": op.last_error,
            "requesters": list(op.requesters), "incarnation": op.incarnation,
            "method": op.method, "finished": _wall(op.finished, now, wall_now),
            "started": _wall(op.started, now, wall_now),
            "covers": sorted(op.covers)}


def to_record(state: FencingState, now: float, wall_now: float) -> dict[str, Any]:
    """Open intents plus the last completed operation per node (JSON-serializable)."""
    ops = [op_to_dict(op, now, wall_now) for _, op in sorted(state.ops.items())
           if op.phase is not FencePhase.CANCELLED]
    return {"version": RECORD_VERSION, "written": wall_now, "ops": ops}


def _op_from_dict(raw: Any, now: float, wall_now: float, config: PolicyConfig) -> FenceOp:
    try:
        origin = Origin(raw["origin"])
        phase = FencePhase(raw["phase"])
        since = _mono(raw["since"], now, wall_now) or now
        attempts = int(raw.get("attempts", 0))
        last_error = str(raw.get("last_error", ""))
        if phase is FencePhase.RUNNING:
            # its agent died with the daemon that ran it: that attempt failed, and counting
            # it lets this copy outrank a peer's "running here" copy of the same operation
            attempts, last_error = attempts + 1, INTERRUPTED
        if phase.open:
            if origin is Origin.STARTUP:
                delay = NEVER if config.post_join_delay < 0 else config.post_join_delay
            elif origin is Origin.MEMBERSHIP:
                delay = config.post_fail_delay
            else:
                delay = 0.0
            phase, not_before = FencePhase.PENDING, now + delay
        else:
            not_before = since
        return FenceOp(node=str(raw["node"]), generation=int(raw["generation"]), origin=origin,
                       phase=phase, since=since, not_before=not_before,
                       incarnation=raw.get("incarnation"), attempts=attempts,
                       last_error=last_error,
                       requesters=tuple(str(r) for r in raw.get("requesters", ())),
                       method=str(raw.get("method", "")),
                       finished=_mono(raw.get("finished"), now, wall_now),
                       started=_mono(raw.get("started"), now, wall_now),
                       covers=frozenset(str(c) for c in raw.get("covers", ())))
    except (KeyError, TypeError, ValueError) as exc:
        raise IntentsError(f"fence intent record entry {raw!r:.200} is invalid: {exc}") from None


def ops_from_record(record: Any, now: float, wall_now: float,
                    config: PolicyConfig) -> list[FenceOp]:
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        raise IntentsError(f"fence intent record has no supported version "
                           f"(expected {RECORD_VERSION})")
    if not isinstance(record.get("ops"), list):
        raise IntentsError("fence intent record has no 'ops' list")
    return [_op_from_dict(raw, now, wall_now, config) for raw in record["ops"]]


def restore(local: str, config: PolicyConfig, record: Any, now: float,
            wall_now: float) -> FencingState:
    """The fencer's first state after a restart: every open intent is pending again.

    A *completed* operation read back from disk is history (``clustat -l``), never a
    statement about the present: it was confirmed for a failure before this daemon
    started, and the node may have rebooted, rejoined and failed again since. So it
    marks nothing as seen or settled: the node is "never seen" by this daemon and is
    handled like one (startup fencing, or what quorate members that saw it report)."""
    ops = {op.node: op for op in ops_from_record(record, now, wall_now, config)}
    nodes = {op.node: FenceNode(seen=op.origin is not Origin.STARTUP,
                               incarnation=op.incarnation,
                               lost=op.origin is Origin.MEMBERSHIP, lost_at=op.since)
             for op in ops.values() if op.phase.open}
    return replace(FencingState.initial(local, config), ops=MappingProxyType(ops),
                   nodes=MappingProxyType(nodes))


def _began(closed: FenceOp) -> float | None:
    """When the power was cut at the earliest: the start of the operation's last attempt
    (or its acknowledgement); for records of older versions, when the operation was
    opened (an attempt never begins before that)."""
    if closed.phase not in (FencePhase.DONE, FencePhase.ACKED) or closed.finished is None:
        return None
    return closed.started if closed.started is not None else closed.since


def confirms(closed: FenceOp, intent: FenceOp, token: float = 1.0) -> bool:
    """Does a completed operation settle an open intent? A fence is specific to the
    failure it was run for: the power was cut at or after its last attempt began, so it
    killed what the victim ran then; an incarnation that was still heard after that (one
    that booted later and failed again) is not settled by it. The intent was opened
    ``token`` after the lost incarnation was last heard (for a membership loss), so an
    attempt that began after that settles it. A record of an earlier fence (restored from
    disk, or a peer's history) began long before and settles nothing (issue 11).

    A peer's times reach us mapped through its clock at sending (rounded to the
    millisecond, and older by the transit time), so ``CONFIRM_SLACK`` is allowed: far less
    than a node takes to reboot and start a daemon."""
    began = _began(closed)
    return began is not None and began >= intent.since - token - CONFIRM_SLACK


def settles_loss(closed: FenceOp, info: FenceNode, token: float) -> bool:
    """Does a completed operation (a peer's, or learned) settle a loss this node
    remembers? Only one whose last attempt began after the lost incarnation was last
    heard (its loss was seen ``token`` after its last heartbeat): an operation that began
    earlier may have killed an earlier incarnation, not this one (issue 11)."""
    if not info.lost:
        return True
    began = _began(closed)
    return (began is not None and info.lost_at is not None
            and began >= info.lost_at - token - CONFIRM_SLACK)


def merge_learned(state: FencingState, event: IntentsLearned, now: float,
                  notes: list[str]) -> FencingState:
    """Adopt a peer's open intents we do not know, and its completions of ours."""
    wall_now = float(event.record.get("written", 0.0)) if isinstance(event.record, dict) else 0.0
    for remote in ops_from_record(dict(event.record), now, wall_now, state.config):
        local = state.ops.get(remote.node)
        member_inc = state.members.get(remote.node)
        if remote.phase.open:
            if local is not None and local.generation > remote.generation:
                continue
            if local is not None and local.phase.open:
                merged = replace(local, attempts=max(local.attempts, remote.attempts),
                                 requesters=tuple(dict.fromkeys(
                                     (*local.requesters, *remote.requesters))))
                state = replace(state, ops=with_item(state.ops, remote.node, merged))
                continue
            if local is not None and not local.phase.open \
                    and local.generation >= remote.generation:
                continue
            if (remote.origin is not Origin.MANUAL and member_inc is not None
                    and member_inc != remote.incarnation):
                continue
            adopted = replace(remote, phase=FencePhase.PENDING, not_before=now)
            state = replace(state, ops=with_item(state.ops, remote.node, adopted))
            notes.append(f"learned fence intent {remote.op_id} from {event.source or 'a peer'}")
        elif (remote.phase in (FencePhase.DONE, FencePhase.ACKED) and local is not None
              and local.phase.open and local.generation <= remote.generation
              and confirms(remote, local, state.config.token)):
                closed = replace(local, phase=remote.phase, finished=now, method=remote.method,
                                 covers=local.covers | remote.covers)
                info = state.nodes.get(remote.node, FenceNode())
                if settles_loss(remote, info, state.config.token):
                    info = replace(info, lost=False)
                state = replace(state, ops=with_item(state.ops, remote.node, closed),
                                nodes=with_item(state.nodes, remote.node, info))
                notes.append(f"{remote.node} {remote.phase.value} per "
                             f"{event.source or 'a peer'} ({remote.op_id})")
    return state
