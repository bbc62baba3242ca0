"""``<rm>`` as the daemon will load it: the resource tree and the service definitions are
built during validation, so a config that validates always builds a complete tree, and
what validation built is what the daemon runs (:class:`RmModel`, carried by
``ClusterConf``): ``<rm>`` is parsed once per config, in ``conf.parse`` (off the event
loop), never again by a consumer.

:func:`check_rm` builds the tree (``clusterd.resources.tree.check_tree``) and the service
definitions (``clusterd.placement.config.services_from_rm``) once and returns every
problem located on its element (``problems_of`` adds them to the schema and semantic
findings; one already reported on the same element is not repeated) and, with
``complete=True`` and no problem, the model. :func:`rm_warnings` is what rgmanager
accepted with a warning and clusterd accepts the same way (a resource referenced more
often than its type's ``maxinstances``: the tree keeps the first reference and leaves the
extra one out); ``ccs_config_validate`` and ``rg_test`` print them and still succeed.

``clusterd.resources`` and ``clusterd.placement`` are imported inside the functions (and
for annotations only under TYPE_CHECKING), not at module level: they are consumers of
``clusterd.conf`` and may import it, and ``conf.parse`` and ``conf.model`` import this
module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from clusterd.conf.gcpause import gc_paused
from clusterd.conf.paths import ElementPaths
from clusterd.conf.rng import RawProblem
from clusterd.conf.secrets import redact_problems, secret_values
from clusterd.errors import ConfigError, Problem

if TYPE_CHECKING:
    from clusterd.placement.model import FailoverDomain, ServiceDef
    from clusterd.resources.model import ResourceTree, TreeFinding

_PLACEMENT_HINT = "fix it: clusterd's service placement reads this value"


@dataclass(frozen=True)
class TreeWarning(Problem):
    """A warning of the tree build (where, reason: a Problem, secret values masked) with
    the line rgmanager's rg_test printed for it (``rgmanager``)."""

    rgmanager: str = ""


@dataclass(frozen=True)
class RmModel:
    """The typed ``<rm>``: what placement reads (service definitions, failover domains)
    and what the executor runs (the resource tree), built from one validated document,
    with the warnings it was accepted with. Frozen values, shared by every reader."""

    services: tuple[ServiceDef, ...]
    domains: tuple[FailoverDomain, ...]
    tree: ResourceTree
    warnings: tuple[TreeWarning, ...] = ()


@dataclass(frozen=True)
class RmCheck:
    """What :func:`check_rm` found: the problems not on an element ``known`` has, and the
    model (None unless built complete and free of problems)."""

    problems: tuple[RawProblem, ...]
    model: RmModel | None


def empty_model() -> RmModel:
    """No ``<rm>``: no services, no domains, an empty tree."""
    from clusterd.resources.model import ResourceTree

    return RmModel((), (), ResourceTree((), ()))


def check_rm(root: etree._Element, known: Iterable[RawProblem] = (),
             complete: bool = True, paths: ElementPaths | None = None) -> RmCheck:
    """Build ``<rm>`` of a ``<cluster>`` tree once: the tree's and placement's problems
    minus those on an element ``known`` already has a problem for (such a service or
    resource is not built: ``check_tree``'s ``skip``), and (``complete``, no problem)
    the model. ``complete=False`` (validation only) finds the same problems
    without building the tree nodes. ``paths`` names the elements (shared with the
    caller's messages: each parent's children are named once). Linear in the number of
    elements."""
    with gc_paused():
        return _check_rm(root, known, complete, paths)


def _check_rm(root: etree._Element, known: Iterable[RawProblem], complete: bool,
              paths: ElementPaths | None) -> RmCheck:
    from clusterd.resources.tree import check_tree

    rm = root.find("rm") if root.tag == "cluster" else None
    if rm is None:
        return RmCheck((), empty_model() if complete else None)
    taken = {p.element for p in known if p.element is not None}
    refused = frozenset(taken)
    checked = check_tree(rm, where=paths or ElementPaths(), complete=complete, skip=refused,
                         agents=True)
    tree_problems = checked.problems
    built = (checked.tree, checked.warnings) if complete else None
    del checked             # validation only: its resource list goes before placement's
    placed, placement = _placement(rm, refused)
    found: list[RawProblem] = []
    for raw in [RawProblem(f.element, f.reason) for f in tree_problems] + placement:
        if raw.element not in taken:
            taken.add(raw.element)
            found.append(raw)
    if built is None or tree_problems or placed is None:
        return RmCheck(tuple(found), None)
    services, domains = placed
    tree, warnings = built
    return RmCheck(tuple(found), RmModel(services, domains, tree, _warnings(warnings, root)))


def rm_problems(root: etree._Element, known: Iterable[RawProblem] = ()) -> list[RawProblem]:
    """The tree's and placement's problems for a ``<cluster>`` tree, minus those on an
    element ``known`` already has a problem for; linear in the number of elements."""
    return list(check_rm(root, known, complete=False).problems)


def rm_model(root: etree._Element, source: str = "cluster.conf") -> RmModel:
    """The model of a canonical tree that did not come through ``conf.parse`` (which
    passes the one it built); ConfigError listing the tree's and placement's problems."""
    checked = check_rm(root)
    if checked.model is None:
        paths = ElementPaths()
        found = [Problem(paths(p.element), p.reason) for p in checked.problems]
        secrets = secret_values(root)
        raise ConfigError(redact_problems(found, secrets) if secrets else found, source)
    return checked.model


def rm_warnings(root: etree._Element) -> tuple[TreeWarning, ...]:
    """What the tree accepts with rgmanager's warning (secret values masked), of a tree
    that may have problems (``ccs_config_validate`` shows both)."""
    from clusterd.resources.tree import check_tree

    rm = root.find("rm") if root.tag == "cluster" else None
    if rm is None:
        return ()
    return _warnings(check_tree(rm, where=ElementPaths(), complete=False).warnings, root)


def _warnings(found: Sequence[TreeFinding], root: etree._Element) -> tuple[TreeWarning, ...]:
    """The findings as TreeWarnings, secret values masked in where and reason."""
    warnings = [TreeWarning(f.where, f.reason, f.rgmanager) for f in found]
    secrets = secret_values(root) if warnings else frozenset()
    return tuple(redact_problems(warnings, secrets) if secrets else warnings)


def _placement(rm: etree._Element, skip: frozenset[etree._Element]) -> tuple[tuple[tuple[ServiceDef, ...],
                                                  tuple[FailoverDomain, ...]] | None,
                                            list[RawProblem]]:
    """services_from_rm(): its result, or None and its problems on the service, vm or
    failover domain they name."""
    from clusterd.placement.config import services_from_rm

    try:
        return services_from_rm(rm, skip), []
    except ConfigError as exc:
        problems = exc.problems
    named: dict[str, etree._Element] = {}
    for el in rm:
        if el.tag in ("service", "vm"):
            named.setdefault(f"/cluster/rm/{el.tag}[@name='{el.get('name') or el.get('ref')}']",
                             el)
    for dom in rm.iterfind("failoverdomains/failoverdomain"):
        named.setdefault(f"/cluster/rm/failoverdomains/failoverdomain[@name='{dom.get('name')}']",
                         dom)
    return None, [RawProblem(named.get(p.where, rm), f"{p.reason}; {_PLACEMENT_HINT}")
                  for p in problems]
