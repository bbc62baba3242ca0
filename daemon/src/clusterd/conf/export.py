"""The running configuration as the arguments of the edit functions.

``export(conf)`` returns a dict whose every item, fed back to its edit function, changes
nothing (returns the same object): ``cluster`` -> set_cluster(**) (``quorum_disk`` None
without a quorum disk), each of
``fence_devices`` -> set_fence_device(**), ``node_fence`` -> set_node_fence(**),
``failover_domains`` -> set_failover_domain(**), ``resources`` -> set_resource(**),
``services`` -> set_service(**). It contains secret parameters in clear (the Ansible
module must mark them no_log); never log it. Top-level ``<vm>`` and ``<events>`` are not
exported (they are left untouched by the edit functions).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from clusterd.conf.fragments import HEURISTIC_KEYS, QUORUM_DISK_KEYS
from clusterd.conf.model import ClusterConf, FenceDeviceRef


def _ref(dev: FenceDeviceRef) -> dict[str, Any]:
    return {"name": dev.name, "params": dict(dev.params)}


def _tree(el: etree._Element) -> dict[str, Any]:
    item: dict[str, Any] = {"type": el.tag}
    if el.get("ref") is not None:
        item["ref"] = el.get("ref")
    item["attrs"] = {k: v for k, v in el.attrib.items() if k != "ref"}
    item["children"] = [_tree(c) for c in el if isinstance(c.tag, str)]
    return item


def _flag(el: etree._Element, key: str) -> bool:
    return el.get(key) == "1"


def _quorum_disk(el: etree._Element | None) -> dict[str, Any] | None:
    """``<quorumd>`` as set_cluster's quorum_disk: its explicit attributes (as written:
    numbers as integers, master_wins as a boolean, anything written otherwise as it is
    written) and the complete heuristics list; None without a quorum disk."""
    if el is None:
        return None

    def typed(key: str, text: str) -> Any:
        if key == "master_wins" and text in ("0", "1"):
            return text == "1"
        if key not in ("device", "label", "program", "master_wins") and text.isdigit() \
                and str(int(text)) == text:
            return int(text)
        return text

    out: dict[str, Any] = {"state": "present"}
    out.update({k: typed(k, el.get(k)) for k in QUORUM_DISK_KEYS if el.get(k) is not None})
    out["heuristics"] = [{k: typed(k, h.get(k)) for k in HEURISTIC_KEYS if h.get(k) is not None}
                         for h in el.iterfind("heuristic")]
    return out


def export(conf: ClusterConf) -> dict[str, Any]:
    root = conf.root
    cman = root.find("cman")
    explicit_ev = cman.get("expected_votes") if cman is not None else None
    out: dict[str, Any] = {
        "cluster": {
            "name": conf.name,
            "nodes": [{"name": n.name, "nodeid": n.nodeid, "votes": n.votes}
                      for n in conf.nodes],
            "two_node": conf.two_node,
            "expected_votes": int(explicit_ev) if explicit_ev is not None else None,
            "token": conf.token_ms,
            "post_join_delay": conf.fence_daemon.post_join_delay,
            "post_fail_delay": conf.fence_daemon.post_fail_delay,
            "clean_start": conf.fence_daemon.clean_start,
            "quorum_disk": _quorum_disk(root.find("quorumd")),
        },
        "fence_devices": [{"name": d.name, "agent": d.agent, "params": dict(d.params),
                           "state": "present"} for d in conf.fencedevices.values()],
        "node_fence": [{"node": n.name,
                        "methods": [{"name": m.name, "devices": [_ref(d) for d in m.devices]}
                                    for m in n.fence_methods],
                        "unfence": [_ref(d) for d in n.unfence]} for n in conf.nodes],
        "alerts": [{"name": a.get("name"), "program": a.get("program"),
                    "recipient": a.get("recipient", ""),
                    "timeout": int(a.get("timeout", "30")),
                    "events": (a.get("events") or "").split(), "state": "present"}
                   for a in root.iterfind("clusterd/alert")],
        "failover_domains": [],
        "resources": [],
        "services": [],
    }
    for dom in root.iterfind("rm/failoverdomains/failoverdomain"):
        out["failover_domains"].append({
            "name": dom.get("name"),
            "members": [{"name": m.get("name"),
                         "priority": int(m.get("priority")) if m.get("priority") else None}
                        for m in dom.iterfind("failoverdomainnode")],
            "ordered": _flag(dom, "ordered"), "restricted": _flag(dom, "restricted"),
            "nofailback": _flag(dom, "nofailback"), "state": "present"})
    for res in root.iterfind("rm/resources/*"):
        item = _tree(res)
        out["resources"].append({"type": res.tag, "attrs": item["attrs"], "state": "present"})
    for svc in root.iterfind("rm/service"):
        out["services"].append({
            "name": svc.get("name") or svc.get("ref"),
            "attrs": {k: v for k, v in svc.attrib.items() if k != "name"},
            "resources": [_tree(c) for c in svc if isinstance(c.tag, str)],
            "state": "present"})
    return out
