#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_conf
short_description: Manage the cluster, its nodes, quorum and timers in cluster.conf
version_added: 0.1.0
description:
  - Sets the cluster name, the member nodes (name, node id, votes), quorum settings
    (C(expected_votes), C(two_node)), the quorum disk (C(quorumd) and its heuristics), the
    totem C(token) and the C(fence_daemon) delays in C(/etc/cluster/cluster.conf).
  - On a node without a cluster.conf and without a running clusterd, creates the first
    config (bootstrap).
  - Options left unset are left alone; O(nodes), when given, is the complete node list.
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.CONFIG
options:
  name:
    description: Cluster name (C(/cluster/@name)). Required to create a cluster; the name of a running cluster cannot change.
    type: str
    required: true
  nodes:
    description:
      - The complete list of cluster nodes (C(clusternodes/clusternode)).
      - Nodes not listed are removed, along with their fence methods.
    type: list
    elements: dict
    suboptions:
      name:
        description: Node name as the nodes resolve it.
        type: str
        required: true
      nodeid:
        description: Unique positive node id.
        type: int
        required: true
      votes:
        description: Quorum votes of the node (clusterd's default is 1).
        type: int
  two_node:
    description: Two-node mode (C(cman/@two_node)); needs exactly two nodes with one vote each and O(expected_votes=1).
    type: bool
  expected_votes:
    description: Expected votes (C(cman/@expected_votes)); default is the sum of the node votes. V(0) removes the attribute (back to that default).
    type: int
  token:
    description: Totem token timeout in milliseconds (C(totem/@token)).
    type: int
  post_join_delay:
    description: Seconds to wait for nodes to join before fencing them at startup (C(fence_daemon/@post_join_delay)).
    type: int
  post_fail_delay:
    description: Seconds to wait before fencing a failed node (C(fence_daemon/@post_fail_delay)).
    type: int
  clean_start:
    description: Skip startup fencing of nodes that never joined (C(fence_daemon/@clean_start)).
    type: bool
  quorum_disk:
    description:
      - The quorum disk (C(quorumd), qdisk(5)); unset leaves it as it is.
      - Suboptions left unset leave their attribute as it is; O(quorum_disk.heuristics), when
        given, is the complete list of heuristics, in order.
      - A quorum disk needs a device initialised with C(mkqdisk -c DEVICE -l LABEL) and, beside
        two nodes, O(two_node=false) and O(expected_votes=3) (qdisk(5)'s tie-breaker); the
        whole configuration is validated, and a refused change changes nothing.
    type: dict
    suboptions:
      state:
        description: V(absent) removes the quorum disk and its heuristics (other suboptions are then ignored).
        type: str
        choices: [present, absent]
        default: present
      device:
        description: The shared block device (C(quorumd/@device)); O(quorum_disk.device) or O(quorum_disk.label) is required.
        type: str
      label:
        description: The label given to C(mkqdisk -l) (C(quorumd/@label)); with no device, the disk is found by its label.
        type: str
      votes:
        description: The disk's votes (C(quorumd/@votes)); default one less than the number of nodes.
        type: int
      interval:
        description: Seconds per read/write cycle (C(quorumd/@interval)); default 1.
        type: int
      tko:
        description: Cycles a node may miss before it is dead on the disk (C(quorumd/@tko)); default 10.
        type: int
      min_score:
        description: Minimum heuristic score for a node to be fit (C(quorumd/@min_score)); default half the total, rounded up.
        type: int
      master_wins:
        description: Only the master holds the disk's votes (C(quorumd/@master_wins)); only with two nodes and no heuristics.
        type: bool
      heuristics:
        description: The complete list of heuristics (C(quorumd/heuristic)); V([]) removes them all.
        type: list
        elements: dict
        suboptions:
          program:
            description: One root-owned executable and its arguments, run without a shell; exit 0 is a pass.
            type: str
            required: true
          score:
            description: Score while the program passes; default 1.
            type: int
          interval:
            description: Seconds between runs; default twice the disk's interval.
            type: int
          tko:
            description: Consecutive failures before the score is lost; default 1.
            type: int
  state:
    description: Only V(present) is supported; a cluster is not removed by this module.
    type: str
    choices: [present]
    default: present
seealso:
  - module: redhat.cluster.cluster_info
  - module: redhat.cluster.fence_device
"""

EXAMPLES = r"""
- name: Create or update a three-node cluster
  redhat.cluster.cluster_conf:
    name: alpha
    nodes:
      - {name: node1, nodeid: 1}
      - {name: node2, nodeid: 2}
      - {name: node3, nodeid: 3}
    token: 5000
    post_join_delay: 6
  run_once: true

- name: Two-node cluster
  redhat.cluster.cluster_conf:
    name: pair
    nodes:
      - {name: node1, nodeid: 1, votes: 1}
      - {name: node2, nodeid: 2, votes: 1}
    two_node: true
    expected_votes: 1

- name: Two nodes and a quorum disk as tie-breaker (the device initialised with mkqdisk)
  redhat.cluster.cluster_conf:
    name: pair
    two_node: false
    expected_votes: 3
    quorum_disk:
      device: /dev/disk/by-id/wwn-0x600a0b80005a1f2e
      label: pair
      votes: 1
      interval: 1
      tko: 10
      heuristics:
        - program: /usr/local/sbin/ping-gateway
          score: 1
          interval: 2
          tko: 3

- name: Back to two_node mode without the quorum disk
  redhat.cluster.cluster_conf:
    name: pair
    two_node: true
    expected_votes: 1
    quorum_disk:
      state: absent
"""

RETURN = r"""
config_version:
  description: C(config_version) of cluster.conf after the task (unchanged when nothing changed; the would-be version in check mode).
  type: int
  returned: success
  sample: 4
source:
  description: Where the config was read and written, V(daemon) (proposed to the running clusterd) or V(file) (local file, daemon not running).
  type: str
  returned: success
  sample: daemon
diff:
  description: cluster.conf before and after, secrets masked.
  type: dict
  returned: success, in diff mode
  contains:
    before:
      description: cluster.conf before (empty when it did not exist).
      type: str
    after:
      description: cluster.conf after.
      type: str
    before_header:
      description: Name and version of the before side.
      type: str
      sample: cluster.conf (version 3)
    after_header:
      description: Name and version of the after side.
      type: str
      sample: cluster.conf (version 4)
error_code:
  description: Stable error code of clusterd (V(invalid), V(not_installed), V(not_running) ...).
  type: str
  returned: failure
  sample: invalid
problems:
  description: Validation problems, each naming the element and the reason.
  type: list
  elements: dict
  returned: failure
  sample: [{"where": "/cluster/clusternodes/clusternode[@name='node2']", "reason": "duplicate nodeid 1"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.admin import (
    AdminClient,
    drop_none,
    run_edit,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.main import (
    run_module,
)

ARG_KEYS = ("name", "nodes", "two_node", "expected_votes", "token", "post_join_delay",
            "post_fail_delay", "clean_start", "quorum_disk")


def edit_args(params: dict) -> dict:
    """Module options -> arguments of clusterd's set_cluster edit (unset = leave alone);
    a quorum disk to remove is sent as ``{"state": "absent"}`` alone."""
    args = drop_none({k: params.get(k) for k in ARG_KEYS})
    disk = args.get("quorum_disk")
    if disk is not None and disk.get("state") == "absent":
        args["quorum_disk"] = {"state": "absent"}
    return args


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    return run_edit(client, "set_cluster", edit_args(params), check_mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            nodes=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                nodeid=dict(type="int", required=True),
                votes=dict(type="int"),
            )),
            two_node=dict(type="bool"),
            expected_votes=dict(type="int"),
            token=dict(type="int", no_log=False),  # totem timer (ms), not a secret
            post_join_delay=dict(type="int"),
            post_fail_delay=dict(type="int"),
            clean_start=dict(type="bool"),
            quorum_disk=dict(type="dict", options=dict(
                state=dict(type="str", choices=["present", "absent"], default="present"),
                device=dict(type="str"),
                label=dict(type="str"),
                votes=dict(type="int"),
                interval=dict(type="int"),
                tko=dict(type="int"),
                min_score=dict(type="int"),
                master_wins=dict(type="bool"),
                heuristics=dict(type="list", elements="dict", options=dict(
                    program=dict(type="str", required=True),
                    score=dict(type="int"),
                    interval=dict(type="int"),
                    tko=dict(type="int"),
                )),
            )),
            state=dict(type="str", choices=["present"], default="present"),
        ),
        supports_check_mode=True,
    )
    run_module(module, "cluster_conf", run)


if __name__ == "__main__":
    main()
