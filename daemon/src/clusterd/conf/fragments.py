"""Plain-dict fragments (what an Ansible module passes) to cluster.conf elements.

Helpers of conf/edit.py: type-checked conversion of values, lookup-or-create of sections
in the schema's outline order, and "set unless already equal" for idempotent edits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree

from clusterd.errors import ConfigError, Problem

# Order of <cluster> children in cluster.rng's outline; new sections are placed by it.
OUTLINE = ("cman", "totem", "quorumd", "fence_daemon", "fence_xvmd", "dlm", "gfs_controld",
           "group", "logging", "clusternodes", "fencedevices", "rm", "clvmd")
STATES = ("present", "absent")
# set_cluster's quorum_disk: the <quorumd> attributes clusterd uses, and its <heuristic>s'
QUORUM_DISK_KEYS = ("device", "label", "votes", "interval", "tko", "min_score", "master_wins")
HEURISTIC_KEYS = ("program", "score", "interval", "tko")
TAG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def bad(where: str, reason: str) -> ConfigError:
    return ConfigError([Problem(where, reason)], "desired state")


def as_text(where: str, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, str)):
        return str(value)
    raise bad(where, f"{key}: expected a string, integer or boolean, got "
                      f"{type(value).__name__}")


def fields(where: str, item: Any, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise bad(where, f"expected a mapping with keys {sorted(allowed)}, got "
                          f"{type(item).__name__}")
    unknown = set(item) - allowed
    if unknown:
        raise bad(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = {k for k in required if item.get(k) in (None, "")}
    if missing:
        raise bad(where, f"missing required key(s) {sorted(missing)}")
    return item


def as_list(where: str, value: Any) -> Sequence[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise bad(where, f"expected a list, got {type(value).__name__}")
    return value


def check_state(where: str, state: str) -> str:
    if state not in STATES:
        raise bad(where, f"state={state!r} is not valid; use 'present' or 'absent'")
    return state


def ensure_section(root: etree._Element, tag: str) -> etree._Element:
    """The top-level ``tag`` element, created at its outline position if missing."""
    el = root.find(tag)
    if el is not None:
        return el
    el = etree.Element(tag)
    rank = OUTLINE.index(tag) if tag in OUTLINE else len(OUTLINE)
    for i, sibling in enumerate(root):
        if sibling.tag in OUTLINE and OUTLINE.index(sibling.tag) > rank:
            root.insert(i, el)
            return el
    root.append(el)
    return el


def ensure_child(parent: etree._Element, tag: str, first: bool = False) -> etree._Element:
    el = parent.find(tag)
    if el is None:
        el = etree.Element(tag)
        if first:
            parent.insert(0, el)
        else:
            parent.append(el)
    return el


def set_section_attr(root: etree._Element, tag: str, key: str, value: Any, default: Any) -> None:
    """Like set_attr on a top-level section, creating the section only if needed."""
    if value is None:
        return
    el = root.find(tag)
    if el is None:
        if default is not None and as_text(tag, key, value) == as_text(tag, key, default):
            return
        el = ensure_section(root, tag)
    set_attr(el, key, value, default)


def set_attr(el: etree._Element, key: str, value: Any, default: Any = None) -> None:
    """Set ``key`` unless it already has this value (explicitly or as the default)."""
    if value is None:
        return
    text = as_text(el.tag, key, value)
    current = el.get(key)
    if current == text or (current is None and default is not None
                           and text == as_text(el.tag, key, default)):
        return
    el.set(key, text)


def set_attrs(where: str, el: etree._Element, attrs: Any) -> None:
    if not isinstance(attrs, Mapping):
        raise bad(where, f"attrs: expected a mapping, got {type(attrs).__name__}")
    for key, value in attrs.items():
        if not isinstance(key, str) or not TAG_NAME.match(key):
            raise bad(where, f"attribute name {key!r} is not valid")
        if value is not None:
            el.set(key, as_text(where, key, value))


def replace_or_add(parent: etree._Element, old: etree._Element | None, new: etree._Element,
             after: str | None = None) -> None:
    if old is not None:
        parent.replace(old, new)
        return
    last = parent.findall(after) if after else []
    if last:
        last[-1].addnext(new)
    else:
        parent.append(new)


MAX_TREE_DEPTH = 64


def resource_element(where: str, item: Any, depth: int = 0) -> etree._Element:
    """``{type, ref?, attrs?, children?}`` -> a resource element (recursively)."""
    if depth >= MAX_TREE_DEPTH:
        raise bad(where, f"resource tree deeper than {MAX_TREE_DEPTH} levels")
    res = fields(where, item, {"type", "ref", "attrs", "children"}, {"type"})
    tag = res["type"]
    if not isinstance(tag, str) or not TAG_NAME.match(tag):
        raise bad(where, f"type={tag!r} is not a resource type name")
    el = etree.Element(tag)
    if res.get("ref") is not None:
        el.set("ref", as_text(where, "ref", res["ref"]))
    set_attrs(where, el, res.get("attrs") or {})
    for i, child in enumerate(as_list(f"{where}.children", res.get("children") or [])):
        el.append(resource_element(f"{where}.children[{i}]", child, depth + 1))
    return el


def add_devices(where: str, parent: etree._Element, devices: Any) -> None:
    for i, item in enumerate(as_list(where, devices)):
        dev = fields(f"{where}[{i}]", item, {"name", "params"}, {"name"})
        el = etree.SubElement(parent, "device", name=as_text(where, "name", dev["name"]))
        set_attrs(f"{where}[{i}]", el, dev.get("params") or {})
