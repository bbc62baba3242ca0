#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_alert
short_description: Manage an alert program in cluster.conf
version_added: 0.1.0
description:
  - Creates, updates or removes one alert (C(clusterd/alert)), a program clusterd runs on node,
    quorum, fence and service events, with the event in C(CLUSTER_ALERT_*) environment variables
    (docs/alerts.md).
  - The program must be one root-owned executable named by its absolute path (no shell, no
    arguments); the C(cluster_node) role installs two samples in C(/usr/libexec/clusterd/alerts)
    (C(alert_journal), C(alert_webhook)).
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.CONFIG
options:
  name:
    description: Name of the alert (1-64 letters, digits, C(_), C(.), C(-)).
    type: str
    required: true
  program:
    description: Absolute path of the program to run. Required to create an alert.
    type: path
  recipient:
    description:
      - Passed to the program as C(CLUSTER_ALERT_RECIPIENT) (for alert_webhook, the URL to POST to).
      - An empty string removes it. Not treated as a secret; keep tokens in the program's own configuration.
    type: str
  timeout:
    description: Seconds (1 to 3600) after which the program's process group is killed.
    type: int
    default: 30
  events:
    description: Kinds of events the program gets; all of them when not given (or empty).
    type: list
    elements: str
    choices: [node, quorum, fence, service]
  state:
    description: Whether the alert exists.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Post every fence and service event to a webhook
  redhat.cluster.cluster_alert:
    name: hook
    program: /usr/libexec/clusterd/alerts/alert_webhook
    recipient: https://alerts.example.com/hook
    timeout: 10
    events: [fence, service]
  run_once: true

- name: A line in the journal for every event
  redhat.cluster.cluster_alert:
    name: journal
    program: /usr/libexec/clusterd/alerts/alert_journal

- name: Remove an alert
  redhat.cluster.cluster_alert:
    name: old
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
  sample: [{"where": "/cluster/clusterd/alert[@name='hook']", "reason": "timeout=\"0\" is not 1..3600 seconds"}]
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
    """Module options -> arguments of clusterd's set_alert edit."""
    if params["state"] == "absent":
        return {"name": params["name"], "state": "absent"}
    return drop_none({"name": params["name"], "program": params["program"],
                      "recipient": params["recipient"], "timeout": params["timeout"],
                      "events": params["events"], "state": "present"})


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    return run_edit(client, "set_alert", edit_args(params), check_mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            program=dict(type="path"),
            recipient=dict(type="str", no_log=False),
            timeout=dict(type="int", default=30),
            events=dict(type="list", elements="str",
                        choices=["node", "quorum", "fence", "service"]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    run_module(module, "cluster_alert", run)


if __name__ == "__main__":
    main()
