"""The pure parts of the demo/benchmark tooling: outage arithmetic of the HTTP probe and the
lab inventory script molecule links next to its own inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from clusterlab.demo import Answer, longest_outage

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "molecule" / "shared" / "lab_inventory.py"


def answers(*rows: tuple[float, bool]) -> list[Answer]:
    return [Answer(t, ok, "node1" if ok else "URLError") for t, ok in rows]


@pytest.mark.parametrize(("rows", "expected"), [
    ([], 0.0),
    ([(0.0, True), (0.02, True)], 0.0),
    ([(0.0, True), (0.02, False), (0.5, False), (1.25, True)], 1.25),
    ([(0.0, True), (0.1, False), (0.3, True), (1.0, False), (1.9, True)], 1.6),
    ([(0.0, False), (0.2, True)], 0.0),          # failures before the first answer
    ([(0.0, True), (0.2, False)], 0.0),          # still failing at the end: not an outage yet
])
def test_longest_outage(rows: list[tuple[float, bool]], expected: float) -> None:
    assert longest_outage(answers(*rows)) == pytest.approx(expected)


def run_script(tmp_path: Path, data: object | None) -> dict:
    path = tmp_path / "inventory.yml"
    if data is not None:
        path.write_text(yaml.safe_dump(data))
    done = subprocess.run([sys.executable, str(SCRIPT), "--list"], capture_output=True,
                          text=True, check=True, env=dict(os.environ, RHC_LAB_INVENTORY=str(path)))
    return json.loads(done.stdout)


def test_lab_inventory_script_keeps_groups_hosts_and_vars(tmp_path: Path) -> None:
    out = run_script(tmp_path, {"all": {"vars": {"cluster_lab_prefix": "rhc"}, "children": {
        "cluster": {"hosts": {"node1": {"ansible_host": "198.18.0.11", "cluster_lab_index": 1},
                              "node2": {"ansible_host": "198.18.0.12", "cluster_lab_index": 2}},
                    "vars": {"ansible_user": "root"}}}}})
    assert out["cluster"] == {"hosts": ["node1", "node2"], "vars": {"ansible_user": "root"},
                              "children": []}
    assert out["all"]["children"] == ["cluster"]
    assert out["all"]["vars"] == {"cluster_lab_prefix": "rhc"}
    assert out["_meta"]["hostvars"]["node2"] == {"ansible_host": "198.18.0.12",
                                                 "cluster_lab_index": 2}


def test_lab_inventory_script_is_empty_without_a_lab(tmp_path: Path) -> None:
    assert run_script(tmp_path, None) == {"_meta": {"hostvars": {}}}


def test_lab_inventory_script_follows_the_lab_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    monkeypatch.delenv("RHC_LAB_INVENTORY", raising=False)
    monkeypatch.setenv("RHC_LAB_PREFIX", "rhcy")
    spec = importlib.util.spec_from_file_location("lab_inventory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PATH == Path("/run/rhcy-lab/inventory.yml")


def test_cluster_lab_up_takes_its_subnet_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from clusterlab.cli import build_parser
    assert build_parser().parse_args(["up"]).subnet == "198.18.0.0/24"
    monkeypatch.setenv("RHC_LAB_SUBNET", "198.18.20.0/24")
    assert build_parser().parse_args(["up"]).subnet == "198.18.20.0/24"
    assert build_parser().parse_args(["up", "--subnet", "198.18.3.0/24"]).subnet == "198.18.3.0/24"
