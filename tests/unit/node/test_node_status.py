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
    assert doc["quorum"] == {"quorate": True, "votes": 2, "expected_votes": 3, "quorum": 2,
                             "two_node": False, "override": None}
    assert doc["local"] == {"name": "n2", "nodeid": 2, "incarnation": 77, "state": "running",
                            "pid": 0, "version": ""}
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


def test_nodes_carry_address_and_last_join_and_the_override_passes_through():
    override = {"expected_votes": 1, "configured": 3, "origin": "uid 0 on n2", "epoch": 5,
                "unconfirmed": ["n1"]}
    doc = status(nodes=(StatusNode("n1", 1, 1, "198.18.0.11"), StatusNode("n2", 2),
                        StatusNode("n3", 3)),
                 joined={1: (4, 1764104400.0), 2: (3, 1764104000.0)}, override=override,
                 two_node=True, version="0.1.0")
    n1, n2, n3 = doc["nodes"]
    assert (n1["address"], n1["joined"], n1["joined_view"]) == ("198.18.0.11", 1764104400.0, 4)
    assert (n2["address"], n2["joined_view"]) == ("", 3)
    assert (n3["joined"], n3["joined_view"]) == (None, 0)
    assert doc["quorum"]["override"] == override and doc["quorum"]["two_node"]
    assert doc["local"]["version"] == "0.1.0"
