# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""main() of a module end to end: argument parsing, error -> fail_json, no_log, diff mode.

The only things replaced are the two AnsibleModule methods that reach the node
(get_bin_path, run_command); exit_json/fail_json print JSON and exit, as on a node.
"""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.redhat.cluster.plugins.modules import (
    cluster_conf,
    fence_device,
)

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
