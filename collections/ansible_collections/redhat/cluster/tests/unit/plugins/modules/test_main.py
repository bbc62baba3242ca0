# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""main() of a module end to end: argument parsing, error -> fail_json, no_log, diff mode.

The only things replaced are the two AnsibleModule methods that reach the node
(get_bin_path, run_command); exit_json/fail_json print JSON and exit, as on a node.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.secrets import (
    NO_LOG_OPTIONS,
)
from ansible_collections.redhat.cluster.plugins.modules import (
    cluster_conf,
    cluster_resource,
    cluster_service,
    fence_device,
)

COLLECTION = Path(__file__).resolve().parents[4]
MODULES = sorted(p.stem for p in (COLLECTION / "plugins/modules").glob("*.py")
                 if not p.stem.startswith("_"))

PASSWORD = "n0t-in-0utput"
EDIT_REPLY = {"v": 1, "ok": True, "changed": True, "config_version": 2, "source": "file",
              "diff": {"before": "", "after": 'passwd="********"', "before_header": "b",
                       "after_header": "a"}}


def run_main(main, args, monkeypatch, capsys, bin_path="/usr/sbin/cluster_admin",
             reply=None):
    requests = []

    def run_command(self, argv, data=None, binary_data=False, check_rc=False):
        requests.append(json.loads(data))
        return 0, json.dumps(reply or EDIT_REPLY), ""

    monkeypatch.setattr(AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: bin_path)
    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    with patch_module_args(args), pytest.raises(SystemExit) as info:
        main()
    return info.value.code, json.loads(capsys.readouterr().out), requests


def test_not_installed_message(monkeypatch, capsys):
    rc, out, requests = run_main(cluster_conf.main, {"name": "alpha"}, monkeypatch, capsys,
                                 bin_path=None)
    assert rc == 1 and requests == []
    assert out["msg"] == "clusterd is not installed on this node (cluster_admin not found)"
    assert out["error_code"] == "not_installed"


def test_secret_params_reach_stdin_but_not_the_output(monkeypatch, capsys):
    args = {"name": "ipmi1", "agent": "fence_ipmilan", "params": {"ipaddr": "198.18.1.1"},
            "secret_params": {"passwd": PASSWORD}, "_ansible_diff": True}
    rc, out, requests = run_main(fence_device.main, args, monkeypatch, capsys)
    assert rc == 0 and out["changed"] is True and out["diff"]["after"] == 'passwd="********"'
    assert requests[0]["args"]["params"]["passwd"] == PASSWORD
    assert PASSWORD not in json.dumps(out)


def test_diff_only_in_diff_mode(monkeypatch, capsys):
    rc, out, requests = run_main(cluster_conf.main, {"name": "alpha", "token": 5000},
                                 monkeypatch, capsys)
    assert rc == 0 and out["config_version"] == 2 and "diff" not in out
    assert requests[0]["args"] == {"name": "alpha", "token": 5000}


def test_fence_device_needs_a_form(monkeypatch, capsys):
    rc, out, requests = run_main(fence_device.main, {}, monkeypatch, capsys)
    assert rc == 1 and requests == []
    assert out["msg"] == ("one of name (a fence device), node (its fence methods) or "
                          "verify=true is required")


def logged_lines(monkeypatch):
    """What AnsibleModule sends to the node's syslog/journal (its log() method)."""
    lines = []

    def log(self, msg, log_args=None):
        lines.append(msg + json.dumps(log_args or {}, default=str))

    monkeypatch.setattr(AnsibleModule, "log", log)
    return lines


def test_per_node_secret_params_reach_stdin_only(monkeypatch, capsys):
    syslog = logged_lines(monkeypatch)
    device = {"name": "apc", "params": {"port": "3"}, "secret_params": {"community": PASSWORD}}
    args = {"node": "node1", "methods": [{"name": "power", "devices": [device]}],
            "unfence": [dict(device, name="apc2")], "_ansible_diff": True}
    rc, out, requests = run_main(fence_device.main, args, monkeypatch, capsys)
    assert rc == 0 and out["changed"] is True
    sent = requests[0]["args"]
    assert sent["methods"] == [{"name": "power", "devices": [
        {"name": "apc", "params": {"port": "3", "community": PASSWORD}}]}]
    assert sent["unfence"] == [{"name": "apc2", "params": {"port": "3", "community": PASSWORD}}]
    assert syslog and PASSWORD not in "".join(syslog)
    assert PASSWORD not in json.dumps(out)


@pytest.mark.parametrize(("main", "args", "msg"), [
    (fence_device.main, {"name": "ipmi1", "agent": "fence_ipmilan",
                         "params": {"ipaddr": "198.18.1.1", "passwd": PASSWORD}},
     "params.passwd looks like a secret: pass it in secret_params (no_log) instead"),
    (fence_device.main, {"node": "node1", "methods": [{"name": "m", "devices": [
        {"name": "apc", "params": {"community": PASSWORD}}]}]},
     ("methods[0].devices[0].params.community looks like a secret: pass it in "
      "methods[0].devices[0].secret_params (no_log) instead")),
    (cluster_resource.main, {"type": "ocf", "attrs": {"name": "db", "test_passwd": PASSWORD}},
     "attrs.test_passwd looks like a secret: pass it in secret_attrs (no_log) instead"),
    (cluster_service.main, {"name": "web", "resources": [
        {"type": "ocf", "attrs": {"name": "db", "password": PASSWORD}}]},
     ("resources[0].attrs.password looks like a secret: cluster_service takes no secrets; a "
      "resource that needs one is defined with redhat.cluster.cluster_resource, its secret in "
      "secret_attrs (no_log), and referenced here as {type, ref}")),
])
def test_a_module_called_without_its_action_plugin_refuses_and_masks(main, args, msg,
                                                                     monkeypatch, capsys):
    rc, out, requests = run_main(main, args, monkeypatch, capsys)
    assert rc == 1 and requests == [] and out["msg"] == msg
    assert PASSWORD not in json.dumps(out)


class _Spec(Exception):
    """Raised by the stand-in AnsibleModule constructor, carrying the argument_spec."""


def argument_spec(name, monkeypatch):
    def capture(self, argument_spec, **kwargs):
        raise _Spec(argument_spec)

    monkeypatch.setattr(AnsibleModule, "__init__", capture)
    module = importlib.import_module(f"ansible_collections.redhat.cluster.plugins.modules.{name}")
    with pytest.raises(_Spec) as info:
        module.main()
    return info.value.args[0]


def spec_positions(spec, prefix=""):
    """(no_log option positions, free-form dict positions) of an argument_spec."""
    no_log, free = set(), set()
    for key, opt in spec.items():
        here = f"{prefix}.{key}" if prefix else key
        if opt.get("no_log"):
            no_log.add(here)
        if opt.get("options"):
            nested = f"{here}[]" if opt.get("type") == "list" else here
            sub_no_log, sub_free = spec_positions(opt["options"], nested)
            no_log |= sub_no_log
            free |= sub_free
        elif opt.get("type") == "dict" or opt.get("elements") == "dict":
            free.add(here)
    return no_log, free


@pytest.mark.parametrize("name", MODULES)
def test_secret_table_matches_each_argument_spec(name, monkeypatch):
    """NO_LOG_OPTIONS lists exactly the no_log options of every module that takes
    free-form parameters, and each such module has its action plugin."""
    no_log, free = spec_positions(argument_spec(name, monkeypatch))
    if free:
        assert name in NO_LOG_OPTIONS, f"{name} takes free-form {sorted(free)}"
    assert no_log == set(NO_LOG_OPTIONS.get(name, ())) - {""}
    if name in NO_LOG_OPTIONS:
        assert (COLLECTION / "plugins/action" / f"{name}.py").is_file()
