"""Text dumps in rg_test's format (pure): the resource list and the resource tree.

Formats from rgmanager ``reslist.c`` ``print_resource()`` and ``restree.c``
``_print_resource_tree()`` as the fixtures in rgmanager/src/daemons/tests show them
(testNNN.expected, delta-*.expected), quirks included: an inherited attribute that
resolves to nothing prints its indentation and no line end, which is why the fixtures
have ``      }`` after an ``ip`` block. rgmanager's own runner compared ignoring
whitespace; we reproduce the bytes exactly anyway.

Node flags printed in the tree: NEEDSTOP, NEEDSTART, INDEPENDENT, RECONFIG, NON-CRITICAL
(late rgmanager order). ENFORCE-TIMEOUTS is not printed: test012.expected dumps a node
with ``__enforce_timeouts="1"`` without it (the fixture predates that flag's printing).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from clusterd.resources.tree import Resource, ResourceNode, ResourceTree


class Flag(str, Enum):
    NEEDSTOP = "NEEDSTOP"
    NEEDSTART = "NEEDSTART"
    RECONFIG = "RECONFIG"


def _attr_flags(a) -> list[str]:
    out = []
    if a.spec.primary:
        out.append("primary")
    if a.spec.unique:
        out.append("unique")
    if a.spec.required:
        out.append("required")
    if a.spec.reconfig:
        out.append("reconfig")
    if a.inherited:
        out.append(f'inherit("{a.value}")')
    return out


def format_resource(res: Resource, refs: int, flags: frozenset[Flag] = frozenset()) -> str:
    head = f"Resource type: {res.type}"
    if res.inline:
        head += " [INLINE]"
    for f in (Flag.NEEDSTART, Flag.NEEDSTOP, Flag.RECONFIG):
        if f in flags:
            head += f" [{f.value}]"
    lines = [head]
    if res.rule.maxinstances:
        lines.append(f"Instances: {refs}/{res.rule.maxinstances}")
    lines.append(f"Agent: {res.rule.agent_name}")
    lines.append("Attributes:")
    if not res.attrs:
        lines.append("  - None -")
    for a in res.attrs:
        text = f"  {a.name}" if a.inherited else f"  {a.name} = {a.value}"
        fl = _attr_flags(a)
        lines.append(text + (f" [ {' '.join(fl)} ]" if fl else ""))
    return "\n".join(lines) + "\n\n"


def format_resources(tree: ResourceTree,
                     flags: Mapping[tuple[str, str], frozenset[Flag]] | None = None) -> str:
    flags = flags or {}
    return "".join(format_resource(r, tree.refs(r), flags.get(r.key, frozenset()))
                   for r in tree.resources)


def _node_flags(node: ResourceNode, extra: frozenset[Flag]) -> list[str]:
    out = []
    if Flag.NEEDSTOP in extra:
        out.append("NEEDSTOP")
    if Flag.NEEDSTART in extra:
        out.append("NEEDSTART")
    if node.independent and not node.non_critical:
        out.append("INDEPENDENT")
    if Flag.RECONFIG in extra:
        out.append("RECONFIG")
    if node.non_critical:
        out.append("NON-CRITICAL")
    return out


def _format_node(node: ResourceNode, level: int,
                 flags: Mapping[tuple[int, ...], frozenset[Flag]], out: list[str]) -> None:
    pad = "  " * level
    fl = _node_flags(node, flags.get(node.index, frozenset()))
    out.append(pad + node.type + (" [ " + "".join(f + " " for f in fl) + "]" if fl else "") + " {\n")
    inner = "  " * (level + 1)
    for name, value in node.attrs:
        out.append(inner if value is None else f'{inner}{name} = "{value}";\n')
    for child in node.children:
        _format_node(child, level + 1, flags, out)
    out.append(pad + "}\n")


def format_tree(tree: ResourceTree,
                flags: Mapping[tuple[int, ...], frozenset[Flag]] | None = None) -> str:
    out: list[str] = []
    for root in tree.roots:
        _format_node(root, 0, flags or {}, out)
    return "".join(out)


def format_test(tree: ResourceTree) -> str:
    """``rg_test test CONF`` without an operation: the list, then the tree."""
    out = ""
    if tree.resources:
        out += "=== Resources List ===\n" + format_resources(tree)
    if tree.roots:
        out += "=== Resource Tree ===\n" + format_tree(tree)
    return out
