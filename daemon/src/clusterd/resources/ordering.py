"""Start/stop/status order of a resource (sub)tree (pure).

rgmanager ``restree.c`` (RHCS-3.0.12 and late): ``_res_op_internal()`` runs a node's own
start before its children and its own stop after them; ``_res_op_by_level()`` orders the
children of a parent whose rule declares typed children:

* start/status: ``_do_child_levels()`` for level 1..max, for each declared child type with
  that start level (declaration order), every child of that type in tree order; then
  ``_do_child_default_level()``: every child whose type has no level, in tree order.
* stop: the default level first, in *reverse* tree order, then the levels 1..max by stop
  level, children of one type in reverse order (``_res_op()`` walks the list backwards
  for stop). Parents whose rule declares no children: start in order, stop in reverse.

A start failure aborts at the failing level (``_do_child_levels`` returns); stop carries
on through failures. The executor applies that: these functions only give the order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from clusterd.resources.tree import ResourceNode


class Op(str, Enum):
    START = "start"
    STOP = "stop"
    STATUS = "status"


@dataclass(frozen=True)
class Step:
    op: Op
    node: ResourceNode

    def __str__(self) -> str:
        return f"[{self.op.value}] {self.node.label}"


def _children(node: ResourceNode, op: Op) -> Iterator[ResourceNode]:
    rule = node.rule
    kids = node.children
    if not rule.children:
        yield from (reversed(kids) if op is Op.STOP else kids)
        return
    leveled = {c.type for c in rule.children if c.leveled}
    default = [k for k in kids if k.type not in leveled]
    if op is Op.STOP:
        yield from reversed(default)
    for level in range(1, rule.max_level + 1):
        for ct in rule.children:
            lev = ct.stop if op is Op.STOP else ct.start
            if lev != level:
                continue
            same = [k for k in kids if k.type == ct.type]
            yield from (reversed(same) if op is Op.STOP else same)
    if op is not Op.STOP:
        yield from default


def _walk(node: ResourceNode, op: Op) -> Iterator[Step]:
    if op is not Op.STOP:
        yield Step(op, node)
    for child in _children(node, op):
        yield from _walk(child, op)
    if op is Op.STOP:
        yield Step(op, node)


def plan(node: ResourceNode, op: Op) -> tuple[Step, ...]:
    """Every step of ``op`` on the subtree rooted at ``node``, in execution order."""
    return tuple(_walk(node, op))


def start_order(node: ResourceNode) -> tuple[ResourceNode, ...]:
    return tuple(s.node for s in plan(node, Op.START))


def stop_order(node: ResourceNode) -> tuple[ResourceNode, ...]:
    return tuple(s.node for s in plan(node, Op.STOP))
