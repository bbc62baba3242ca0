# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.admin import (
    MSG_NOT_INSTALLED,
    AdminClient,
    AdminError,
    admin_client,
    drop_none,
    run_edit,
)

EDIT_OK = {"v": 1, "ok": True, "changed": True, "config_version": 4, "source": "daemon",
           "diff": {"before": "a", "after": "b", "before_header": "cluster.conf (version 3)",
                    "after_header": "cluster.conf (version 4)"}}
INVALID = {"v": 1, "ok": False, "error": {
    "code": "invalid", "message": "cluster.conf is invalid: /cluster/clusternodes/"
    "clusternode[@name='node2']: duplicate nodeid 1",
    "problems": [{"where": "/cluster/clusternodes/clusternode[@name='node2']",
                  "reason": "duplicate nodeid 1"}]}}


class Runner:
    """A fake runner: records (argv, data) and answers one canned (rc, stdout, stderr)."""

    def __init__(self, rc=0, out="", err=""):
        self.answer = (rc, out, err)
        self.calls = []

    def __call__(self, argv, data):
        self.calls.append((list(argv), data))
        return self.answer


def test_request_goes_on_stdin_and_reply_is_returned():
    runner = Runner(out=json.dumps(EDIT_OK))
    reply = AdminClient(runner, "/usr/sbin/cluster_admin").request(
        "edit", edit="set_fence_device", args={"params": {"passwd": "pw"}}, check=True)
    assert reply["config_version"] == 4
    argv, data = runner.calls[0]
    assert argv == ["/usr/sbin/cluster_admin"]
    assert json.loads(data) == {"v": 1, "op": "edit", "edit": "set_fence_device",
                                "args": {"params": {"passwd": "pw"}}, "check": True}


def test_run_edit_returns_module_result():
    runner = Runner(out=json.dumps(EDIT_OK))
    result = run_edit(AdminClient(runner), "set_cluster", {"token": 5000}, check=False)
    assert result == {"changed": True, "config_version": 4, "source": "daemon",
                      "diff": EDIT_OK["diff"], "tree_warnings": [], "pending": None}
    runner = Runner(out=json.dumps(dict(EDIT_OK, tree_warnings=["/cluster/rm: w"])))
    result = run_edit(AdminClient(runner), "set_cluster", {"token": 5000}, check=False)
    assert result["tree_warnings"] == ["/cluster/rm: w"]


def test_invalid_reply_raises_with_element_and_reason():
    with pytest.raises(AdminError) as info:
        AdminClient(Runner(out=json.dumps(INVALID))).request("edit")
    assert info.value.code == "invalid"
    assert str(info.value) == INVALID["error"]["message"]
    assert info.value.fail_fields() == {"error_code": "invalid",
                                        "problems": INVALID["error"]["problems"]}


@pytest.mark.parametrize(("message", "expected"), [
    ("clusterd is not running on this node (no socket at /run/cluster/clusterd.sock)",
     "clusterd is not running on this node (no socket at /run/cluster/clusterd.sock)"),
    ("status needs the running clusterd",
     "clusterd is not running on this node: status needs the running clusterd"),
])
def test_not_running_message(message, expected):
    reply = {"ok": False, "error": {"code": "not_running", "message": message}}
    with pytest.raises(AdminError) as info:
        AdminClient(Runner(out=json.dumps(reply))).request("status")
    assert str(info.value) == expected


@pytest.mark.parametrize(("rc", "out", "err"), [
    (1, "", "Traceback (most recent call last): boom"),
    (0, "not json", ""),
    (0, json.dumps({"no": "ok"}), ""),
])
def test_garbage_from_cluster_admin_is_an_error(rc, out, err):
    with pytest.raises(AdminError) as info:
        AdminClient(Runner(rc, out, err)).request("status")
    assert info.value.code == "admin_failed"
    assert str(info.value).startswith(f"cluster_admin failed (rc={rc}) without a JSON reply")


def test_not_installed_when_cluster_admin_is_missing():
    with pytest.raises(AdminError) as info:
        admin_client(lambda name, opt_dirs=None: None, None)
    assert str(info.value) == MSG_NOT_INSTALLED
    assert MSG_NOT_INSTALLED == "clusterd is not installed on this node (cluster_admin not found)"


def test_admin_client_adapts_run_command():
    seen = []

    def run_command(argv, data=None, binary_data=False, check_rc=True):
        seen.append((argv, data, binary_data, check_rc))
        return 0, json.dumps({"ok": True, "status": {}}), ""

    client = admin_client(lambda name, opt_dirs=None: "/usr/sbin/" + name, run_command)
    assert client.request("status")["ok"] is True
    assert seen[0][0] == ["/usr/sbin/cluster_admin"]
    assert seen[0][2:] == (True, False)


def test_drop_none_is_recursive():
    assert drop_none({"a": None, "b": [{"c": None, "d": 1}], "e": {"f": None}}) == \
        {"b": [{"d": 1}], "e": {}}
