# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.status import (
    StatusError,
    candidates,
    find_node,
    find_service,
    node_needs,
    relocate_needs,
    service_needs,
    summarize,
)


def svc(state, owner=None, flags=()):
    return {"name": "service:web", "state": state, "owner": owner, "flags": list(flags)}


def node(name, state="online", **extra):
    return dict({"name": name, "nodeid": int(name[-1]), "state": state}, **extra)


STATUS = {
    "cluster": {"name": "alpha", "config_version": 3},
    "quorum": {"quorate": True, "votes": 3, "expected_votes": 3, "quorum": 2},
    "local": {"name": "node1", "nodeid": 1},
    "view": {"epoch": 7, "members": [1, 2, 3], "coordinator": 1},
    "nodes": [node("node1", local=True), node("node2"), node("node3"), node("node4", "offline")],
    "services": [svc("started", "node1"),
                 {"name": "service:db", "state": "started", "owner": "node2", "flags": []}],
}


@pytest.mark.parametrize(("state", "current", "member", "act"), [
    ("enabled", svc("started", "node1"), None, False),
    ("enabled", svc("starting", "node1"), "node1", False),
    ("enabled", svc("started", "node1"), "node2", True),
    ("enabled", svc("stopped"), None, True),
    ("enabled", svc("failed"), None, True),
    ("disabled", svc("disabled"), None, False),
    ("disabled", svc("started", "node1"), None, True),
    ("stopped", svc("stopped"), None, False),
    ("stopped", svc("disabled"), None, False),
    ("stopped", svc("started", "node1"), None, True),
    ("frozen", svc("started", "node1", ["frozen"]), None, False),
    ("frozen", svc("started", "node1"), None, True),
    ("unfrozen", svc("started", "node1"), None, False),
    ("unfrozen", svc("started", "node1", ["frozen"]), None, True),
    ("restarted", svc("started", "node1"), None, True),
])
def test_service_needs(state, current, member, act):
    got, reason = service_needs(state, current, member)
    assert got is act and reason


@pytest.mark.parametrize(("current", "member", "act", "reason"), [
    (svc("started", "node2"), "node2", False, "service already runs on node2"),
    (svc("started", "node1"), "node2", True, "service is started on node1, wanted on node2"),
    (svc("started", "node1"), None, True, "relocate to the best member requested (always acts)"),
    (svc("stopped", "node2"), "node2", True, "service is stopped on node2, wanted on node2"),
])
def test_relocate_needs(current, member, act, reason):
    assert relocate_needs(current, member) == (act, reason)


@pytest.mark.parametrize(("state", "entry", "act"), [
    ("standby", node("node1"), True),
    ("standby", node("node1", standby=True), False),
    ("standby", node("node1", flags=["standby"]), False),
    ("active", node("node1", standby=True), True),
    ("active", node("node1"), False),
])
def test_node_needs(state, entry, act):
    assert node_needs(state, entry)[0] is act


def test_lookups_name_what_is_known():
    assert find_service(STATUS, "web")["owner"] == "node1"
    assert find_service(STATUS, "service:db")["owner"] == "node2"
    with pytest.raises(StatusError, match=r"^service nope is not configured in the cluster "
                                          r"\(known: service:db, service:web\)$"):
        find_service(STATUS, "nope")
    with pytest.raises(StatusError, match="node node9 is not a cluster member"):
        find_node(STATUS, "node9")


def test_summarize():
    info = summarize(STATUS)
    assert info["quorate"] and info["current"] and info["config_version"] == 3
    assert info["local_node"] == "node1" and len(info["members"]) == 4
    assert summarize({})["quorate"] is False and summarize({})["current"] is False


def test_candidates_explain_domain_and_exclusive_rules():
    options = {
        "failover_domains": [{"name": "web_nodes", "ordered": True, "restricted": True,
                              "members": [{"name": "node1", "priority": 1},
                                          {"name": "node2", "priority": 2}]}],
        "services": [{"name": "web", "domain": "web_nodes"},
                     {"name": "db", "exclusive": True}],
    }
    got = candidates(options, STATUS)
    assert got["service:web"] == [
        {"node": "node1", "candidate": True,
         "reason": "member of ordered domain web_nodes, priority 1"},
        {"node": "node2", "candidate": False,
         "reason": "the node runs exclusive service service:db"},
        {"node": "node3", "candidate": False,
         "reason": "not a member of restricted domain web_nodes"},
        {"node": "node4", "candidate": False, "reason": "node is offline"},
    ]
    assert got["service:db"][0] == {
        "node": "node1", "candidate": False,
        "reason": "service:db is exclusive and the node runs service:web"}
    assert got["service:db"][2] == {"node": "node3", "candidate": True,
                                    "reason": "no failover domain: any online member"}
