"""Control-socket operations for fencing, as pure functions over the policy state.

``fence.node`` (fence_node), ``fence.ack`` (fence_ack_manual) and ``fence.status`` (clustat
and the CLIs' wait loop). Each handler takes the current :class:`FencingState` and returns
``(FenceStep, reply)``: the node wiring applies the step (runs its actions, persists intents)
and sends the reply. ``ARGS`` declares the arguments for :class:`clusterd.control.protocol.
OpRegistry` so the server validates requests before a handler runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clusterd.errors import ControlError
from clusterd.fencing.policy import step
from clusterd.fencing.progress import Progress, progress_view
from clusterd.fencing.state import (
    AckResult,
    FenceAcked,
    FenceOp,
    FencePhase,
    FenceRequested,
    FenceStep,
    FencingState,
)

E_UNKNOWN_NODE = "unknown_node"
E_NOT_PENDING = "not_pending"

OP_NODE = "fence.node"
OP_ACK = "fence.ack"
OP_STATUS = "fence.status"
OP_VERIFY = "fence.verify"

# (name, type, required, help) per op; turned into protocol.Arg by register_args().
ARGS: dict[str, tuple[tuple[str, type, bool, str], ...]] = {
    OP_NODE: (("node", str, True, "node to fence"),
              ("reason", str, False, "why (shown in clustat and the log)")),
    OP_ACK: (("node", str, True, "node the administrator confirms is off"),),
    OP_STATUS: (("node", str, False, "only this node"),),
    OP_VERIFY: (("nodes", list, False, "nodes to verify (default: every node)"),
                ("node", str, False, "one node to verify")),
}

_SHOWN = {FencePhase.PENDING: "pending", FencePhase.RUNNING: "running", FencePhase.FAILED: "failed",
          FencePhase.DONE: "done", FencePhase.ACKED: "done"}


def register_args() -> dict[str, tuple[Any, ...]]:
    """``{op: (Arg, ...)}`` for the control registry (imported lazily: pure callers of
    this module do not need the control package)."""
    from clusterd.control.protocol import Arg
    return {op: tuple(Arg(n, t, r, h) for n, t, r, h in specs) for op, specs in ARGS.items()}


def op_view(op: FenceOp, now: float, wall_now: float,
            progress: Progress | None = None) -> dict[str, Any]:
    """One entry of the status document's ``fencing`` list (times as epoch seconds). A
    running operation names its executor and, on the executor, what its attempt does now
    (``current``: method, device, agent, action, since, the agent's timeout, errors of
    this attempt so far)."""
    def wall(mono: float | None) -> int | None:
        return None if mono is None else round(wall_now - (now - mono))
    entry: dict[str, Any] = {
        "node": op.node, "state": _SHOWN[op.phase], "attempts": op.attempts,
        "since": wall(op.since), "last_error": op.last_error, "method": op.method,
        "op_id": op.op_id, "origin": op.origin.value, "requesters": list(op.requesters),
        "finished": wall(op.finished), "acked": op.phase is FencePhase.ACKED,
    }
    if op.phase is FencePhase.RUNNING:
        entry["executor"] = op.executor
        if progress is not None and progress.op_id == op.op_id:
            entry["current"] = progress_view(progress, now, wall_now)
    if op.phase in (FencePhase.PENDING, FencePhase.FAILED) and op.not_before != float("inf"):
        entry["next_attempt"] = wall(max(op.not_before, now))
    return entry


def fence_status(state: FencingState, now: float, wall_now: float, node: str | None = None,
                 progress: Mapping[str, Progress] | None = None) -> list[dict[str, Any]]:
    """Pending, running, failed and completed operations (cancelled ones are not shown)."""
    progress = progress or {}
    return [op_view(op, now, wall_now, progress.get(name))
            for name, op in sorted(state.ops.items())
            if op.phase in _SHOWN and (node is None or name == node)]


def handle_fence_node(state: FencingState, args: dict[str, Any], now: float, wall_now: float,
                      requester: str) -> tuple[FenceStep, dict[str, Any]]:
    node = args["node"]
    if node not in state.config.nodeids:
        raise ControlError(E_UNKNOWN_NODE, f"node {node!r} is not in cluster.conf")
    result = step(state, FenceRequested(node, requester, args.get("reason", "")), now)
    op = result.state.ops[node]
    return result, {"node": node, "op_id": op.op_id, "quorate": result.state.quorate,
                    "executing": result.state.executes(node),
                    "operation": op_view(op, now, wall_now), "reason": result.reason}


def handle_fence_ack(state: FencingState, args: dict[str, Any], now: float, wall_now: float,
                     by: str) -> tuple[FenceStep, dict[str, Any]]:
    node = args["node"]
    if node not in state.config.nodeids:
        raise ControlError(E_UNKNOWN_NODE, f"node {node!r} is not in cluster.conf")
    result = step(state, FenceAcked(node, by), now)
    ack = next(a for a in result.actions if isinstance(a, AckResult))
    if not ack.ok:
        raise ControlError(E_NOT_PENDING, ack.detail)
    return result, {"node": node, "op_id": ack.detail,
                    "operation": op_view(result.state.ops[node], now, wall_now),
                    "reason": result.reason}


def handle_fence_status(state: FencingState, args: dict[str, Any], now: float,
                        wall_now: float,
                        progress: Mapping[str, Progress] | None = None) -> dict[str, Any]:
    node = args.get("node")
    if node is not None and node not in state.config.nodeids:
        raise ControlError(E_UNKNOWN_NODE, f"node {node!r} is not in cluster.conf")
    return {"quorate": state.quorate, "coordinator": state.coordinator,
            "fencing": fence_status(state, now, wall_now, node, progress)}


def verify_targets(state: FencingState, args: dict[str, Any]) -> list[str]:
    """The nodes a fence.verify request names (every configured node by default)."""
    names = list(args.get("nodes") or ([args["node"]] if args.get("node") else []))
    if not names:
        return sorted(state.config.nodeids, key=lambda n: state.config.nodeids[n])
    bad = [n for n in names if not isinstance(n, str) or n not in state.config.nodeids]
    if bad:
        raise ControlError(E_UNKNOWN_NODE, f"not in cluster.conf: {', '.join(map(str, bad))}")
    return list(dict.fromkeys(names))


def verify_reply(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nodes": results, "unfenceable": [r["node"] for r in results if not r["ok"]]}
