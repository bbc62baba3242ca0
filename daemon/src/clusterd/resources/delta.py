"""Reconfiguration by diff: which resources and tree nodes must stop, start or only be
reconfigured between two configs (pure).

rgmanager ``restree.c`` ``resource_delta()`` and ``resource_tree_delta()``,
``reslist.c`` ``rescmp()`` (RHCS-3.0.12 / late):

* Resource list: a resource of the old list with no resource of the same type and
  primary value in the new list needs stop. Same key: ``rescmp`` compares every attribute
  (value and flags); when only ``reconfig="1"`` attributes differ (service ``domain``,
  ``autostart``, ``exclusive``, ``recovery``) the new one is NEEDSTART+RECONFIG (the
  ``reconfig`` action, no restart); any other difference is NEEDSTOP (old) + NEEDSTART
  (new). New keys are NEEDSTART. Inline vs. global definition does not matter
  (delta-test001-test002.expected: no flags).
* Tree: per sibling list, an old node whose resource needs stop is NEEDSTOP (its subtree
  goes with it, children are not compared); an old node matched by an equal (or
  reconfig-only) new node recurses into the children; unmatched old nodes are NEEDSTOP,
  unmatched new nodes NEEDSTART (and their whole subtree starts with them).
* One difference from rgmanager: an old node is paired with one new node, the first
  equal one not yet paired. ``resource_tree_delta()`` recursed into every equal pair, so
  a resource referenced twice under one parent (one reference with children, one
  without) had its children compared with the other reference's too and flagged
  NEEDSTOP and NEEDSTART: re-applying an identical config stopped and restarted them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import Enum

from clusterd.resources.dump import Flag, format_resources, format_tree
from clusterd.resources.model import Resource, ResourceNode, ResourceTree, find_by_ref

ResFlags = dict[tuple[str, str], frozenset[Flag]]
NodeFlags = dict[tuple[int, ...], frozenset[Flag]]


def rescmp(left: Resource, right: Resource) -> int:
    """-1: different type; 0: same; 1: changed; 2: only reconfigurable attributes differ."""
    if left.type != right.type:
        return -1
    ret = 0
    for la in left.attrs:
        ra = right.attr(la.name)
        if ra is None:
            if la.spec.reconfig:
                ret = 2
                continue
            return 1
        if (la.spec, la.inherited) != (ra.spec, ra.inherited):
            return 1
        if la.value != ra.value:
            if la.spec.reconfig:
                ret = 2
            else:
                return 1
    # An attribute only the right side has: rgmanager said "changed" (count differs), but
    # its service.sh declared defaults for the reconfig attributes so they were always
    # present. Our rules fill no such defaults (see rules.py), so adding or removing a
    # reconfig attribute counts as reconfig-only, as setting it did in rgmanager.
    for ra in right.attrs:
        if left.attr(ra.name) is None:
            if not ra.spec.reconfig:
                return 1
            ret = 2
    return ret


def resource_delta(old: ResourceTree, new: ResourceTree) -> tuple[ResFlags, ResFlags]:
    lflags: dict[tuple[str, str], set[Flag]] = defaultdict(set)
    rflags: dict[tuple[str, str], set[Flag]] = defaultdict(set)
    common: set[tuple[str, str]] = set()
    for lc in old.resources:
        rc = find_by_ref(new.resources, lc.type, lc.primary)
        if rc is None:
            lflags[lc.key].add(Flag.NEEDSTOP)
            continue
        common.add(rc.key)
        cmp = rescmp(lc, rc)
        if cmp == 2:
            rflags[rc.key] |= {Flag.NEEDSTART, Flag.RECONFIG}
        elif cmp != 0:
            lflags[lc.key].add(Flag.NEEDSTOP)
            rflags[rc.key].add(Flag.NEEDSTART)
    for rc in new.resources:
        if rc.key not in common:
            rflags[rc.key].add(Flag.NEEDSTART)
    return ({k: frozenset(v) for k, v in lflags.items()},
            {k: frozenset(v) for k, v in rflags.items()})


def _tree_delta(lnodes: tuple[ResourceNode, ...], rnodes: tuple[ResourceNode, ...],
                lres: ResFlags, rres: ResFlags, lout: dict, rout: dict) -> None:
    rcommon: set[tuple[int, ...]] = set()
    for ln in lnodes:
        if Flag.NEEDSTOP in lres.get(ln.resource.key, ()):
            lout[ln.index].add(Flag.NEEDSTOP)
            continue
        matched = False
        for rn in rnodes:
            rc = rescmp(ln.resource, rn.resource)
            if rc < 0:
                continue
            rf = rres.get(rn.resource.key, frozenset())
            if Flag.NEEDSTART in rf:
                rout[rn.index].add(Flag.NEEDSTART)
                if Flag.RECONFIG not in rf:
                    continue
            if rc in (0, 2) and not matched and rn.index not in rcommon:  # pairs, see above
                if rc == 2:
                    rout[rn.index] |= {Flag.NEEDSTART, Flag.RECONFIG}
                matched = True
                rcommon.add(rn.index)
                _tree_delta(ln.children, rn.children, lres, rres, lout, rout)
        if not matched:
            lout[ln.index].add(Flag.NEEDSTOP)
    for rn in rnodes:
        if rn.index not in rcommon:
            rout[rn.index].add(Flag.NEEDSTART)


def tree_delta(old: ResourceTree, new: ResourceTree, lres: ResFlags, rres: ResFlags
               ) -> tuple[NodeFlags, NodeFlags]:
    lout: dict[tuple[int, ...], set[Flag]] = defaultdict(set)
    rout: dict[tuple[int, ...], set[Flag]] = defaultdict(set)
    _tree_delta(old.roots, new.roots, lres, rres, lout, rout)
    return ({k: frozenset(v) for k, v in lout.items() if v},
            {k: frozenset(v) for k, v in rout.items() if v})


def format_delta(old: ResourceTree, new: ResourceTree) -> str:
    """``rg_test delta OLD NEW`` as in delta-testNNN-testMMM.expected."""
    lres, rres = resource_delta(old, new)
    lnodes, rnodes = tree_delta(old, new, lres, rres)
    return ("=== Old Resource List ===\n" + format_resources(old, lres)
            + "=== New Resource List ===\n" + format_resources(new, rres)
            + "=== Old Resource Tree ===\n" + format_tree(old, lnodes)
            + "=== New Resource Tree ===\n" + format_tree(new, rnodes))


class ChangeKind(str, Enum):
    ADDED = "added"  # start it (placement decides where)
    REMOVED = "removed"  # stop it
    RESTART = "restart"  # the group resource itself changed: stop and start all of it
    SUBTREES = "subtrees"  # stop the old subtrees, start the new ones; siblings untouched
    RECONFIG = "reconfig"  # reconfig action only (service domain/recovery/...): no restart
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class GroupChange:
    group: str  # "service:web"
    kind: ChangeKind
    stop: tuple[str, ...] = ()  # labels of old-tree subtree roots to stop (stop order applies)
    start: tuple[str, ...] = ()  # labels of new-tree subtree roots to start
    reconfig: tuple[str, ...] = ()  # labels reconfigured in place


def _topmost(node: ResourceNode, flags: NodeFlags, want: Flag, skip: Flag | None = None
             ) -> list[ResourceNode]:
    f = flags.get(node.index, frozenset())
    if want in f and (skip is None or skip not in f):
        return [node]
    return [m for c in node.children for m in _topmost(c, flags, want, skip)]


def reconfiguration(old: ResourceTree, new: ResourceTree) -> tuple[GroupChange, ...]:
    """What to do per top-level group when the config changes from ``old`` to ``new``."""
    lres, rres = resource_delta(old, new)
    lnodes, rnodes = tree_delta(old, new, lres, rres)
    olds = {r.label: r for r in old.roots}
    news = {r.label: r for r in new.roots}
    out: list[GroupChange] = []
    for label in [*olds, *[n for n in news if n not in olds]]:
        o, n = olds.get(label), news.get(label)
        if n is None:
            out.append(GroupChange(label, ChangeKind.REMOVED, stop=(label,)))
            continue
        if o is None:
            out.append(GroupChange(label, ChangeKind.ADDED, start=(label,)))
            continue
        stops = [x.label for x in _topmost(o, lnodes, Flag.NEEDSTOP)]
        starts = [x.label for x in _topmost(n, rnodes, Flag.NEEDSTART, skip=Flag.RECONFIG)]
        reconf = [x.label for x in n.walk() if Flag.RECONFIG in rnodes.get(x.index, ())]
        if label in stops or label in starts:
            kind = ChangeKind.RESTART
        elif stops or starts:
            kind = ChangeKind.SUBTREES
        elif reconf:
            kind = ChangeKind.RECONFIG
        else:
            kind = ChangeKind.UNCHANGED
        out.append(GroupChange(label, kind, tuple(stops), tuple(starts), tuple(reconf)))
    return tuple(out)
