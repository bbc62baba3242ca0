#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_service
short_description: Manage a cluster service and its resource tree in cluster.conf
version_added: 0.1.0
description:
  - Creates, updates or removes one service (C(rm/service)) with its attributes and its tree of
    resources, as rgmanager knew them.
  - The options describe the whole service; attributes left unset take clusterd's defaults.
  - Reconfiguration is a diff inside clusterd; unchanged resources keep running, and attributes
    such as O(domain), O(recovery) or O(autostart) apply without a restart.
  - A service takes no secrets. A resource that needs one (a password, a token ... - every name the
    collection's secret rule matches) is a global resource defined with
    M(redhat.cluster.cluster_resource) and its C(no_log) option C(secret_attrs), referenced here
    as C({type, ref}). A secret-named key in O(attrs) or in any C(attrs) of O(resources) is
    refused before the module runs; see the notes.
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.CONFIG
  - redhat.cluster.attributes.SECRETS
options:
  name:
    description: Service name (clustat shows it as C(service:NAME)).
    type: str
    required: true
  state:
    description: Whether the service exists in cluster.conf. To start or stop it use M(redhat.cluster.service_state).
    type: str
    choices: [present, absent]
    default: present
  domain:
    description: Failover domain of the service.
    type: str
  recovery:
    description: What to do when a resource of the service fails.
    type: str
    choices: [restart, relocate, disable, restart-disable]
  autostart:
    description: Start the service when the cluster becomes quorate.
    type: bool
  exclusive:
    description: Run the service only on a node that runs no other service.
    type: bool
  max_restarts:
    description: Restarts tolerated within O(restart_expire_time) before the service is relocated.
    type: int
  restart_expire_time:
    description: Seconds after which a restart is forgotten.
    type: int
  depend:
    description: Service this one depends on (C(service:NAME)).
    type: str
  attrs:
    description: Other service attributes (for example C(nfslock)), as strings; the typed options above win over them.
    type: dict
    default: {}
  resources:
    description:
      - The resource tree of the service, in start order within each type level.
      - Each item is either a typed resource C({type, attrs, children}) with C(type) such as
        C(ip), C(fs), C(script), C(ocf) (C(attrs.agent) like C(heartbeat:nginx)) or C(systemd)
        (C(attrs.unit)), C(attrs) a dict of its parameters and C(children) a list of items of
        the same form, or a reference to a global resource C({type, ref}) (see M(redhat.cluster.cluster_resource)).
    type: list
    elements: dict
    default: []
seealso:
  - module: redhat.cluster.failover_domain
  - module: redhat.cluster.service_state
  - module: redhat.cluster.relocate
"""

EXAMPLES = r"""
- name: Web service with an address and nginx, in the web_nodes domain
  redhat.cluster.cluster_service:
    name: web
    domain: web_nodes
    recovery: relocate
    autostart: true
    max_restarts: 3
    restart_expire_time: 300
    resources:
      - type: ip
        attrs: {address: 198.18.0.100/24, monitor_link: "1"}
        children:
          - type: ocf
            attrs: {name: nginx, agent: "heartbeat:nginx", configfile: /etc/nginx/nginx.conf}
  run_once: true

- name: Service that uses a global resource
  redhat.cluster.cluster_service:
    name: db
    resources:
      - {type: ip, ref: 198.18.0.101}
      - type: systemd
        attrs: {name: pg, unit: postgresql.service}

- name: A service whose database resource needs a password (defined with its secret first)
  redhat.cluster.cluster_service:
    name: orders
    resources:
      - {type: ocf, ref: db}   # redhat.cluster.cluster_resource with secret_attrs

- name: Remove a service
  redhat.cluster.cluster_service:
    name: old
    state: absent
"""

RETURN = r"""
config_version:
  description: C(config_version) of cluster.conf after the task (the would-be version in check mode).
  type: int
  returned: success
  sample: 6
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
      sample: cluster.conf (version 5)
    after_header:
      description: Name and version of the after side.
      type: str
      sample: cluster.conf (version 6)
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
  sample: [{"where": "/cluster/rm/service[@name='web']", "reason": "unknown failover domain 'nowhere'"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.admin import (
    AdminClient,
    run_edit,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.main import (
    run_module,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.options import (
    service_attrs,
)


def edit_args(params: dict) -> dict:
    """Module options -> arguments of clusterd's set_service edit."""
    if params["state"] == "absent":
        return {"name": params["name"], "state": "absent"}
    return {"name": params["name"], "attrs": service_attrs(params),
            "resources": params["resources"], "state": "present"}


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    return run_edit(client, "set_service", edit_args(params), check_mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            domain=dict(type="str"),
            recovery=dict(type="str", choices=["restart", "relocate", "disable",
                                               "restart-disable"]),
            autostart=dict(type="bool"),
            exclusive=dict(type="bool"),
            max_restarts=dict(type="int"),
            restart_expire_time=dict(type="int"),
            depend=dict(type="str"),
            attrs=dict(type="dict", default={}),
            resources=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    run_module(module, "cluster_service", run)


if __name__ == "__main__":
    main()
