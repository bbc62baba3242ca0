"""Nothing silently ignored: what clusterd does with each part of an RHCS cluster.conf.

The table (``conf/support_table.py``) classifies every element and attribute of the
schema as honoured (and by which module), accepted but not used (and what to use
instead), or a resource type to rewrite (no agent built in). From it:

* :func:`unused_report` lists each occurrence of something accepted but not used,
  "accepted but not used by clusterd: XPATH (what to use instead)": ccs_config_validate
  prints them as warnings and the daemon logs them when it loads a config
  (:func:`log_unused`);
* :func:`survey` adds what is honoured and what must be rewritten, for
  ``ccs_config_validate --migration`` (``cli/migration.py``);
* :func:`markdown_tables` renders the table for docs/rhcs-migration.md.

One pass over the tree, top-down: an ignored element covers everything inside it, and an
element the schema does not allow where it stands is left to validation (the same tag can
mean something else elsewhere: rgmanager 1.x's ``<group>`` in ``<resources>`` is not
groupd's ``<group>``). Time is linear in the size of the tree. Nothing here prints an
attribute's value: paths name elements by name/ref/address, as validation does, and the
rest is attribute names. Pure (lxml only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from clusterd.conf import rng
from clusterd.conf.model import ClusterConf
from clusterd.conf.paths import ElementPaths
from clusterd.conf.support_table import ATTRIBUTES, ELEMENTS, HONOURED, IGNORED, REWRITE

logger = logging.getLogger(__name__)

UNUSED = "accepted but not used by clusterd"
LOG_LIMIT = 50  # warning lines per load; ccs_config_validate lists every one


@dataclass(frozen=True)
class Unused:
    """One occurrence of an element or attribute clusterd accepts and does not use."""

    where: str      # element path, ``/@attr`` appended for an attribute
    instead: str    # what to use instead

    @property
    def reason(self) -> str:
        return f"{UNUSED}: {self.instead}"

    def __str__(self) -> str:
        return f"{UNUSED}: {self.where} ({self.instead})"


@dataclass(frozen=True)
class Rewrite:
    """One resource of a type with no agent built into clusterd."""

    where: str
    type: str
    instead: str


@dataclass(frozen=True)
class Honoured:
    """An element type clusterd uses: how often it occurs, which attributes are set."""

    element: str
    count: int
    attributes: tuple[str, ...]
    readers: str
    parameters: tuple[str, ...] = ()   # agent parameters (fence devices, <ocf>)


@dataclass(frozen=True)
class Survey:
    honoured: tuple[Honoured, ...]
    unused: tuple[Unused, ...]
    rewrite: tuple[Rewrite, ...]


def element_support(tag: str) -> tuple[str, str] | None:
    """``(status, detail)`` of an element, None when the schema does not define it."""
    return ELEMENTS.get(tag)


def attribute_support(tag: str, attribute: str) -> tuple[str, str] | None:
    """``(status, detail)`` of an attribute of ``tag`` (agent parameters included)."""
    attrs = ATTRIBUTES.get(tag, {})
    return attrs.get(attribute) or attrs.get("*")


def _elements(root: etree._Element) -> Iterator[tuple[etree._Element, tuple[str, str]]]:
    """Document order, without what is inside an ignored, unknown or misplaced element."""
    places = rng.rules()
    stack = [root]
    while stack:
        el = stack.pop()
        entry = ELEMENTS.get(el.tag)
        parent = el.getparent()
        if entry is None or (parent is not None and parent.tag in places
                             and el.tag not in places[parent.tag].children):
            continue                         # validation reports it
        yield el, entry
        if entry[0] != IGNORED:
            stack.extend(reversed([c for c in el if isinstance(c.tag, str)]))


def survey(root: etree._Element) -> Survey:
    """Everything honoured, accepted but not used, and to rewrite in ``root``."""
    path = ElementPaths()
    seen: dict[str, tuple[list[int], dict[str, None], dict[str, None], str]] = {}
    unused: list[Unused] = []
    rewrite: list[Rewrite] = []
    for el, (status, detail) in _elements(root):
        if status == IGNORED:
            unused.append(Unused(path(el), detail))
            continue
        if status == REWRITE:
            rewrite.append(Rewrite(path(el), el.tag, detail))
            continue
        count, attrs, params, _ = seen.setdefault(el.tag, ([0], {}, {}, detail))
        count[0] += 1
        listed = ATTRIBUTES.get(el.tag, {})
        for key in el.attrib:
            support = attribute_support(el.tag, key)
            if support is None:
                continue                     # validation reports it
            if support[0] == IGNORED:
                unused.append(Unused(f"{path(el)}/@{key}", support[1]))
            elif support[0] == HONOURED:
                (attrs if key in listed else params).setdefault(key, None)
    honoured = tuple(Honoured(tag, n[0], tuple(attrs), readers, tuple(params))
                     for tag, (n, attrs, params, readers) in seen.items())
    return Survey(honoured, tuple(unused), tuple(rewrite))


def unused_report(root: etree._Element) -> list[Unused]:
    """One entry per occurrence of something accepted but not used, in document order."""
    if root.tag != "cluster":
        return []
    return list(survey(root).unused)


def log_unused(node: str, conf: ClusterConf) -> int:
    """One WARNING per occurrence in a config just loaded or applied (at most LOG_LIMIT,
    then a count); returns how many there are. Walks a copy of the tree: run it in a
    thread from the event loop."""
    found = unused_report(conf.root)
    for item in found[:LOG_LIMIT]:
        logger.warning("node %s: config_version %d: %s", node, conf.version, item)
    if len(found) > LOG_LIMIT:
        logger.warning("node %s: config_version %d: %d more parts accepted but not used by "
                       "clusterd; ccs_config_validate -f %s lists them all", node,
                       conf.version, len(found) - LOG_LIMIT, conf.source)
    return len(found)


# ---------------------------------------------------------------------------- docs
def _cell(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|"))


_STATUS_WORDS = {HONOURED: "honoured", IGNORED: "accepted, not used",
                 REWRITE: "rewrite (no built-in agent)"}


def markdown_tables() -> str:
    """The table as Markdown: elements, then attributes accepted but not used."""
    lines = ["| Element | clusterd | Attributes honoured | Read by, or what to use instead |",
             "|---|---|---|---|"]
    for tag, (status, detail) in ELEMENTS.items():
        attrs = ATTRIBUTES.get(tag, {})
        names = [("(agent parameters)" if k == "*" else f"`{k}`") for k, (s, _) in attrs.items()
                 if s == HONOURED and status == HONOURED]
        lines.append(f"| `{tag}` | {_STATUS_WORDS[status]} | {', '.join(names) or '-'} | "
                     f"{_cell(detail)} |")
    lines += ["", "| Attribute | What to use instead |", "|---|---|"]
    for tag, attrs in ATTRIBUTES.items():
        if ELEMENTS[tag][0] != HONOURED:
            continue                          # covered by the element's row
        for key, (status, detail) in attrs.items():
            if status == IGNORED:
                lines.append(f"| `{tag}@{key}` | {_cell(detail)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_tables(), end="")
