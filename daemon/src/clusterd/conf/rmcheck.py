"""``<rm>`` as the daemon will load it: the resource tree and the service definitions are
built during validation, so a config that validates always builds a complete tree.

:func:`rm_problems` is every problem ``clusterd.resources.tree.build_tree`` and
``clusterd.placement.config.services_from_rm`` would raise for the document, located on
its element (``problems_of`` adds them to the schema and semantic findings; one already
reported on the same element is not repeated). :func:`rm_warnings` is what rgmanager
accepted with a warning and clusterd accepts the same way (a resource referenced more
often than its type's ``maxinstances``: the tree keeps the first reference and leaves the
extra one out); ``ccs_config_validate`` and ``rg_test`` print them and still succeed.

``clusterd.resources`` and ``clusterd.placement`` are imported inside the functions, not
at module level: they are consumers of ``clusterd.conf`` and may import it, and
``conf.parse`` imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from clusterd.conf.paths import ElementPaths
from clusterd.conf.rng import RawProblem
from clusterd.conf.secrets import redact_all, secret_values
from clusterd.errors import ConfigError, Problem

_PLACEMENT_HINT = "fix it: clusterd's service placement reads this value"


def rm_problems(root: etree._Element, known: Iterable[RawProblem] = ()) -> list[RawProblem]:
    """The tree's and placement's problems for a ``<cluster>`` tree, minus those on an
    element ``known`` already has a problem for; linear in the number of elements."""
    from clusterd.resources.tree import check_tree

    rm = root.find("rm")
    if rm is None:
        return []
    taken = {p.element for p in known if p.element is not None}
    found: list[RawProblem] = []
    for f in check_tree(rm, where=ElementPaths(), complete=False).problems:
        if f.element not in taken:
            taken.add(f.element)
            found.append(RawProblem(f.element, f.reason))
    for raw in _placement_problems(rm):
        if raw.element not in taken:
            taken.add(raw.element)
            found.append(raw)
    return found


def rm_warnings(root: etree._Element) -> tuple[Problem, ...]:
    """What the tree accepts with rgmanager's warning, as Problems (secret values masked)."""
    from clusterd.resources.tree import check_tree

    rm = root.find("rm") if root.tag == "cluster" else None
    if rm is None:
        return ()
    found = check_tree(rm, where=ElementPaths(), complete=False).warnings
    secrets = secret_values(root) if found else frozenset()
    if not secrets:
        return tuple(f.problem() for f in found)
    texts = redact_all([text for f in found for text in (f.where, f.reason)], secrets)
    return tuple(Problem(where, reason) for where, reason in zip(texts[::2], texts[1::2],
                                                                 strict=True))


def _placement_problems(rm: etree._Element) -> list[RawProblem]:
    """services_from_rm()'s problems, on the service, vm or failover domain they name."""
    from clusterd.placement.config import services_from_rm

    try:
        services_from_rm(rm)
    except ConfigError as exc:
        problems = exc.problems
    else:
        return []
    named: dict[str, etree._Element] = {}
    for el in rm:
        if el.tag in ("service", "vm"):
            named.setdefault(f"/cluster/rm/{el.tag}[@name='{el.get('name') or el.get('ref')}']",
                             el)
    for dom in rm.iterfind("failoverdomains/failoverdomain"):
        named.setdefault(f"/cluster/rm/failoverdomains/failoverdomain[@name='{dom.get('name')}']",
                         dom)
    return [RawProblem(named.get(p.where, rm), f"{p.reason}; {_PLACEMENT_HINT}")
            for p in problems]
