"""Resource rules: what rgmanager learnt from each agent's ``meta-data`` (pure).

rgmanager built one *rule* per resource type by running ``<agent> meta-data`` and reading
``<parameters>`` (primary / unique / required / reconfig / inherit flags and
``<content default=>``), ``<actions>`` and ``<special tag="rgmanager">`` (``maxinstances``,
``<child type= start= stop= forbid=>``). Source: RHCS-3.0.12
``rgmanager/src/daemons/resrules.c`` ``_get_rule_attrs()``, ``_get_childtypes()``.

The built-in table below is that data for the rgmanager agent set. Child ordering and
``forbid``/``maxinstances`` are verbatim from ClusterLabs/resource-agents
``rgmanager/src/resources/*.sh.in`` (see shared/reference/rgmanager-child-ordering.md).
Parameter order and required-ness follow the 3.0.12 ``cluster.rng`` resource definitions;
primary/unique/inherit flags follow the agents' meta-data. Defaults: rgmanager copied a
rule's ``<content default=>`` into every resource that did not set the attribute; the
agent meta-data of the era the rgmanager test fixtures were produced with declared only
``ip/monitor_link=1`` (test005.expected shows it, and test001.expected shows a service
without ``autostart``/``recovery`` values), so only that default is filled in here.
Service-level defaults (autostart=1, recovery=restart ...) are applied by
``clusterd.placement.config`` instead, which keeps the tree dump identical to rgmanager's.

Other agents (OCF, systemd) add rules at run time with :func:`rule_from_metadata`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, replace

from lxml import etree

from clusterd.errors import ConfigError, Problem


@dataclass(frozen=True)
class ParamSpec:
    """One ``<parameter>`` of an agent's meta-data, the one model for the resource rules
    here and for the agents' own parameter checks (``agents.metadata.validate_params``,
    which read ``content_type``, ``options`` and ``shortdesc``). Only ``name`` is
    positional: the flags are too alike to pass by position."""

    name: str
    _: KW_ONLY
    primary: bool = False
    unique: bool = False
    required: bool = False
    reconfig: bool = False
    inherit: str | None = None  # "service%name" (typed) or "mountpoint" (any parent)
    default: str | None = None
    content_type: str = "string"     # string | integer | boolean | select | time
    options: tuple[str, ...] = ()    # for select
    shortdesc: str = ""


@dataclass(frozen=True)
class ChildType:
    """One ``<child type= start= stop= forbid=>`` of ``<special tag="rgmanager">``."""

    type: str
    start: int = 0
    stop: int = 0
    forbid: bool = False

    @property
    def leveled(self) -> bool:
        return bool(self.start or self.stop)


@dataclass(frozen=True)
class ActionSpec:
    """One ``<action>``: timeouts and status intervals are in seconds, 0 when not given."""

    name: str
    timeout: float = 0
    interval: float = 0
    depth: int = 0


@dataclass(frozen=True)
class ResourceRule:
    type: str
    params: tuple[ParamSpec, ...]
    children: tuple[ChildType, ...] = ()
    maxinstances: int = 0
    actions: tuple[ActionSpec, ...] = ()
    top_level: bool = False
    agent: str = ""
    open_params: bool = False  # keep attributes the table does not list (ocf: agent parameters)

    @property
    def agent_name(self) -> str:
        return self.agent or f"{self.type}.sh"

    @property
    def primary(self) -> ParamSpec | None:
        return next((p for p in self.params if p.primary), None)

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    def child(self, type_: str) -> ChildType | None:
        return next((c for c in self.children if c.type == type_), None)

    @property
    def max_level(self) -> int:
        return max([c.start for c in self.children] + [c.stop for c in self.children] + [0])


def _p(name: str, flags: str = "", inherit: str | None = None, default: str | None = None) -> ParamSpec:
    """Compact table helper: flags is a string of P(rimary) U(nique) R(equired) C(reconfig)."""
    return ParamSpec(name, primary="P" in flags, unique="U" in flags, required="R" in flags,
                     reconfig="C" in flags, inherit=inherit, default=default)


def _plain(*names: str) -> tuple[ParamSpec, ...]:
    return tuple(_p(n) for n in names)


_SVC_NAME = _p("service_name", inherit="service%name")
_STD_ACTIONS = (ActionSpec("start", 0), ActionSpec("stop", 0))

# service / vm: the resource group itself (service.sh.in, vm.sh.in meta-data).
_GROUP_PARAMS = (
    _p("name", "PUR"), _p("domain", "C"), _p("autostart", "C"), _p("hardrecovery"),
    _p("exclusive", "C"), _p("nfslock"), _p("nfs_client_cache"), _p("recovery", "C"),
    _p("depend"), _p("depend_mode"), _p("max_restarts"), _p("restart_expire_time"),
    _p("priority"),
)
_SERVICE_CHILDREN = (
    ChildType("lvm", 1, 9), ChildType("fs", 2, 8), ChildType("clusterfs", 3, 7),
    ChildType("netfs", 4, 6), ChildType("nfsexport", 5, 5), ChildType("nfsclient", 6, 4),
    ChildType("ip", 7, 2), ChildType("smb", 8, 3), ChildType("script", 9, 1),
)
_FS_CHILDREN = (ChildType("fs", 1, 3), ChildType("clusterfs", 1, 3), ChildType("nfsexport", 3, 1))
_NO_NFS = (ChildType("nfsexport", forbid=True), ChildType("nfsclient", forbid=True))
_EXPORT_CHILDREN = (ChildType("nfsexport", forbid=True), ChildType("nfsclient"))


def _app(type_: str, *params: str) -> ResourceRule:
    """An application agent (apache.sh, mysql.sh ...): name is primary and unique, the
    service name is inherited from the enclosing service."""
    return ResourceRule(type_, (_p("name", "PU"), *_plain(*params), _SVC_NAME),
                        actions=(*_STD_ACTIONS, ActionSpec("status", 0, 60)))


BUILTIN_RULES: tuple[ResourceRule, ...] = (
    ResourceRule("service", _GROUP_PARAMS, _SERVICE_CHILDREN, maxinstances=1,
                 actions=(ActionSpec("start", 5), ActionSpec("stop", 5)), top_level=True),
    ResourceRule("vm", (_p("name", "PUR"), _p("domain", "C"), _p("autostart", "C"),
                        _p("hardrecovery"), _p("exclusive", "C"), _p("recovery", "C"),
                        *_plain("migration_mapping", "use_virsh", "xmlfile", "migrate", "path",
                                "snapshot", "depend", "depend_mode", "max_restarts",
                                "restart_expire_time", "status_program", "hypervisor",
                                "hypervisor_uri", "migration_uri")),
        maxinstances=1, top_level=True,
        actions=(ActionSpec("start", 300), ActionSpec("stop", 120), ActionSpec("status", 10, 30),
                 ActionSpec("migrate", 600))),
    ResourceRule("ip", (_p("address", "PU"), _p("family"), _p("monitor_link", default="1"),
                        _p("nfslock", inherit="service%nfslock"), _p("sleeptime")),
                 _NO_NFS, maxinstances=1,
                 actions=(*_STD_ACTIONS, ActionSpec("status", 0, 20), ActionSpec("status", 0, 60, 10))),
    ResourceRule("script", (_p("name", "PU"), _p("file", "UR"), _SVC_NAME),
                 actions=(*_STD_ACTIONS, ActionSpec("status", 0, 30))),
    ResourceRule("fs", (_p("name", "P"), _p("mountpoint", "UR"), _p("device", "UR"),
                        *_plain("fstype", "force_unmount", "quick_status", "self_fence"),
                        _p("nfslock", inherit="nfslock"), *_plain("fsid", "force_fsck", "options")),
                 _FS_CHILDREN, maxinstances=1,
                 actions=(*_STD_ACTIONS, ActionSpec("status", 0, 60), ActionSpec("status", 0, 30, 10),
                          ActionSpec("status", 0, 60, 20))),
    ResourceRule("clusterfs", (_p("name", "P"), _p("mountpoint", "UR"), _p("device", "R"),
                               *_plain("fstype", "force_unmount", "options", "self_fence", "fsid"),
                               _p("nfslock", inherit="nfslock")),
                 _FS_CHILDREN, actions=(*_STD_ACTIONS, ActionSpec("status", 0, 60))),
    ResourceRule("netfs", (_p("name", "P"), _p("mountpoint", "UR"), _p("host", "R"),
                           _p("export", "R"), *_plain("fstype", "no_unmount", "force_unmount",
                                                      "options")),
                 _NO_NFS, actions=(*_STD_ACTIONS, ActionSpec("status", 0, 60))),
    ResourceRule("nfsexport", (_p("name", "P"), _p("device", inherit="device"),
                               _p("path", inherit="mountpoint"), _p("fsid", inherit="fsid")),
                 _EXPORT_CHILDREN, actions=(*_STD_ACTIONS, ActionSpec("status", 0, 30))),
    ResourceRule("bind-mount", (_p("name", "PU"), _p("mountpoint", "UR"), _p("source", "R")),
                 _EXPORT_CHILDREN, actions=(*_STD_ACTIONS, ActionSpec("status", 0, 60))),
    ResourceRule("nfsclient", (_p("name", "PU"), _p("target", "R"), _p("path", inherit="path"),
                               _p("fsid", inherit="fsid"),
                               *_plain("options", "allow_recover", "svcname", "service_name",
                                       "use_cache")),
                 actions=(*_STD_ACTIONS, ActionSpec("status", 0, 30))),
    # nfsserver.sh.in meta-data: path inherit="mountpoint" (the parent fs's mountpoint)
    ResourceRule("nfsserver", (_p("name", "PU"), _p("path", inherit="mountpoint"),
                               _p("nfspath")),
                 (ChildType("nfsexport", forbid=True), ChildType("nfsserver", forbid=True),
                  ChildType("nfsclient", 1, 2), ChildType("ip", 2, 1)), maxinstances=1,
                 actions=(*_STD_ACTIONS, ActionSpec("status", 0, 30))),
    ResourceRule("lvm", (_p("name", "PU"), _p("vg_name", "R"), *_plain("lv_name", "self_fence"),
                         _p("nfslock", inherit="service%nfslock")),
                 actions=(*_STD_ACTIONS, ActionSpec("status", 0, 60))),
    ResourceRule("smb", (_p("name", "PU"), _p("workgroup"), _SVC_NAME),
                 actions=(*_STD_ACTIONS, ActionSpec("status", 0, 60))),
    ResourceRule("drbd", (_p("name", "PU"), _p("resource", "R")),
                 actions=(*_STD_ACTIONS, ActionSpec("status", 0, 30))),
    _app("apache", "server_root", "config_file", "httpd_options", "shutdown_wait"),
    _app("openldap", "config_file", "url_list", "slapd_options", "shutdown_wait"),
    _app("samba", "config_file", "smbd_options", "nmbd_options", "shutdown_wait"),
    _app("mysql", "config_file", "listen_address", "mysqld_options", "startup_wait",
         "shutdown_wait"),
    _app("postgres-8", "config_file", "postmaster_user", "postmaster_options", "shutdown_wait"),
    _app("tomcat-5", "config_file", "tomcat_user", "catalina_options", "catalina_base",
         "shutdown_wait"),
    _app("tomcat-6", "config_file", "tomcat_user", "catalina_options", "catalina_base",
         "shutdown_wait"),
    _app("named", "config_file", "named_sdb", "named_working_dir", "named_options",
         "shutdown_wait"),
    # Our extension types (clusterd.resources.agents: systemd.py, ocf.py; their RelaxNG
    # defines are in agents/rng.py). They are untyped children: under a service they start
    # after every rgmanager-typed child, in file order, and stop before them.
    ResourceRule("systemd", (_p("name", "PUR"), _p("unit", "UR")), agent="systemd",
                 actions=(ActionSpec("start", 100), ActionSpec("stop", 100),
                          ActionSpec("status", 20, 30))),
    ResourceRule("ocf", (_p("name", "PUR"), _p("agent", "R")), agent="ocf", open_params=True,
                 actions=(ActionSpec("start", 20), ActionSpec("stop", 20),
                          ActionSpec("status", 20, 10))),
    ResourceRule("oracledb", (_p("name", "PU"), _p("listener_name"), _p("user", "R"),
                              _p("home", "R"), *_plain("type", "vhost"))),
    ResourceRule("SAPInstance", (_p("InstanceName", "PUR"), *_plain(
        "DIR_EXECUTABLE", "DIR_PROFILE", "START_PROFILE", "START_WAITTIME", "AUTOMATIC_RECOVER"))),
    ResourceRule("SAPDatabase", (_p("SID", "PUR"), _p("DIR_EXECUTABLE"), _p("DBTYPE", "R"),
                                 *_plain("NETSERVICENAME", "DBJ2EE_ONLY", "JAVA_HOME",
                                         "STRICT_MONITORING", "AUTOMATIC_RECOVER"))),
)


class RuleSet(Mapping[str, ResourceRule]):
    """Rules by type, iterated in the order rgmanager listed resources: by type name
    (its agent directory scan; test011.expected shows fs, ip, nfsclient, nfsexport, ...)."""

    def __init__(self, rules: Iterable[ResourceRule] = BUILTIN_RULES):
        self._rules = {r.type: r for r in sorted(rules, key=lambda r: r.type)}

    def __getitem__(self, key: str) -> ResourceRule:
        return self._rules[key]

    def __iter__(self):
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def with_rules(self, extra: Iterable[ResourceRule]) -> RuleSet:
        merged = dict(self._rules)
        merged.update({r.type: r for r in extra})
        return RuleSet(merged.values())


DEFAULT_RULES = RuleSet()


def _flag(value: str | None) -> bool:
    """rgmanager's test for a meta-data flag: ``atoi(v) != 0 || v[0] == 'y'``."""
    if not value:
        return False
    try:
        return int(value) != 0
    except ValueError:
        return value[:1].lower() == "y"


def expand_time(value: str | None) -> int:
    """Agent meta-data times: ``20``, ``20s``, ``1m``, ``1h`` (rgmanager expand_time)."""
    if not value:
        return 0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    mult = units.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in units else text
    try:
        return int(digits) * mult
    except ValueError:
        return 0


def rule_from_metadata(data: bytes, agent: str = "", type_: str | None = None) -> ResourceRule:
    """Build a rule from an agent's ``meta-data`` output (rgmanager or OCF style).

    Raises ConfigError naming the agent when the XML is not usable, and when the
    meta-data breaks rgmanager's own rules (two primaries, an inherited primary).
    """
    where = f"agent {agent or type_ or '?'} meta-data"
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigError([Problem(where, f"not valid XML: {exc}")], source=where) from exc
    if root.tag != "resource-agent":
        raise ConfigError([Problem(where, f"root element is <{root.tag}>, expected <resource-agent>")],
                          source=where)
    name = type_ or root.get("name")
    if not name:
        raise ConfigError([Problem(where, "<resource-agent> has no name")], source=where)
    params: list[ParamSpec] = []
    problems: list[Problem] = []
    for el in root.iterfind("parameters/parameter"):
        content = el.find("content")
        spec = ParamSpec(
            el.get("name", ""), primary=_flag(el.get("primary")), unique=_flag(el.get("unique")),
            required=_flag(el.get("required")), reconfig=_flag(el.get("reconfig")),
            inherit=el.get("inherit"),
            default=None if el.get("inherit") or content is None else content.get("default"))
        if spec.inherit and (spec.primary or spec.unique or spec.required):
            problems.append(Problem(where, f"parameter {spec.name} can not inherit and be "
                                           "primary, unique or required"))
        params.append(spec)
    if sum(p.primary for p in params) > 1:
        problems.append(Problem(where, f"multiple primary parameters for resource type {name}"))
    if problems:
        raise ConfigError(problems, source=where)
    if params and not any(p.primary for p in params):
        # OCF agents have no primary flag: rgmanager used the first attribute as the
        # instance name (OCF_RESOURCE_INSTANCE = type:r_attrs[0]); "name" when present.
        first = next((p for p in params if p.name == "name"), params[0])
        params = [replace(p, primary=True, unique=True, inherit=None, default=None)
                  if p is first else p for p in params]
    special = root.find("special[@tag='rgmanager']")
    children: list[ChildType] = []
    maxinst = 0
    if special is not None:
        attrs = special.find("attributes")
        if attrs is not None:
            maxinst = int(attrs.get("maxinstances", "0") or 0)
        for ch in special.iterfind("child"):
            children.append(ChildType(ch.get("type", ""), int(ch.get("start", "0") or 0),
                                      int(ch.get("stop", "0") or 0), _flag(ch.get("forbid"))))
    actions = tuple(
        ActionSpec(a.get("name", ""), expand_time(a.get("timeout")), expand_time(a.get("interval")),
                   int(a.get("depth", "0") or 0) if (a.get("depth") or "0").isdigit() else 0)
        for a in root.iterfind("actions/action"))
    return ResourceRule(name, tuple(params), tuple(children), maxinst, actions, agent=agent)
