#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: node
short_description: Put a cluster node in standby or make it active again
version_added: 0.1.0
description:
  - V(standby) evacuates the services of the node to other members and keeps any service
    from starting on it, for maintenance and rolling upgrades. The node stays a member and keeps
    its quorum vote.
  - V(active) lets the node take services again (failback follows the domain rules).
  - Acts through the running clusterd and waits for the evacuation to finish.
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.ACTION
options:
  name:
    description: Node name; default is the node the task runs on (C(local) in the status).
    type: str
  state:
    description: Standby or active.
    type: str
    required: true
    choices: [standby, active]
seealso:
  - module: redhat.cluster.relocate
  - module: redhat.cluster.cluster_info
"""

EXAMPLES = r"""
- name: Evacuate this node before its upgrade
  redhat.cluster.node:
    state: standby

- name: Take services again
  redhat.cluster.node:
    name: node2
    state: active
"""

RETURN = r"""
node:
  description: The node the task acted on.
  type: str
  returned: success
  sample: node2
before:
  description: The node entry of the status before the task.
  type: dict
  returned: success
  sample: {"name": "node2", "nodeid": 2, "state": "online", "standby": false}
after:
  description: What clusterd reported (absent when nothing was done or in check mode).
  type: dict
  returned: changed and not check mode
reason:
  description: Why the module acted or did not.
  type: str
  returned: success
  sample: node is active
error_code:
  description: Stable error code of clusterd (V(not_installed), V(not_running), V(not_supported), V(unknown_node) ...).
  type: str
  returned: failure
  sample: not_running
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
    AdminError,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.main import (
    run_module,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.status import (
    StatusError,
    find_node,
    node_needs,
)


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    status = client.request("status").get("status") or {}
    name = params["name"] or (status.get("local") or {}).get("name")
    if not name:
        raise AdminError("unknown_node", "clusterd did not say which node is local; "
                                         "give name")
    try:
        before = find_node(status, name)
    except StatusError as exc:
        raise AdminError("unknown_node", str(exc)) from None
    act, reason = node_needs(params["state"], before)
    result = {"changed": act, "node": name, "before": before, "reason": reason}
    if act and not check_mode:
        reply = client.request("node", action=params["state"], node=name)
        result["after"] = reply.get("result") or {}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            state=dict(type="str", required=True, choices=["standby", "active"]),
        ),
        supports_check_mode=True,
    )
    run_module(module, "node", run)


if __name__ == "__main__":
    main()
