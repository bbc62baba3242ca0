"""What a tree node carries besides its resource (pure): inherited attribute values and
the actions as the element overrides them.

* :func:`resolve` is rgmanager's ``restree.c`` ``_attr_value()`` (RHCS-3.0.12 and late,
  identical): an attribute the element set is its value; an inherited one (the agent's
  meta-data says ``inherit=``, the element did not set it) is looked up from the parent:
  ``inherit="attr"`` asks the parent for ``attr``; ``inherit="type%attr"`` goes up to the
  nearest ancestor of that type (the type is cut to 31 characters: ``char p_type[32]``)
  and asks it. The resource asked answers with its own value, continues the same way when
  its attribute is itself inherited, or answers nothing when it has no such attribute
  (no further search up). Nothing found: None (rgmanager passes no variable).
* :func:`actions_of` applies ``<action name= depth= timeout= interval=>`` children over
  the rule's actions (``reslist.c`` ``_get_actions_ccs()``; ``depth="*"``: every depth).
"""

from __future__ import annotations

from lxml import etree

from clusterd.resources.model import Resource, ResourceAttr
from clusterd.resources.rules import ActionSpec, ResourceRule, expand_time

_PTYPE_MAX = 31  # restree.c _attr_value(): char p_type[32], one byte for the NUL


def resolve(chain: tuple[Resource, ...], name: str) -> str | None:
    """The value of attribute ``name`` at the last resource of ``chain`` (the resources
    from the top-level group down to a tree node)."""
    return _walk(chain, len(chain) - 1, None, name)


def resolve_own(chain: tuple[Resource, ...], attr: ResourceAttr) -> str | None:
    """``resolve(chain, attr.name)`` for ``attr``, an inherited attribute of the last
    resource of ``chain`` and its only attribute of that name (the first step of
    ``resolve`` would find it again): the walk goes on from its inherit spec."""
    if "%" in attr.value:
        ptype, _, name = attr.value.partition("%")
        return _walk(chain, len(chain) - 2, ptype[:_PTYPE_MAX], name)
    return _walk(chain, len(chain) - 2, None, attr.value)


def _walk(chain: tuple[Resource, ...], idx: int, ptype: str | None, name: str) -> str | None:
    """``resolve`` from ``chain[idx]`` up, asking for ``name`` of a ``ptype`` (any: None)."""
    while idx >= 0:
        res = chain[idx]
        if ptype is not None and res.type != ptype:
            idx -= 1                         # not the type asked for: go up
            continue
        a = res.attr(name)
        if a is None:
            return None
        if not a.inherited:
            return a.value
        if "%" in a.value:
            ptype, _, name = a.value.partition("%")
            ptype = ptype[:_PTYPE_MAX]
        else:
            ptype, name = None, a.value
        idx -= 1
    return None


def actions_of(el: etree._Element, rule: ResourceRule) -> tuple[ActionSpec, ...]:
    if not len(el):
        return rule.actions
    actions = list(rule.actions)
    for a in el.iterchildren("action"):
        name = a.get("name", "")
        depth_s = a.get("depth", "0") or "0"
        depth = int(depth_s) if depth_s.isdigit() else -1  # "*" = all depths
        override = ActionSpec(name, expand_time(a.get("timeout")), expand_time(a.get("interval")),
                              max(depth, 0))
        matched = False
        for i, cur in enumerate(actions):
            if cur.name == name and (depth < 0 or cur.depth == depth):
                actions[i] = ActionSpec(name, override.timeout or cur.timeout,
                                        override.interval or cur.interval, cur.depth)
                matched = True
        if not matched:
            actions.append(override)
    return tuple(actions)
