#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_info
short_description: Read cluster status and the running config in module argument format
version_added: 0.1.0
description:
  - Returns what clustat shows (members, quorum, services, fence operations, config version),
    whether the answer comes from a quorate current view, and why each node is or is not a
    candidate for each service (failover domain and exclusive rules).
  - Returns the running cluster.conf exported in exactly the argument format of the config
    modules (M(redhat.cluster.cluster_conf), M(redhat.cluster.failover_domain),
    M(redhat.cluster.cluster_service), M(redhat.cluster.fence_device)), so an existing cluster can
    be adopted - feeding the export back to those modules changes nothing.
  - When clusterd is not running, only the export of the local cluster.conf is returned
    (RV(cluster_info.source=file), no status).
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.INFO_MODULE
options:
  include_secrets:
    description:
      - Include secret fence and resource parameters in the export. By default they are
        masked as C(********); include them only to adopt a cluster.
      - With V(true) the whole result is hidden from the output, as with C(no_log) on the task
        (the action plugin marks it so); C(register) still receives it. Feed the secrets to the
        config modules' C(no_log) options (RV(cluster_info.export) puts them there).
    type: bool
    default: false
attributes:
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    details:
      - The action plugin hides the result from the output when O(include_secrets=true).
seealso:
  - module: redhat.cluster.cluster_conf
"""

EXAMPLES = r"""
- name: Read the cluster
  redhat.cluster.cluster_info:
  register: info

- name: Fail unless quorate
  ansible.builtin.assert:
    that: info.cluster_info.quorate

- name: Adopt the services of a running cluster (changes nothing)
  redhat.cluster.cluster_service:
    name: "{{ item.name }}"
    domain: "{{ item.domain | default(omit) }}"
    recovery: "{{ item.recovery | default(omit) }}"
    autostart: "{{ item.autostart | default(omit) }}"
    resources: "{{ item.resources }}"
  loop: "{{ info.cluster_info.export.services }}"
  run_once: true
"""

RETURN = r"""
cluster_info:
  description: The cluster as this node sees it.
  type: dict
  returned: success
  contains:
    source:
      description: V(daemon) when clusterd answered, V(file) when only the local cluster.conf was read.
      type: str
      sample: daemon
    config_version:
      description: C(config_version) of the running config.
      type: int
      sample: 7
    cluster_name:
      description: Cluster name.
      type: str
      sample: alpha
    quorate:
      description: Whether this node's view is quorate (false without the daemon).
      type: bool
    current:
      description: Whether the answer comes from a quorate, current view (trust it for decisions).
      type: bool
    quorum:
      description: Votes, expected votes and quorum, as cman computes them.
      type: dict
      sample: {"quorate": true, "votes": 3, "expected_votes": 3, "quorum": 2}
    local_node:
      description: Name of the node the task ran on.
      type: str
      sample: node1
    members:
      description: Nodes with their state and flags (as C(clustat) shows them).
      type: list
      elements: dict
      sample: [{"name": "node1", "nodeid": 1, "state": "online", "local": true}]
    services:
      description: Services with state, owner, last owner and flags.
      type: list
      elements: dict
      sample: [{"name": "service:web", "state": "started", "owner": "node1", "flags": []}]
    fencing:
      description: Fence operations in progress or failed.
      type: list
      elements: dict
    candidates:
      description: Per service, each node with C(candidate) (bool) and the C(reason).
      type: dict
      sample: {"service:web": [{"node": "node3", "candidate": false, "reason": "not a member of restricted domain web_nodes"}]}
    export:
      description: The running config in the argument format of the config modules.
      type: dict
      contains:
        cluster_conf:
          description: Options of M(redhat.cluster.cluster_conf).
          type: dict
        failover_domains:
          description: Options of M(redhat.cluster.failover_domain), one item per domain.
          type: list
          elements: dict
        services:
          description: Options of M(redhat.cluster.cluster_service), one item per service.
          type: list
          elements: dict
        fence_devices:
          description: Options of M(redhat.cluster.fence_device) for each device (secrets in C(secret_params), masked unless O(include_secrets)).
          type: list
          elements: dict
        node_fences:
          description:
            - Options of M(redhat.cluster.fence_device) for each node's methods (C(node), C(methods), C(unfence)).
            - Per-node secrets are in each device's C(secret_params), masked unless O(include_secrets).
          type: list
          elements: dict
        resources:
          description: Options of M(redhat.cluster.cluster_resource) for each global resource (secrets in C(secret_attrs), masked unless O(include_secrets)).
          type: list
          elements: dict
error_code:
  description: Stable error code of clusterd (V(not_installed), V(no_config) ...).
  type: str
  returned: failure
  sample: not_installed
problems:
  description: Problems clusterd found in the request or in cluster.conf, each naming where and the reason; empty for other errors.
  type: list
  elements: dict
  returned: failure
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.admin import (
    AdminClient,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.main import (
    run_module,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.options import (
    module_args,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.status import (
    candidates,
    summarize,
)


def run(client: AdminClient, params: dict, check_mode: bool = False) -> dict:
    """Read only: check mode changes nothing."""
    reply = client.request("export", secrets=params["include_secrets"])
    export = module_args(reply.get("export") or {})
    status = reply.get("status")
    info = summarize(status or {})
    info.update(source=reply.get("source"), config_version=reply.get("config_version"),
                export=export)
    if not info["cluster_name"]:
        info["cluster_name"] = export["cluster_conf"].get("name")
    if status:
        info["candidates"] = status.get("candidates") or candidates(export, status)
    else:
        info["candidates"] = {}
    return {"changed": False, "cluster_info": info}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            include_secrets=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    run_module(module, "cluster_info", run)


if __name__ == "__main__":
    main()
