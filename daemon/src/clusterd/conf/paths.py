"""Readable element paths for problems: ``/cluster/clusternodes/clusternode[@name='node2']``."""

from __future__ import annotations

from lxml import etree

# Attributes that identify an element among its siblings, in order of preference.
_KEYS = ("name", "ref", "address")


def _quote(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def _step(el: etree._Element) -> str:
    tag = el.tag if isinstance(el.tag, str) else "node()"
    parent = el.getparent()
    for key in _KEYS:
        value = el.get(key)
        if value is not None:
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


def element_path(el: etree._Element | None) -> str:
    """Path of ``el`` from the root, naming elements by name/ref/address where they have one."""
    if el is None:
        return "/cluster"
    steps = [_step(el)]
    steps.extend(_step(anc) for anc in el.iterancestors())
    root = steps.pop()  # the root is always named by its tag only
    root_tag = root.split("[", 1)[0]
    return "/" + "/".join([root_tag, *reversed(steps)])

