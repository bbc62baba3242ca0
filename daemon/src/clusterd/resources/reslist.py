"""The resource list while the tree is built (pure): storing resources and finding refs.

rgmanager keeps this apart from the tree too: ``reslist.c`` ``load_resource()``,
``store_resource()`` and ``find_resource_by_ref()`` own the list, ``restree.c``
``build_tree()`` walks ``<rm>`` and asks the list. :class:`ResourceList` is that list:

* :meth:`~ResourceList.load` reads one element's resource (the rule's parameters from the
  element, defaults and inherit specs for the ones it does not set; a missing primary or
  required attribute is a problem) and stores it;
* storing refuses a primary or unique value used twice within a type, naming the first
  resource stored with it (rgmanager's list walk found that one);
* :meth:`~ResourceList.referenced` finds the global resource a ``ref=`` names (by primary,
  else by a unique+required value); a missing one, or one defined inline, is a problem.

Separate from ``clusterd.resources.tree`` because none of this depends on where in the tree
an element sits: the list is keyed by type and attribute values only. It indexes every
stored primary and unique value, so storing and finding are O(1) (rgmanager scanned the
whole list for every store and every ref). The builder hands it the two things it needs
from the walk: ``problem`` to report a finding on an element and ``where`` to name one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lxml import etree

from clusterd.resources.model import Resource, ResourceAttr
from clusterd.resources.rules import ParamSpec, ResourceRule


class _Form:
    """What loading reads for one type, worked out once per type (not per element): per
    parameter in rule order, what an element that does not set it stores (``base``: the
    inherit spec, resolved per tree node; else the default; else nothing; a required or
    primary one stores nothing and is missing), where each parameter name sits, which
    are required and which are keyed (primary or unique: store_resource() indexes them).
    The values in ``base`` are immutable and shared by every resource that takes them."""

    def __init__(self, params: tuple[ParamSpec, ...]) -> None:
        self.base: list[ResourceAttr | None] = []
        self.index: dict[str, list[tuple[int, ParamSpec]]] = {}
        self.must: list[tuple[int, str]] = []
        self.keyed: list[int] = []
        for i, spec in enumerate(params):
            self.index.setdefault(spec.name, []).append((i, spec))
            if spec.required or spec.primary:
                self.must.append((i, spec.name))
                self.base.append(None)
            elif spec.inherit:
                self.base.append(ResourceAttr(spec, spec.inherit, True))
            elif spec.default is not None:
                self.base.append(ResourceAttr(spec, spec.default))
            else:
                self.base.append(None)
            if spec.primary or spec.unique:
                self.keyed.append(i)


class ResourceList:
    def __init__(self, rules: Mapping[str, ResourceRule],
                 problem: Callable[[etree._Element, str], None],
                 where: Callable[[etree._Element], str]) -> None:
        self.problem = problem  # (element, reason): a finding on that element
        self.where = where  # element -> path, for messages
        self.forms = {t: _Form(r.params) for t, r in rules.items()}
        # the parameters a type lists (an open type keeps the others too)
        self.listed = {t: frozenset(p.name for p in r.params) for t, r in rules.items()
                       if r.open_params}
        self.resources: list[Resource] = []  # in the order stored
        # store_resource() / find_resource_by_ref() in O(1): (type, attr, value) of every
        # stored primary or unique value; (type, value) of primary, of unique+required
        self.stored: dict[int, int] = {}  # id -> list position
        self.elements: list[etree._Element] = []  # the element of each, in the same order
        self.taken: dict[tuple[str, str, str], Resource] = {}
        self.by_primary: dict[tuple[str, str], Resource] = {}
        self.by_unique: dict[tuple[str, str], Resource] = {}

    def load(self, el: etree._Element, rule: ResourceRule, inline: bool,
             where: str) -> Resource | None:
        """load_resource(): the rule's parameters from the element, defaults and inherit
        specs for the ones it does not set."""
        form = self.forms[rule.type]
        row = form.base.copy()      # per parameter: its value here (set, default, inherit)
        items = el.items()
        for key, value in items:
            for i, spec in form.index.get(key, ()):
                row[i] = ResourceAttr(spec, value)
        missing = [name for i, name in form.must if row[i] is None]
        attrs = [a for a in row if a is not None]
        # primary and unique values, for store_resource(): set or default, not inherited
        keyed = [a for i in form.keyed if (a := row[i]) is not None and not a.inherited]
        if rule.open_params:
            listed = self.listed[rule.type]
            attrs += [ResourceAttr(ParamSpec(k), v) for k, v in items
                      if k not in listed and k != "ref" and not k.startswith("__")]
        if missing:
            self.problem(el, f"{rule.type} is missing required attribute(s) "
                             f"{', '.join(missing)}: set them (the {rule.agent_name} agent "
                             "needs them)")
            return None
        res = Resource(rule, tuple(attrs), inline, where)
        return res if self._store(res, el, keyed) else None

    def _store(self, new: Resource, el: etree._Element, keyed: list[ResourceAttr]) -> bool:
        """store_resource(): primary and unique values are unique within a type; the
        collision named is the first stored resource's, as rgmanager's list walk found."""
        type_ = new.type
        hits = []
        for i, a in enumerate(keyed):
            cur = self.taken.get((type_, a.spec.name, a.value))
            if cur is not None:
                hits.append((self.stored[id(cur)], i, cur, a))
        if hits:
            _, _, cur, a = min(hits, key=lambda h: h[:2])
            kind = "primary" if a.spec.primary else "unique"
            self.problem(el, f"{kind} attribute collision: {type_} {a.name}={a.value!r} is "
                             f"already used by {self.where(self.elements[self.stored[id(cur)]])}: give each "
                             f"{type_} its own {a.name} (rgmanager left this {type_} "
                             "out of the tree)")
            return False
        self.stored[id(new)] = len(self.resources)
        self.resources.append(new)
        self.elements.append(el)
        for a in keyed:
            spec = a.spec
            self.taken.setdefault((type_, spec.name, a.value), new)
            if spec.primary:
                self.by_primary.setdefault((type_, a.value), new)
            elif spec.required:
                self.by_unique.setdefault((type_, a.value), new)
        return True

    def referenced(self, el: etree._Element, rule: ResourceRule, ref: str) -> Resource | None:
        """find_resource_by_ref(): the global resource ``ref`` names, or None (a problem)."""
        res = (self.by_primary.get((rule.type, ref))
               or self.by_unique.get((rule.type, ref)))
        if res is None:
            key = rule.primary.name if rule.primary is not None else "name"
            self.problem(el, f"reference to nonexistent resource {ref!r} (type {rule.type}): "
                             f"define <{rule.type} {key}=\"{ref}\" .../> in <rm><resources> "
                             "or fix the reference")
        elif res.inline:
            self.problem(el, f"reference to inline-defined resource {ref!r} (type "
                             f"{rule.type}) is illegal; define it once in <rm><resources> "
                             "and reference it from each place")
            return None
        return res
