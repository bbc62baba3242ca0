"""Which agent runs a cluster.conf resource type, and validation per type.

Mapping (decided here; see the package docstring for the schema question):

=================  ==========================================================
``ip``, ``fs``,    built-in agents (``ip.py``, ``fs.py``, ``script.py``)
``script``
``samba``          built-in agent for RHCS's ``<samba>`` (``samba.py``): an smbd and
                   nmbd per resource, bound to its service's ``<ip>`` addresses
``nfsexport``      built-in agent for RHCS's ``<nfsexport>`` (``nfsexport.py``): makes
                   sure the node's NFS server runs; its ``<nfsclient>``s export
``systemd``        our extension: ``<systemd name= unit=/>`` (``systemd.py``)
``ocf``            our extension: ``<ocf name= agent="PROVIDER:TYPE" params.../>``,
                   any agent of the resource-agents package (``ocf.py``)
``service``        the resource group itself: nothing to run (rgmanager's
                   service.sh only handled NFS lock details), always OK
``apache``,        RHCS types run by the resource-agents OCF agent that does the
``mysql``,         same job, RHCS's attributes translated (``rhcs_types.py``), unless
``postgres-8``,    rgmanager's own agent is installed as
``netfs``, ``lvm`` ``/usr/share/cluster/TYPE.sh`` on the node (then that one runs)
``nfsclient``,     (``nfsclient`` -> heartbeat:exportfs, ``nfsserver`` ->
``nfsserver``      heartbeat:nfsserver: ``rhcs_nfs.py``)
anything else      an rgmanager agent installed as ``/usr/share/cluster/TYPE.sh``
                   (how RHCS ran smb, named ...), run with the OCF
                   environment and ``status``; if none is installed the type is
                   refused, naming the OCF agent to use instead when one exists
=================  ==========================================================

A built-in type always runs its built-in agent: rgmanager's ``/usr/share/cluster/TYPE.sh``
on a node (``samba.sh``, ``fs.sh`` ...) is never used for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from clusterd.errors import ConfigError, Problem
from clusterd.resources.agents import (
    fs,
    ip,
    nfsexport,
    ocf,
    rhcs_types,
    samba,
    script,
    systemd,
)
from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    MetaDataResult,
    ResourceAgent,
)
from clusterd.resources.agents.metadata import AgentMeta
from clusterd.resources.agents.runner import Runner
from clusterd.resources.agents.schedule import StatusSchedule, validate_overrides

BUILTIN_META: dict[str, AgentMeta] = {"ip": ip.META, "fs": fs.META, "script": script.META,
                                      "systemd": systemd.META, "samba": samba.META,
                                      "nfsexport": nfsexport.META}
_BUILTIN_VALIDATE = {"ip": ip.validate, "fs": fs.validate, "script": script.validate,
                     "systemd": systemd.validate, "samba": samba.validate,
                     "nfsexport": nfsexport.validate}
# rgmanager types not translated (rhcs_types.py) whose job a resource-agents OCF agent
# does, for the error hint only; smb has none (resource-agents runs no smbd): its hint
# names the systemd unit.
OCF_EQUIVALENT = {"named": "heartbeat:named", "tomcat-5": "heartbeat:tomcat",
                  "tomcat-6": "heartbeat:tomcat", "openldap": "heartbeat:slapd",
                  "clusterfs": "heartbeat:Filesystem", "vm": "heartbeat:VirtualDomain",
                  "oracledb": "heartbeat:oracle", "SAPInstance": "heartbeat:SAPInstance",
                  "SAPDatabase": "heartbeat:SAPDatabase", "drbd": "linbit:drbd"}
UNIT_EQUIVALENT = {"smb": "smbd.service"}
SERVICE_META = AgentMeta(name="service", extra_ok=frozenset())


@dataclass(frozen=True)
class AgentEnv:
    """Where agents come from on this node (tests point these at temp copies)."""

    runner: Runner = field(default_factory=Runner)
    ocf_root: str = ocf.OCF_ROOT
    rsctmp: str = ocf.HA_RSCTMP
    rgmanager_dir: str = ocf.RGMANAGER_AGENT_DIR

    def rgmanager_agent(self, rtype: str) -> str | None:
        if not ocf.AGENT_NAME.match(rtype) or rtype in (".", ".."):
            return None
        for candidate in (f"{rtype}.sh", rtype):
            path = os.path.join(self.rgmanager_dir, candidate)
            if os.path.isfile(path):
                return path
        return None


DEFAULT_ENV = AgentEnv()


def known_types() -> tuple[str, ...]:
    return ("fs", "ip", "nfsexport", "ocf", "samba", "script", "service", "systemd")


def _unknown(rtype: str, env: AgentEnv) -> str:
    hint = ""
    if rtype in OCF_EQUIVALENT:
        hint = (f"; use <ocf agent=\"{OCF_EQUIVALENT[rtype]}\" .../> for the resource-agents "
                "equivalent")
    elif rtype in UNIT_EQUIVALENT:
        hint = (f"; use <systemd unit=\"{UNIT_EQUIVALENT[rtype]}\" .../> (smb.service on "
                "Red Hat systems; resource-agents has no agent for it)")
    return (f"unknown resource type '{rtype}': not built in ({', '.join(known_types())}), "
            f"not one clusterd translates ({', '.join(sorted(rhcs_types.RHCS_TYPES))}) "
            f"and no rgmanager agent {os.path.join(env.rgmanager_dir, rtype)}.sh on this "
            f"node{hint}")


def _translated(rtype: str, env: AgentEnv) -> bool:
    """An RHCS type run by its OCF equivalent: rgmanager's own agent, where a node still
    has it installed, keeps running it as before."""
    return rtype in rhcs_types.RHCS_TYPES and env.rgmanager_agent(rtype) is None


def _ocf_attrs(done: rhcs_types.Translation, attrs: Mapping[str, str]) -> dict[str, str]:
    """What an ``<ocf>`` element would hold: the instance name, the agent and the
    translated parameters (rgmanager's ``__*`` attributes stay the tree's business)."""
    return {"name": attrs.get("name", ""), "agent": done.agent, **done.params}


def validate(rtype: str, attrs: Mapping[str, str], where: str, *,
             overrides: Iterable[Mapping[str, str]] = (), meta: AgentMeta | None = None,
             env: AgentEnv = DEFAULT_ENV) -> list[Problem]:
    """Every problem with one resource: unknown type, missing/invalid parameters (against
    ``meta`` for OCF/rgmanager agents when given: read it with ``meta_data()``), bad
    ``<action>`` overrides. Resources given by ``ref=`` only are the tree's business."""
    problems = validate_overrides(overrides, where)
    if rtype in _BUILTIN_VALIDATE:
        return problems + _BUILTIN_VALIDATE[rtype](attrs, where)
    if rtype == "service":
        return problems
    if rtype == "ocf":
        return problems + ocf.validate(attrs, where, meta)
    if _translated(rtype, env):
        done = rhcs_types.translate(rtype, attrs, where)
        if isinstance(done, list):
            return problems + done
        return problems + ocf.validate(_ocf_attrs(done, attrs), where, meta)
    if env.rgmanager_agent(rtype) is None:
        return problems + [Problem(where, _unknown(rtype, env))]
    return problems + ocf.validate(attrs, where, meta, element=False)


def build_agent(rtype: str, attrs: Mapping[str, str], *, where: str = "",
                env: AgentEnv = DEFAULT_ENV) -> ResourceAgent:
    """The agent for one resource. Raises ``ConfigError`` (all problems) when the type is
    unknown or the attributes are structurally invalid."""
    where = where or f"{rtype}[{attrs.get('name') or attrs.get('address') or '?'}]"
    problems = validate(rtype, attrs, where, env=env)
    if problems:
        raise ConfigError(problems, source=where)
    if rtype == "ip":
        return ip.IpAgent(attrs)
    if rtype == "fs":
        return fs.FsAgent(attrs, runner=env.runner)
    if rtype == "script":
        return script.ScriptAgent(attrs, runner=env.runner)
    if rtype == "systemd":
        return systemd.SystemdAgent(attrs, runner=env.runner)
    if rtype == "samba":
        return samba.SambaAgent(attrs, runner=env.runner)
    if rtype == "nfsexport":
        return nfsexport.NfsExportAgent(attrs, runner=env.runner, rsctmp=env.rsctmp)
    if rtype == "service":
        return ServiceAgent(attrs)
    if rtype == "ocf":
        return ocf.OcfAgent("ocf", attrs, runner=env.runner, ocf_root=env.ocf_root,
                            rsctmp=env.rsctmp)
    if _translated(rtype, env):
        done = rhcs_types.translate(rtype, attrs, where)
        assert not isinstance(done, list)  # validate() refused it otherwise
        return ocf.OcfAgent(rtype, _ocf_attrs(done, attrs), runner=env.runner,
                            ocf_root=env.ocf_root, rsctmp=env.rsctmp, timeouts=done.timeouts,
                            option_file=done.option_file)
    path = env.rgmanager_agent(rtype)
    assert path is not None  # validate() refused it otherwise
    return ocf.OcfAgent(rtype, attrs, runner=env.runner, ocf_root=env.ocf_root,
                        rsctmp=env.rsctmp, path=path, status_action="status")


async def validate_with_metadata(rtype: str, attrs: Mapping[str, str], where: str, *,
                                 overrides: Iterable[Mapping[str, str]] = (),
                                 env: AgentEnv = DEFAULT_ENV) -> list[Problem]:
    """``validate`` plus the agent's own meta-data (required parameters, types) for OCF
    and rgmanager agents; an agent whose meta-data cannot be read is itself a problem."""
    problems = validate(rtype, attrs, where, overrides=overrides, env=env)
    if problems or rtype in BUILTIN_META or rtype == "service":
        return problems
    agent = build_agent(rtype, attrs, where=where, env=env)
    loaded = await agent.meta_data()
    if loaded.meta is None:
        return [Problem(where, loaded.result.message)]
    return validate(rtype, attrs, where, overrides=overrides, meta=loaded.meta, env=env)


def status_schedule(rtype: str, meta: AgentMeta | None = None,
                    overrides: Iterable[Mapping[str, str]] = ()) -> StatusSchedule:
    """Status checks for a resource: the type's meta-data (built-in, or ``meta`` read from
    the agent) with per-instance ``<action>`` overrides applied."""
    base = BUILTIN_META.get(rtype) or meta or AgentMeta(name=rtype)
    return StatusSchedule.from_meta(base, overrides)


class ServiceAgent:
    """The ``<service>`` node of a tree: nothing to start or stop."""

    rtype = "service"

    def __init__(self, attrs: Mapping[str, str]):
        self.attrs = dict(attrs)
        self.name = self.attrs.get("name", "")

    def _ok(self, action: AgentAction, what: str) -> AgentResult:
        return AgentResult(action, AgentRc.OK, f"service:{self.name}: {what}", 0.0)

    async def start(self, timeout: float | None = None) -> AgentResult:
        return self._ok(AgentAction.START, "started")

    async def stop(self, timeout: float | None = None) -> AgentResult:
        return self._ok(AgentAction.STOP, "stopped")

    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult:
        return self._ok(AgentAction.STATUS, "nothing to check")

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult:
        return MetaDataResult(self._ok(AgentAction.META_DATA, "built-in meta-data"), SERVICE_META)


def has_config_checks(rtype: str) -> bool:
    """Whether ``config_problems`` checks anything of type ``rtype`` (for any other type it
    finds nothing, whatever the attributes): a caller checking thousands of resources
    skips gathering their values for it."""
    return rtype in _BUILTIN_VALIDATE or rtype == "ocf" or rtype in rhcs_types.RHCS_TYPES


def config_problems(rtype: str, attrs: Mapping[str, str], where: str) -> list[Problem]:
    """What validating a whole cluster.conf checks of one resource (``attrs`` after
    inheritance), the same on every machine (nothing read from the node): a built-in
    type's parameters, an ``<ocf>`` element's structure, and an RHCS type's translation
    onto its OCF agent (a node that still has rgmanager's own ``TYPE.sh`` runs that one
    instead, but the file must also run where it does not). A type run only by an
    rgmanager agent is judged on the node that runs it (``validate``), as is everything
    an agent's own meta-data says; both are that node's business, not the file's."""
    if rtype in _BUILTIN_VALIDATE:
        return _BUILTIN_VALIDATE[rtype](attrs, where)
    if rtype == "ocf":
        return ocf.validate(attrs, where, None)
    if rtype in rhcs_types.RHCS_TYPES:
        done = rhcs_types.translate(rtype, attrs, where)
        if isinstance(done, list):
            return done
        return ocf.validate(_ocf_attrs(done, attrs), where, None)
    return []
