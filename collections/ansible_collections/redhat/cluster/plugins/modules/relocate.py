#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: relocate
short_description: Relocate a running cluster service to a member or to the best one
version_added: 0.1.0
description:
  - Moves one service, like C(clusvcadm -r SERVICE [-m MEMBER]), through the running clusterd, and
    waits for the outcome. Returns the previous and the new owner.
  - With O(member), nothing is done when the service already runs there.
  - Without O(member), clusterd picks the best other member by the service's domain rules; this always acts.
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.ACTION
options:
  name:
    description: Service name, C(NAME) or C(service:NAME).
    type: str
    required: true
    aliases: [service]
  member:
    description: Target node. Omit to let clusterd choose.
    type: str
    aliases: [target]
  timeout:
    description: Seconds clusterd waits for the service to run on its new owner.
    type: int
    default: 120
seealso:
  - module: redhat.cluster.service_state
  - module: redhat.cluster.node
"""

EXAMPLES = r"""
- name: Move web to node2
  redhat.cluster.relocate:
    name: web
    member: node2
  run_once: true
  register: moved

- name: Show where it went
  ansible.builtin.debug:
    msg: "web moved from {{ moved.previous_owner }} to {{ moved.owner }}"
"""

RETURN = r"""
previous_owner:
  description: Node that ran the service before the task.
  type: str
  returned: success
  sample: node1
owner:
  description: Node that runs the service after the task (in check mode, the requested O(member)).
  type: str
  returned: success
  sample: node2
state:
  description: Service state after the task, as clustat shows it.
  type: str
  returned: success
  sample: started
reason:
  description: Why the module acted or did not.
  type: str
  returned: success
  sample: service already runs on node2
error_code:
  description: Stable error code of clusterd (V(not_installed), V(not_running), V(not_supported), V(unknown_service), V(not_relocated) ...).
  type: str
  returned: failure
  sample: not_supported
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
    find_service,
    relocate_needs,
)


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    status = client.request("status").get("status") or {}
    try:
        svc = find_service(status, params["name"])
    except StatusError as exc:
        raise AdminError("unknown_service", str(exc)) from None
    act, reason = relocate_needs(svc, params["member"])
    result = {"changed": act, "previous_owner": svc.get("owner"), "owner": svc.get("owner"),
              "state": svc.get("state"), "reason": reason}
    if not act:
        return result
    if check_mode:
        result["owner"] = params["member"]
        return result
    reply = client.request("service", action="relocate", service=params["name"],
                           member=params["member"], timeout=params["timeout"])
    outcome = reply.get("result") or {}
    result["owner"] = outcome.get("owner")
    result["state"] = outcome.get("state")
    result["changed"] = result["owner"] != result["previous_owner"]
    if params["member"] and result["owner"] != params["member"]:
        raise AdminError("not_relocated",
                         f"{params['name']} runs on {result['owner'] or 'no node'} "
                         f"({result['state']}), not on the requested {params['member']}")
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["service"]),
            member=dict(type="str", aliases=["target"]),
            timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    run_module(module, "relocate", run)


if __name__ == "__main__":
    main()
