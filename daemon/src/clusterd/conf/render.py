"""Canonical serialization: the same content always yields the same bytes.

Rules:
- comments, processing instructions and a DOCTYPE are dropped (a DOCTYPE is refused by
  the parser anyway);
- text and tails that are only whitespace are insignificant and dropped; any other text
  (e.g. an rgmanager ``<event>`` script) is kept byte for byte;
- attributes: first the identity keys in this fixed order ``name, ref, address,
  config_version, nodeid, votes, agent`` (those present), then every other attribute
  sorted by name (Unicode code point order);
- element order is preserved (it matters for resource children and fence methods);
- two-space indentation, ``<?xml version="1.0"?>`` header, UTF-8, trailing newline.
"""

from __future__ import annotations

import copy as _copy
import hashlib

from lxml import etree

HEADER = b'<?xml version="1.0"?>\n'
ATTR_PRIORITY = ("name", "ref", "address", "config_version", "nodeid", "votes", "agent")
_PRIORITY_INDEX = {key: i for i, key in enumerate(ATTR_PRIORITY)}


def _item_key(item: tuple[str, str]) -> tuple[int, str]:
    return (_PRIORITY_INDEX.get(item[0], len(ATTR_PRIORITY)), item[0])


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def canonical_tree(root: etree._Element) -> etree._Element:
    """A canonical deep copy of ``root``: no comments/PIs, no blank text, attributes ordered."""
    copy = _copy.deepcopy(root)
    for node in list(copy.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity)):
        parent = node.getparent()
        if parent is None:
            continue
        # keep a significant tail: move it to the previous sibling or the parent's text
        if not _blank(node.tail):
            prev = node.getprevious()
            if prev is not None:
                prev.tail = (prev.tail or "") + node.tail
            else:
                parent.text = (parent.text or "") + node.tail
        parent.remove(node)
    for el in copy.iter(etree.Element):
        text, tail = el.text, el.tail
        if text is not None and not text.strip():
            el.text = None
        if tail is not None and not tail.strip():
            el.tail = None
        current = el.items()
        if len(current) < 2:
            continue                        # nothing to order
        items = sorted(current, key=_item_key)
        if current != items:
            el.attrib.clear()
            for key, value in items:
                el.set(key, value)
    return copy


def to_bytes(canonical: etree._Element) -> bytes:
    """Serialize a tree produced by ``canonical_tree`` (indentation added on a copy)."""
    copy = _copy.deepcopy(canonical)
    etree.indent(copy, space="  ")
    body = etree.tostring(copy, encoding="utf-8", xml_declaration=False)
    return HEADER + body + b"\n"


def canonical_bytes(root: etree._Element) -> bytes:
    return to_bytes(canonical_tree(root))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
