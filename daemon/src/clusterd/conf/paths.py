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


def _child_steps(parent: etree._Element) -> dict[etree._Element, str]:
    """``_step`` of every child of ``parent``, from two passes over the children: a
    child counts in the group of its tag and in the group of each key it carries, and
    is named by its first key's group (or its tag's), indexed when that group holds more
    than one child."""
    if len(parent) == 1:                    # an only child: its tag and key, no index
        child = parent[0]
        named = _key_of(child)
        tag = _tag(child)
        return {child: tag if named is None else f"{tag}[@{named[0]}={_quote(named[1])}]"}
    children = []
    size: dict[tuple, int] = {}
    for child in parent:
        tag = child.tag
        size[(tag,)] = size.get((tag,), 0) + 1
        keyed = [(tag, key, value) for key in _KEYS if (value := child.get(key)) is not None]
        for group in keyed:
            size[group] = size.get(group, 0) + 1
        children.append((child, tag, keyed, keyed[0] if keyed else (tag,)))
    # only groups that name a child and hold more than one need counting on the way
    counted = {mine for _child, _tag_, _keyed, mine in children if size[mine] > 1}
    seen: dict[tuple, int] = {}
    steps: dict[etree._Element, str] = {}
    for child, tag, keyed, mine in children:
        if counted:
            for group in ((tag,), *keyed):
                if group in counted:
                    seen[group] = seen.get(group, 0) + 1
        step = (_tag(child) if len(mine) == 1
                else f"{_tag(child)}[@{mine[1]}={_quote(mine[2])}]")
        steps[child] = f"{step}[{seen[mine]}]" if mine in counted else step
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
