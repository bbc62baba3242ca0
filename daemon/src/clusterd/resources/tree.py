"""Resource list and resource tree from an lxml ``<rm>`` element (pure).

Semantics of rgmanager's restree/reslist (RHCS-3.0.12 and RHCS-late
``rgmanager/src/daemons/restree.c`` ``build_tree()``, ``do_load_resource()``,
``_attr_value()``; ``reslist.c`` ``load_resource()``, ``store_resource()``,
``find_resource_by_ref()``, which are ``clusterd.resources.reslist``); the values built
are in ``clusterd.resources.model``:

* ``rm/resources/*`` are global resources, loaded per type (rule order), then document
  order; a tree element with ``ref=`` uses the global resource whose primary attribute
  equals the ref. Any other element defines its resource inline.
* A reference beyond its type's ``maxinstances`` (``ip``, ``fs``, ``service``, ``vm``,
  ``nfsserver``: 1) is accepted with a warning, as rgmanager accepted it: restree.c prints
  "Warning: Max references exceeded for resource %s (type %s)" and ``build_tree()`` skips
  that element (``case -1: continue``). The first reference in build order keeps the
  resource (build order is document order among services and among children of one
  type; typed children come before untyped ones); the extra reference and everything
  inside it are left out, and the warning names its path.
* A missing primary/required attribute, a primary or unique value used twice within a
  type (test016-style), a ref to a missing or to an inline resource, an unknown type and a
  child type the parent ``forbid``s are errors. rgmanager printed "Error: ..." for most
  of these and silently dropped the resource (two ``fs`` with one mountpoint: the second
  one was never mounted); we refuse the whole tree with one ConfigError listing every
  problem, because a service that quietly lacks its file system is worse than a refused
  config. :func:`check_tree` returns the problems and warnings located on their elements
  (``clusterd.conf.rmcheck`` makes them part of validation).
* Children of a node are stored typed-first: for each ``<child type>`` the parent's rule
  declares (in declaration order), the children of that type in document order; then the
  remaining ("untyped") children in document order. test009.expected shows this (fs is
  dumped before ip and script although written last).
* Inherited attributes resolve per tree node as ``_attr_value()`` does: ``inherit=
  "service%name"`` walks up to the nearest ``service`` (the type is cut to 31 characters,
  restree.c's ``char p_type[32]``) and takes its ``name`` there or nothing;
  ``inherit="mountpoint"`` asks the parent only; an inherited value found on the way is
  itself resolved from there up. An attribute set on the element is never inherited.
* ``__independent_subtree`` (1/yes, or 2/non-critical), ``__enforce_timeouts``,
  ``__max_failures``/``__failure_expire_time``, and for independent subtrees
  ``__max_restarts``/``__restart_expire_time`` are per-node flags. Non-critical is cleared
  when the resource is referenced more than once, with rgmanager's warning.
* ``<action name= depth= interval= timeout=>`` children override the rule's actions.

Linear in the number of elements: stored resources are indexed by their primary and
unique values (``clusterd.resources.reslist``; rgmanager scanned the whole list for every
store and every ref). This module walks ``<rm>``: global resources, then each service
down, checking where every element may sit and ordering children as rgmanager stored them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from lxml import etree

from clusterd.errors import ConfigError
from clusterd.resources.agents.registry import config_problems, has_config_checks
from clusterd.resources.model import (
    Resource,
    ResourceAttr,
    ResourceNode,
    ResourceTree,
    TreeCheck,
    TreeFinding,
    find_by_ref,
)
from clusterd.resources.nodeattrs import actions_of, resolve, resolve_own
from clusterd.resources.reslist import ResourceList
from clusterd.resources.rules import DEFAULT_RULES, ResourceRule, RuleSet, expand_time
from clusterd.truth import bool_or_none

__all__ = ["Resource", "ResourceAttr", "ResourceNode", "ResourceTree", "TreeCheck",
           "TreeFinding", "build_tree", "check_tree", "find_by_ref"]

logger = logging.getLogger(__name__)

# Elements of <rm> that are not resources.
_RM_SECTIONS = frozenset({"failoverdomains", "resources", "events"})


def _truthy(value: str | None) -> bool:
    """``__enforce_timeouts``: clusterd.truth's words dialect (restree.c took ``yes`` or a
    positive number); a value it refuses counts as unset, and the validator refuses it."""
    return value is not None and bool_or_none(value) is True


def _int(value: str | None) -> int:
    try:
        return max(int(value or "0"), 0)
    except ValueError:
        return 0


def _step(el: etree._Element, primaries: Mapping[str, str | None]) -> str:
    """One step of a path: the tag, keyed by ref=, else by the primary attribute."""
    tag = el.tag
    value = el.get("ref")
    if value is not None:
        return f"{tag}[@ref='{value}']"
    key = primaries.get(tag) if isinstance(tag, str) else None
    if key is None and tag == "failoverdomain":
        key = "name"
    value = el.get(key) if key is not None else None
    return f"{tag}[@{key}='{value}']" if value else str(tag)


def _primaries(rules: Mapping[str, ResourceRule]) -> dict[str, str | None]:
    return {t: (r.primary.name if r.primary is not None else None) for t, r in rules.items()}


def _where(el: etree._Element, rules: Mapping[str, ResourceRule]) -> str:
    primaries = _primaries(rules)
    steps = [_step(node, primaries) for node in (el, *el.iterancestors())]
    return "/" + "/".join(reversed(steps))


class _Builder:
    def __init__(self, rules: RuleSet, where: Callable[[etree._Element], str], complete: bool,
                 skip: frozenset[etree._Element] = frozenset(), agents: bool = False):
        self.complete = complete  # False: find the problems only, build no tree nodes
        self.agents = agents  # check each resource's parameters as its agent takes them
        self.skip = skip  # refused already: not built, nor anything below them
        self.order = list(rules)  # rgmanager's rule order
        self.rules = dict(rules)  # (a plain dict: this is looked up for every element)
        self.primaries = _primaries(self.rules)
        self.forbid = {t: frozenset(c.type for c in r.children if c.forbid)
                       for t, r in self.rules.items()}
        self.declared = {t: [c.type for c in r.children if not c.forbid]
                         for t, r in self.rules.items()}
        # per type: the rank of each declared child type (its first place), for storing
        # children typed-first; None where a type is declared twice (then listed twice)
        self.ranks = {t: ({c: i for i, c in enumerate(d)} if len(set(d)) == len(d) else None)
                      for t, d in self.declared.items()}
        self.where = where  # element -> path, for messages
        self.problems: list[TreeFinding] = []
        self.warnings: list[TreeFinding] = []
        self.reslist = ResourceList(self.rules, self.problem, where)
        self.uses: dict[tuple[str, str], int] = {}
        self.holder: dict[tuple[str, str], etree._Element] = {}  # the first reference
        self.flagged: set[tuple[str, str]] = set()  # rgmanager's RF_NON_CRITICAL
        self.non_critical: set[tuple[str, str]] = set()  # keys with a non-critical node
        self.agent_checked: set[tuple[tuple[str, str], tuple[tuple[str, str], ...]]] = set()
        # the types whose parameters ``_check_agent`` checks (per type: for any other,
        # ``config_problems`` finds nothing whatever the values)
        self.checked_types = {r.type: agents and has_config_checks(r.type)
                              for r in self.rules.values()}
        # the types whose resources have one attribute per name (no parameter listed
        # twice): an inherited attribute resolves from its own inherit spec (resolve_own)
        self.one_per_name = {r.type: len({p.name for p in r.params}) == len(r.params)
                             for r in self.rules.values()}

    def problem(self, el: etree._Element, reason: str) -> None:
        self.problems.append(TreeFinding(el, self.where(el), reason))

    def load_globals(self, rm: etree._Element, rm_where: str) -> None:
        section = rm.find("resources")
        if section is None:
            return
        base = f"{rm_where}/resources/"
        by_type: dict[str, list[etree._Element]] = {}
        for e in section:
            if not isinstance(e.tag, str):
                continue
            if e.tag not in self.rules:
                self.problem(e, _unknown(e.tag))
            by_type.setdefault(e.tag, []).append(e)
        for type_ in self.order:  # rgmanager: load_resources() walks rules, then type[x]
            for e in by_type.get(type_, ()):
                self.reslist.load(e, self.rules[type_], False,
                                  base + _step(e, self.primaries))

    def _over_limit(self, el: etree._Element, rule: ResourceRule, res: Resource) -> bool:
        """do_load_resource(): a reference past maxinstances is ignored, with a warning."""
        if not rule.maxinstances or self.uses.get(res.key, 0) < rule.maxinstances:
            return False
        inside = sum(1 for e in el.iter(etree.Element) if e is not el and e.tag != "action")
        dropped = f" with the {inside} resource(s) inside it" if inside else ""
        first = self.where(self.holder[res.key])
        own = "" if rule.top_level else f", or give this service its own {rule.type}"
        self.warnings.append(TreeFinding(el, self.where(el), (
            f"{res.label} is referenced more often than type {rule.type} allows "
            f"(maxinstances=\"{rule.maxinstances}\" in its agent meta-data): this reference "
            f"is ignored{dropped}, as rgmanager ignored it; {first} keeps it. Remove this "
            f"reference{own}"),
            f"Warning: Max references exceeded for resource {_first_attr(res)} "
            f"(type {rule.type})"))
        return True

    def _flag_non_critical(self, el: etree._Element, res: Resource, critical: bool) -> None:
        """rgmanager flags the resource, then clears the flag (with this warning) once it
        has more than one reference."""
        if not critical:
            self.flagged.add(res.key)
        if self.uses[res.key] > 1 and res.key in self.flagged:
            self.flagged.discard(res.key)
            self.warnings.append(TreeFinding(el, self.where(el), (
                f"{res.label} is non-critical (__independent_subtree=\"2\") but referenced "
                "more than once: the flag is cleared on every reference, as rgmanager "
                "cleared it; use one resource per reference to keep it non-critical"),
                f"Non-critical flag for {res.label} is being cleared due to multiple "
                "references."))

    def node(self, el: etree._Element, rule: ResourceRule, chain: tuple[Resource, ...],
             index: tuple[int, ...], parent_where: str) -> ResourceNode | None:
        where = f"{parent_where}/{_step(el, self.primaries)}" if self.complete else ""
        ref = el.get("ref")
        res = (self.reslist.load(el, rule, True, where) if ref is None
               else self.reslist.referenced(el, rule, ref))
        if res is None or self._over_limit(el, rule, res):
            return None
        self.uses[res.key] = self.uses.get(res.key, 0) + 1
        self.holder.setdefault(res.key, el)
        independent = non_critical = False
        special = el.get("__independent_subtree")
        if chain and special is not None:  # meaningless on a top-level group
            v = special.strip().lower()
            independent = v in ("1", "yes")
            non_critical = v in ("2", "non-critical")
        if non_critical:
            self.non_critical.add(res.key)
        self._flag_non_critical(el, res, not non_critical)
        mine = (*chain, res)
        attrs = ()
        if self.complete or self.checked_types[rule.type]:
            if self.one_per_name[rule.type]:
                attrs = tuple((a.name, resolve_own(mine, a) if a.inherited else a.value)
                              for a in res.attrs)
            else:
                attrs = tuple((a.name, resolve(mine, a.name) if a.inherited else a.value)
                              for a in res.attrs)
            self._check_agent(el, rule, res, attrs)
        children: list[ResourceNode] = []
        for child_el in self._ordered_children(el, rule, is_root=False):
            child = self.node(child_el, self.rules[child_el.tag], mine,
                              (*index, len(children)), where)
            if child is not None:
                children.append(child)
        if not self.complete:
            return None
        return ResourceNode(
            resource=res, children=tuple(children), index=index,
            attrs=attrs,
            where=where, independent=independent or non_critical,
            non_critical=non_critical, enforce_timeouts=_truthy(el.get("__enforce_timeouts")),
            max_restarts=_int(el.get("__max_restarts")) if independent or non_critical else 0,
            restart_expire_time=(expand_time(el.get("__restart_expire_time"))
                                 if independent or non_critical else 0),
            max_failures=_int(el.get("__max_failures")),
            failure_expire_time=expand_time(el.get("__failure_expire_time")),
            actions=actions_of(el, rule))

    def _check_agent(self, el: etree._Element, rule: ResourceRule, res: Resource,
                     attrs: tuple[tuple[str, str | None], ...]) -> None:
        """The resource's parameters as its agent will take them (``registry.
        config_problems``: types, paths, an RHCS type's translation), once per resource
        and resolved attribute values; a ``samba`` needs an ``ip`` in its service."""
        if not self.checked_types[rule.type]:
            return
        given = {k: v for k, v in attrs if v is not None}
        seen = (res.key, tuple(sorted(given.items())))
        if seen in self.agent_checked:
            return
        self.agent_checked.add(seen)
        for found in config_problems(rule.type, given, ""):
            self.problem(el, found.reason)
        if rule.type == "samba" and not _service_has_ip(el):
            self.problem(el, "samba: its service has no <ip>: smbd and nmbd are bound to "
                             "the service's addresses (as RHCS's samba agent bound them), "
                             "so clients reach the share where the service runs; add the "
                             "service's floating address as an <ip> of the service")

    def _ordered_children(self, el: etree._Element, rule: ResourceRule | None, is_root: bool
                          ) -> list[etree._Element]:
        """The children of ``el`` to build, as rgmanager stored them (each has a rule:
        ``self.rules[child.tag]``); a child that may not sit there is a problem."""
        if not len(el):
            return []
        elements = [e for e in el if isinstance(e.tag, str) and e.tag != "action"
                    and e not in self.skip]
        if is_root:
            elements = [e for e in elements if e.tag not in _RM_SECTIONS]
        known: list[etree._Element] = []
        for e in elements:
            child_rule = self.rules.get(e.tag)
            if child_rule is None:
                self.problem(e, _unknown(e.tag))
            elif is_root and not child_rule.top_level:
                self.problem(e, f"<{e.tag}> must be inside a <service>; only service and vm "
                                "are top-level: move it into a service")
            elif not is_root and child_rule.top_level:
                self.problem(e, f"<{e.tag}> cannot be nested inside <{el.tag}>: move it up "
                                "to <rm>")
            elif rule is not None and e.tag in self.forbid[rule.type]:
                self.problem(e, f"a {rule.type} may not contain a {e.tag} (forbid in the "
                                f"{rule.type} agent meta-data): move it out of the {rule.type}")
            else:
                known.append(e)
        if not known:
            return []
        if rule is None:
            return known
        rank = self.ranks[rule.type]
        if rank is not None:   # declaration order (stable: file order within a type), the rest
            typed = sorted((e for e in known if e.tag in rank), key=lambda e: rank[e.tag])
            return typed + [e for e in known if e.tag not in rank]
        declared = self.declared[rule.type]
        by_type: dict[str, list[etree._Element]] = {t: [] for t in declared}
        untyped: list[etree._Element] = []
        for e in known:
            if e.tag in by_type:
                by_type[e.tag].append(e)
            else:
                untyped.append(e)
        ordered = [e for t in declared for e in by_type[t]]  # pass 1: declaration order
        ordered += untyped  # pass 2: the rest, in file order
        return ordered


def _service_has_ip(el: etree._Element) -> bool:
    """Whether the service (or vm) around ``el`` holds an ``<ip>`` anywhere below it."""
    group = next((a for a in el.iterancestors() if a.tag in ("service", "vm")), None)
    return group is not None and next(group.iter("ip"), None) is not None


def _unknown(tag: str) -> str:
    return (f"unknown resource type <{tag}> (no agent provides it): remove it, or use an "
            "<ocf> or <systemd> resource")


def _first_attr(res: Resource) -> str:
    """rgmanager's ``r_attrs[0].ra_name`` (store_attribute() puts the primary first)."""
    spec = res.rule.primary
    return spec.name if spec is not None else (res.attrs[0].name if res.attrs else "")


def _clear_non_critical(node: ResourceNode, shared: set[tuple[str, str]]) -> ResourceNode:
    children = tuple(_clear_non_critical(c, shared) for c in node.children)
    if node.non_critical and node.resource.key in shared:
        return replace(node, children=children, non_critical=False, independent=False)
    if all(a is b for a, b in zip(children, node.children, strict=True)):
        return node
    return replace(node, children=children)


def check_tree(rm: etree._Element | None, rules: RuleSet = DEFAULT_RULES,
               where: Callable[[etree._Element], str] | None = None,
               complete: bool = True,
               skip: frozenset[etree._Element] = frozenset(),
               agents: bool = False) -> TreeCheck:
    """Build the resource list and tree from ``<rm>`` (None: no services), collecting
    every problem and warning on its element; ``where`` names elements in messages
    (default: paths from ``<rm>``). ``complete=False`` (validation) finds the same
    problems and warnings without building the tree nodes: ``tree.roots`` is then empty.
    ``skip``: elements of services and their resources that validation refused already
    (an unknown attribute, say): they and what is below them are left out, so a config
    with thousands of refused services is not built thousands of times over for findings
    that would only follow from those (global resources are always loaded: a reference
    to one must not turn into a second, false finding). ``agents``: also check each
    resource's parameters as its agent will take them (``registry.config_problems``), as
    validating a cluster.conf does; rgmanager's tree (``rg_test``) did not."""
    if rm is None:
        return TreeCheck(ResourceTree((), ()), (), ())
    b = _Builder(rules, where or (lambda el: _where(el, rules)), complete, skip, agents)
    rm_where = _where(rm, rules)
    b.load_globals(rm, rm_where)
    roots: list[ResourceNode] = []
    for el in b._ordered_children(rm, None, is_root=True):
        node = b.node(el, b.rules[el.tag], (), (len(roots),), rm_where)
        if node is not None:
            roots.append(node)
    # rgmanager lists inline resources after the global ones, in tree order.
    stored = b.reslist.resources
    resources = [r for r in stored if not r.inline] + [r for r in stored if r.inline]
    shared = {k for k in b.non_critical if b.uses.get(k, 0) > 1}
    if shared:
        roots = [_clear_non_critical(r, shared) for r in roots]
    tree = ResourceTree(tuple(resources), tuple(roots))
    return TreeCheck(tree, tuple(b.problems), tuple(b.warnings))


def build_tree(rm: etree._Element | None, rules: RuleSet = DEFAULT_RULES) -> ResourceTree:
    """Build the resource list and tree from ``<rm>``; raises ConfigError with every
    problem found, logs each warning. ``rm`` may be None (no services)."""
    checked = check_tree(rm, rules)
    if checked.problems:
        raise ConfigError([p.problem() for p in checked.problems], source="rm")
    for w in checked.warnings:
        logger.warning("resource tree: %s", w.problem())
    return checked.tree
