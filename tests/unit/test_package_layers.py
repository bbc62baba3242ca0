"""The daemon's packages stay layered: read from their imports (``ast``, nothing imported).

* membership and configsync are two sans-IO cores side by side: they share the events
  of ``clusterd.events``, and only ``membership.host`` (the composition) imports
  configsync, never the reverse, so neither core needs the other to be understood or
  tested.
* Only ``node/`` (the asyncio wiring) knows the node: a part elsewhere that needs a
  piece of it is handed that piece, not given a ``TYPE_CHECKING`` back-reference.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import clusterd

SOURCE = Path(clusterd.__file__).parent


@dataclass(frozen=True)
class Import:
    module: str           # the importing module, e.g. clusterd.membership.host
    target: str           # the imported module, e.g. clusterd.configsync.core
    type_checking: bool   # under ``if TYPE_CHECKING:``


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: resolved against the importing package
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[:len(package) - node.level + 1]
        stem = ".".join(base + ([node.module] if node.module else []))
    else:
        stem = node.module or ""
    # ``from clusterd import events`` imports the module clusterd.events
    return [stem] + [f"{stem}.{alias.name}" for alias in node.names]


def _imports() -> list[Import]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        guarded = {id(inner) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for stmt in node.body for inner in ast.walk(stmt)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, module, path.name == "__init__.py"):
                    if target.startswith("clusterd."):
                        found.append(Import(module, target, id(node) in guarded))
    return found


IMPORTS = _imports()


def _package(module: str) -> str:
    """clusterd.membership.host -> membership; clusterd.events -> events."""
    return module.split(".")[1]


def _edges(src: str, dest: str) -> list[str]:
    return sorted({f"{i.module} -> {i.target}" for i in IMPORTS
                   if _package(i.module) == src and _package(i.target) == dest})


def test_the_scan_sees_the_imports_it_checks() -> None:
    assert _edges("membership", "events") and _edges("configsync", "events")
    assert "clusterd.membership.host -> clusterd.configsync.core" in _edges("membership",
                                                                          "configsync")


def test_membership_and_configsync_do_not_import_each_other_both_ways() -> None:
    down, up = _edges("membership", "configsync"), _edges("configsync", "membership")
    assert not (down and up), f"a package cycle: {down} and {up}"
    assert not up, f"configsync must not depend on membership: {up}"


def test_only_node_names_the_node_even_for_type_checking() -> None:
    back_references = sorted(f"{i.module} -> {i.target}" for i in IMPORTS
                             if i.type_checking and _package(i.target) == "node"
                             and _package(i.module) != "node")
    assert back_references == []
