# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Private to the redhat.cluster collection: may change at any time.

"""Module options <-> arguments of clusterd's config edits (pure).

clusterd's ``export`` gives the running config in the arguments of its edit operations;
:func:`module_args` turns that into the options of this collection's modules, so that
feeding the export back to the modules changes nothing (adoption of a running cluster).
"""

from __future__ import annotations

import typing as t

from ansible_collections.redhat.cluster.plugins.module_utils._clusterd.secrets import (
    split_secrets,
)

# cluster_service typed options -> service attribute names in cluster.conf
SERVICE_BOOL_ATTRS = ("autostart", "exclusive")
SERVICE_INT_ATTRS = ("max_restarts", "restart_expire_time")
SERVICE_STR_ATTRS = ("domain", "recovery", "depend")
SERVICE_ATTRS = SERVICE_STR_ATTRS + SERVICE_BOOL_ATTRS + SERVICE_INT_ATTRS

CLUSTER_KEYS = ("name", "nodes", "two_node", "expected_votes", "token", "post_join_delay",
                "post_fail_delay", "clean_start", "quorum_disk")


def service_attrs(params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The cluster.conf attributes of a service from cluster_service options (unset: omitted).

    ``attrs`` holds attributes without a typed option; a typed option wins over it.
    """
    attrs: dict[str, t.Any] = dict(params.get("attrs") or {})
    for key in SERVICE_ATTRS:
        value = params.get(key)
        if value is None:
            continue
        if key in SERVICE_BOOL_ATTRS:
            attrs[key] = "1" if value else "0"
        else:
            attrs[key] = str(value)
    return attrs


# clusterd.truth's boolean words (the collection cannot import clusterd; tests/collection/
# test_truth_copies.py keeps this copy equal).
TRUE_WORDS = ("1", "yes", "true", "on")
FALSE_WORDS = ("0", "no", "false", "off")


def _bool(value: t.Any) -> bool:
    """An exported boolean attribute (clusterd validated it: 1 or 0) as a module option."""
    word = str(value).strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise ValueError(f"{value!r} is not a boolean: use 1/0, yes/no, true/false or on/off")
    return word in TRUE_WORDS


def service_options(export: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """set_service arguments (name, attrs, resources) -> cluster_service options."""
    attrs = dict(export.get("attrs") or {})
    opts: dict[str, t.Any] = {"name": export["name"], "state": "present",
                              "resources": list(export.get("resources") or [])}
    for key in SERVICE_ATTRS:
        if key not in attrs:
            continue
        value = attrs.pop(key)
        if key in SERVICE_BOOL_ATTRS:
            opts[key] = _bool(value)
        elif key in SERVICE_INT_ATTRS:
            opts[key] = int(value)
        else:
            opts[key] = value
    if attrs:
        opts["attrs"] = attrs
    return opts


def fence_device_options(export: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """set_fence_device arguments -> fence_device options (secrets in secret_params)."""
    plain, secret = split_secrets(export.get("params") or {})
    opts = {"name": export["name"], "agent": export["agent"], "params": plain,
            "state": "present"}
    if secret:
        opts["secret_params"] = secret
    return opts


def resource_options(export: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """set_resource arguments -> cluster_resource options (secrets in secret_attrs)."""
    plain, secret = split_secrets(export.get("attrs") or {})
    opts = {"type": export["type"], "attrs": plain, "state": "present"}
    if secret:
        opts["secret_attrs"] = secret
    return opts


def device_ref_options(ref: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A method's or unfence device {name, params} -> {name, params, secret_params}."""
    plain, secret = split_secrets(ref.get("params") or {})
    opts = {"name": ref["name"], "params": plain}
    if secret:
        opts["secret_params"] = secret
    return opts


def node_fence_options(export: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """set_node_fence arguments (node, methods, unfence) -> fence_device options for a node
    (per-node secrets in each device's secret_params)."""
    methods = [{"name": m["name"],
                "devices": [device_ref_options(d) for d in m.get("devices") or []]}
               for m in export.get("methods") or []]
    return {"node": export["node"], "methods": methods,
            "unfence": [device_ref_options(d) for d in export.get("unfence") or []]}


def module_args(export: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """clusterd's export -> the options of each config module of this collection."""
    cluster = dict(export.get("cluster") or {})
    return {
        "cluster_conf": {k: cluster[k] for k in CLUSTER_KEYS if cluster.get(k) is not None},
        "failover_domains": [dict(d) for d in export.get("failover_domains") or []],
        "resources": [resource_options(r) for r in export.get("resources") or []],
        "services": [service_options(s) for s in export.get("services") or []],
        "fence_devices": [fence_device_options(d) for d in export.get("fence_devices") or []],
        "node_fences": [node_fence_options(n) for n in export.get("node_fence") or []],
    }
