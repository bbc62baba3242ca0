"""The status document built from a cycle's inputs (pure) is what clustat renders."""

from __future__ import annotations

from clusterd.cli.clustat import render_text
from clusterd.node.status import Conflict, StatusInput, StatusNode, build_status

NODES = (StatusNode("n1", 1), StatusNode("n2", 2), StatusNode("n3", 3))


def status(**kw) -> dict:
    base = {"cluster_name": "alpha", "cluster_id": 3169, "config_version": 4, "config_sha256": "ab",
                "nodes": NODES, "local_nodeid": 2, "incarnation": 77, "epoch": 5,
                "members": frozenset({1, 2}), "coordinator": 1, "quorate": True, "votes": 2,
                "expected_votes": 3, "quorum": 2, "config_holders": 2, "state": "running"}
    base.update(kw)
    return build_status(StatusInput(**base))


def test_document_shape_follows_the_architecture_contract():
    doc = status()
    assert doc["cluster"] == {"name": "alpha", "id": 3169, "generation": 5, "config_version": 4,
                              "config_sha256": "ab", "config_holders": 2,
                              "config_conflict": None, "config_accepted": True,
                              "config_unaccepted": []}
    assert doc["quorum"] == {"quorate": True, "votes": 2, "expected_votes": 3, "quorum": 2}
    assert doc["local"] == {"name": "n2", "nodeid": 2, "incarnation": 77, "state": "running",
                            "pid": 0}
    assert doc["wire"] == {}
    assert doc["view"] == {"epoch": 5, "members": [1, 2], "coordinator": 1}
    assert [(n["name"], n["state"], n["local"]) for n in doc["nodes"]] == [
        ("n1", "online", False), ("n2", "online", True), ("n3", "offline", False)]


def test_conflict_is_reported():
    doc = status(conflict=Conflict("n3", 4, "ff"))
    assert doc["cluster"]["config_conflict"] == {"peer": "n3", "version": 4, "sha256": "ff"}


def test_clustat_renders_the_daemon_document():
    text, rc = render_text(status(), now=0, ctime=lambda t: "T")
    assert rc == 0
    assert f" {'n2':40} {2:4d} Online, Local, rgmanager\n" in text
    assert f" {'n3':40} {3:4d} Offline\n" in text
    assert "Member Status: Quorate\n" in text
