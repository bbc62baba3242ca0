"""Safe parsing of cluster.conf bytes, validation, and construction of the model.

The XML parser never expands entities, never loads a DTD, never touches the network and
refuses huge trees; a document with a DOCTYPE is refused outright, and so is anything
over MAX_BYTES. Validation = cluster.rng (shipped in the package) + semantic rules; every
problem is reported at once, secret values redacted. Given ``fence_agents`` (where a change
is validated on a node), fence device parameters are also checked against each agent's own
metadata (``conf/fenceparams.py``).
"""

from __future__ import annotations

import bisect
import logging
import os
import re

from lxml import etree

from clusterd.conf import rng
from clusterd.conf.fenceparams import FenceAgents, agent_problems, device_problems
from clusterd.conf.gcpause import gc_paused
from clusterd.conf.model import ClusterConf
from clusterd.conf.paths import ElementPaths, element_path
from clusterd.conf.render import canonical_tree
from clusterd.conf.rmcheck import RmModel, check_rm, rm_warnings
from clusterd.conf.secrets import redact_problems, secret_values
from clusterd.conf.validate import semantic_problems
from clusterd.errors import ConfigError, Problem

logger = logging.getLogger(__name__)

MAX_BYTES = 1024 * 1024
DEFAULT_PATH = "/etc/cluster/cluster.conf"
# A DOCTYPE can only come in the prolog: XML declaration, comments, PIs, whitespace.
_DOCTYPE = re.compile(rb"^(?:\xef\xbb\xbf)?\s*+(?>(?><\?.*?\?>|<!--.*?-->)\s*+)*+<!DOCTYPE",
                      re.DOTALL)  # atomic groups: linear time on any input
_NO_DOCTYPE = Problem("/", "a DOCTYPE declaration is not allowed in cluster.conf (no DTDs or "
                           "entities): remove it")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, dtd_validation=False, remove_comments=True,
                           remove_pis=True, collect_ids=False)


def parse_xml(data: bytes, source: str = "cluster.conf") -> etree._Element:
    """Bytes -> canonical ``<cluster>`` tree (not yet validated); ConfigError if not XML."""
    with gc_paused():
        return _parse_xml(data, source)


def _parse_xml(data: bytes, source: str) -> etree._Element:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"cluster.conf data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise ConfigError([Problem("/", f"file is {len(data)} bytes, over the {MAX_BYTES}-byte "
                                        "limit (1 MiB): cluster.conf must be smaller")], source)
    if _DOCTYPE.match(data):
        raise ConfigError([_NO_DOCTYPE], source)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line, col = (exc.position if exc.position else (exc.lineno or 0, 0))
        msg = (exc.msg or str(exc)).strip()
        raise ConfigError([Problem(f"line {line}, column {col}",
                                   f"not well-formed XML: {msg}; fix the XML syntax")],
                          source) from None
    except (ValueError, etree.LxmlError) as exc:  # e.g. unsupported encoding declarations
        raise ConfigError([Problem("/", f"cannot parse the XML: {exc}")], source) from None
    if root is None:
        raise ConfigError([Problem("/", "the document is empty: expected <cluster>")], source)
    doctype = root.getroottree().docinfo.doctype
    if doctype:
        raise ConfigError([_NO_DOCTYPE], source)
    return canonical_tree(root)


class _PathSet:
    """Element paths that answer "is one of them at, above or below this path?" (as
    ``rng.is_under`` either way) in time linear in the path's length, not in their number."""

    def __init__(self, paths: set[str]) -> None:
        self._paths = paths
        self._sorted = sorted(paths)

    def near(self, where: str) -> bool:
        if not self._paths:
            return False
        if where in self._paths:
            return True
        slash = where.find("/", 1)
        while slash != -1:                   # above: a prefix of ``where`` ending at a "/"
            if where[:slash] in self._paths:
                return True
            slash = where.find("/", slash + 1)
        below = where + "/"                  # below: sorted, they follow ``where + "/"``
        i = bisect.bisect_left(self._sorted, below)
        return i < len(self._sorted) and self._sorted[i].startswith(below)


def _dedupe(root: etree._Element, precise: list[rng.RawProblem],
            schema_found: list[rng.RawProblem], path: ElementPaths) -> list[Problem]:
    """One message per cause, in document order.

    A generic schema message ("X failed to validate content") is dropped when a precise
    problem sits at, below or above X; a schema message about an element's own attribute
    values is dropped when a precise problem names the same element. Linear in the size
    of the tree and the number of problems (paths are named once, lookups are by set).
    """
    own_paths = {path(p.element) for p in precise}
    precise_paths = _PathSet(own_paths | {path(p.element) for p in schema_found
                                          if not p.generic})
    kept = list(precise)
    for raw in schema_found:
        where = path(raw.element)
        if raw.generic and precise_paths.near(where):
            continue
        if raw.local and where in own_paths:
            continue
        kept.append(raw)
    wanted = {p.element for p in kept}      # numbered: only the elements with a problem
    order = {el: i for i, el in enumerate(root.iter(etree.Element)) if el in wanted}
    kept.sort(key=lambda p: order.get(p.element, -1))
    out: dict[Problem, None] = {}            # insertion-ordered set
    for raw in kept:
        out.setdefault(Problem(path(raw.element), raw.reason))
    return list(out)


def problems_of(root: etree._Element,
                fence_agents: FenceAgents | None = None) -> tuple[Problem, ...]:
    """Every problem of a canonical tree: schema structure, RelaxNG, semantic rules, the
    resource tree and service definitions as the daemon builds them (``rmcheck``), and
    with ``fence_agents`` the fence device parameters against the agents' metadata."""
    return _checked(root, fence_agents, complete=False)[0]


def _checked(root: etree._Element, fence_agents: FenceAgents | None,
             complete: bool) -> tuple[tuple[Problem, ...], RmModel | None]:
    """``problems_of``, and with ``complete`` the typed ``<rm>`` built on the way (None
    when there is a problem): validation builds it anyway, so the model is that build,
    not a second one. ``complete=False`` (validate only) skips building tree nodes."""
    with gc_paused():
        return _checked_now(root, fence_agents, complete)


def _checked_now(root: etree._Element, fence_agents: FenceAgents | None,
                 complete: bool) -> tuple[tuple[Problem, ...], RmModel | None]:
    structural = rng.structure_problems(root)
    rm: RmModel | None = None
    if root.tag != "cluster":
        found = [Problem(element_path(p.element), p.reason) for p in structural]
    else:
        precise = structural + semantic_problems(root) + device_problems(root)
        paths = ElementPaths()                          # each element named once
        checked = check_rm(root, precise, complete, paths)  # resource tree, placement
        precise += checked.problems
        rm = checked.model
        if fence_agents is not None:
            precise += agent_problems(root, fence_agents)
        judged = frozenset(p.element for p in structural)
        found = _dedupe(root, precise, rng.schema_problems(root, judged), paths)
    secrets = secret_values(root)
    if secrets:
        found = redact_problems(found, secrets)
    return tuple(found), rm if not found else None


def warnings_of(root: etree._Element) -> tuple[Problem, ...]:
    """What a canonical tree is accepted with, as rgmanager accepted it with a warning (a
    resource referenced past its type's maxinstances: the extra reference is left out of
    the tree); secret values redacted. Not problems: the config still validates. (A
    parsed config carries its own: ``ClusterConf.tree_warnings``.)"""
    return rm_warnings(root)


def _modelled(root: etree._Element, source: str,
              fence_agents: FenceAgents | None) -> ClusterConf:
    """Validate a canonical tree and model it with the ``<rm>`` validation built."""
    found, rm = _checked(root, fence_agents, complete=True)
    if found:
        raise ConfigError(found, source)
    return ClusterConf.from_canonical(root, source, rm)


def build(root: etree._Element, source: str = "cluster.conf",
          fence_agents: FenceAgents | None = None) -> ClusterConf:
    """Canonicalize, validate and model a tree; ConfigError lists every problem."""
    return _modelled(canonical_tree(root), source, fence_agents)


def parse(data: bytes, source: str = "cluster.conf",
          fence_agents: FenceAgents | None = None) -> ClusterConf:
    """Parse and validate cluster.conf bytes; raises ConfigError listing ALL problems.
    The model carries ``<rm>`` typed (services, domains, resource tree, tree warnings),
    built once here: callers run this off the event loop, its consumers only read."""
    return _modelled(parse_xml(data, source), source, fence_agents)


def validate_bytes(data: bytes, source: str = "cluster.conf",
                   fence_agents: FenceAgents | None = None) -> tuple[Problem, ...]:
    """Every problem of ``data`` (empty when it validates); never raises ConfigError."""
    try:
        root = parse_xml(data, source)
    except ConfigError as exc:
        return exc.problems
    return problems_of(root, fence_agents)


def fence_agent_problems(conf: ClusterConf, fence_agents: FenceAgents) -> tuple[Problem, ...]:
    """The fence device parameters of a validated config against the agents' metadata
    (what ``parse(..., fence_agents=...)`` adds), secret values redacted; () when fine."""
    root = conf.root
    path = ElementPaths()
    found = [Problem(path(p.element), p.reason) for p in agent_problems(root, fence_agents)]
    secrets = secret_values(root)
    return tuple(redact_problems(found, secrets) if secrets else found)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read at most MAX_BYTES + 1 bytes (so an oversized file is refused, not slurped)."""
    with open(path, "rb") as fh:
        return fh.read(MAX_BYTES + 1)


def load(path: str | os.PathLike[str] = DEFAULT_PATH) -> ClusterConf:
    """Read, parse and validate a cluster.conf file (OSError if it cannot be read)."""
    source = os.fspath(path)
    conf = parse(read_bytes(path), source)
    logger.debug("loaded %s: cluster %s version %d sha256 %s", source, conf.name,
                 conf.version, conf.sha256[:12])
    return conf
