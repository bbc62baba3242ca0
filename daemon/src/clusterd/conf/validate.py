"""Semantic rules cluster.rng cannot express; every finding says what to do.

Pure: takes a canonical tree, returns RawProblems (the parser words and de-duplicates
them together with the schema findings).
"""

from __future__ import annotations

import re

from lxml import etree

from clusterd.conf.clusterd_element import clusterd_problems
from clusterd.conf.limits import scale_notes
from clusterd.conf.programs import program_problems
from clusterd.conf.qdisk import qdisk_problems
from clusterd.conf.refusals import refusal_problems
from clusterd.conf.rng import RawProblem
from clusterd.errors import Problem
from clusterd.truth import NUMERIC_VALUES

CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")  # cman: 15 chars max
XML_ID = re.compile(r"^[^\W\d][\w.-]*$")  # cluster.rng types fence device names as xsd:ID
FENCE_AGENT = re.compile(r"^fence_[A-Za-z0-9_.-]+$")
MAX_U32 = 2**32 - 1
MAX_NODEID = 2**31 - 1

BOOL = NUMERIC_VALUES  # clusterd.truth: cman and rgmanager read these with atoi()
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("cman", "two_node"): BOOL,
    ("fence_daemon", "clean_start"): BOOL,
    ("failoverdomain", "ordered"): BOOL,
    ("failoverdomain", "restricted"): BOOL,
    ("failoverdomain", "nofailback"): BOOL,
    ("service", "autostart"): BOOL,
    ("service", "exclusive"): BOOL,
    ("service", "recovery"): ("restart", "relocate", "disable", "restart-disable"),
    ("service", "depend_mode"): ("hard", "soft"),
    ("vm", "autostart"): BOOL,
    ("vm", "exclusive"): BOOL,
    ("vm", "recovery"): ("restart", "relocate", "disable", "restart-disable"),
    ("quorumd", "master_wins"): BOOL,
}
# (element, attribute) -> (minimum, maximum, what it is)
INTS: dict[tuple[str, str], tuple[int, int, str]] = {
    ("cluster", "config_version"): (1, MAX_U32, "the configuration revision"),
    ("clusternode", "nodeid"): (1, MAX_NODEID, "the node id"),
    ("clusternode", "votes"): (1, 255, "the node's votes"),
    ("cman", "expected_votes"): (1, MAX_U32, "expected votes"),
    ("cman", "port"): (1, 65535, "the UDP port"),
    ("cman", "cluster_id"): (0, 65535, "the 16-bit cluster id"),
    ("totem", "token"): (100, 3_600_000, "the token timeout in milliseconds"),
    ("fence_daemon", "post_join_delay"): (-1, MAX_U32, "post_join_delay in seconds (-1 = wait for all)"),
    ("fence_daemon", "post_fail_delay"): (0, MAX_U32, "post_fail_delay in seconds"),
    ("fence_daemon", "override_time"): (0, MAX_U32, "override_time in seconds"),
    ("failoverdomainnode", "priority"): (1, 100, "the member priority (1 = most preferred)"),
    ("service", "max_restarts"): (0, MAX_U32, "max_restarts"),
    ("service", "restart_expire_time"): (0, MAX_U32, "restart_expire_time in seconds"),
    ("quorumd", "interval"): (1, 3600, "the quorum disk's cycle in seconds"),
    ("quorumd", "tko"): (2, 10_000, "the cycles a node may miss on the quorum disk"),
    ("quorumd", "votes"): (1, 255, "the quorum disk's votes"),
    ("quorumd", "min_score"): (0, 2550, "the minimum heuristic score"),
    ("heuristic", "score"): (1, 255, "the heuristic's score"),
    ("heuristic", "interval"): (1, 3600, "the heuristic's interval in seconds"),
    ("heuristic", "tko"): (1, 10_000, "the heuristic's failures before it counts as failed"),
}
RECOVERY_TOP = ("service", "vm")
_VALUE_TAGS = sorted({tag for tag, _key in (*ENUMS, *INTS)})


def primary_key(tag: str) -> str:
    """The attribute a global resource of type ``tag`` is referenced by (rgmanager meta-data)."""
    return "address" if tag == "ip" else "name"


def _values(el: etree._Element, out: list[RawProblem]) -> None:
    for key, value in el.attrib.items():
        allowed = ENUMS.get((el.tag, key))
        if allowed is not None and value not in allowed:
            out.append(RawProblem(el, f"{key}=\"{value}\" is not valid; use one of: "
                                      f"{', '.join(allowed)}"))
        limits = INTS.get((el.tag, key))
        if limits is not None:
            low, high, what = limits
            if not re.fullmatch(r"-?[0-9]{1,12}", value.strip()):
                out.append(RawProblem(el, f"{key}=\"{value}\" must be an integer ({what}, "
                                          f"{low}..{high})"))
            elif not low <= int(value) <= high:
                out.append(RawProblem(el, f"{key}={value} is out of range: {what} must be "
                                          f"{low}..{high}"))


def _require(el: etree._Element, key: str, hint: str, out: list[RawProblem]) -> str | None:
    value = el.get(key)
    if value is None or not value.strip():
        out.append(RawProblem(el, f"attribute '{key}' is missing: {hint}"))
        return None
    return value


def _int(el: etree._Element | None, key: str, default: int) -> int:
    if el is None:
        return default
    try:
        return int(el.get(key, default))
    except ValueError:
        return default


def _check_cluster(root: etree._Element, out: list[RawProblem]) -> None:
    name = _require(root, "name", "name the cluster (1-15 characters: letters, digits, "
                                  "'_', '.', '-')", out)
    if name is not None and not CLUSTER_NAME.match(name):
        out.append(RawProblem(root, f"cluster name '{name}' is invalid: use 1-15 characters "
                                    "(letters, digits, '_', '.', '-'), starting with a letter "
                                    "or digit"))
    _require(root, "config_version", "set config_version=\"1\" and raise it on every change",
             out)


def _check_nodes(root: etree._Element, out: list[RawProblem]) -> dict[str, etree._Element]:
    nodes: dict[str, etree._Element] = {}
    ids: dict[str, etree._Element] = {}
    clusternodes = root.find("clusternodes")
    if clusternodes is not None and clusternodes.find("clusternode") is None:
        out.append(RawProblem(clusternodes, "no <clusternode> defined: add at least one "
                                            "<clusternode name=... nodeid=...>"))
    for node in root.iterfind("clusternodes/clusternode"):
        name = _require(node, "name", "give the node its cluster hostname", out)
        nodeid = _require(node, "nodeid", "add nodeid=\"N\" (a unique integer > 0); clusterd "
                                          "requires it even where RHCS derived one", out)
        if name is not None:
            if name.lower() in nodes:
                out.append(RawProblem(node, f"duplicate node name '{name}': node names "
                                            "(case-insensitive hostnames) must be unique"))
            nodes.setdefault(name.lower(), node)
        if nodeid is not None:
            key = nodeid.strip().lstrip("0") or "0"
            if key in ids:
                other = ids[key].get("name")
                out.append(RawProblem(node, f"duplicate nodeid {nodeid} (also used by node "
                                            f"'{other}'): give every node its own nodeid"))
            ids.setdefault(key, node)
    return nodes


def _check_fencing(root: etree._Element, out: list[RawProblem]) -> None:
    devices: set[str] = set()
    for dev in root.iterfind("fencedevices/fencedevice"):
        name = _require(dev, "name", "name the fence device", out)
        agent = _require(dev, "agent", "set the fence agent, e.g. agent=\"fence_ipmilan\"", out)
        if agent is not None and not FENCE_AGENT.match(agent):
            out.append(RawProblem(dev, f"fence agent '{agent}' is invalid: give the agent "
                                       "program name only (fence_*), no path or arguments"))
        if name is not None:
            _check_id(dev, name, out)
            if name in devices:
                out.append(RawProblem(dev, f"duplicate fence device name '{name}': rename one"))
            devices.add(name)
    for node in root.iterfind("clusternodes/clusternode"):
        methods: set[str] = set()
        for method in node.iterfind("fence/method"):
            mname = _require(method, "name", "name the fence method (e.g. \"ipmi\")", out)
            if mname is not None:
                if mname in methods:
                    out.append(RawProblem(method, f"duplicate fence method '{mname}' on this "
                                                  "node: rename one"))
                methods.add(mname)
        for dev in node.findall("fence/method/device") + node.findall("unfence/device"):
            dname = _require(dev, "name", "name a fence device from <fencedevices>", out)
            if dname is not None and not XML_ID.match(dname):
                _check_id(dev, dname, out)
            elif dname is not None and dname not in devices:
                out.append(RawProblem(dev, f"fence device '{dname}' is not defined: add "
                                           f"<fencedevice name=\"{dname}\" agent=...> to "
                                           "<fencedevices> or fix the name"))


def _check_id(el: etree._Element, name: str, out: list[RawProblem]) -> None:
    if not XML_ID.match(name):
        out.append(RawProblem(el, f"fence device name '{name}' is invalid: cluster.rng types it "
                                  "as an XML ID (letters, digits, '_', '-', '.'; no spaces; "
                                  "not starting with a digit); rename it"))


def _check_quorum(root: etree._Element, out: list[RawProblem]) -> None:
    cman = root.find("cman")
    if cman is None or cman.get("two_node") != "1":
        return
    nodes = root.findall("clusternodes/clusternode")
    if len(nodes) != 2:
        out.append(RawProblem(cman, f"two_node=\"1\" needs exactly 2 nodes, found {len(nodes)}: "
                                    "remove two_node or fix the node list"))
    for node in nodes:
        if _int(node, "votes", 1) != 1:
            out.append(RawProblem(node, "two_node=\"1\" needs votes=\"1\" on both nodes"))
    if cman.get("expected_votes") != "1":
        out.append(RawProblem(cman, "two_node=\"1\" needs expected_votes=\"1\": set it"))


def _check_rm(root: etree._Element, nodes: dict[str, etree._Element],
              out: list[RawProblem]) -> None:
    rm = root.find("rm")
    if rm is None:
        return
    domains: set[str] = set()
    node_names = {n.get("name") for n in nodes.values()}
    for dom in rm.iterfind("failoverdomains/failoverdomain"):
        name = _require(dom, "name", "name the failover domain", out)
        if name is not None:
            if name in domains:
                out.append(RawProblem(dom, f"duplicate failover domain '{name}': rename one"))
            domains.add(name)
        members: set[str] = set()
        for member in dom.iterfind("failoverdomainnode"):
            mname = _require(member, "name", "name a cluster node", out)
            if mname is None:
                continue
            if mname not in node_names:
                out.append(RawProblem(member, f"failover domain member '{mname}' is not a "
                                              "cluster node: add it to <clusternodes> or "
                                              "remove it from the domain"))
            if mname in members:
                out.append(RawProblem(member, f"node '{mname}' is listed twice in this "
                                              "domain: remove one"))
            members.add(mname)
    resources: dict[tuple[str, str], etree._Element] = {}
    res_section = rm.find("resources")
    for res in res_section if res_section is not None else ():
        key = primary_key(res.tag)
        value = _require(res, key, f"a global <{res.tag}> is referenced by its '{key}'", out)
        if value is None:
            continue
        if (res.tag, value) in resources:
            out.append(RawProblem(res, f"duplicate global resource {res.tag} '{value}': "
                                       f"its '{key}' must be unique"))
        resources.setdefault((res.tag, value), res)
    services: set[tuple[str, str]] = set()
    for svc in rm:
        if svc.tag not in RECOVERY_TOP:
            continue
        name = svc.get("name") or svc.get("ref")
        if not name:
            out.append(RawProblem(svc, f"<{svc.tag}> needs name=... (or ref=... to a global "
                                       f"{svc.tag})"))
            continue
        if (svc.tag, name) in services:
            out.append(RawProblem(svc, f"duplicate {svc.tag} name '{name}': rename one"))
        services.add((svc.tag, name))
        domain = svc.get("domain")
        if domain is not None and domain not in domains:
            out.append(RawProblem(svc, f"failover domain '{domain}' does not exist: define it "
                                       "in <failoverdomains> or fix domain="))
    for svc in rm.iterfind("service"):
        depend = svc.get("depend")
        if depend is not None:
            kind, _, target = depend.partition(":")
            if (kind, target) not in services:
                out.append(RawProblem(svc, f"depend=\"{depend}\" names no service: use "
                                           "\"service:NAME\" of an existing service"))
    for el in rm.iter(etree.Element):
        ref = el.get("ref")
        if ref is None or (res_section is not None and el.getparent() is res_section):
            continue
        if (el.tag, ref) not in resources:
            key = primary_key(el.tag)
            out.append(RawProblem(el, f"ref=\"{ref}\" names no global <{el.tag}>: define "
                                      f"<{el.tag} {key}=\"{ref}\" .../> in <rm><resources> or "
                                      "fix the reference"))


_EXTENSION_HINTS = {
    ("ocf", "name"): "name the resource (unique among <ocf> resources)",
    ("ocf", "agent"): "name the OCF agent as PROVIDER:TYPE, e.g. agent=\"heartbeat:nginx\"",
    ("systemd", "name"): "name the resource (unique among <systemd> resources)",
    ("systemd", "unit"): "name the unit it manages, e.g. unit=\"nginx.service\"",
}


def _check_extensions(rm: etree._Element, out: list[RawProblem]) -> None:
    """Required attributes of our extension types (<ocf>, <systemd>), located on the
    element itself (the schema alone only reports that <rm> failed to validate)."""
    from clusterd.resources.agents.rng import OCF_FIXED
    from clusterd.resources.agents.systemd import META as SYSTEMD_META
    required = {"ocf": OCF_FIXED,
                "systemd": tuple(p.name for p in SYSTEMD_META.params if p.required)}
    for el in rm.iter("ocf", "systemd"):
        if el.get("ref") is not None:
            continue
        for key in required[el.tag]:
            _require(el, key, _EXTENSION_HINTS.get((el.tag, key), f"set {key}"), out)


def semantic_problems(root: etree._Element) -> list[RawProblem]:
    """Every semantic problem in a canonical ``<cluster>`` tree."""
    out: list[RawProblem] = []
    if root.tag != "cluster":
        return out
    for el in root.iter(*_VALUE_TAGS):      # the elements ENUMS and INTS rule on
        _values(el, out)
    _check_cluster(root, out)
    nodes = _check_nodes(root, out)
    _check_fencing(root, out)
    _check_quorum(root, out)
    _check_rm(root, nodes, out)
    rm = root.find("rm")
    if rm is not None:
        _check_extensions(rm, out)
    out.extend(clusterd_problems(root))
    out.extend(program_problems(root))
    out.extend(qdisk_problems(root))
    out.extend(refusal_problems(root))
    return out


def scale_warnings(root: etree._Element) -> tuple[Problem, ...]:
    """Warnings, not problems: more nodes or services (``<service>`` and ``<vm>`` in
    ``<rm>``) than clusterd is tested with (``conf/limits.py``). ccs_config_validate
    prints them beside what rgmanager accepted with a warning; the config validates."""
    nodes = len(root.findall("clusternodes/clusternode"))
    services = len(root.findall("rm/service")) + len(root.findall("rm/vm"))
    return tuple(Problem(f"/cluster/{where}", reason)
                 for where, reason in scale_notes(nodes, services))
