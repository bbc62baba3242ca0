"""Members that restart keeping their services running (``Leave.hold``): the fencing side.

Pure. A member whose leave announced a restart is neither fenced nor recovered for
``PolicyConfig.restart_grace`` seconds: its services run on without a daemon and its next
incarnation re-adopts them (``services.executor.probe``). Back in a view with a new
incarnation, it is a member like any other (``policy._on_view`` rebuilds its FenceNode).
Not back in time, it becomes a lost node, as if it had failed when the grace ended: an
intent due after ``post_fail_delay``, the fence, then the recovery of its services. A
completed fence or acknowledgement of that incarnation (``fence_node``, stop failure,
``fence_ack_manual``) ends the wait at once. Only a quorate member turns an expired grace
into an intent; until then nothing is recovered anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType

from clusterd.fencing.state import FenceNode, FencingState


def departed(node: str, inc: str, now: float, state: FencingState,
             notes: list[str]) -> FenceNode:
    """The FenceNode of a member that left announcing a restart that holds its services."""
    grace = state.config.restart_grace
    notes.append(f"{node} restarts keeping its services running: not fenced, its services "
                 f"not recovered for {grace:g}s (or until it is back)")
    return FenceNode(seen=True, incarnation=inc, restart_until=now + grace)


def waiting(info: FenceNode, covered: bool) -> bool:
    """Does a restart announcement hold this node's recovery back? (Not once a completed
    fence or acknowledgement covers the incarnation that restarts.)"""
    return info.restart_until is not None and not covered


def deadlines(state: FencingState) -> list[float]:
    """When a restarting node's grace ends (a quorate member must wake up then)."""
    if not state.quorate:
        return []
    return [info.restart_until for node, info in state.nodes.items()
            if info.restart_until is not None and node not in state.members]


def expire(state: FencingState, now: float, covered: Callable[[str, str | None], bool],
           notes: list[str]) -> FencingState:
    """Restarting nodes whose grace ended without their return become lost nodes (the
    caller's reconcile opens their intents); those a fence already covers are settled."""
    nodes = dict(state.nodes)
    for node, info in sorted(state.nodes.items()):
        if info.restart_until is None or now < info.restart_until or node in state.members:
            continue
        if covered(node, info.incarnation):
            nodes[node] = replace(info, restart_until=None)
            continue
        nodes[node] = replace(info, restart_until=None, lost=True, lost_at=now)
        notes.append(f"{node} did not come back within {state.config.restart_grace:g}s of "
                     f"announcing its restart: lost (fence, then recovery)")
    if nodes == dict(state.nodes):
        return state
    return replace(state, nodes=MappingProxyType(nodes))
