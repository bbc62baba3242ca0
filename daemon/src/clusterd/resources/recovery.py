"""What to do when one resource of a running service fails its status check (pure).

rgmanager RHCS-late ``restree.c`` ``_res_op_internal()`` (RS_STATUS), ``do_load_resource()``
and ``assign_restart_policy()``: a failure climbs from the failed node to its parents
until it meets a node flagged ``__independent_subtree``; there

* non-critical (``__independent_subtree="2"``) with no restart budget left, or none
  configured: stop that subtree and leave it stopped; the service stays up, flagged
  partial (clustat ``[P]``);
* independent with budget (or no ``__max_restarts``/``__restart_expire_time`` pair, which
  means "always"): restart only that subtree in place (condstop + condstart), siblings
  untouched, and record the restart;
* independent with its ``__max_restarts`` used up within ``__restart_expire_time``:
  escalate.

A failure that reaches the top without meeting an independent node escalates: the whole
service is failed and its recovery policy applies (``clusterd.placement.decide``).
The restart budget counts earlier restarts still inside the window (restart_counter.c:
entries older than the expire time are purged; past ``max`` the threshold is exceeded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from clusterd.resources.ordering import Op, Step, plan
from clusterd.resources.tree import ResourceNode


class Verdict(str, Enum):
    RESTART_SUBTREE = "restart-subtree"
    STOP_SUBTREE = "stop-subtree"  # non-critical: left stopped, service partial
    RECOVER_SERVICE = "recover-service"  # escalate to the service's recovery policy


@dataclass(frozen=True)
class SubtreeRecovery:
    verdict: Verdict
    node: ResourceNode  # the subtree acted on (the service root when escalating)
    stop: tuple[Step, ...]
    start: tuple[Step, ...]
    reason: str


def _path(root: ResourceNode, target: ResourceNode) -> list[ResourceNode] | None:
    if root.index == target.index and root.resource.key == target.resource.key:
        return [root]
    for child in root.children:
        found = _path(child, target)
        if found is not None:
            return [root, *found]
    return None


def subtree_recovery(root: ResourceNode, failed: ResourceNode,
                     history: Mapping[tuple[int, ...], tuple[float, ...]], now: float
                     ) -> SubtreeRecovery:
    """``history`` maps a node index to the times its subtree was restarted."""
    path = _path(root, failed)
    if path is None:
        raise ValueError(f"{failed.label} is not in the tree of {root.label}")
    for node in reversed(path[1:]):  # independence is meaningless on the top-level group
        if not node.independent:
            continue
        counted = node.max_restarts > 0 and node.restart_expire_time > 0
        recent = [t for t in history.get(node.index, ()) if now - t < node.restart_expire_time]
        exceeded = counted and len(recent) >= node.max_restarts
        budget = (f"{len(recent)} of {node.max_restarts} restarts within "
                  f"{node.restart_expire_time}s") if counted else "no restart limit"
        cause = f"{failed.label} failed its status check"
        if node.non_critical and (exceeded or not counted):
            return SubtreeRecovery(Verdict.STOP_SUBTREE, node, plan(node, Op.STOP), (),
                                   f"{cause}; non-critical subtree {node.label} is stopped and left "
                                   f"stopped, {root.label} keeps running as partial ({budget})")
        if not exceeded:
            return SubtreeRecovery(Verdict.RESTART_SUBTREE, node, plan(node, Op.STOP),
                                   plan(node, Op.START),
                                   f"{cause}; restarting independent subtree {node.label} in place "
                                   f"({budget})")
        return SubtreeRecovery(Verdict.RECOVER_SERVICE, root, (), (),
                               f"{cause}; independent subtree {node.label} used its restarts "
                               f"({budget}): recovering {root.label}")
    return SubtreeRecovery(Verdict.RECOVER_SERVICE, root, (), (),
                           f"{failed.label} failed its status check and no enclosing resource is an "
                           f"independent subtree: recovering {root.label}")
