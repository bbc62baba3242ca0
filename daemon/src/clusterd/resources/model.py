"""The resource list and tree as values (pure): what ``clusterd.resources.tree`` builds
from ``<rm>`` and ``delta``, ``dump``, ``ordering`` and the executor read.

rgmanager's ``resource_t`` (a resource of the list, with its attributes and flags) and
``resource_node_t`` (one use of a resource in the tree, with per-node flags and actions);
``reslist.c`` ``find_resource_by_ref()`` is :func:`find_by_ref`. :class:`TreeCheck` is what
building found: the tree, and the problems and warnings on their elements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, overload

from lxml import etree

from clusterd.errors import Problem
from clusterd.resources.rules import ActionSpec, ParamSpec, ResourceRule

T = TypeVar("T")


class ResourceAttr(NamedTuple):
    """One stored attribute. ``inherited`` means ``value`` is the inherit spec, resolved
    per tree node (rgmanager kept the RA_INHERIT flag in that case). A named tuple: a
    1 MiB config has tens of thousands, built during every validation."""

    spec: ParamSpec
    value: str
    inherited: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


class _cached(Generic[T]):
    """``functools.cached_property`` without its lock: Python 3.11's takes an RLock on
    every first read, and validating a 1 MiB config reads tens of thousands of these. The
    value is stored as an instance attribute, as cached_property stores it (later reads
    find it first: this is a non-data descriptor); set with ``object.__setattr__``, which
    does not make a separate ``__dict__`` object for each instance as writing to
    ``__dict__`` does. Two threads reading at once compute the same value twice."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _cached[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> T | _cached[T]:
        if obj is None:
            return self
        value = self.func(obj)
        object.__setattr__(obj, self.name, value)  # an instance attribute (frozen: bypassed)
        return value


@dataclass(frozen=True)
class Resource:
    rule: ResourceRule
    attrs: tuple[ResourceAttr, ...]
    inline: bool
    where: str

    @property
    def type(self) -> str:
        return self.rule.type

    @_cached
    def primary(self) -> str:
        """The primary attribute's value; without one in the rule, the first attribute's."""
        for a in self.attrs:
            if a.spec.primary and not a.inherited:
                return a.value
        if self.rule.primary is None:
            return next((a.value for a in self.attrs if not a.inherited), "")
        return ""

    @_cached
    def label(self) -> str:
        """``type:primary`` as rgmanager named a resource (``res_build_name``)."""
        return f"{self.type}:{self.primary}"

    @_cached
    def key(self) -> tuple[str, str]:
        return (self.type, self.primary)

    @_cached
    def _by_name(self) -> dict[str, ResourceAttr]:
        return {a.name: a for a in reversed(self.attrs)}  # the first of a name wins

    def attr(self, name: str) -> ResourceAttr | None:
        return self._by_name.get(name)

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
        return find_by_ref(self.resources, type_, ref)

    def group(self, name: str) -> ResourceNode | None:
        """A top-level node by ``service:NAME``, ``vm:NAME`` or bare NAME (= service)."""
        type_, _, bare = name.partition(":") if ":" in name else ("service", "", name)
        return next((r for r in self.roots if r.type == type_ and r.resource.primary == bare), None)

    def nodes_of(self, resource: Resource) -> tuple[ResourceNode, ...]:
        return tuple(n for r in self.roots for n in r.walk() if n.resource.key == resource.key)


def find_by_ref(resources: Iterable[Resource], type_: str, ref: str) -> Resource | None:
    """find_resource_by_ref(): the first resource of ``type_`` whose primary attribute is
    ``ref``, else the first whose unique+required attribute is (inline ones included:
    the tree builder refuses a reference to an inline resource itself)."""
    fallback = None
    for res in resources:
        if res.type != type_:
            continue
        for a in res.attrs:
            if a.inherited or a.value != ref:
                continue
            if a.spec.primary:
                return res
            if a.spec.unique and a.spec.required and fallback is None:
                fallback = res
    return fallback


@dataclass(frozen=True)
class TreeFinding:
    """A problem or warning of the tree build, on its element. ``rgmanager`` is the line
    rgmanager's rg_test printed for the same finding (warnings), or ''."""

    element: etree._Element
    where: str
    reason: str
    rgmanager: str = ""

    def problem(self) -> Problem:
        return Problem(self.where, self.reason)


@dataclass(frozen=True)
class TreeCheck:
    """What :func:`check_tree` found; ``tree`` is complete only when ``problems`` is empty."""

    tree: ResourceTree
    problems: tuple[TreeFinding, ...]
    warnings: tuple[TreeFinding, ...]
