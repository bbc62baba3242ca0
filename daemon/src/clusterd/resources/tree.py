"""Resource list and resource tree from an lxml ``<rm>`` element (pure).

Semantics of rgmanager's restree/reslist (RHCS-3.0.12 and RHCS-late
``rgmanager/src/daemons/restree.c`` ``build_tree()``, ``do_load_resource()``;
``reslist.c`` ``load_resource()``, ``store_resource()``, ``find_resource_by_ref()``,
``_attr_value()``):

* ``rm/resources/*`` are global resources, loaded per type (rule order), then document
  order; a tree element with ``ref=`` uses the global resource whose primary attribute
  equals the ref. Any other element defines its resource inline.
* A missing primary/required attribute, a primary or unique value used twice within a
  type (test016-style), a ref to a missing or to an inline resource, more uses of a
  ``maxinstances`` type than allowed, and a child type the parent ``forbid``s are
  errors. rgmanager printed a warning and silently dropped the resource for most of
  these; we refuse the whole tree with one ConfigError listing every problem, because a
  service that quietly lacks its IP is worse than a refused config.
* Children of a node are stored typed-first: for each ``<child type>`` the parent's rule
  declares (in declaration order), the children of that type in document order; then the
  remaining ("untyped") children in document order. test009.expected shows this (fs is
  dumped before ip and script although written last).
* Inherited attributes (``inherit="service%name"`` walks up to the nearest ``service``;
  ``inherit="mountpoint"`` asks the parent only) are resolved per tree node.
* ``__independent_subtree`` (1/yes, or 2/non-critical), ``__enforce_timeouts``,
  ``__max_failures``/``__failure_expire_time``, and for independent subtrees
  ``__max_restarts``/``__restart_expire_time`` are per-node flags. Non-critical is cleared
  when the resource is referenced more than once (as rgmanager did).
* ``<action name= depth= interval= timeout=>`` children override the rule's actions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

from lxml import etree

from clusterd.errors import ConfigError, Problem
from clusterd.resources.rules import (
    DEFAULT_RULES,
    ActionSpec,
    ParamSpec,
    ResourceRule,
    RuleSet,
    expand_time,
)

logger = logging.getLogger(__name__)

# Elements of <rm> that are not resources.
_RM_SECTIONS = frozenset({"failoverdomains", "resources", "events"})
_SPECIALS = ("__independent_subtree", "__enforce_timeouts", "__max_failures",
             "__failure_expire_time", "__max_restarts", "__restart_expire_time")


@dataclass(frozen=True)
class ResourceAttr:
    """One stored attribute. ``inherited`` means ``value`` is the inherit spec, resolved
    per tree node (rgmanager kept the RA_INHERIT flag in that case)."""

    spec: ParamSpec
    value: str
    inherited: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Resource:
    rule: ResourceRule
    attrs: tuple[ResourceAttr, ...]
    inline: bool
    where: str

    @property
    def type(self) -> str:
        return self.rule.type

    @property
    def primary(self) -> str:
        spec = self.rule.primary
        for a in self.attrs:
            if (spec is None or a.spec is spec) and not a.inherited:
                return a.value
        return ""

    @property
    def label(self) -> str:
        """``type:primary`` as rgmanager named a resource (``res_build_name``)."""
        return f"{self.type}:{self.primary}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.primary)

    def attr(self, name: str) -> ResourceAttr | None:
        return next((a for a in self.attrs if a.name == name), None)

    def value(self, name: str) -> str | None:
        """The attribute's own value (None if absent or inherited), like res_attr_value."""
        a = self.attr(name)
        return None if a is None or a.inherited else a.value


@dataclass(frozen=True)
class ResourceNode:
    resource: Resource
    children: tuple[ResourceNode, ...]
    index: tuple[int, ...]  # position from the root list: unique within a tree
    attrs: tuple[tuple[str, str | None], ...]  # resolved; None = unresolved inheritance
    where: str
    independent: bool = False
    non_critical: bool = False
    enforce_timeouts: bool = False
    max_restarts: int = 0
    restart_expire_time: int = 0
    max_failures: int = 0
    failure_expire_time: int = 0
    actions: tuple[ActionSpec, ...] = ()

    @property
    def type(self) -> str:
        return self.resource.type

    @property
    def rule(self) -> ResourceRule:
        return self.resource.rule

    @property
    def label(self) -> str:
        return self.resource.label

    def attr(self, name: str) -> str | None:
        return next((v for n, v in self.attrs if n == name), None)

    def walk(self) -> Iterator[ResourceNode]:
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True)
class ResourceTree:
    """The resource list (rgmanager's order) and the forest of top-level groups."""

    resources: tuple[Resource, ...]
    roots: tuple[ResourceNode, ...]

    def refs(self, resource: Resource) -> int:
        return sum(1 for r in self.roots for n in r.walk() if n.resource.key == resource.key)

    def find_resource(self, type_: str, ref: str) -> Resource | None:
        return _find_by_ref(self.resources, type_, ref, include_inline=True)

    def group(self, name: str) -> ResourceNode | None:
        """A top-level node by ``service:NAME``, ``vm:NAME`` or bare NAME (= service)."""
        type_, _, bare = name.partition(":") if ":" in name else ("service", "", name)
        return next((r for r in self.roots if r.type == type_ and r.resource.primary == bare), None)

    def nodes_of(self, resource: Resource) -> tuple[ResourceNode, ...]:
        return tuple(n for r in self.roots for n in r.walk() if n.resource.key == resource.key)


def _truthy(value: str | None) -> bool:
    if value is None:
        return False
    v = value.strip().lower()
    return v in ("yes", "true", "on") or (v.isdigit() and int(v) > 0)


def _int(value: str | None) -> int:
    try:
        return max(int(value or "0"), 0)
    except ValueError:
        return 0


def _where(el: etree._Element, rules: RuleSet) -> str:
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        tag = node.tag
        rule = rules.get(tag) if isinstance(tag, str) else None
        key = None
        if node.get("ref") is not None:
            key = ("ref", node.get("ref"))
        elif rule is not None and rule.primary is not None and node.get(rule.primary.name):
            key = (rule.primary.name, node.get(rule.primary.name))
        elif tag == "failoverdomain" and node.get("name"):
            key = ("name", node.get("name"))
        parts.append(f"{tag}[@{key[0]}='{key[1]}']" if key else str(tag))
        node = node.getparent()
    return "/" + "/".join(reversed(parts))


def _find_by_ref(resources: tuple[Resource, ...] | list[Resource], type_: str, ref: str,
                 include_inline: bool = False) -> Resource | None:
    """find_resource_by_ref(): the primary attribute first, else the first resource whose
    unique+required attribute has that value."""
    fallback = None
    for res in resources:
        if res.type != type_ or (res.inline and not include_inline):
            continue
        for a in res.attrs:
            if a.inherited or a.value != ref:
                continue
            if a.spec.primary:
                return res
            if a.spec.unique and a.spec.required and fallback is None:
                fallback = res
    return fallback


class _Builder:
    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.problems: list[Problem] = []
        self.resources: list[Resource] = []
        self.uses: dict[tuple[str, str], int] = {}

    def load_resource(self, el: etree._Element, rule: ResourceRule, inline: bool) -> Resource | None:
        where = _where(el, self.rules)
        attrs: list[ResourceAttr] = []
        missing = []
        for spec in rule.params:
            value = el.get(spec.name)
            if value is None:
                if spec.required or spec.primary:
                    missing.append(spec.name)
                    continue
                if spec.inherit:
                    attrs.append(ResourceAttr(spec, spec.inherit, inherited=True))
                elif spec.default is not None:
                    attrs.append(ResourceAttr(spec, spec.default))
                continue
            attrs.append(ResourceAttr(spec, value))
        if rule.open_params:
            listed = {p.name for p in rule.params}
            attrs += [ResourceAttr(ParamSpec(k), v) for k, v in el.attrib.items()
                      if k not in listed and k != "ref" and not k.startswith("__")]
        if missing:
            self.problems.append(Problem(where, f"{rule.type} is missing required attribute(s) "
                                                f"{', '.join(missing)}"))
            return None
        res = Resource(rule, tuple(attrs), inline, where)
        if self._store(res):
            return res
        return None

    def _store(self, new: Resource) -> bool:
        """store_resource(): primary and unique values are unique within a type."""
        for cur in self.resources:
            if cur.type != new.type:
                continue
            for a in new.attrs:
                if a.inherited or not (a.spec.primary or a.spec.unique):
                    continue
                other = cur.attr(a.name)
                if other is not None and not other.inherited and other.value == a.value:
                    kind = "primary" if a.spec.primary else "unique"
                    self.problems.append(Problem(
                        new.where, f"{kind} attribute collision: {new.type} {a.name}="
                                   f"{a.value!r} is already used by {cur.where}"))
                    return False
        self.resources.append(new)
        return True

    def load_globals(self, rm: etree._Element) -> None:
        section = rm.find("resources")
        if section is None:
            return
        elements = [e for e in section if isinstance(e.tag, str)]
        for e in elements:
            if e.tag not in self.rules:
                self.problems.append(Problem(_where(e, self.rules), _unknown(e.tag, self.rules)))
        for type_ in self.rules:  # rgmanager: load_resources() walks rules, then type[x]
            for e in elements:
                if e.tag == type_:
                    self.load_resource(e, self.rules[type_], inline=False)

    def node(self, el: etree._Element, rule: ResourceRule, chain: tuple[Resource, ...],
             index: tuple[int, ...]) -> ResourceNode | None:
        where = _where(el, self.rules)
        ref = el.get("ref")
        if ref is None:
            res = self.load_resource(el, rule, inline=True)
        else:
            res = _find_by_ref(self.resources, rule.type, ref)
            if res is None:
                inl = _find_by_ref(self.resources, rule.type, ref, include_inline=True)
                self.problems.append(Problem(where, (
                    f"reference to inline-defined resource {ref!r} (type {rule.type}) is "
                    f"illegal; define it once in <rm><resources>") if inl else (
                    f"reference to nonexistent resource {ref!r} (type {rule.type})")))
        if res is None:
            return None
        uses = self.uses.get(res.key, 0)
        if rule.maxinstances and uses >= rule.maxinstances:
            self.problems.append(Problem(where, (
                f"{res.label} is used {uses + 1} times but type {rule.type} allows "
                f"{rule.maxinstances} instance(s) (maxinstances)")))
            return None
        self.uses[res.key] = uses + 1
        mine = (*chain, res)
        children: list[ResourceNode] = []
        for child_el, child_rule in self._ordered_children(el, rule, is_root=False):
            child = self.node(child_el, child_rule, mine, (*index, len(children)))
            if child is not None:
                children.append(child)
        independent = non_critical = False
        special = el.get("__independent_subtree")
        if chain and special is not None:  # meaningless on a top-level group
            v = special.strip().lower()
            independent = v in ("1", "yes")
            non_critical = v in ("2", "non-critical")
        return ResourceNode(
            resource=res, children=tuple(children), index=index,
            attrs=tuple((a.name, _resolve(mine, len(mine) - 1, a.name, None)) for a in res.attrs),
            where=where, independent=independent or non_critical, non_critical=non_critical,
            enforce_timeouts=_truthy(el.get("__enforce_timeouts")),
            max_restarts=_int(el.get("__max_restarts")) if independent or non_critical else 0,
            restart_expire_time=(expand_time(el.get("__restart_expire_time"))
                                 if independent or non_critical else 0),
            max_failures=_int(el.get("__max_failures")),
            failure_expire_time=expand_time(el.get("__failure_expire_time")),
            actions=_actions(el, rule))

    def _ordered_children(self, el: etree._Element, rule: ResourceRule | None, is_root: bool
                          ) -> list[tuple[etree._Element, ResourceRule]]:
        elements = [e for e in el if isinstance(e.tag, str) and e.tag != "action"]
        if is_root:
            elements = [e for e in elements if e.tag not in _RM_SECTIONS]
        known: list[etree._Element] = []
        for e in elements:
            where = _where(e, self.rules)
            child_rule = self.rules.get(e.tag)
            if child_rule is None:
                self.problems.append(Problem(where, _unknown(e.tag, self.rules)))
            elif is_root and not child_rule.top_level:
                self.problems.append(Problem(where, f"<{e.tag}> must be inside a <service>; "
                                                    "only service and vm are top-level"))
            elif not is_root and child_rule.top_level:
                self.problems.append(Problem(where, f"<{e.tag}> cannot be nested inside "
                                                    f"<{el.tag}>"))
            elif rule is not None and (ct := rule.child(e.tag)) is not None and ct.forbid:
                self.problems.append(Problem(where, f"a {rule.type} may not contain a {e.tag} "
                                                    f"(forbid in the {rule.type} agent meta-data)"))
            else:
                known.append(e)
        ordered: list[etree._Element] = []
        declared = [c.type for c in rule.children if not c.forbid] if rule else []
        for type_ in declared:  # pass 1: typed children, declaration order
            ordered += [e for e in known if e.tag == type_]
        ordered += [e for e in known if e.tag not in declared]  # pass 2: untyped
        return [(e, self.rules[e.tag]) for e in ordered]


def _unknown(tag: str, rules: RuleSet) -> str:
    return f"unknown resource type <{tag}> (no agent provides it)"


def _resolve(chain: tuple[Resource, ...], idx: int, name: str, ptype: str | None) -> str | None:
    """rgmanager ``_attr_value()``: an inherited attribute names a parent attribute, either
    ``type%attr`` (walk up to the nearest ancestor of that type) or ``attr`` (parent)."""
    if idx < 0:
        return None
    res = chain[idx]
    if ptype is not None and res.type != ptype:
        return _resolve(chain, idx - 1, name, ptype)
    a = res.attr(name)
    if a is None:
        return None
    if not a.inherited:
        return a.value
    if "%" not in a.value:
        return _resolve(chain, idx - 1, a.value, None)
    ptype2, _, field = a.value.partition("%")
    return _resolve(chain, idx - 1, field, ptype2)


def _actions(el: etree._Element, rule: ResourceRule) -> tuple[ActionSpec, ...]:
    actions = list(rule.actions)
    for a in el.findall("action"):
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


def _clear_non_critical(node: ResourceNode, shared: set[tuple[str, str]]) -> ResourceNode:
    children = tuple(_clear_non_critical(c, shared) for c in node.children)
    if node.non_critical and node.resource.key in shared:
        logger.warning("non-critical flag for %s cleared: it is referenced more than once",
                       node.label)
        return replace(node, children=children, non_critical=False, independent=False)
    return replace(node, children=children)


def build_tree(rm: etree._Element | None, rules: RuleSet = DEFAULT_RULES) -> ResourceTree:
    """Build the resource list and tree from ``<rm>``; raises ConfigError with every
    problem found. ``rm`` may be None (no services)."""
    if rm is None:
        return ResourceTree((), ())
    b = _Builder(rules)
    b.load_globals(rm)
    roots: list[ResourceNode] = []
    for el, rule in b._ordered_children(rm, None, is_root=True):
        node = b.node(el, rule, (), (len(roots),))
        if node is not None:
            roots.append(node)
    if b.problems:
        raise ConfigError(b.problems, source="rm")
    # rgmanager lists inline resources after the global ones, in tree order.
    resources = [r for r in b.resources if not r.inline] + [r for r in b.resources if r.inline]
    shared = {k for k, n in b.uses.items() if n > 1}
    return ResourceTree(tuple(resources), tuple(_clear_non_critical(r, shared) for r in roots))
