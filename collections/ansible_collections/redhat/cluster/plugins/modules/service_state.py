#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: service_state
short_description: Enable, disable, restart, stop, freeze or unfreeze a cluster service
version_added: 0.1.0
description:
  - Brings one service to a run state through the running clusterd, like C(clusvcadm -e/-d/-R/-s/-Z/-U),
    and waits for the outcome.
  - Reads the service state first; nothing is done when the service already shows the
    requested state (except V(restarted), which always acts).
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
  state:
    description:
      - V(enabled) starts it - on O(member) when given; else, as C(clusvcadm -e), on the node the task runs on when that
        node may run it (or where a relocation would put it); with O(follow_domain=true) where its failover domain puts it.
      - V(disabled) stops it and keeps it stopped.
      - V(restarted) restarts it in place; V(stopped) stops it (it may start again on the next enable).
      - V(frozen) stops status checks and recovery; V(unfrozen) resumes them.
    type: str
    required: true
    choices: [enabled, disabled, restarted, stopped, frozen, unfrozen]
  member:
    description: With O(state=enabled), the node that should run the service.
    type: str
  follow_domain:
    description:
      - With O(state=enabled) and no O(member), start the service on the node its failover domain and exclusive
        rules pick, as C(clusvcadm -e -F) does, whichever node the task runs on.
    type: bool
    default: false
  timeout:
    description: Seconds clusterd waits for the outcome.
    type: int
    default: 60
seealso:
  - module: redhat.cluster.relocate
  - module: redhat.cluster.cluster_info
"""

EXAMPLES = r"""
- name: Start web on node1
  redhat.cluster.service_state:
    name: web
    state: enabled
    member: node1
  run_once: true

- name: Start web where its failover domain puts it (clusvcadm -e -F)
  redhat.cluster.service_state:
    name: web
    state: enabled
    follow_domain: true
  run_once: true

- name: Freeze db during maintenance
  redhat.cluster.service_state:
    name: service:db
    state: frozen
  run_once: true
"""

RETURN = r"""
before:
  description: The service as clustat showed it before the task.
  type: dict
  returned: success
  sample: {"name": "service:web", "state": "stopped", "owner": null, "last_owner": "node2", "flags": []}
after:
  description: The outcome clusterd reported (absent when nothing was done or in check mode).
  type: dict
  returned: changed and not check mode
  sample: {"name": "service:web", "state": "started", "owner": "node1"}
reason:
  description: Why the module acted or did not.
  type: str
  returned: success
  sample: service is started on node1
error_code:
  description: Stable error code of clusterd (V(not_installed), V(not_running), V(not_supported), V(unknown_service) ...).
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
    STATE_ACTIONS,
    StatusError,
    find_service,
    service_needs,
)


def refusal(params: dict) -> str | None:
    """member and follow_domain go with state=enabled only, and not together (an
    argument_spec cannot say so)."""
    if params["member"] is not None and params["state"] != "enabled":
        return ("member is only valid with state=enabled (use redhat.cluster.relocate to "
                "move a running service)")
    if params.get("follow_domain") and (params["state"] != "enabled"
                                        or params["member"] is not None):
        return ("follow_domain is only valid with state=enabled and without member (the "
                "domain picks the node)")
    return None


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    status = client.request("status").get("status") or {}
    try:
        before = find_service(status, params["name"])
    except StatusError as exc:
        raise AdminError("unknown_service", str(exc)) from None
    act, reason = service_needs(params["state"], before, params["member"])
    result = {"changed": act, "before": before, "reason": reason}
    if act and not check_mode:
        extra = {"follow_domain": True} if params.get("follow_domain") else {}
        reply = client.request("service", action=STATE_ACTIONS[params["state"]],
                               service=params["name"], member=params["member"],
                               timeout=params["timeout"], **extra)
        result["after"] = reply.get("result") or {}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", required=True, choices=list(STATE_ACTIONS)),
            member=dict(type="str"),
            follow_domain=dict(type="bool", default=False),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    run_module(module, "service_state", run, refuse=refusal)


if __name__ == "__main__":
    main()
