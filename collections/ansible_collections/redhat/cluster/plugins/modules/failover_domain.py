#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: failover_domain
short_description: Manage a failover domain in cluster.conf
version_added: 0.1.0
description:
  - Creates, updates or removes one failover domain (C(rm/failoverdomains/failoverdomain)) with
    its member nodes and their priorities, and the C(ordered), C(restricted) and C(nofailback) rules.
  - The options describe the whole domain; a member not listed is removed from it.
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.CONFIG
options:
  name:
    description: Name of the failover domain.
    type: str
    required: true
  members:
    description: Member nodes of the domain. Required with O(state=present).
    type: list
    elements: dict
    suboptions:
      name:
        description: Node name; must be a node of the cluster.
        type: str
        required: true
      priority:
        description: Priority in an ordered domain, 1 (highest) to 100.
        type: int
  ordered:
    description: Services prefer members with a better (lower) priority, and fail back to them unless O(nofailback=true).
    type: bool
    default: false
  restricted:
    description: Services of this domain never run outside of it; they stay stopped when no member is up.
    type: bool
    default: false
  nofailback:
    description: In an ordered domain, do not move a service back when a better member returns.
    type: bool
    default: false
  state:
    description: Whether the domain exists. A domain still used by a service cannot be removed.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: redhat.cluster.cluster_service
"""

EXAMPLES = r"""
- name: Ordered, restricted domain preferring node1
  redhat.cluster.failover_domain:
    name: web_nodes
    members:
      - {name: node1, priority: 1}
      - {name: node2, priority: 2}
    ordered: true
    restricted: true
  run_once: true

- name: Remove a domain
  redhat.cluster.failover_domain:
    name: old_domain
    state: absent
"""

RETURN = r"""
config_version:
  description: C(config_version) of cluster.conf after the task (the would-be version in check mode).
  type: int
  returned: success
  sample: 5
source:
  description: V(daemon) (proposed to the running clusterd) or V(file) (local file, daemon not running).
  type: str
  returned: success
  sample: daemon
diff:
  description: cluster.conf before and after, secrets masked.
  type: dict
  returned: success, in diff mode
  contains:
    before:
      description: cluster.conf before.
      type: str
    after:
      description: cluster.conf after.
      type: str
    before_header:
      description: Name and version of the before side.
      type: str
      sample: cluster.conf (version 4)
    after_header:
      description: Name and version of the after side.
      type: str
      sample: cluster.conf (version 5)
error_code:
  description: Stable error code of clusterd (V(invalid), V(not_installed), V(not_running), V(no_config) ...).
  type: str
  returned: failure
  sample: invalid
problems:
  description: Validation problems, each naming the element and the reason.
  type: list
  elements: dict
  returned: failure
  sample: [{"where": "/cluster/rm/failoverdomains/failoverdomain[@name='web']", "reason": "member node9 is not a cluster node"}]
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


def edit_args(params: dict) -> dict:
    """Module options -> arguments of clusterd's set_failover_domain edit."""
    if params["state"] == "absent":
        return {"name": params["name"], "state": "absent"}
    return drop_none({"name": params["name"], "members": params["members"],
                      "ordered": params["ordered"], "restricted": params["restricted"],
                      "nofailback": params["nofailback"], "state": "present"})


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    return run_edit(client, "set_failover_domain", edit_args(params), check_mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            members=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                priority=dict(type="int"),
            )),
            ordered=dict(type="bool", default=False),
            restricted=dict(type="bool", default=False),
            nofailback=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ("members",))],
        supports_check_mode=True,
    )
    run_module(module, "failover_domain", run)


if __name__ == "__main__":
    main()
