# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Private to the redhat.cluster collection: may change at any time.

"""Pure reading of clusterd's status document (what clustat shows) and the decisions of the
action modules: is the requested service or node state already there?"""

from __future__ import annotations

import typing as t

SERVICE_PREFIX = "service:"

# service_state option value -> control action of cluster_admin ("service" op)
STATE_ACTIONS = {"enabled": "enable", "disabled": "disable", "restarted": "restart",
                 "stopped": "stop", "frozen": "freeze", "unfrozen": "unfreeze"}
RUNNING_STATES = frozenset({"started", "starting"})


class StatusError(Exception):
    """The status document does not answer the question (unknown service or node)."""


def service_key(name: str) -> str:
    """clustat names services ``service:NAME``; accept both spellings."""
    return name if name.startswith(SERVICE_PREFIX) else SERVICE_PREFIX + name


def find_service(status: t.Mapping[str, t.Any], name: str) -> dict[str, t.Any]:
    key = service_key(name)
    for svc in status.get("services") or []:
        if svc.get("name") in (key, name):
            return dict(svc)
    known = ", ".join(sorted(str(s.get("name")) for s in status.get("services") or []))
    raise StatusError(f"service {name} is not configured in the cluster "
                      f"(known: {known or 'none'})")


def find_node(status: t.Mapping[str, t.Any], name: str) -> dict[str, t.Any]:
    for node in status.get("nodes") or []:
        if node.get("name") == name:
            return dict(node)
    known = ", ".join(sorted(str(n.get("name")) for n in status.get("nodes") or []))
    raise StatusError(f"node {name} is not a cluster member (known: {known or 'none'})")


def is_frozen(svc: t.Mapping[str, t.Any]) -> bool:
    return "frozen" in (svc.get("flags") or [])


def service_needs(state: str, svc: t.Mapping[str, t.Any], member: str | None = None
                  ) -> tuple[bool, str]:
    """(act?, reason) for service_state: nothing to do when the service shows ``state``."""
    current, owner = svc.get("state"), svc.get("owner")
    if state == "restarted":
        return True, "restart requested (always acts)"
    if state == "enabled":
        if current in RUNNING_STATES and (member is None or owner == member):
            return False, f"service is {current} on {owner}"
        if current in RUNNING_STATES:
            return True, f"service is {current} on {owner}, wanted on {member}"
        return True, f"service is {current}"
    if state == "disabled":
        return current != "disabled", f"service is {current}"
    if state == "stopped":
        return current not in ("stopped", "disabled"), f"service is {current}"
    if state == "frozen":
        return not is_frozen(svc), f"service frozen flag is {is_frozen(svc)}"
    if state == "unfrozen":
        return is_frozen(svc), f"service frozen flag is {is_frozen(svc)}"
    raise ValueError(f"unknown service state {state!r}")


def relocate_needs(svc: t.Mapping[str, t.Any], member: str | None) -> tuple[bool, str]:
    """(act?, reason) for relocate: no move when already on the requested member."""
    owner = svc.get("owner")
    if member is not None and owner == member and svc.get("state") in RUNNING_STATES:
        return False, f"service already runs on {member}"
    if member is None:
        return True, "relocate to the best member requested (always acts)"
    return True, f"service is {svc.get('state')} on {owner}, wanted on {member}"


def is_standby(node: t.Mapping[str, t.Any]) -> bool:
    """A node in standby runs no services and takes none (``standby`` flag of the node)."""
    return bool(node.get("standby")) or "standby" in (node.get("flags") or [])


def node_needs(state: str, node: t.Mapping[str, t.Any]) -> tuple[bool, str]:
    standby = is_standby(node)
    if state == "standby":
        return not standby, "node is %s" % ("in standby" if standby else "active")
    if state == "active":
        return standby, "node is %s" % ("in standby" if standby else "active")
    raise ValueError(f"unknown node state {state!r}")


def summarize(status: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The facts cluster_info returns from a status document (what clustat shows)."""
    quorum = dict(status.get("quorum") or {})
    cluster = dict(status.get("cluster") or {})
    return {
        "cluster_name": cluster.get("name"),
        "config_version": cluster.get("config_version"),
        "quorate": bool(quorum.get("quorate")),
        "current": bool(quorum.get("quorate")) and bool((status.get("view") or {}).get("members")),
        "quorum": quorum,
        "local_node": (status.get("local") or {}).get("name"),
        "members": [dict(n) for n in status.get("nodes") or []],
        "services": [dict(s) for s in status.get("services") or []],
        "fencing": [dict(f) for f in status.get("fencing") or []],
    }


def _services_on(status: t.Mapping[str, t.Any], node: str) -> list[str]:
    return [str(s.get("name")) for s in status.get("services") or []
            if s.get("owner") == node and s.get("state") in RUNNING_STATES]


def candidates(options: t.Mapping[str, t.Any], status: t.Mapping[str, t.Any]
               ) -> dict[str, list[dict[str, t.Any]]]:
    """Per service, whether each node may run it and why (domain and exclusive rules).

    ``options`` is the export in module-argument form (services, failover_domains); the
    status tells which nodes are online, in standby, and what they run. Explanatory only:
    clusterd's placement makes the decision.
    """
    domains = {d.get("name"): d for d in options.get("failover_domains") or []}
    exclusive = {service_key(str(s.get("name")))
                 for s in options.get("services") or [] if s.get("exclusive")}
    answer: dict[str, list[dict[str, t.Any]]] = {}
    for svc in options.get("services") or []:
        key = service_key(str(svc.get("name")))
        domain = domains.get(svc.get("domain")) if svc.get("domain") else None
        prio = {m.get("name"): m.get("priority") for m in (domain or {}).get("members") or []}
        rows = []
        for node in status.get("nodes") or []:
            name = node.get("name")
            others = [s for s in _services_on(status, name) if s != key]
            if node.get("state") != "online":
                ok, why = False, f"node is {node.get('state')}"
            elif is_standby(node):
                ok, why = False, "node is in standby"
            elif domain is not None and name not in prio and domain.get("restricted"):
                ok, why = False, f"not a member of restricted domain {domain.get('name')}"
            elif key in exclusive and others:
                ok, why = False, f"{key} is exclusive and the node runs {', '.join(others)}"
            elif any(o in exclusive for o in others):
                running = ", ".join(o for o in others if o in exclusive)
                ok, why = False, f"the node runs exclusive service {running}"
            elif domain is None:
                ok, why = True, "no failover domain: any online member"
            elif name not in prio:
                ok, why = True, (f"outside unrestricted domain {domain.get('name')}: used "
                                 "only when no member is up")
            elif domain.get("ordered"):
                ok, why = True, (f"member of ordered domain {domain.get('name')}, "
                                 f"priority {prio[name]}")
            else:
                ok, why = True, f"member of domain {domain.get('name')}"
            rows.append({"node": name, "candidate": ok, "reason": why})
        answer[key] = rows
    return answer
