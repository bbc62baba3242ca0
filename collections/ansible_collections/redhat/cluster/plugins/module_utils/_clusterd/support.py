# Copyright (c) redhat.cluster developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Private to the redhat.cluster collection: may change at any time.

"""What clusterd does with each part of cluster.conf, for module warnings (pure).

The table is clusterd's (``clusterd.conf.support_table``, explained there): each element
and attribute of the schema is ``honoured`` (detail: the clusterd modules that read it),
``ignored`` (accepted but not used; detail: what to use instead; an ignored element covers
everything inside it) or ``rewrite`` (a resource type with no agent built into clusterd).
The collection cannot import clusterd; tests/collection/test_support_table.py keeps this
copy equal to it and this walker's findings equal to ``clusterd.conf.support``'s.

:func:`unused_warnings` reads the cluster.conf a module wrote (the ``after`` side of
cluster_admin's diff) and returns one warning per part clusterd accepts but does not use:
"accepted but not used by clusterd: XPATH (what to use instead)".
"""

from __future__ import annotations

import typing as t
from xml.etree import ElementTree

UNUSED = "accepted but not used by clusterd"
_KEYS = ("name", "ref", "address")  # the attributes element paths quote, in this order

# ---- the table: a copy of clusterd.conf.support_table, from HONOURED to the end ----
HONOURED = "honoured"
IGNORED = "ignored"
REWRITE = "rewrite"

_MODEL = "clusterd.conf.model"
_PLACEMENT = "clusterd.placement.config"
_TREE = "clusterd.resources.tree"
_PLAN = "clusterd.fencing.plan"
_RHCS = "clusterd.resources.agents.rhcs_types"
_NFS = "clusterd.resources.agents.rhcs_nfs"
_NFSEXPORT = "clusterd.resources.agents.nfsexport"
_SAMBA = "clusterd.resources.agents.samba"

_QDISK = "clusterd.conf.qdisk"
_QDISK_RUN = ("clusterd's quorum disk does not reboot or kill nodes: a node whose score falls "
              "below min_score, or that stops writing the disk, loses the disk's votes; if "
              "its view is then inquorate it stops its services, and the quorate side, "
              "which holds the disk, fences it")
_QDISK_TUNING = ("clusterd runs the quorum disk's I/O in a thread of its daemon, with "
                 "O_DIRECT, and counts an I/O slower than half an interval as failed: "
                 "nothing to tune beyond interval and tko; status is in clustat -x and "
                 "the status document")
_ONE_RING = ("clusterd uses one network, each node's clusternode name as its address and "
             "cman@port: bond the interfaces for a redundant link")
_UNICAST = ("clusterd sends unicast UDP to each node's address on cman@port: no multicast "
            "or broadcast to configure")
_JOURNAL = ("clusterd logs to the journal: choose the level with clusterd --log-level and "
            "filter or forward with journalctl/journald settings")
_TOTEM = ("clusterd has no totem ring: a peer silent for totem@token ms is suspected and "
          "views are agreed among members; totem@token is the one timer to tune")
_KEY = ("every packet is authenticated and encrypted with clusterd's key: clusterd "
        "--authkey, default /etc/cluster/authkey; see docs/security.md")
_NO_DLM = ("clusterd runs no DLM, so no GFS2, clvmd or gfs_controld: use <fs> on storage "
           "active on one node at a time, and LVM through <ocf "
           "agent=\"heartbeat:LVM-activate\">")
_NO_EVENTS = ("clusterd has no event engine for central_processing: services are placed "
              "by their failover domain, depend= and depend_mode=")
_NO_NFSLOCK = ("clusterd does no NFS lock reclaim: serve NFS with <ocf "
               "agent=\"heartbeat:nfsserver\">, which notifies the clients")
_FENCED_ON_FAILED_STOP = ("clusterd always does this: a stop that fails marks the service "
                          "failed and, where fencing is configured, has its node fenced, "
                          "then recovers the service elsewhere")


def _h(*readers: str) -> tuple[str, str]:
    return (HONOURED, ", ".join(readers))


def _i(instead: str) -> tuple[str, str]:
    return (IGNORED, instead)


def _rewrite(agent: str, note: str = "") -> tuple[str, str]:
    return (REWRITE, (f"no built-in agent: rewrite as <ocf agent=\"{agent}\" .../>{note}; "
                      "the OCF agent names its parameters differently. Or "
                      "install rgmanager's agent in /usr/share/cluster on every node"))


def _rewrite_unit(unit: str) -> tuple[str, str]:
    return (REWRITE, (f"no built-in agent: rewrite as <systemd unit=\"{unit}\" .../>, its "
                      "settings moving to the unit's files. Or install rgmanager's agent in "
                      "/usr/share/cluster on every node"))


# Attributes rgmanager gives every resource (resources.rng: ref, __independent_subtree ...).
_RESOURCE = {
    "ref": _h(_TREE),
    "__independent_subtree": _h(_TREE),
    "__enforce_timeouts": _h(_TREE),
    "__max_failures": _h(_TREE),
    "__failure_expire_time": _h(_TREE),
}
# RHCS types clusterd runs through their OCF equivalents (resources/agents/rhcs_types.py)
_SERVICE_NAME = _i("rgmanager filled it in to find the service's addresses; clusterd's "
                   "translation to the OCF agent does not need it")
_TRANSLATED = {**_RESOURCE, "name": _h(_TREE, _RHCS)}
_TRANSLATED_APP = {**_TRANSLATED, "service_name": _SERVICE_NAME}
_REWRITE_PARAMS = {**_RESOURCE, "*": (REWRITE, ("a parameter of the rgmanager agent: carry "
                                                "it over to the replacement's parameters"))}
_SERVICE = {
    **_RESOURCE,
    "name": _h(_PLACEMENT, _TREE),
    "domain": _h(_PLACEMENT),
    "autostart": _h(_PLACEMENT),
    "exclusive": _h(_PLACEMENT),
    "recovery": _h(_PLACEMENT),
    "depend": _h(_PLACEMENT),
    "depend_mode": _h(_PLACEMENT),
    "max_restarts": _h(_PLACEMENT),
    "restart_expire_time": _h(_PLACEMENT),
    "hardrecovery": _i(_FENCED_ON_FAILED_STOP),
    "nfslock": _i(_NO_NFSLOCK),
    "nfs_client_cache": _i("it turned on nfsclient.sh's export list cache; clusterd's "
                           "<nfsclient> checks read the export list each time: nothing to "
                           "set"),
    "priority": _i("rgmanager used it only with central_processing; clusterd evaluates "
                   "services in file order"),
}

ELEMENTS: dict[str, tuple[str, str]] = {
    "cluster": _h(_MODEL),
    "cman": _h(_MODEL),
    "multicast": _i(_UNICAST),
    "totem": _h(_MODEL),
    "interface": _i(_ONE_RING),
    "quorumd": _h(_QDISK),
    "heuristic": _h(_QDISK),
    "fence_daemon": _h(_MODEL),
    "fence_xvmd": _i("clusterd does not run fence_xvmd: run fence_virtd from fence-virt on "
                     "the virtualization hosts and use fence_xvm devices"),
    "dlm": _i(_NO_DLM),
    "lockspace": _i(_NO_DLM),
    "master": _i(_NO_DLM),
    "gfs_controld": _i(_NO_DLM),
    "group": _i("clusterd runs no groupd: nothing to set"),
    "logging": _i(_JOURNAL),
    "logging_daemon": _i(_JOURNAL),
    "clusternodes": _h(_MODEL),
    "clusternode": _h(_MODEL),
    "altname": _i(_ONE_RING),
    "fence": _h(_MODEL),
    "method": _h(_MODEL),
    "device": _h(_MODEL),
    "unfence": _h(_MODEL, "clusterd.fencing.methods"),
    "fencedevices": _h(_MODEL),
    "fencedevice": _h(_MODEL),
    "clvmd": _i(_NO_DLM),
    "rm": _h(_MODEL),
    "failoverdomains": _h(_PLACEMENT),
    "failoverdomain": _h(_PLACEMENT),
    "failoverdomainnode": _h(_PLACEMENT),
    "events": _i(_NO_EVENTS),
    "event": _i(_NO_EVENTS),
    "resources": _h(_TREE),
    "service": _h(_PLACEMENT, _TREE),
    "action": _h(_TREE),
    "ip": _h("clusterd.resources.agents.ip"),
    "fs": _h("clusterd.resources.agents.fs"),
    "script": _h("clusterd.resources.agents.script"),
    "vm": _rewrite("heartbeat:VirtualDomain", " inside a <service>"),
    "clusterfs": _rewrite("heartbeat:Filesystem", "; GFS2 needs a DLM, which clusterd does "
                                                  "not run: use <fs> on storage active on "
                                                  "one node at a time"),
    "netfs": _h(_RHCS),
    "nfsexport": _h(_NFSEXPORT),
    "nfsclient": _h(_NFS),
    # not in RHCS 3.0.12's cluster.rng: clusterd's schema adds it (resources/agents/rng.py)
    "nfsserver": _h(_NFS),
    "lvm": _h(_RHCS),
    "drbd": _rewrite("linbit:drbd"),
    "apache": _h(_RHCS),
    "mysql": _h(_RHCS),
    "postgres-8": _h(_RHCS),
    "tomcat-5": _rewrite("heartbeat:tomcat"),
    "openldap": _rewrite("heartbeat:slapd"),
    "named": _rewrite("heartbeat:named"),
    "oracledb": _rewrite("heartbeat:oracle"),
    "SAPInstance": _rewrite("heartbeat:SAPInstance"),
    "SAPDatabase": _rewrite("heartbeat:SAPDatabase"),
    "ASEHAagent": _rewrite("heartbeat:sybaseASE"),
    "samba": _h(_SAMBA),
    # resource-agents has no agent that runs smbd/nmbd (only smb-share and CTDB)
    "smb": _rewrite_unit("smbd.service"),
    # clusterd's own elements (not RHCS): conf/clusterd_element.py, resources/agents/rng.py
    "clusterd": _h("clusterd.conf.clusterd_element"),
    "alert": _h("clusterd.conf.clusterd_element", "clusterd.alerts"),
    "ocf": _h("clusterd.resources.agents.ocf"),
    "systemd": _h("clusterd.resources.agents.systemd"),
}

ATTRIBUTES: dict[str, dict[str, tuple[str, str]]] = {
    "cluster": {"name": _h(_MODEL), "config_version": _h(_MODEL, "clusterd.configsync.core")},
    "cman": {
        "two_node": _h(_MODEL),
        "expected_votes": _h(_MODEL),
        "port": _h(_MODEL),
        "cluster_id": _h(_MODEL, "clusterd.membership.config"),
        "upgrading": _i("not needed: a node accepts the previous wire protocol version, so a "
                        "rolling upgrade runs a mixed cluster: playbooks/rolling_upgrade.yml"),
        "disallowed": _i("clusterd has no Disallowed mode: a node that comes back joins "
                         "through an agreed view with a new incarnation"),
        "quorum_dev_poll": _i("clusterd reads the quorum disk's grant each cycle: nothing "
                              "to poll"),
        "shutdown_timeout": _i("stop timeouts come from each resource's agent meta-data or "
                               "<action name=\"stop\" timeout=...>"),
        "ccsd_poll": _i("clusterd distributes cluster.conf itself, without ccsd: propose changes "
                        "with cluster_admin or the redhat.cluster modules"),
        "debug_mask": _i(_JOURNAL),
        "hash_cluster_id": _i("the cluster id is derived from the name as cman did by "
                              "default; set cman@cluster_id to choose another"),
        "nodename": _i("clusterd finds its node by host name, or clusterd --node NAME"),
        "broadcast": _i(_UNICAST),
        "keyfile": _i(_KEY),
        "disable_openais": _i("clusterd does not use openais: nothing to disable"),
    },
    "multicast": {"addr": _i(_UNICAST)},
    "totem": {
        "token": _h(_MODEL, "clusterd.membership.config"),
        "consensus": _i(_TOTEM),
        "join": _i(_TOTEM),
        "fail_recv_const": _i(_TOTEM),
        "token_retransmits_before_loss_const": _i(_TOTEM),
        "rrp_mode": _i(_ONE_RING),
        "secauth": _i(_KEY),
        "keyfile": _i(_KEY),
    },
    "interface": dict.fromkeys(("ringnumber", "bindnetaddr", "mcastaddr", "mcastport",
                                "broadcast"), _i(_ONE_RING)),
    "quorumd": {
        **dict.fromkeys(("interval", "tko", "votes", "min_score", "device", "label",
                         "master_wins"), _h(_QDISK)),
        **dict.fromkeys(("reboot", "allow_kill", "stop_cman", "paranoid"), _i(_QDISK_RUN)),
        **dict.fromkeys(("status_file", "scheduler", "priority", "max_error_cycles",
                         "io_timeout"), _i(_QDISK_TUNING)),
    },
    "heuristic": dict.fromkeys(("program", "score", "interval", "tko"), _h(_QDISK)),
    "fence_daemon": {
        "post_join_delay": _h(_MODEL, "clusterd.fencing.policy"),
        "post_fail_delay": _h(_MODEL, "clusterd.fencing.state"),
        "clean_start": _h(_MODEL, "clusterd.fencing.state"),
        "override_path": _i("acknowledge a manual fence with fence_ack_manual NODE, which "
                            "talks to clusterd's control socket: no FIFO"),
        "override_time": _i("a failed fence is retried with backoff until it succeeds or "
                            "fence_ack_manual NODE acknowledges it"),
        "skip_undefined": _i("a node with no fence method is never fenced automatically: "
                             "clusterd waits for fence_ack_manual NODE; give every node a "
                             "fence method, or clean_start=\"1\" to skip startup fencing"),
    },
    "fence_xvmd": dict.fromkeys(("debug", "port", "use_uuid", "multicast_address", "auth",
                                 "hash", "uri", "key_file", "multicast_interface"),
                                ELEMENTS["fence_xvmd"]),
    "dlm": dict.fromkeys(("log_debug", "timewarn", "protocol", "enable_fencing",
                          "enable_quorum", "enable_deadlk", "enable_plock", "plock_debug",
                          "plock_rate_limit", "plock_ownership", "drop_resources_time",
                          "drop_resources_count", "drop_resources_age"), _i(_NO_DLM)),
    "lockspace": dict.fromkeys(("name", "nodir"), _i(_NO_DLM)),
    "master": dict.fromkeys(("name", "weight"), _i(_NO_DLM)),
    "gfs_controld": dict.fromkeys(("enable_withdraw", "enable_plock", "plock_debug",
                                   "plock_rate_limit", "plock_ownership",
                                   "drop_resources_time", "drop_resources_count",
                                   "drop_resources_age"), _i(_NO_DLM)),
    "group": {"groupd_compat": ELEMENTS["group"]},
    "logging": dict.fromkeys(("to_syslog", "to_logfile", "syslog_facility", "syslog_priority",
                              "logfile_priority", "logfile", "debug"), _i(_JOURNAL)),
    "logging_daemon": dict.fromkeys(("name", "subsys", "to_syslog", "to_logfile",
                                     "syslog_facility", "syslog_priority", "logfile_priority",
                                     "logfile", "debug"), _i(_JOURNAL)),
    "clusternodes": {},
    "clusternode": {
        "name": _h(_MODEL),
        "nodeid": _h(_MODEL),
        "votes": _h(_MODEL),
        "weight": _i(_NO_DLM),
    },
    "altname": dict.fromkeys(("name", "port", "mcast"), _i(_ONE_RING)),
    "fence": {},
    "method": {"name": _h(_MODEL)},
    "device": {"name": _h(_MODEL, _PLAN),
               "*": _h(_PLAN + " (the node's parameters on top of the device's, on the "
                               "agent's stdin)")},
    "unfence": {},
    "fencedevices": {},
    "fencedevice": {"name": _h(_MODEL, _PLAN), "agent": _h(_MODEL, _PLAN),
                    "*": _h(_PLAN + " (on the fence agent's stdin)")},
    "clvmd": {"interface": _i(_NO_DLM)},
    "rm": {
        "log_level": _i(_JOURNAL),
        "log_facility": _i(_JOURNAL),
        "status_child_max": _i("status checks run as tracked tasks, each with its own "
                               "timeout: no limit to set"),
        "status_poll_interval": _i("status intervals come from each agent's meta-data or "
                                   "<action name=\"status\" interval=...>"),
        "transition_throttling": _i("clusterd decides placement every cycle, about once a "
                                    "second: nothing to throttle"),
        "central_processing": _i(_NO_EVENTS),
    },
    "failoverdomains": {},
    "failoverdomain": dict.fromkeys(("name", "ordered", "restricted", "nofailback"),
                                    _h(_PLACEMENT)),
    "failoverdomainnode": {"name": _h(_PLACEMENT), "priority": _h(_PLACEMENT)},
    "events": {},
    "event": dict.fromkeys(("name", "file", "priority", "class", "service", "service_state",
                            "service_owner", "node", "node_id", "node_state", "node_clean",
                            "node_local"), _i(_NO_EVENTS)),
    "resources": {},
    "service": _SERVICE,
    "action": dict.fromkeys(("name", "depth", "timeout", "interval"), _h(_TREE)),
    "ip": {
        **_RESOURCE,
        "address": _h("clusterd.resources.agents.ip"),
        "family": _h("clusterd.resources.agents.ip"),
        "monitor_link": _h("clusterd.resources.agents.ip"),
        "nfslock": _i(_NO_NFSLOCK),
        "sleeptime": _i("clusterd removes an address without a pause: nothing to set"),
    },
    "fs": {
        **_RESOURCE,
        **dict.fromkeys(("name", "mountpoint", "device", "fstype", "options",
                         "force_unmount", "force_fsck", "self_fence"),
                        _h("clusterd.resources.agents.fs")),
        "quick_status": _i("choose the status checks with <action name=\"status\" "
                           "depth=\"0\" interval=...>: depth 10 lists the directory, 20 "
                           "writes a file"),
        "nfslock": _i(_NO_NFSLOCK),
        "fsid": _h(_NFS + " (inherited by the nfsexport and nfsclients inside)"),
    },
    "script": {
        **_RESOURCE,
        "name": _h("clusterd.resources.agents.script"),
        "file": _h("clusterd.resources.agents.script"),
        "service_name": _i("the script runs as FILE start|stop|status with nothing from "
                           "cluster.conf in its environment"),
    },
    "vm": _REWRITE_PARAMS,
    "clusterfs": _REWRITE_PARAMS,
    "netfs": {**_TRANSLATED, "mountpoint": _h(_RHCS), "host": _h(_RHCS), "export": _h(_RHCS),
              "fstype": _h(_RHCS), "no_unmount": _h(_RHCS), "force_unmount": _h(_RHCS),
              "options": _h(_RHCS)},
    "nfsexport": {**_RESOURCE, "name": _h(_TREE, _NFSEXPORT),
                  "path": _h(_NFSEXPORT, _NFS + " (inherited by the nfsclients)"),
                  "fsid": _h(_NFS + " (inherited by the nfsclients)"),
                  "device": _i("rgmanager filled it in from the fs; nfsexport.sh only checked "
                               "it in validate-all and nothing else reads it: nothing to set")},
    "nfsclient": {**_TRANSLATED, "target": _h(_NFS), "path": _h(_NFS), "fsid": _h(_NFS),
                  "options": _h(_NFS),
                  "allow_recover": _i("clusterd has no in-place re-export: a failed check "
                                      "restarts the service, as RHCS did with "
                                      "allow_recover=\"0\"; set __independent_subtree=\"1\" "
                                      "on the nfsclient to restart only it"),
                  "svcname": _i("rgmanager filled it in with the service name; nfsclient.sh "
                                "never read it"),
                  "service_name": _i("it named nfsclient.sh's export list cache; clusterd's "
                                     "checks read the export list each time"),
                  "use_cache": _i("it turned on nfsclient.sh's export list cache; clusterd's "
                                  "checks read the export list each time")},
    "nfsserver": {**_TRANSLATED, "path": _h(_NFS), "nfspath": _h(_NFS)},
    "lvm": {**_TRANSLATED, "vg_name": _h(_RHCS), "lv_name": _h(_RHCS), "self_fence": _h(_RHCS),
            "nfslock": _i("lvm.sh never read it: it reached lvm only by inheritance from "
                          "<service>")},
    "drbd": _REWRITE_PARAMS,
    "apache": {**_TRANSLATED_APP, "server_root": _h(_RHCS), "config_file": _h(_RHCS),
               "httpd_options": _h(_RHCS), "shutdown_wait": _h(_RHCS)},
    "mysql": {**_TRANSLATED_APP, "config_file": _h(_RHCS), "listen_address": _h(_RHCS),
              "mysqld_options": _h(_RHCS), "startup_wait": _h(_RHCS),
              "shutdown_wait": _h(_RHCS)},
    "postgres-8": {**_TRANSLATED_APP, "config_file": _h(_RHCS), "postmaster_user": _h(_RHCS),
                   "postmaster_options": _h(_RHCS), "shutdown_wait": _h(_RHCS)},
    "tomcat-5": _REWRITE_PARAMS,
    "openldap": _REWRITE_PARAMS,
    "named": _REWRITE_PARAMS,
    "oracledb": _REWRITE_PARAMS,
    "SAPInstance": _REWRITE_PARAMS,
    "SAPDatabase": _REWRITE_PARAMS,
    "ASEHAagent": _REWRITE_PARAMS,
    "samba": {**_RESOURCE, **dict.fromkeys(("name", "config_file", "smbd_options",
                                            "nmbd_options", "shutdown_wait"), _h(_SAMBA)),
              "service_name": _i("rgmanager filled it in to find the service's addresses; "
                                 "clusterd's samba agent is given the addresses of the "
                                 "service's <ip> resources")},
    "smb": _REWRITE_PARAMS,
    "clusterd": {"admin_group": _h(_MODEL, "clusterd.conf.clusterd_element")},
    "alert": dict.fromkeys(("name", "program", "recipient", "timeout", "events"),
                           _h("clusterd.conf.clusterd_element", "clusterd.alerts")),
    "ocf": {**_RESOURCE, "name": _h("clusterd.resources.agents.ocf"),
            "agent": _h("clusterd.resources.agents.ocf"),
            "*": _h("clusterd.resources.agents.ocf (OCF_RESKEY_ parameters)")},
    "systemd": {**_RESOURCE, "name": _h("clusterd.resources.agents.systemd"),
                "unit": _h("clusterd.resources.agents.systemd")},
}


# ---- the walker (clusterd.conf.support.unused_report on xml.etree) ----
def _quote(value: str) -> str:
    return f'"{value}"' if "'" in value else f"'{value}'"


def _key_of(el: ElementTree.Element) -> tuple[str, str] | None:
    for key in _KEYS:
        value = el.get(key)
        if value is not None:
            return key, value
    return None


def _child_steps(parent: ElementTree.Element) -> list[tuple[ElementTree.Element, str]]:
    """Each child's path step, as clusterd.conf.paths names it: ``tag[@key='value']``
    with ``[n]`` when siblings share it, ``tag[n]`` when unnamed siblings share the tag."""
    children = [(child, [(child.tag,)] + [(child.tag, k, child.get(k)) for k in _KEYS
                                          if child.get(k) is not None])
                for child in parent]
    size: dict[tuple, int] = {}
    for _child, groups in children:
        for group in groups:
            size[group] = size.get(group, 0) + 1
    seen: dict[tuple, int] = {}
    steps = []
    for child, groups in children:
        for group in groups:
            seen[group] = seen.get(group, 0) + 1
        named = _key_of(child)
        mine = (child.tag,) if named is None else (child.tag,) + named
        step = child.tag if named is None else f"{child.tag}[@{named[0]}={_quote(named[1])}]"
        steps.append((child, step + f"[{seen[mine]}]" if size[mine] > 1 else step))
    return steps


def unused_report(root: ElementTree.Element) -> list[tuple[str, str]]:
    """``(where, instead)`` for each part of a ``<cluster>`` tree clusterd accepts but does
    not use, in document order (one pass over the tree)."""
    if root.tag != "cluster":
        return []
    found = []
    stack = [(root, "/cluster")]
    while stack:
        el, where = stack.pop()
        entry = ELEMENTS.get(el.tag)
        if entry is None:
            continue
        if entry[0] == IGNORED:
            found.append((where, entry[1]))
            continue
        if entry[0] == HONOURED:
            attrs = ATTRIBUTES.get(el.tag, {})
            for key in el.attrib:
                support = attrs.get(key) or attrs.get("*")
                if support is not None and support[0] == IGNORED:
                    found.append((f"{where}/@{key}", support[1]))
        stack.extend(reversed([(child, f"{where}/{step}") for child, step in _child_steps(el)]))
    return found


def unused_warnings(diff: t.Mapping[str, t.Any] | None) -> list[str]:
    """Module warnings for the config a module wrote (or would write, in check mode):
    ``diff`` is cluster_admin's diff of the edit; [] when it holds no cluster.conf."""
    text = (diff or {}).get("after")
    if not text:
        return []
    try:
        root = ElementTree.fromstring(text)
    except (ElementTree.ParseError, ValueError):
        return []
    return [f"{UNUSED}: {where} ({instead})" for where, instead in unused_report(root)]
