# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every module that writes cluster.conf warns, once per occurrence, about the parts of the
file clusterd accepts but does not use (RHCS's quorum disk, logging ...), in check mode
too; the warnings come from the file cluster_admin returns, whatever the module changed."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.redhat.cluster.plugins.modules import (
    cluster_conf,
    cluster_resource,
    cluster_service,
    failover_domain,
    fence_device,
)

AFTER = """<?xml version="1.0"?>
<cluster name="alpha" config_version="2">
  <totem token="3000" consensus="3600"/>
  <quorumd label="qdisk" status_file="/tmp/qd"/>
  <clusternodes>
    <clusternode name="node1" nodeid="1"/>
  </clusternodes>
</cluster>
"""
REPLY = {"v": 1, "ok": True, "changed": False, "config_version": 2, "source": "daemon",
         "diff": {"before": AFTER, "after": AFTER, "before_header": "b", "after_header": "a"}}
WARNINGS = [
    ("accepted but not used by clusterd: /cluster/totem/@consensus (clusterd has no totem "
     "ring: a peer silent for totem@token ms is suspected and views are agreed among "
     "members; totem@token is the one timer to tune)"),
    ("accepted but not used by clusterd: /cluster/quorumd/@status_file (clusterd runs the "
     "quorum disk's I/O in a thread of its daemon, with O_DIRECT, and counts an I/O slower "
     "than half an interval as failed: nothing to tune beyond interval and tko; status is in "
     "clustat -x and the status document)"),
]


@pytest.fixture(autouse=True)
def _no_earlier_warnings(monkeypatch):
    """AnsibleModule.warn() collects in a process-wide store: start each test empty."""
    store = ansible_warnings._global_warnings
    monkeypatch.setattr(ansible_warnings, "_global_warnings", type(store)())


def run_main(main, args, monkeypatch, capsys, reply):
    def run_command(self, argv, data=None, binary_data=False, check_rc=False):
        return 0, json.dumps(reply), ""

    monkeypatch.setattr(AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: "/usr/sbin/x")
    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    with patch_module_args(args), pytest.raises(SystemExit) as info:
        main()
    return info.value.code, json.loads(capsys.readouterr().out)


def warnings_of(out: dict) -> list:
    """The warning texts of a result (ansible-core 2.19 wraps each in a WarningSummary)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in out.get("warnings", [])]


@pytest.mark.parametrize(("main", "args"), [
    (cluster_conf.main, {"name": "alpha"}),
    (cluster_resource.main, {"type": "ip", "attrs": {"address": "198.18.0.10"}}),
    (cluster_service.main, {"name": "web"}),
    (failover_domain.main, {"name": "dom", "members": [{"name": "node1"}]}),
    (fence_device.main, {"name": "ipmi1", "agent": "fence_ipmilan"}),
    (cluster_conf.main, {"name": "alpha", "_ansible_check_mode": True}),
])
def test_each_unused_part_is_a_module_warning(main, args, monkeypatch, capsys):
    rc, out = run_main(main, args, monkeypatch, capsys, REPLY)
    assert rc == 0 and warnings_of(out) == WARNINGS
    assert "diff" not in out                 # the file itself only in diff mode


def test_no_warning_for_a_file_clusterd_uses_whole(monkeypatch, capsys):
    after = AFTER.replace(' consensus="3600"', "").replace(
        '  <quorumd label="qdisk" status_file="/tmp/qd"/>\n', "")
    reply = dict(REPLY, diff=dict(REPLY["diff"], after=after))
    rc, out = run_main(cluster_conf.main, {"name": "alpha"}, monkeypatch, capsys, reply)
    assert rc == 0 and warnings_of(out) == []


@pytest.mark.parametrize("main", [cluster_conf.main, cluster_service.main])
def test_warnings_the_tree_was_accepted_with_are_module_warnings(main, monkeypatch, capsys):
    """cluster_admin names what the config is accepted with as rgmanager warned (a resource
    referenced past its max instances): each is a module warning, not a result key."""
    tree = ("/cluster/rm/service[@name='db']/ip[@ref='198.18.0.50/24']: ip 198.18.0.50/24 "
            "is referenced more times than its type allows: this reference is left out")
    after = AFTER.replace(' consensus="3600"', "").replace(
        '  <quorumd label="qdisk" status_file="/tmp/qd"/>\n', "")
    reply = dict(REPLY, diff=dict(REPLY["diff"], after=after), tree_warnings=[tree])
    rc, out = run_main(main, {"name": "alpha" if main is cluster_conf.main else "db"},
                       monkeypatch, capsys, reply)
    assert rc == 0 and warnings_of(out) == [tree]
    assert "tree_warnings" not in out


@pytest.mark.parametrize("main", [cluster_conf.main, cluster_service.main, fence_device.main])
def test_a_file_written_while_clusterd_is_stopped_is_a_pending_proposal_warning(
        main, monkeypatch, capsys):
    """cluster_admin says a file written in file mode on a node that ran in a cluster is only
    a pending proposal (clusterd starts on the accepted config): a module warning."""
    note = ("clusterd is not running here: /etc/cluster/cluster.conf now holds config_version "
            "8, which the cluster has not accepted ...")
    after = AFTER.replace(' consensus="3600"', "").replace(
        '  <quorumd label="qdisk" status_file="/tmp/qd"/>\n', "")
    reply = dict(REPLY, diff=dict(REPLY["diff"], after=after), source="file",
                 pending={"path": "/etc/cluster/cluster.conf.pending-8", "version": 8,
                          "accepted_version": 7, "message": note})
    args = {"name": "alpha"} if main is cluster_conf.main else (
        {"name": "ipmi1", "agent": "fence_ipmilan"} if main is fence_device.main
        else {"name": "db"})
    rc, out = run_main(main, args, monkeypatch, capsys, reply)
    assert rc == 0 and warnings_of(out) == [note]
    assert "pending" not in out
