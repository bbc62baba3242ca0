"""Readable element paths for problems: ``/cluster/clusternodes/clusternode[@name='node2']``.

:func:`element_path` names one element; :class:`ElementPaths` names many elements of one
tree (every problem of a validation) in linear time: it numbers each parent's children
once instead of scanning the siblings again for every element.
"""

from __future__ import annotations

from lxml import etree

# Attributes that identify an element among its siblings, in order of preference.
_KEYS = ("name", "ref", "address")


def _quote(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def _tag(el: etree._Element) -> str:
    return el.tag if isinstance(el.tag, str) else "node()"


def _key_of(el: etree._Element) -> tuple[str, str] | None:
    for key in _KEYS:
        value = el.get(key)
        if value is not None:
            return key, value
    return None


def _step(el: etree._Element) -> str:
    tag = _tag(el)
    parent = el.getparent()
    named = _key_of(el)
    if named is not None:
        key, value = named
        step = f"{tag}[@{key}={_quote(value)}]"
        if parent is not None:
            same = [s for s in parent if s.tag == el.tag and s.get(key) == value]
            if len(same) > 1:
                step += f"[{same.index(el) + 1}]"
        return step
    if parent is not None:
        same = [s for s in parent if s.tag == el.tag]
        if len(same) > 1:
            return f"{tag}[{same.index(el) + 1}]"
    return tag


def _groups(el: etree._Element) -> list[tuple]:
    """The sibling groups ``el`` counts in: its tag, and its tag with each key it carries."""
    return [(el.tag,), *((el.tag, key, el.get(key)) for key in _KEYS
                         if el.get(key) is not None)]


def _child_steps(parent: etree._Element) -> dict[etree._Element, str]:
    """``_step`` of every child of ``parent``, from two passes over the children."""
    children = [(child, _groups(child)) for child in parent]
    size: dict[tuple, int] = {}
    for _child, groups in children:
        for group in groups:
            size[group] = size.get(group, 0) + 1
    seen: dict[tuple, int] = {}
    steps: dict[etree._Element, str] = {}
    for child, groups in children:
        for group in groups:
            seen[group] = seen.get(group, 0) + 1
        named = _key_of(child)
        mine = (child.tag,) if named is None else (child.tag, *named)
        step = _tag(child) if named is None else f"{_tag(child)}[@{named[0]}={_quote(named[1])}]"
        steps[child] = step + f"[{seen[mine]}]" if size[mine] > 1 else step
    return steps


def element_path(el: etree._Element | None) -> str:
    """Path of ``el`` from the root, naming elements by name/ref/address where they have one."""
    if el is None:
        return "/cluster"
    steps = [_step(el)]
    steps.extend(_step(anc) for anc in el.iterancestors())
    root = steps.pop()  # the root is always named by its tag only
    root_tag = root.split("[", 1)[0]
    return "/" + "/".join([root_tag, *reversed(steps)])


class ElementPaths:
    """``element_path`` for many elements of one tree: each parent's children are named
    once, and each path is built from its parent's (time linear in the tree's size)."""

    def __init__(self) -> None:
        self._steps: dict[etree._Element, str] = {}   # keeps the element proxies alive
        self._paths: dict[etree._Element, str] = {}

    def __call__(self, el: etree._Element | None) -> str:
        if el is None:
            return "/cluster"
        path = self._paths.get(el)
        if path is None:
            parent = el.getparent()
            if parent is None:
                path = "/" + _step(el).split("[", 1)[0]
            else:
                if el not in self._steps:
                    self._steps.update(_child_steps(parent))
                path = self(parent) + "/" + self._steps[el]
            self._paths[el] = path
        return path
