# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.options import (
    module_args,
    node_fence_options,
    service_attrs,
    service_options,
)

# The shape of clusterd.conf.export() (see daemon/src/clusterd/conf/export.py).
EXPORT = {
    "cluster": {"name": "alpha", "nodes": [{"name": "node1", "nodeid": 1, "votes": 1}],
                "two_node": False, "expected_votes": None, "token": 5000,
                "post_join_delay": 6, "post_fail_delay": 0, "clean_start": False,
                "quorum_disk": None},
    "fence_devices": [{"name": "ipmi1", "agent": "fence_ipmilan", "state": "present",
                       "params": {"ipaddr": "198.18.1.1", "passwd": "********"}}],
    "node_fence": [{"node": "node1", "methods": [{"name": "ipmi", "devices": [
        {"name": "ipmi1", "params": {}}]}], "unfence": []}],
    "failover_domains": [{"name": "d", "members": [{"name": "node1", "priority": None}],
                          "ordered": False, "restricted": True, "nofailback": False,
                          "state": "present"}],
    "resources": [{"type": "ip", "attrs": {"address": "198.18.0.100/24"},
                   "state": "present"}],
    "services": [{"name": "web", "attrs": {"domain": "d", "autostart": "1", "exclusive": "0",
                                           "max_restarts": "3", "nfslock": "1"},
                  "resources": [{"type": "ip", "ref": "198.18.0.100/24", "attrs": {},
                                 "children": []}], "state": "present"}],
}


def test_service_attrs_typed_options_win_and_use_cluster_conf_spelling():
    params = {"domain": "d", "autostart": True, "exclusive": False, "max_restarts": 3,
              "recovery": None, "attrs": {"nfslock": "1", "autostart": "0"}}
    assert service_attrs(params) == {"domain": "d", "autostart": "1", "exclusive": "0",
                                     "max_restarts": "3", "nfslock": "1"}


def test_service_options_round_trip():
    opts = service_options(EXPORT["services"][0])
    assert opts == {"name": "web", "state": "present", "domain": "d", "autostart": True,
                    "exclusive": False, "max_restarts": 3, "attrs": {"nfslock": "1"},
                    "resources": EXPORT["services"][0]["resources"]}
    assert service_attrs(opts) == EXPORT["services"][0]["attrs"]


def test_module_args_of_an_export():
    args = module_args(EXPORT)
    assert args["cluster_conf"] == {"name": "alpha", "nodes": EXPORT["cluster"]["nodes"],
                                    "two_node": False, "token": 5000, "post_join_delay": 6,
                                    "post_fail_delay": 0, "clean_start": False}
    disk = {"state": "present", "device": "/dev/sdq", "votes": 1, "master_wins": False,
            "heuristics": [{"program": "/usr/local/sbin/qd-check", "score": 1}]}
    with_disk = module_args(dict(EXPORT, cluster=dict(EXPORT["cluster"], quorum_disk=disk)))
    assert with_disk["cluster_conf"]["quorum_disk"] == disk
    assert args["fence_devices"] == [{"name": "ipmi1", "agent": "fence_ipmilan",
                                      "state": "present", "params": {"ipaddr": "198.18.1.1"},
                                      "secret_params": {"passwd": "********"}}]
    assert args["node_fences"][0]["node"] == "node1"
    assert args["resources"] == [{"type": "ip", "attrs": {"address": "198.18.0.100/24"},
                                  "state": "present"}]
    assert args["failover_domains"] == EXPORT["failover_domains"]


def test_node_fence_options_put_per_node_secrets_in_secret_params():
    export = {"node": "node1",
              "methods": [{"name": "power", "devices": [
                  {"name": "apc", "params": {"port": "3", "community": "********"}},
                  {"name": "ipmi1", "params": {}}]}],
              "unfence": [{"name": "scsi", "params": {"key": "********", "devices": "/dev/sdb"}}]}
    assert node_fence_options(export) == {
        "node": "node1",
        "methods": [{"name": "power", "devices": [
            {"name": "apc", "params": {"port": "3"}, "secret_params": {"community": "********"}},
            {"name": "ipmi1", "params": {}}]}],
        "unfence": [{"name": "scsi", "params": {"devices": "/dev/sdb"},
                     "secret_params": {"key": "********"}}]}
