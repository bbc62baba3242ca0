"""Pure edit operations for the Ansible modules (through the JSON admin CLI).

Each function takes a ClusterConf and a desired fragment in plain dicts/lists (what an
Ansible module passes) and returns a new, validated ClusterConf with config_version
raised by exactly 1, or the very same object when nothing changes (idempotence is a
comparison of canonical bytes). ``None`` always means "leave alone". Invalid input or an
invalid result raises ConfigError and returns nothing; arguments holding text cluster.conf
cannot hold (NUL and other control characters XML refuses) or names holding control
characters are refused before any element is built, naming the argument
(``conf.refusals.unwritable_problems``). ``export()`` (conf/export.py)
produces these arguments back from a configuration.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from lxml import etree

from clusterd.conf.fragments import (
    HEURISTIC_KEYS,
    QUORUM_DISK_KEYS,
    add_devices,
    as_list,
    as_text,
    bad,
    check_state,
    ensure_child,
    ensure_section,
    fields,
    replace_or_add,
    resource_element,
    set_attr,
    set_attrs,
    set_section_attr,
)
from clusterd.conf.model import DEFAULT_TOKEN_MS, ClusterConf
from clusterd.conf.parse import build
from clusterd.conf.refusals import unwritable_problems
from clusterd.conf.render import canonical_tree, to_bytes
from clusterd.conf.validate import primary_key
from clusterd.errors import ConfigError

_Edit = TypeVar("_Edit", bound=Callable[..., ClusterConf])


def _checked(func: _Edit) -> _Edit:
    """Refuse, naming the argument, what cluster.conf cannot hold, before lxml is handed
    it (lxml raises a bare ValueError on NUL and most control characters)."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def edit(*args: Any, **kwargs: Any) -> ClusterConf:
        given: dict[str, Any] = {}
        for key, value in signature.bind_partial(*args, **kwargs).arguments.items():
            kind = signature.parameters[key].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                given.update(value)
            elif not isinstance(value, ClusterConf):
                given[key] = value
        found = unwritable_problems(func.__name__, given)
        if found:
            raise ConfigError(found, "desired state")
        return func(*args, **kwargs)

    return cast(_Edit, edit)


def _apply(conf: ClusterConf, mutate: Callable[[etree._Element], None]) -> ClusterConf:
    root = conf.root
    mutate(root)
    canonical = canonical_tree(root)
    canonical.set("config_version", str(conf.version))
    if to_bytes(canonical) == conf.canonical_bytes():
        return conf
    canonical.set("config_version", str(conf.version + 1))
    return build(canonical, conf.source)


def _set_nodes(root: etree._Element, nodes: Any) -> None:
    section = ensure_section(root, "clusternodes")
    existing = {el.get("name"): el for el in section.findall("clusternode")}
    wanted: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(as_list("nodes", nodes)):
        node = fields(f"nodes[{i}]", item, {"name", "nodeid", "votes"}, {"name"})
        name = as_text(f"nodes[{i}]", "name", node["name"])
        if name in wanted:
            raise bad(f"nodes[{i}]", f"node '{name}' is listed twice")
        wanted[name] = node
    for name, el in existing.items():
        if name not in wanted:
            section.remove(el)
    used = {int(n["nodeid"]) for n in wanted.values() if str(n.get("nodeid", "")).isdigit()}
    used |= {int(el.get("nodeid")) for name, el in existing.items()
             if name in wanted and wanted[name].get("nodeid") is None
             and str(el.get("nodeid", "")).isdigit()}
    for name, node in wanted.items():
        el = existing.get(name)
        if el is None:
            el = etree.SubElement(section, "clusternode", name=name)
            nodeid = node.get("nodeid")
            if nodeid is None:
                nodeid = next(i for i in range(1, len(used) + 2) if i not in used)
                used.add(nodeid)
            el.set("nodeid", as_text("clusternode", "nodeid", nodeid))
            if node.get("votes") is not None:
                el.set("votes", as_text("clusternode", "votes", node["votes"]))
        else:
            set_attr(el, "nodeid", node.get("nodeid"))
            set_attr(el, "votes", node.get("votes", 1), default=1)


def _set_quorum_disk(root: etree._Element, quorum_disk: Any) -> None:
    """``<quorumd>`` from {state, device, label, votes, interval, tko, min_score,
    master_wins, heuristics}: ``state="absent"`` removes the element (and its heuristics);
    otherwise the keys given are set (None, or a key left out, leaves an attribute alone)
    and ``heuristics``, when given, is the complete list of ``<heuristic>`` children
    ({program, score, interval, tko}), in order. Attributes clusterd does not use
    (reboot, io_timeout ...) are left as they are. The element is created at its place in
    the outline (after ``<totem>``); whether the result is a valid disk (device or label,
    no two_node beside it, votes ...) is the validation's to say."""
    where = "quorum_disk"
    item = fields(where, quorum_disk, {"state", "heuristics", *QUORUM_DISK_KEYS}, set())
    state = check_state(where, item.get("state") or "present")
    if state == "absent":
        for el in root.findall("quorumd"):
            root.remove(el)
        return
    disk = ensure_section(root, "quorumd")
    for key in QUORUM_DISK_KEYS:
        set_attr(disk, key, item.get(key))
    if item.get("heuristics") is None:
        return
    wanted = []
    for i, entry in enumerate(as_list(f"{where}: heuristics", item["heuristics"])):
        h = fields(f"{where}: heuristics[{i}]", entry, set(HEURISTIC_KEYS), {"program"})
        wanted.append({k: as_text(f"{where}: heuristics[{i}]", k, h[k])
                       for k in HEURISTIC_KEYS if h.get(k) is not None})
    current = [dict(h.attrib) for h in disk.iterfind("heuristic")]
    if current != wanted:
        for h in disk.findall("heuristic"):
            disk.remove(h)
        for attrs in wanted:
            etree.SubElement(disk, "heuristic", **attrs)


@_checked
def set_cluster(conf: ClusterConf, name: str | None = None,
                nodes: Sequence[Mapping[str, Any]] | None = None, two_node: bool | None = None,
                expected_votes: int | None = None, token: int | None = None,
                post_join_delay: int | None = None, post_fail_delay: int | None = None,
                clean_start: bool | None = None,
                quorum_disk: Mapping[str, Any] | None = None) -> ClusterConf:
    """Cluster-wide settings. ``nodes`` is the full node list ({name, nodeid, votes});
    existing nodes keep their place and fencing, new ones are appended (nodeid defaults to
    the lowest free one), missing ones are removed. ``expected_votes=0`` removes an
    explicit value (cman then uses the sum of votes). ``quorum_disk`` is ``<quorumd>``
    (see :func:`_set_quorum_disk`): ``{"state": "absent"}`` removes it."""

    def mutate(root: etree._Element) -> None:
        if name is not None:
            root.set("name", as_text("cluster", "name", name))
        if nodes is not None:
            _set_nodes(root, nodes)
        set_section_attr(root, "cman", "two_node", two_node, False)
        if expected_votes == 0:
            cman = root.find("cman")
            if cman is not None and "expected_votes" in cman.attrib:
                del cman.attrib["expected_votes"]
        else:
            set_section_attr(root, "cman", "expected_votes", expected_votes, None)
        set_section_attr(root, "totem", "token", token, DEFAULT_TOKEN_MS)
        set_section_attr(root, "fence_daemon", "post_join_delay", post_join_delay, 6)
        set_section_attr(root, "fence_daemon", "post_fail_delay", post_fail_delay, 0)
        set_section_attr(root, "fence_daemon", "clean_start", clean_start, False)
        if quorum_disk is not None:
            _set_quorum_disk(root, quorum_disk)

    return _apply(conf, mutate)


@_checked
def set_failover_domain(conf: ClusterConf, name: str,
                        members: Sequence[Mapping[str, Any]] | None = None,
                        ordered: bool | None = None, restricted: bool | None = None,
                        nofailback: bool | None = None, state: str = "present") -> ClusterConf:
    """A failover domain; ``members`` is the full list of {name, priority} in order."""
    where = f"failover domain {name}"
    check_state(where, state)

    def mutate(root: etree._Element) -> None:
        found = root.xpath("rm/failoverdomains/failoverdomain[@name=$n]", n=name)
        if state == "absent":
            for el in found:
                el.getparent().remove(el)
            return
        if found:
            dom = found[0]
        else:
            domains = ensure_child(ensure_section(root, "rm"), "failoverdomains", first=True)
            dom = etree.SubElement(domains, "failoverdomain", name=as_text(where, "name", name))
        set_attr(dom, "ordered", ordered, False)
        set_attr(dom, "restricted", restricted, False)
        set_attr(dom, "nofailback", nofailback, False)
        if members is None:
            return
        wanted = []
        for i, item in enumerate(as_list(f"{where}: members", members)):
            member = fields(f"{where}: members[{i}]", item, {"name", "priority"}, {"name"})
            prio = member.get("priority")
            wanted.append((as_text(where, "name", member["name"]),
                           None if prio is None else as_text(where, "priority", prio)))
        current = [(m.get("name"), m.get("priority")) for m in dom.iterfind("failoverdomainnode")]
        if current != wanted:
            for m in dom.findall("failoverdomainnode"):
                dom.remove(m)
            for mname, prio in wanted:
                m = etree.SubElement(dom, "failoverdomainnode", name=mname)
                if prio is not None:
                    m.set("priority", prio)

    return _apply(conf, mutate)


def _top_service(rm: etree._Element | None, name: str) -> etree._Element | None:
    if rm is None:
        return None
    for el in rm.iterfind("service"):
        if (el.get("name") or el.get("ref")) == name:
            return el
    return None


@_checked
def set_service(conf: ClusterConf, name: str, attrs: Mapping[str, Any] | None = None,
                resources: Sequence[Mapping[str, Any]] | None = None,
                state: str = "present") -> ClusterConf:
    """A service: attributes (domain, autostart, recovery ...; ``ref`` makes it reference a
    global service instead of being named) and its resource tree, each item
    ``{type, attrs, children}`` or ``{type, ref, ...}``. Replaces what is given."""
    where = f"service {name}"
    check_state(where, state)

    def mutate(root: etree._Element) -> None:
        old = _top_service(root.find("rm"), name)
        if state == "absent":
            if old is not None:
                old.getparent().remove(old)
            return
        rm = ensure_section(root, "rm")
        new = etree.Element("service")
        new_attrs = dict(attrs) if attrs is not None else (
            {k: v for k, v in old.attrib.items() if k != "name"} if old is not None else {})
        if "ref" not in new_attrs:
            new.set("name", as_text(where, "name", name))
        set_attrs(where, new, new_attrs)
        if resources is not None:
            for i, item in enumerate(as_list(f"{where}: resources", resources)):
                new.append(resource_element(f"{where}: resources[{i}]", item))
        elif old is not None:
            new.extend(list(old))
        replace_or_add(rm, old, new, after="service")

    return _apply(conf, mutate)


@_checked
def set_resource(conf: ClusterConf, type: str, attrs: Mapping[str, Any],
                 state: str = "present") -> ClusterConf:
    """A global resource in ``<rm><resources>``, keyed by its primary attribute
    (``address`` for ip, else ``name``), referenced from services by ``ref=``."""
    key = primary_key(type)
    where = f"resource {type}"
    check_state(where, state)
    if not isinstance(attrs, Mapping) or attrs.get(key) in (None, ""):
        raise bad(where, f"attrs must include the primary key '{key}'")
    value = as_text(where, key, attrs[key])

    def mutate(root: etree._Element) -> None:
        section = root.find("rm/resources")
        old = None
        if section is not None:
            old = next((el for el in section if el.tag == type and el.get(key) == value), None)
        if state == "absent":
            if old is not None:
                section.remove(old)
            return
        rm = ensure_section(root, "rm")
        if section is None:
            section = etree.Element("resources")
            anchor = rm.find("failoverdomains")
            rm.insert(0 if anchor is None else rm.index(anchor) + 1, section)
        new = resource_element(where, {"type": type, "attrs": attrs})
        if old is not None:
            new.extend(list(old))
        replace_or_add(section, old, new)

    return _apply(conf, mutate)


@_checked
def set_fence_device(conf: ClusterConf, name: str, agent: str | None = None,
                     params: Mapping[str, Any] | None = None,
                     state: str = "present") -> ClusterConf:
    """A fence device; ``params`` (all of them) are passed to the agent on stdin."""
    where = f"fence device {name}"
    check_state(where, state)

    def mutate(root: etree._Element) -> None:
        found = root.xpath("fencedevices/fencedevice[@name=$n]", n=name)
        old = found[0] if found else None
        if state == "absent":
            if old is not None:
                old.getparent().remove(old)
            return
        if old is None and agent is None:
            raise bad(where, "agent is required for a new fence device")
        new = etree.Element("fencedevice", name=as_text(where, "name", name))
        new.set("agent", as_text(where, "agent", agent if agent is not None else old.get("agent")))
        if params is not None:
            reserved = {"name", "agent"} & set(params)
            if reserved:
                raise bad(where, f"params must not contain {sorted(reserved)}")
            set_attrs(where, new, params)
        elif old is not None:
            set_attrs(where, new, {k: v for k, v in old.attrib.items() if k not in ("name", "agent")})
        replace_or_add(ensure_section(root, "fencedevices"), old, new)

    return _apply(conf, mutate)


@_checked
def set_node_fence(conf: ClusterConf, node: str,
                   methods: Sequence[Mapping[str, Any]] | None = None,
                   unfence: Sequence[Mapping[str, Any]] | None = None) -> ClusterConf:
    """A node's fence methods ([{name, devices: [{name, params}]}], tried in order) and
    unfence devices ([{name, params}]); ``None`` leaves either alone."""
    where = f"node {node} fencing"

    def mutate(root: etree._Element) -> None:
        found = root.xpath("clusternodes/clusternode[@name=$n]", n=node)
        if not found:
            raise bad(where, f"'{node}' is not a cluster node; add it with set_cluster first")
        el = found[0]
        for tag, wanted in (("fence", methods), ("unfence", unfence)):
            if wanted is None:
                continue
            section = el.find(tag)
            if section is None:
                if not wanted:
                    continue
                section = etree.SubElement(el, tag)
                if tag == "fence" and el.find("unfence") is not None:
                    el.find("unfence").addprevious(section)
            for child in list(section):
                section.remove(child)
            if tag == "unfence":
                add_devices(f"{where}: unfence", section, wanted)
                continue
            for i, item in enumerate(as_list(f"{where}: methods", wanted)):
                method = fields(f"{where}: methods[{i}]", item, {"name", "devices"}, {"name"})
                m = etree.SubElement(section, "method", name=as_text(where, "name", method["name"]))
                add_devices(f"{where}: methods[{i}].devices", m, method.get("devices") or [])

    return _apply(conf, mutate)


@_checked
def set_alert(conf: ClusterConf, name: str, program: str | None = None,
              recipient: str | None = None, timeout: int | None = None,
              events: Sequence[str] | None = None, state: str = "present") -> ClusterConf:
    """One ``<clusterd><alert/></clusterd>`` (``clusterd.alerts``): ``program`` is required
    for a new alert; ``recipient`` "" removes it; ``events`` is the full list of kinds
    (empty: all). ``state`` absent removes the alert, and ``<clusterd>`` once empty."""
    where = f"alert {name}"
    check_state(where, state)

    def mutate(root: etree._Element) -> None:
        found = root.xpath("clusterd/alert[@name=$n]", n=name)
        if state == "absent":
            for el in found:
                parent = el.getparent()
                parent.remove(el)
                if len(parent) == 0 and not parent.attrib:
                    root.remove(parent)
            return
        if found:
            el = found[0]
        else:
            if program is None:
                raise bad(where, "program: required for a new alert (the executable to run)")
            el = etree.SubElement(ensure_section(root, "clusterd"), "alert",
                                  name=as_text(where, "name", name))
        set_attr(el, "program", program)
        if recipient is not None:
            if recipient == "":
                el.attrib.pop("recipient", None)
            else:
                set_attr(el, "recipient", recipient)
        set_attr(el, "timeout", timeout, 30)
        if events is not None:
            words = [as_text(where, "events", e) for e in as_list(f"{where}: events", events)]
            if not words or sorted(set(words)) == sorted(("fence", "node", "quorum", "service")):
                el.attrib.pop("events", None)
            else:
                set_attr(el, "events", " ".join(words))

    return _apply(conf, mutate)


@_checked
def new_cluster(name: str, nodes: Sequence[Mapping[str, Any]], **settings: Any) -> ClusterConf:
    """A bootstrap configuration (config_version 1) with the given nodes and settings
    (the keyword arguments of ``set_cluster``)."""
    root = etree.Element("cluster", name=as_text("cluster", "name", name), config_version="1")
    etree.SubElement(root, "clusternodes")
    _set_nodes(root, nodes)
    conf = build(root, "new cluster")
    if settings:
        conf = set_cluster(conf, **settings)
        if conf.version != 1:
            fresh = conf.root
            fresh.set("config_version", "1")
            conf = build(fresh, "new cluster")
    return conf
