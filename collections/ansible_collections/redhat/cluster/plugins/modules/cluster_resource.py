#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_resource
short_description: Manage a global resource in cluster.conf
version_added: 0.1.0
description:
  - Creates, updates or removes one global resource (C(rm/resources/TYPE)) that services
    reference with C({type, ref}) in M(redhat.cluster.cluster_service).
  - A resource is identified by its type and its primary attribute (C(address) for C(ip),
    C(name) for the others).
  - Secret parameters (an agent's C(password), C(test_passwd), C(api_token) ... - every name the
    collection's secret rule matches) go in O(secret_attrs), which is C(no_log) - never printed,
    never logged on the node, sent to clusterd on stdin only and masked in the diff. A
    secret-named key in O(attrs) is refused before the module runs; see the notes.
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.CONFIG
  - redhat.cluster.attributes.SECRETS
options:
  type:
    description: Resource type (C(ip), C(fs), C(script), C(ocf), C(systemd) ...).
    type: str
    required: true
  attrs:
    description:
      - Parameters of the resource, including its primary attribute; with O(secret_attrs) the complete set.
      - A secret-named key is refused; put it in O(secret_attrs).
    type: dict
    required: true
  secret_attrs:
    description:
      - Secret parameters of the resource. Merged with O(attrs).
      - Never printed or logged (C(no_log)); masked in the diff.
    type: dict
    default: {}
  state:
    description: Whether the resource exists.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: redhat.cluster.cluster_service
"""

EXAMPLES = r"""
- name: A floating address that services reference
  redhat.cluster.cluster_resource:
    type: ip
    attrs: {address: 198.18.0.101/24, monitor_link: "1"}
  run_once: true

- name: A database agent whose monitor logs in with a password
  redhat.cluster.cluster_resource:
    type: ocf
    attrs: {name: db, agent: "heartbeat:mysql", test_user: monitor}
    secret_attrs:
      test_passwd: "{{ vault_db_monitor_password }}"
  run_once: true
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
  sample: [{"where": "resource ip", "reason": "attrs must include the primary key 'address'"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.admin import (
    AdminClient,
    run_edit,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.main import (
    run_module,
)


def edit_args(params: dict) -> dict:
    """Module options -> arguments of clusterd's set_resource edit."""
    attrs = dict(params["attrs"])
    attrs.update(params["secret_attrs"] or {})
    return {"type": params["type"], "attrs": attrs, "state": params["state"]}


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    return run_edit(client, "set_resource", edit_args(params), check_mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            type=dict(type="str", required=True),
            attrs=dict(type="dict", required=True),
            secret_attrs=dict(type="dict", default={}, no_log=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    run_module(module, "cluster_resource", run)


if __name__ == "__main__":
    main()
