"""The nodes install clusterd with ``pip --no-index`` from the wheelhouse the controller
builds with ``pip wheel --constraint requirements.txt``: every dependency the daemon
declares (cryptography for the wire, lxml) must have an exact pin there, or the
wheelhouse would ship whatever version the index offers that day."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "roles" / "cluster_node" / "tasks"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_daemon_dependency_is_pinned_exactly() -> None:
    declared = tomllib.loads((REPO / "daemon" / "pyproject.toml").read_text())
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[_name(name)] = version.strip()
    wanted = [_name(r) for r in declared["project"]["dependencies"]]
    assert "cryptography" in wanted
    assert {n: pins.get(n) for n in wanted if n not in pins} == {}


def test_the_wheelhouse_is_built_with_the_pins_and_installed_without_an_index() -> None:
    build = yaml.safe_load((TASKS / "wheelhouse.yml").read_text())
    install = yaml.safe_load((TASKS / "install.yml").read_text())
    wheel = next(t for t in build if "Build the wheelhouse" in t["name"])
    assert "--constraint {{ cluster_node_requirements | quote }}" in wheel[
        "ansible.builtin.shell"]["cmd"]
    pip = next(t for t in install if "Install clusterd" in t["name"])
    assert "--no-index" in pip["ansible.builtin.command"]["cmd"]
