# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Each module's run() with an injected fake cluster_admin (no patching)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.admin import (
    AdminClient,
    AdminError,
)
from ansible_collections.redhat.cluster.plugins.modules import (
    cluster_alert,
    cluster_conf,
    cluster_info,
    cluster_resource,
    cluster_service,
    failover_domain,
    fence_device,
    node,
    relocate,
    service_state,
)

STATUS = {
    "cluster": {"name": "alpha", "config_version": 3},
    "quorum": {"quorate": True, "votes": 2, "expected_votes": 2, "quorum": 2},
    "local": {"name": "node1", "nodeid": 1},
    "view": {"epoch": 4, "members": [1, 2], "coordinator": 1},
    "nodes": [{"name": "node1", "nodeid": 1, "state": "online", "local": True},
              {"name": "node2", "nodeid": 2, "state": "online", "standby": True}],
    "services": [{"name": "service:web", "state": "started", "owner": "node1", "flags": []}],
}


class FakeAdmin:
    """Answers cluster_admin requests from a table op -> reply; records every request."""

    def __init__(self, **replies):
        self.replies = replies
        self.requests = []

    def __call__(self, argv, data):
        req = json.loads(data)
        self.requests.append(req)
        reply = self.replies.get(req["op"], {"ok": True})
        if callable(reply):
            reply = reply(req)
        return 0, json.dumps(dict({"v": 1}, **reply)), ""

    def client(self):
        return AdminClient(self, "cluster_admin")

    def ops(self):
        return [r["op"] for r in self.requests]


def edited(changed=True):
    return {"edit": lambda req: {"ok": True, "changed": changed, "config_version": 4,
                                 "source": "file", "diff": {}}}


def test_cluster_conf_sends_set_cluster_without_unset_options():
    admin = FakeAdmin(**edited())
    params = {"name": "alpha", "nodes": [{"name": "n1", "nodeid": 1, "votes": None}],
              "two_node": None, "expected_votes": None, "token": 5000,
              "post_join_delay": None, "post_fail_delay": 0, "clean_start": None,
              "state": "present"}
    result = cluster_conf.run(admin.client(), params, check_mode=True)
    assert result["changed"] and result["config_version"] == 4
    assert admin.requests == [{"v": 1, "op": "edit", "edit": "set_cluster", "check": True,
                               "args": {"name": "alpha", "nodes": [{"name": "n1", "nodeid": 1}],
                                        "token": 5000, "post_fail_delay": 0}}]


QUORUM_DISK = {"state": "present", "device": "/dev/sdq", "label": "pair", "votes": 1,
               "interval": None, "tko": 4, "min_score": None, "master_wins": None,
               "heuristics": [{"program": "/usr/local/sbin/qd-check", "score": None,
                               "interval": 2, "tko": None}]}


def test_cluster_conf_sends_the_quorum_disk_without_unset_suboptions():
    admin = FakeAdmin(**edited())
    params = {"name": "pair", "nodes": None, "two_node": False, "expected_votes": 3,
              "token": None, "post_join_delay": None, "post_fail_delay": None,
              "clean_start": None, "quorum_disk": QUORUM_DISK, "state": "present"}
    cluster_conf.run(admin.client(), params, check_mode=False)
    assert admin.requests[0]["args"] == {
        "name": "pair", "two_node": False, "expected_votes": 3,
        "quorum_disk": {"state": "present", "device": "/dev/sdq", "label": "pair", "votes": 1,
                        "tko": 4, "heuristics": [{"program": "/usr/local/sbin/qd-check",
                                                  "interval": 2}]}}


def test_cluster_conf_quorum_disk_absent_sends_only_the_state():
    admin = FakeAdmin(**edited(False))
    params = {"name": "pair", "quorum_disk": dict(QUORUM_DISK, state="absent")}
    assert cluster_conf.run(admin.client(), params, check_mode=True)["changed"] is False
    assert admin.requests[0]["args"] == {"name": "pair", "quorum_disk": {"state": "absent"}}


def test_cluster_alert_sends_the_set_alert_edit():
    admin = FakeAdmin(**edited())
    params = {"name": "hook", "program": "/usr/libexec/clusterd/alerts/alert_webhook",
              "recipient": "http://198.18.0.5/hook", "timeout": 10,
              "events": ["fence", "service"], "state": "present"}
    assert cluster_alert.run(admin.client(), params, check_mode=True)["changed"] is True
    req = admin.requests[0]
    assert (req["op"], req["edit"], req["check"]) == ("edit", "set_alert", True)
    assert req["args"] == {"name": "hook", "program": params["program"],
                           "recipient": params["recipient"], "timeout": 10,
                           "events": ["fence", "service"], "state": "present"}
    admin = FakeAdmin(**edited(False))
    absent = dict(params, state="absent", program=None)
    assert cluster_alert.run(admin.client(), absent, False)["changed"] is False
    assert admin.requests[0]["args"] == {"name": "hook", "state": "absent"}


def test_failover_domain_absent_sends_only_name_and_state():
    admin = FakeAdmin(**edited(False))
    params = {"name": "d", "members": None, "ordered": False, "restricted": False,
              "nofailback": False, "state": "absent"}
    assert failover_domain.run(admin.client(), params, False)["changed"] is False
    assert admin.requests[0]["args"] == {"name": "d", "state": "absent"}


def test_cluster_service_builds_attrs():
    admin = FakeAdmin(**edited())
    params = {"name": "web", "state": "present", "domain": "d", "recovery": "relocate",
              "autostart": True, "exclusive": None, "max_restarts": None,
              "restart_expire_time": None, "depend": None, "attrs": {},
              "resources": [{"type": "ip", "attrs": {"address": "198.18.0.100/24"}}]}
    cluster_service.run(admin.client(), params, False)
    assert admin.requests[0]["edit"] == "set_service"
    assert admin.requests[0]["args"] == {
        "name": "web", "state": "present", "resources": params["resources"],
        "attrs": {"domain": "d", "recovery": "relocate", "autostart": "1"}}


def test_cluster_resource_merges_secret_attrs():
    admin = FakeAdmin(**edited())
    params = {"type": "ocf", "attrs": {"name": "db", "agent": "heartbeat:pgsql"},
              "secret_attrs": {"password": "pw"}, "state": "present"}
    cluster_resource.run(admin.client(), params, False)
    assert admin.requests[0]["args"]["attrs"] == {"name": "db", "agent": "heartbeat:pgsql",
                                                  "password": "pw"}


def fence_params(**over):
    params = {"name": None, "agent": None, "params": {}, "secret_params": {},
              "state": "present", "node": None, "methods": None, "unfence": None,
              "verify": False, "nodes": None, "fail_on_missing": True}
    params.update(over)
    return params


def test_fence_device_merges_secret_params():
    admin = FakeAdmin(**edited())
    params = fence_params(name="ipmi1", agent="fence_ipmilan", params={"ipaddr": "198.18.1.1"},
                          secret_params={"passwd": "pw"})
    fence_device.run(admin.client(), params, True)
    assert admin.requests[0]["args"] == {"name": "ipmi1", "agent": "fence_ipmilan",
                                         "state": "present",
                                         "params": {"ipaddr": "198.18.1.1", "passwd": "pw"}}


@pytest.mark.parametrize("check", [True, False])
def test_fence_device_passes_agent_parameters_through_in_check_mode_too(check):
    admin = FakeAdmin(**edited())
    params = {"ipaddr": "198.18.1.1", "power_wait": 0, "method": "onoff", "ipport": 623,
              "lanplus": True, "privlvl": "operator", "power_timeout": "20"}
    fence_device.run(admin.client(), fence_params(name="ipmi1", agent="fence_ipmilan",
                                                  params=params), check)
    methods = [{"name": "ipmi", "devices": [{"name": "ipmi1", "params": {"power_wait": "0"}}]}]
    fence_device.run(admin.client(), fence_params(node="node1", methods=methods), check)
    device, node = admin.requests
    assert device["check"] is check and device["args"]["params"] == params
    assert node["check"] is check and node["args"]["methods"] == methods


def test_fence_device_node_methods():
    admin = FakeAdmin(**edited())
    methods = [{"name": "ipmi", "devices": [{"name": "ipmi1"}]}]
    fence_device.run(admin.client(), fence_params(node="node1", methods=methods), False)
    assert admin.requests[0]["edit"] == "set_node_fence"
    assert admin.requests[0]["args"] == {"node": "node1", "methods": methods}


def test_fence_device_verify_lists_nodes_without_fence_path():
    paths = [{"node": "node1", "ok": True, "method": "ipmi"},
             {"node": "node2", "ok": False, "error": "fence_ipmilan status failed (rc=1)"}]
    admin = FakeAdmin(**{"fence.verify": {"ok": True, "result": {"nodes": paths}}})
    result = fence_device.run(admin.client(), fence_params(verify=True), False)
    assert result == {"changed": False, "fence_verify": paths,
                      "unfenceable_nodes": ["node2"]}
    assert admin.requests[0] == {"v": 1, "op": "fence.verify"}
    assert fence_device.unfenceable_message(result) == (
        "no working fence path for node(s) node2 (node2: fence_ipmilan status failed (rc=1)); "
        "fix the fence devices or BMCs before relying on failover")


def test_service_state_does_nothing_when_already_there():
    admin = FakeAdmin(status={"ok": True, "status": STATUS})
    params = {"name": "web", "state": "enabled", "member": None, "timeout": 60}
    result = service_state.run(admin.client(), params, False)
    assert result["changed"] is False and result["reason"] == "service is started on node1"
    assert admin.ops() == ["status"]


def test_service_state_check_mode_predicts_and_does_not_act():
    admin = FakeAdmin(status={"ok": True, "status": STATUS})
    params = {"name": "web", "state": "disabled", "member": None, "timeout": 60}
    assert service_state.run(admin.client(), params, True)["changed"] is True
    assert admin.ops() == ["status"]


def test_service_state_acts_and_reports_not_supported():
    admin = FakeAdmin(status={"ok": True, "status": STATUS},
                      service={"ok": False, "error": {
                          "code": "not_supported",
                          "message": "clusterd on this node does not support 'svc.freeze' yet"}})
    params = {"name": "web", "state": "frozen", "member": None, "timeout": 60}
    with pytest.raises(AdminError, match="does not support 'svc.freeze' yet"):
        service_state.run(admin.client(), params, False)
    assert admin.requests[1] == {"v": 1, "op": "service", "action": "freeze",
                                 "service": "web", "member": None, "timeout": 60}


def test_service_state_enables_per_domain_rules_when_asked():
    stopped = dict(STATUS, services=[{"name": "service:web", "state": "stopped", "owner": None,
                                      "flags": []}])
    admin = FakeAdmin(status={"ok": True, "status": stopped},
                      service={"ok": True, "result": {"owner": "node2", "state": "started"}})
    params = {"name": "web", "state": "enabled", "member": None, "timeout": 60,
              "follow_domain": True}
    assert service_state.refusal(params) is None
    assert service_state.run(admin.client(), params, False)["changed"] is True
    assert admin.requests[1] == {"v": 1, "op": "service", "action": "enable", "service": "web",
                                 "member": None, "timeout": 60, "follow_domain": True}


@pytest.mark.parametrize("over", [{"state": "disabled"}, {"member": "node2"}])
def test_service_state_follow_domain_goes_with_enable_alone(over):
    params = {"name": "db", "state": "enabled", "member": None, "timeout": 60,
              "follow_domain": True, **over}
    assert service_state.refusal(params) == (
        "follow_domain is only valid with state=enabled and without member (the domain picks "
        "the node)")


def test_service_state_unknown_service():
    admin = FakeAdmin(status={"ok": True, "status": STATUS})
    params = {"name": "nope", "state": "enabled", "member": None, "timeout": 60}
    with pytest.raises(AdminError) as info:
        service_state.run(admin.client(), params, False)
    assert info.value.code == "unknown_service"


def test_relocate_returns_previous_and_new_owner():
    admin = FakeAdmin(status={"ok": True, "status": STATUS},
                      service={"ok": True, "result": {"owner": "node2", "state": "started"}})
    params = {"name": "web", "member": "node2", "timeout": 120}
    result = relocate.run(admin.client(), params, False)
    assert (result["changed"], result["previous_owner"], result["owner"]) == \
        (True, "node1", "node2")
    assert admin.requests[1]["action"] == "relocate"


def test_relocate_fails_when_the_service_does_not_end_on_the_requested_member():
    admin = FakeAdmin(status={"ok": True, "status": STATUS},
                      service={"ok": True, "result": {"owner": "node1", "state": "started"}})
    params = {"name": "web", "member": "node2", "timeout": 120}
    with pytest.raises(AdminError) as info:
        relocate.run(admin.client(), params, False)
    assert info.value.code == "not_relocated"
    assert str(info.value).endswith("web runs on node1 (started), not on the requested node2")


def test_relocate_to_current_owner_is_a_no_op():
    admin = FakeAdmin(status={"ok": True, "status": STATUS})
    result = relocate.run(admin.client(), {"name": "web", "member": "node1", "timeout": 1}, False)
    assert result["changed"] is False and admin.ops() == ["status"]


@pytest.mark.parametrize(("name", "state", "changed", "ops"), [
    (None, "standby", True, ["status", "node"]),      # local node1 is active
    ("node2", "standby", False, ["status"]),
    ("node2", "active", True, ["status", "node"]),
])
def test_node(name, state, changed, ops):
    admin = FakeAdmin(status={"ok": True, "status": STATUS}, node={"ok": True, "result": {}})
    result = node.run(admin.client(), {"name": name, "state": state}, False)
    assert result["changed"] is changed and admin.ops() == ops
    if "node" in ops:
        assert admin.requests[1]["node"] == (name or "node1")


def test_cluster_info_from_daemon():
    export = {"cluster": {"name": "alpha", "nodes": []}, "services": [
        {"name": "web", "attrs": {}, "resources": [], "state": "present"}]}
    admin = FakeAdmin(export={"ok": True, "source": "daemon", "config_version": 3,
                              "export": export, "status": STATUS})
    info = cluster_info.run(admin.client(), {"include_secrets": False})["cluster_info"]
    assert info["source"] == "daemon" and info["quorate"] and info["current"]
    assert info["export"]["services"][0]["name"] == "web"
    assert [c["candidate"] for c in info["candidates"]["service:web"]] == [True, False]
    assert admin.requests[0] == {"v": 1, "op": "export", "secrets": False}


def test_cluster_info_from_file_has_no_status():
    admin = FakeAdmin(export={"ok": True, "source": "file", "config_version": 1,
                              "export": {"cluster": {"name": "alpha"}}, "status": None})
    info = cluster_info.run(admin.client(), {"include_secrets": True})["cluster_info"]
    assert info["cluster_name"] == "alpha" and info["quorate"] is False
    assert info["candidates"] == {} and info["members"] == []
