"""Fence state shared by every member (pure): the ``fence.state`` app message and its merge.

Every node broadcasts its fence operations (open ones and the last completed one per
victim) on the authenticated application channel :data:`CH_FENCE` when they change, on a
new view and every :data:`RESEND` seconds while one is open (a finished history is not
resent forever: at 300 nodes that would be ~45k datagrams/s). Receivers merge them with
:func:`merge_peer`, so ``clustat`` on any member shows the same pending, failed (last
error, next retry) and completed (time, method) operations, every member persists the
intents it learns, and a new coordinator carries on a pending fence.

Merge rule (deterministic, commutative, idempotent): per victim the operation with the
highest :func:`rank` wins::

    (generation, closed?, attempts if open, phase order, executor, last_error)

A later generation is a later intent; within a generation a closed operation (done,
acknowledged, cancelled) beats an open one, and among open ones more attempts and a later
phase (pending < running < failed) are newer. Every local transition of the policy moves
an operation up this order, so what a node did itself is never undone by an older copy.
Three safety exceptions: a remote *cancelled* closes a local open intent only when the
victim is a member here with another incarnation (the rejoin is visible here too); a
remote *closed* never closes a local intent about another incarnation; and a remote
*done* or *acknowledged* closes a local intent only if it finished after that intent was
opened (``intents.confirms``): a fence is specific to the failure it was run for, so a
peer's record of an earlier fence never settles a later failure (issue 11). Requesters
are united.

A node that receives an older copy than its own answers with its state
(:func:`peer_behind`): a lost update is repaired by the next periodic resend of the peer
that still holds the operation open.

Times travel as the sender's wall clock together with the sender's wall clock at sending
(``written``); the receiver maps them by offset, so clock skew between nodes cancels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from clusterd.errors import ClusterError
from clusterd.fencing.intents import INTERRUPTED, confirms, settles_loss
from clusterd.fencing.state import (
    NEVER,
    FenceNode,
    FenceOp,
    FencePhase,
    FencingState,
    Origin,
    with_item,
)
from clusterd.wire.limit import oversize

CH_FENCE = "fence.state"
WIRE_VERSION = 1
RESEND = 2.0                 # seconds between periodic broadcasts while ops exist
MAX_OPS = 64                 # keeps a message far below the 32 KiB app payload limit
MAX_TEXT = 300
MAX_REQUESTERS = 8
MAX_TIME = 1e12              # |wall-clock seconds| a time on the wire may hold (year 33000)

class MessageError(ClusterError, ValueError):
    """A peer's fence.state payload is malformed (the sentence names what is wrong)."""


_PHASE_ORDER = {FencePhase.PENDING: 0, FencePhase.RUNNING: 1, FencePhase.FAILED: 2, FencePhase.CANCELLED: 3,
                FencePhase.ACKED: 4, FencePhase.DONE: 5}


def rank(op: FenceOp) -> tuple[int, int, int, int, str, str]:
    closed = not op.phase.open
    return (op.generation, int(closed), 0 if closed else op.attempts,
            _PHASE_ORDER[op.phase], op.executor, op.last_error)


# --- wire ------------------------------------------------------------------------------

def _wall(mono: float | None, now: float, wall_now: float) -> float | None:
    if mono is None or mono == NEVER:
        return None
    return round(wall_now - (now - mono), 3)


def _op_wire(op: FenceOp, now: float, wall_now: float) -> dict[str, Any]:
    return {"node": op.node, "generation": op.generation, "origin": op.origin.value,
            "phase": op.phase.value, "since": _wall(op.since, now, wall_now),
            "not_before": _wall(op.not_before, now, wall_now) if op.phase.open else None,
            "attempts": op.attempts, "last_error": op.last_error[:MAX_TEXT],
            "requesters": [r[:MAX_TEXT] for r in op.requesters[-MAX_REQUESTERS:]],
            "incarnation": op.incarnation, "executor": op.executor, "method": op.method,
            "finished": _wall(op.finished, now, wall_now), "covers": sorted(op.covers),
            "started": _wall(op.started, now, wall_now)}


@dataclass(frozen=True)
class WireOp:
    """One validated operation of a peer's message (times: the peer's wall clock)."""

    node: str
    generation: int
    origin: Origin
    phase: FencePhase
    since: float
    not_before: float | None
    attempts: int
    last_error: str
    requesters: tuple[str, ...]
    incarnation: str | None
    executor: str
    method: str
    finished: float | None
    covers: frozenset[str]
    started: float | None = None     # absent in messages of older versions


def _field(raw: Mapping[str, Any], key: str, kinds: tuple[type, ...], where: str,
           optional: bool = False) -> Any:
    if key not in raw or raw[key] is None:
        if optional:
            return None
        raise MessageError(f"{where}: field {key!r} is missing")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise MessageError(f"{where}: field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _time(raw: Mapping[str, Any], key: str, where: str,
          optional: bool = False) -> float | None:
    """A wall-clock time: finite and within ``MAX_TIME`` (NaN, infinity or a huge integer
    would break the merge's arithmetic and the status document: ``round()`` raises)."""
    value = _field(raw, key, (int, float), where, optional)
    if value is None:
        return None
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    if not abs(value) <= MAX_TIME:
        raise MessageError(f"{where}: field {key!r} must be a time within "
                           f"+-{MAX_TIME:g} seconds")
    return value


def _strs(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MessageError(f"{where}: field {key!r} must be a list of strings")
    return tuple(value)


def _wire_op(raw: Any, index: int) -> WireOp:
    where = f"ops[{index}]"
    if not isinstance(raw, dict):
        raise MessageError(f"{where} must be an object")
    node = _field(raw, "node", (str,), where)
    if not node or len(node) > 255:
        raise MessageError(f"{where}: field 'node' must be a non-empty name")
    generation = _field(raw, "generation", (int,), where)
    attempts = _field(raw, "attempts", (int,), where)
    if generation < 1 or attempts < 0:
        raise MessageError(f"{where}: generation must be >= 1 and attempts >= 0")
    try:
        origin = Origin(_field(raw, "origin", (str,), where))
        phase = FencePhase(_field(raw, "phase", (str,), where))
    except ValueError as exc:
        raise MessageError(f"{where}: {exc}") from None
    incarnation = _field(raw, "incarnation", (str,), where, optional=True)
    return WireOp(node=node, generation=generation, origin=origin, phase=phase,
                  since=_time(raw, "since", where),
                  not_before=_time(raw, "not_before", where, optional=True),
                  attempts=attempts,
                  last_error=str(_field(raw, "last_error", (str,), where))[:MAX_TEXT],
                  requesters=_strs(raw, "requesters", where)[-MAX_REQUESTERS:],
                  incarnation=incarnation,
                  executor=_field(raw, "executor", (str,), where, optional=True) or "",
                  method=_field(raw, "method", (str,), where, optional=True) or "",
                  finished=_time(raw, "finished", where, optional=True),
                  started=_time(raw, "started", where, optional=True),
                  covers=frozenset(_strs(raw, "covers", where)))


@dataclass(frozen=True)
class FenceStateMessage:
    """A node's fence operations as broadcast on :data:`CH_FENCE`."""

    epoch: int
    written: float
    ops: tuple[WireOp, ...]
    raw_ops: tuple[dict[str, Any], ...] = ()

    @classmethod
    def build(cls, state: FencingState, epoch: int, now: float,
              wall_now: float) -> FenceStateMessage:
        chosen = sorted((op for op in state.ops.values()), key=lambda o: o.since)[-MAX_OPS:]
        raw = tuple(_op_wire(op, now, wall_now) for op in sorted(chosen, key=lambda o: o.node))
        return cls.from_wire({"v": WIRE_VERSION, "epoch": epoch, "written": wall_now,
                              "ops": list(raw)})

    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "epoch": self.epoch, "written": self.written,
                "ops": list(self.raw_ops)}

    @classmethod
    def from_wire(cls, payload: Any) -> FenceStateMessage:
        """Validate a peer's payload; MessageError names the first thing that is wrong."""
        if not isinstance(payload, dict):
            raise MessageError("fence.state payload must be an object")
        if payload.get("v") != WIRE_VERSION:
            raise MessageError(f"fence.state version {payload.get('v')!r} is not supported "
                             f"(expected {WIRE_VERSION})")
        epoch = _field(payload, "epoch", (int,), "fence.state")
        written = _time(payload, "written", "fence.state")
        raw_ops = payload.get("ops")
        if not isinstance(raw_ops, list) or len(raw_ops) > MAX_OPS:
            raise MessageError(f"fence.state: 'ops' must be a list of at most {MAX_OPS}")
        ops = tuple(_wire_op(raw, i) for i, raw in enumerate(raw_ops))
        if len({o.node for o in ops}) != len(ops):
            raise MessageError("fence.state: one operation per victim expected")
        return cls(epoch, written, ops, tuple(dict(r) for r in raw_ops))


_OPEN_PHASES = frozenset(p.value for p in FencePhase if p.open)


def fit(payload: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A ``fence.state`` payload cut down to the app payload limit (checked where it is
    built, ``clusterd.wire.limit``): completed operations go first, oldest first, then
    open ones, oldest first; the payload and how many operations were left out."""
    ops = sorted(payload["ops"], key=lambda o: (o.get("phase") in _OPEN_PHASES,
                                                o.get("since") or 0.0))
    dropped = 0
    while ops and oversize({**payload, "ops": ops}) is not None:
        ops.pop(0)
        dropped += 1
    return {**payload, "ops": sorted(ops, key=lambda o: o["node"])}, dropped


def digest(state: FencingState) -> tuple:
    """Changes worth an immediate broadcast (times and notes aside)."""
    return tuple(sorted((op.node, rank(op), op.requesters, op.method)
                        for op in state.ops.values()))


# --- merge -----------------------------------------------------------------------------

def _local_op(w: WireOp, now: float, written: float) -> FenceOp:
    def mono(wall: float | None) -> float | None:
        return None if wall is None else now - (written - wall)
    not_before = mono(w.not_before)
    return FenceOp(node=w.node, generation=w.generation, origin=w.origin, phase=w.phase,
                   since=mono(w.since) or now,
                   not_before=NEVER if not_before is None else not_before,
                   incarnation=w.incarnation, attempts=w.attempts, last_error=w.last_error,
                   requesters=w.requesters, executor=w.executor, method=w.method,
                   finished=mono(w.finished), covers=w.covers, started=mono(w.started))


def _outrank(state: FencingState, local: FenceOp, remote: FenceOp, now: float,
             notes: list[str], why: str) -> FencingState:
    """Keep ``local`` over a peer's ``remote`` that ranks higher but is another intent:
    renumber it above, so that the peer adopts it instead of ignoring it as older. A run
    here keeps its op id (its result must match); a copy of someone else's run is pending
    again, and whoever executes re-runs it."""
    if rank(remote) <= rank(local) or (local.phase is FencePhase.RUNNING
                                       and local.executor == state.local):
        return state
    renumbered = replace(local, generation=remote.generation + 1)
    if local.phase is FencePhase.RUNNING:
        renumbered = replace(renumbered, phase=FencePhase.PENDING,
                             not_before=min(local.not_before, now))
    notes.append(f"{why}: ours is now {renumbered.op_id}")
    return replace(state, ops=with_item(state.ops, local.node, renumbered))


def _later(a: str, b: str) -> bool:
    """Is incarnation ``a`` later than ``b``? (decimal numbers on the wire; any other
    spelling, as in tests, compares as text)"""
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return a > b


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))[-MAX_REQUESTERS:]


def merge_peer(state: FencingState, msg: FenceStateMessage, source: str, now: float,
               notes: list[str]) -> FencingState:
    """Fold a peer's operations into ``state`` (see the module docstring for the rule)."""
    for w in msg.ops:
        if w.node not in state.config.nodeids:
            continue
        remote = _local_op(w, now, msg.written)
        local = state.ops.get(w.node)
        member_inc = state.members.get(w.node)
        if local is not None and local.generation == remote.generation:
            remote = replace(remote, requesters=_union(local.requesters, remote.requesters))
        if local is not None and rank(remote) <= rank(local):
            if remote.requesters != local.requesters and local.generation == remote.generation:
                state = replace(state, ops=with_item(state.ops, w.node,
                                                     replace(local,
                                                             requesters=remote.requesters)))
            continue
        if not remote.phase.open and local is not None and local.phase.open:
            why = ""
            if remote.phase is FencePhase.CANCELLED and (member_inc is None
                                                    or member_inc == local.incarnation):
                why = "its victim did not rejoin with another incarnation here"
            elif (local.incarnation and remote.incarnation
                    and local.incarnation != remote.incarnation):
                why = f"it is about incarnation {remote.incarnation}"
            elif remote.phase is not FencePhase.CANCELLED \
                    and not confirms(remote, local, state.config.token):
                why = f"its last attempt began before {local.op_id} was opened"
            if why:
                # it does not settle this intent; outrank it so the peer adopts the
                # intent instead of ignoring it as older (same generation numbers can
                # name different intents on different nodes)
                state = _outrank(state, local, remote, now, notes,
                                 f"{remote.op_id} {remote.phase.value} per {source} does "
                                 f"not settle {local.op_id} ({why})")
                continue
        if remote.phase.open and local is not None and local.phase.open \
                and local.incarnation and remote.incarnation \
                and local.incarnation != remote.incarnation:
            # two intents about different incarnations under one number: the newer
            # incarnation's wins everywhere (the older one ended when the newer started,
            # and a fence of the newer cuts the power of the same machine); ours is kept
            # above theirs when it is about the newer one, so that the peers adopt it
            if _later(remote.incarnation, local.incarnation):
                state = replace(state, ops=with_item(state.ops, w.node, remote))
                notes.append(f"{remote.op_id} per {source} is about incarnation "
                             f"{remote.incarnation}, later than {local.incarnation}: adopted")
                continue
            state = _outrank(state, local, remote, now, notes,
                             f"{remote.op_id} per {source} is about incarnation "
                             f"{remote.incarnation}, not {local.incarnation}")
            continue
        if remote.phase.open and remote.origin is not Origin.MANUAL \
                and member_inc is not None and remote.incarnation is not None \
                and member_inc != remote.incarnation:
            continue            # about an incarnation that is gone: the victim rejoined
        known = state.nodes.get(w.node)
        if remote.phase.open and remote.origin is Origin.MEMBERSHIP and known is not None \
                and (known.left_clean or known.restart_until is not None) \
                and known.incarnation == remote.incarnation:
            continue            # that incarnation left cleanly (or announced a restart
                                # holding its services) here: its leave reached us
        if remote.phase is FencePhase.RUNNING and remote.executor == state.local and (
                local is None or local.phase is not FencePhase.RUNNING):
            # a run by this node's previous daemon: its agent died with that daemon
            remote = replace(remote, phase=FencePhase.PENDING, attempts=remote.attempts + 1,
                             last_error=INTERRUPTED, not_before=min(remote.not_before, now))
            notes.append(f"{remote.op_id} was running under this node's previous daemon: "
                         f"that attempt is counted as failed")
        elif remote.phase is FencePhase.RUNNING and state.executes(w.node) and \
                remote.executor not in state.members:
            remote = replace(remote, phase=FencePhase.PENDING, not_before=min(remote.not_before, now))
            was_by = remote.executor or "a former coordinator"
            notes.append(f"taking over {remote.op_id} from {was_by}")
        state = replace(state, ops=with_item(state.ops, w.node, remote))
        info = state.nodes.get(w.node, FenceNode())
        if remote.phase in (FencePhase.DONE, FencePhase.ACKED) \
                and settles_loss(remote, info, state.config.token):
            state = replace(state, nodes=with_item(state.nodes, w.node,
                                                   replace(info, lost=False)))
        was = local.phase.value if local is not None else "unknown"
        notes.append(f"{remote.op_id} {remote.phase.value} per {source} (was {was} here)")
    return state


def peer_behind(state: FencingState, msg: FenceStateMessage) -> bool:
    """Does the peer hold an older copy of an operation we know (its update was lost)?
    The glue answers with a broadcast, so a lost completion does not leave a member
    showing an open operation (and re-running it as a later coordinator)."""
    for w in msg.ops:
        local = state.ops.get(w.node)
        if local is not None and rank(local) > rank(_local_op(w, 0.0, msg.written)):
            return True
    return False
