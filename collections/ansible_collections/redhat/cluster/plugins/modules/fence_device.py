#!/usr/bin/python
# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fence_device
short_description: Manage fence devices and per-node fence methods, and verify fence paths
version_added: 0.1.0
description:
  - With O(name), manages one fence device (C(fencedevices/fencedevice)) - its agent and parameters.
  - With O(node), sets the complete list of fence methods of one node (C(clusternode/fence/method/device)).
    Methods are tried in order; every device of a method must succeed.
  - With O(verify=true), runs every node's fence path with the agent's C(status) action (or
    C(monitor) where the agent has no per-port status) through clusterd and reports the nodes
    that have no working fence path. Nothing is powered off and cluster.conf is not changed.
  - Secret parameters (passwords, SNMP communities, tokens, keys - every name the collection's
    secret rule matches) go in O(secret_params) or a device's O(methods[].devices[].secret_params),
    which are C(no_log) - never printed, never logged on the node, sent to clusterd on stdin only
    and masked in the diff. A secret-named key in O(params) or anywhere else is refused before
    the module runs, naming the option to use; see the notes.
  - A secret parameter may hold a reference C(secret://NAME#sha256=HEX) instead of the secret;
    clusterd reads the value from C(/etc/cluster/secrets/NAME) (root, mode 0600 or 0400)
    on the node that runs the agent. The reference goes in O(secret_params) too.
author:
  - redhat.cluster developers (@redhat-cluster)
extends_documentation_fragment:
  - redhat.cluster.attributes
  - redhat.cluster.attributes.CONFIG
  - redhat.cluster.attributes.SECRETS
options:
  name:
    description: Name of the fence device.
    type: str
  agent:
    description: Fence agent program, such as C(fence_ipmilan). Required with O(name) and O(state=present).
    type: str
  params:
    description:
      - Parameters of the device that are not secret (C(ipaddr), C(login), C(lanplus), C(power_wait) ...).
      - A secret-named key (C(passwd), C(password), C(community) ...) is refused; put it in O(secret_params).
      - Any parameter the agent declares in its own metadata (C(fence_ipmilan -o metadata)) may be
        given, here and in a node's O(methods[].devices[].params). On the node, clusterd refuses a
        parameter the agent does not declare, a value its declared type refuses (boolean, integer,
        seconds, one of a list) and an agent that is not installed or does not answer, naming the
        agent and the parameter; in check mode too.
    type: dict
    default: {}
  secret_params:
    description:
      - Secret parameters of the device (C(passwd) ..., or C(secret://) references to them). Merged with O(params).
      - Never printed or logged (C(no_log)); masked in the diff.
    type: dict
    default: {}
  state:
    description: Whether the device exists (with O(name)). A device still used by a node method cannot be removed.
    type: str
    choices: [present, absent]
    default: present
  node:
    description: Node whose fence methods O(methods) sets.
    type: str
  methods:
    description: The complete, ordered fence methods of O(node); an empty list removes them.
    type: list
    elements: dict
    suboptions:
      name:
        description: Method name.
        type: str
        required: true
      devices:
        description: Devices of the method, tried together.
        type: list
        elements: dict
        required: true
        suboptions: &device
          name:
            description: Name of a fence device (O(name) of another task of this module).
            type: str
            required: true
          params:
            description:
              - Per-node parameters that are not secret, such as C(port) or C(plug).
              - A secret-named key is refused; put it in C(secret_params).
            type: dict
            default: {}
          secret_params:
            description:
              - Per-node secret parameters (or C(secret://) references). Merged with C(params).
              - Never printed or logged (C(no_log)); masked in the diff.
            type: dict
            default: {}
  unfence:
    description: With O(node), the complete list of unfence devices of the node; unset leaves them alone.
    type: list
    elements: dict
    suboptions: *device
  verify:
    description: Verify the fence path of every node (or of O(nodes)) instead of changing the config.
    type: bool
    default: false
  nodes:
    description: With O(verify=true), the nodes to verify (default all).
    type: list
    elements: str
  fail_on_missing:
    description:
      - With O(verify=true), fail when a node has no working fence path, naming the nodes.
      - V(false) only warns (the result still lists RV(unfenceable_nodes)).
    type: bool
    default: true
seealso:
  - module: redhat.cluster.cluster_conf
"""

EXAMPLES = r"""
- name: IPMI fence device for node1
  redhat.cluster.fence_device:
    name: ipmi_node1
    agent: fence_ipmilan
    params: {ipaddr: 198.18.1.11, login: admin, lanplus: "1", cipher: "3", power_wait: "0"}
    secret_params:
      passwd: "{{ vault_ipmi_password }}"
  run_once: true

- name: Fence method of node1
  redhat.cluster.fence_device:
    node: node1
    methods:
      - name: ipmi
        devices:
          - {name: ipmi_node1}

- name: Password kept out of cluster.conf (clusterd reads /etc/cluster/secrets/ipmi_node2)
  redhat.cluster.fence_device:
    name: ipmi_node2
    agent: fence_ipmilan
    params: {ipaddr: 198.18.1.12, login: admin, lanplus: "1"}
    secret_params:
      passwd: "secret://ipmi_node2#sha256={{ vault_ipmi_password | hash('sha256') }}"
  run_once: true

- name: A switch port per node, the switch's SNMP community kept secret
  redhat.cluster.fence_device:
    node: node1
    methods:
      - name: power
        devices:
          - name: apc
            params: {port: "3"}
            secret_params: {community: "{{ vault_apc_community }}"}

- name: Check that every node can be fenced
  redhat.cluster.fence_device:
    verify: true
  run_once: true
"""

RETURN = r"""
config_version:
  description: C(config_version) of cluster.conf after the task (not with O(verify=true)).
  type: int
  returned: success and not verify
  sample: 7
source:
  description: V(daemon) (proposed to the running clusterd) or V(file) (local file, daemon not running).
  type: str
  returned: success and not verify
  sample: daemon
diff:
  description: cluster.conf before and after, secrets masked.
  type: dict
  returned: success and not verify, in diff mode
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
    after_header:
      description: Name and version of the after side.
      type: str
fence_verify:
  description:
    - Per node, the first working fence method or why none works, as clusterd reports it
      (C(node), C(ok), C(method), C(error), C(methods) with each device's C(action), C(ok),
      C(power) or C(error)). Agent output is redacted; no parameter value is returned.
  type: list
  elements: dict
  returned: verify
  sample:
    - {"node": "node1", "ok": true, "method": "ipmi"}
    - {"node": "node2", "ok": false, "method": "", "error": "method ipmi: fence_ipmilan status: timed out after 25s"}
unfenceable_nodes:
  description: Nodes with no working fence path.
  type: list
  elements: str
  returned: verify
  sample: [node2]
error_code:
  description: Stable error code of clusterd (V(invalid), V(not_installed), V(not_running), V(not_supported) ...).
  type: str
  returned: failure
  sample: invalid
problems:
  description: Validation problems, each naming the element and the reason.
  type: list
  elements: dict
  returned: failure
  sample: [{"where": "/cluster/clusternodes/clusternode[@name='node1']/fence/method[@name='ipmi']/device[@name='nope']", "reason": "unknown fence device"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.admin import (
    AdminClient,
    run_edit,
)
from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.main import (
    run_module,
)

DEVICE_OPTIONS = dict(
    name=dict(type="str", required=True),
    params=dict(type="dict", default={}),
    secret_params=dict(type="dict", default={}, no_log=True),
)


def device_args(params: dict) -> dict:
    if params["state"] == "absent":
        return {"name": params["name"], "state": "absent"}
    merged = dict(params["params"] or {})
    merged.update(params["secret_params"] or {})
    return {"name": params["name"], "agent": params["agent"], "params": merged,
            "state": "present"}


def device_refs(devices: list) -> list:
    """Method or unfence devices -> clusterd's [{name, params}] (secret_params merged)."""
    refs = []
    for dev in devices or []:
        merged = dict(dev.get("params") or {})
        merged.update(dev.get("secret_params") or {})
        refs.append({"name": dev["name"], "params": merged} if merged else {"name": dev["name"]})
    return refs


def verify(client: AdminClient, params: dict) -> dict:
    fields = {"nodes": params["nodes"]} if params["nodes"] else {}
    reply = client.request("fence.verify", **fields)
    paths = list((reply.get("result") or {}).get("nodes") or [])
    missing = sorted(str(p.get("node")) for p in paths if not p.get("ok"))
    return {"changed": False, "fence_verify": paths, "unfenceable_nodes": missing}


def refusal(params: dict) -> str | None:
    """Option combinations the argument_spec cannot express: the message, or None."""
    if not params["verify"] and params["name"] is None and params["node"] is None:
        return ("one of name (a fence device), node (its fence methods) or verify=true is "
                "required")
    if params["name"] is not None and params["state"] == "present" and not params["agent"]:
        return f"agent is required to define fence device {params['name']}"
    return None


def unfenceable_message(result: dict) -> str:
    """One sentence naming every node without a working fence path and why."""
    why = {str(p.get("node")): p.get("error") or "no method answered"
           for p in result["fence_verify"] if not p.get("ok")}
    details = "; ".join(f"{node}: {why[node]}" for node in result["unfenceable_nodes"])
    return (f"no working fence path for node(s) {', '.join(result['unfenceable_nodes'])} "
            f"({details}); fix the fence devices or BMCs before relying on failover")


def report_unfenceable(module: AnsibleModule, result: dict) -> None:
    """With verify=true, nodes without a working fence path fail the task (with the
    whole result) or, with fail_on_missing=false, are a warning."""
    if module.params["verify"] and result.get("unfenceable_nodes"):
        if module.params["fail_on_missing"]:
            module.fail_json(msg=unfenceable_message(result), **result)
        module.warn(unfenceable_message(result))


def run(client: AdminClient, params: dict, check_mode: bool) -> dict:
    if params["verify"]:
        return verify(client, params)
    if params["node"] is not None:
        args = {"node": params["node"],
                "methods": [{"name": m["name"], "devices": device_refs(m["devices"])}
                            for m in params["methods"]]}
        if params["unfence"] is not None:
            args["unfence"] = device_refs(params["unfence"])
        return run_edit(client, "set_node_fence", args, check_mode)
    return run_edit(client, "set_fence_device", device_args(params), check_mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            agent=dict(type="str"),
            params=dict(type="dict", default={}),
            secret_params=dict(type="dict", default={}, no_log=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            node=dict(type="str"),
            methods=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                devices=dict(type="list", elements="dict", required=True,
                             options=DEVICE_OPTIONS),
            )),
            unfence=dict(type="list", elements="dict", options=DEVICE_OPTIONS),
            verify=dict(type="bool", default=False),
            nodes=dict(type="list", elements="str"),
            fail_on_missing=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("name", "node")],
        required_by={"methods": ("node",), "unfence": ("node",)},
        required_together=[("node", "methods")],
        supports_check_mode=True,
    )
    run_module(module, "fence_device", run, refuse=refusal, report=report_unfenceable)


if __name__ == "__main__":
    main()
