"""OCF resource agents (resource-agents package) and rgmanager-style agents.

Two ways a cluster.conf resource reaches an OCF program (see ``registry``):

- ``<ocf name="web" agent="heartbeat:nginx" configfile="..."/>`` (our extension element):
  runs ``$OCF_ROOT/resource.d/heartbeat/nginx``; ``agent`` may also be written
  ``ocf:heartbeat:nginx`` or just ``nginx`` (provider ``heartbeat``). Every attribute other
  than ``name``/``agent``/rgmanager's ``__*`` ones is a parameter (``OCF_RESKEY_<attr>``);
  ``name`` is the instance (``OCF_RESOURCE_INSTANCE``). Status uses ``monitor`` with
  ``OCF_CHECK_LEVEL`` = depth.
- ``<TYPE .../>`` for an rgmanager agent installed as ``/usr/share/cluster/TYPE.sh`` (how
  RHCS ran apache, mysql, nfsserver ...): same environment, status uses ``status``.

Environment: a clean one (runner's fixed PATH) plus ``OCF_ROOT``, ``OCF_FUNCTIONS_DIR``,
``OCF_RA_VERSION_MAJOR/MINOR``, ``OCF_RESOURCE_INSTANCE/TYPE/PROVIDER``, a private
``HA_RSCTMP`` (created 0755 if missing; each node has its own), ``OCF_RESKEY_*``, and
``OCF_RESKEY_CRM_meta_timeout`` (ms, several heartbeat agents read it); status checks also
get ``OCF_RESKEY_CRM_meta_interval`` (the depth's interval, never 0: they are not probes).
An agent built with an ``option_file`` (an RHCS ``<mysql>``: ``rhcs_types.OptionFile``)
first reads the parameters the program's own option file sets (``my_print_defaults``)
and passes them too, the resource's own parameters winning; if that read fails the action
fails without running the agent. The agent file and its directories must be root-owned
and not writable by group/others.
Exit codes: 0 OK,
1 FAILED, 2 INVALID_ARGS, 3 UNIMPLEMENTED, 4 PERMISSION, 5 NOT_INSTALLED, 6 CONFIG_ERROR,
7 NOT_RUNNING, 8 OK (running promoted), 9 FAILED, 190/191 OK (degraded); anything else,
death by signal or no answer before the deadline are FAILED / TIMEOUT. Parameter values
the agent prints back are redacted when their name looks secret. Note: OCF passes
parameters in the environment (readable by root only through /proc/PID/environ, not argv).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clusterd import trust
from clusterd.errors import Problem
from clusterd.resources.agents import rhcs_types
from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    MetaDataResult,
    Outcome,
    guarded,
)
from clusterd.resources.agents.metadata import (
    RGMANAGER_ATTRS,
    AgentMeta,
    MetaDataError,
    is_secret_name,
    parse_metadata,
    validate_params,
)
from clusterd.resources.agents.rhcs_types import OptionFile
from clusterd.resources.agents.runner import Runner, RunResult, redact_values
from clusterd.resources.agents.script import describe_exit

logger = logging.getLogger(__name__)

OCF_ROOT = "/usr/lib/ocf"
RGMANAGER_AGENT_DIR = "/usr/share/cluster"
HA_RSCTMP = "/run/resource-agents"
DEFAULT_PROVIDER = "heartbeat"
DEFAULT_TIMEOUT = 20.0
META_TIMEOUT = 10.0
DEFAULT_INTERVAL = 30.0
ELEMENT_ATTRS = frozenset({"name", "agent"})
AGENT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

OCF_RC = {0: AgentRc.OK, 1: AgentRc.FAILED, 2: AgentRc.INVALID_ARGS, 3: AgentRc.UNIMPLEMENTED,
          4: AgentRc.PERMISSION, 5: AgentRc.NOT_INSTALLED, 6: AgentRc.CONFIG_ERROR,
          7: AgentRc.NOT_RUNNING, 8: AgentRc.OK, 9: AgentRc.FAILED, 190: AgentRc.OK,
          191: AgentRc.OK}
OCF_RC_NOTE = {8: " (running, promoted)", 9: " (failed, promoted)", 190: " (degraded)",
               191: " (degraded, promoted)"}


@dataclass(frozen=True)
class AgentSpec:
    provider: str
    type: str


def parse_agent_spec(text: str) -> AgentSpec | str:
    """``heartbeat:nginx``, ``ocf:heartbeat:nginx`` or ``nginx``; a sentence if invalid."""
    parts = text.split(":")
    if len(parts) == 3 and parts[0] == "ocf":
        parts = parts[1:]
    if len(parts) == 1:
        parts = [DEFAULT_PROVIDER, parts[0]]
    if len(parts) != 2 or not all(AGENT_NAME.match(p) and p not in (".", "..") for p in parts):
        return (f"agent {text!r} is not PROVIDER:TYPE (letters, digits, '_', '.', '-'; "
                "e.g. heartbeat:nginx)")
    return AgentSpec(parts[0], parts[1])


def ocf_params(attrs: Mapping[str, str], element: bool = True) -> dict[str, str]:
    """The attributes that are agent parameters (not ``name``/``agent``/``__*``)."""
    skip = (ELEMENT_ATTRS if element else frozenset()) | RGMANAGER_ATTRS
    return {k: v for k, v in attrs.items() if k not in skip and not k.startswith("__")}


def validate(attrs: Mapping[str, str], where: str, meta: AgentMeta | None = None,
             element: bool = True) -> list[Problem]:
    """Structural checks, plus parameters against ``meta`` when it is known (see
    ``OcfAgent.meta_data``: meta-data needs the agent installed on this node)."""
    problems: list[Problem] = []
    if element:
        if not attrs.get("name"):
            problems.append(Problem(where, "ocf: required attribute 'name' is missing"))
        spec = attrs.get("agent")
        if not spec:
            problems.append(Problem(where, "ocf: required attribute 'agent' is missing "
                                           "(PROVIDER:TYPE, e.g. heartbeat:nginx)"))
        elif isinstance(parse_agent_spec(spec), str):
            problems.append(Problem(where, f"ocf: {parse_agent_spec(spec)}"))
    for name in ocf_params(attrs, element):
        if not _ENV_NAME.match(name):
            problems.append(Problem(where, f"ocf: parameter name {name!r} cannot be passed as "
                                           "OCF_RESKEY_<name>"))
    if meta is not None:
        problems += validate_params(meta, ocf_params(attrs, element), where)
    return problems


class OcfAgent:
    """One OCF resource instance. ``path``/``status_action`` select rgmanager style."""

    def __init__(self, rtype: str, attrs: Mapping[str, str], *, runner: Runner | None = None,
                 ocf_root: str = OCF_ROOT, rsctmp: str = HA_RSCTMP, path: str | None = None,
                 status_action: str = "monitor", instance_attr: str = "name",
                 timeouts: Mapping[str, float] | None = None,
                 option_file: OptionFile | None = None):
        self.rtype = rtype
        # parameters read from the program's own option file before each action (an
        # RHCS <mysql>: see rhcs_types.OptionFile)
        self._option_file = option_file
        # action -> seconds set by the resource itself (an RHCS type's startup_wait /
        # shutdown_wait), ahead of the agent's meta-data
        self._timeouts = dict(timeouts or {})
        self.attrs = dict(attrs)
        self.name = self.attrs.get(instance_attr, "")
        self._element = path is None
        if path is None:
            spec = parse_agent_spec(self.attrs.get("agent", ""))
            if isinstance(spec, str):
                raise ValueError(f"ocf:{self.name}: {spec}")   # validate() reports it first
            self.spec = spec
            path = os.path.join(ocf_root, "resource.d", spec.provider, spec.type)
        else:
            self.spec = AgentSpec("rgmanager", rtype)
        self.path = path
        self.status_action = status_action
        self.ocf_root = ocf_root
        self.rsctmp = rsctmp
        self._runner = runner or Runner()
        self._meta: AgentMeta | None = None
        self._who = f"{rtype}:{self.name} ({self.spec.provider}:{self.spec.type})"
        params = ocf_params(self.attrs, self._element)
        self._params = params
        self._redact = redact_values([v for k, v in params.items() if is_secret_name(k)])

    def env(self, action: str, timeout: float, depth: int = 0) -> dict[str, str]:
        env = {"OCF_ROOT": self.ocf_root,
               "OCF_FUNCTIONS_DIR": os.path.join(self.ocf_root, "lib", "heartbeat"),
               "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
               "OCF_RESOURCE_INSTANCE": self.name or self.spec.type,
               "OCF_RESOURCE_TYPE": self.spec.type,
               "OCF_RESOURCE_PROVIDER": self.spec.provider,
               "HA_RSCTMP": self.rsctmp,
               "OCF_RESKEY_CRM_meta_timeout": str(int(timeout * 1000))}
        if action in ("monitor", "status"):
            env["OCF_CHECK_LEVEL"] = str(depth)
            # A recurring check, not a probe: ocf_is_probe() is "monitor with interval 0",
            # and probes report a missing binary as "not running" instead of an error.
            env["OCF_RESKEY_CRM_meta_interval"] = str(int(self._interval(depth) * 1000))
        env.update({f"OCF_RESKEY_{k}": v for k, v in self._params.items()})
        return env

    def _interval(self, depth: int) -> float:
        checks = self._meta.status_actions() if self._meta else ()
        exact = [a.interval for a in checks if (a.depth or 0) == depth and a.interval]
        return exact[0] if exact else DEFAULT_INTERVAL

    async def _exec(self, action: str, timeout: float, depth: int = 0) -> RunResult | Outcome:
        reason = await asyncio.to_thread(trust.untrusted_reason, self.path)
        if reason:
            rc = AgentRc.NOT_INSTALLED if "does not exist" in reason else AgentRc.PERMISSION
            return Outcome(rc, f"{self._who}: refusing to run agent: {reason}")
        reason = await asyncio.to_thread(self._program_problem)
        if reason:
            logger.error("%s: refusing to run agent: %s", self._who, reason)
            return Outcome(AgentRc.PERMISSION, f"{self._who}: refusing to run agent: {reason}")
        env = self.env(action, timeout, depth)
        if action not in ("meta-data",):
            await asyncio.to_thread(os.makedirs, self.rsctmp, 0o755, True)
            if self._option_file is not None:
                read = await self._read_option_file(timeout)
                if isinstance(read, Outcome):
                    return read
                env.update({f"OCF_RESKEY_{k}": v for k, v in read.items()
                            if k not in self._params})
        return await self._runner.run([self.path, action], timeout=timeout, env=env,
                                      redact=self._redact)

    async def _read_option_file(self, timeout: float) -> dict[str, str] | Outcome:
        """The option file's parameters (rhcs_types.OptionFile), or why they cannot be read:
        running the agent without them would use its own defaults (another data dir)."""
        spec = self._option_file
        assert spec is not None
        result = await self._runner.run(spec.argv, timeout=min(timeout, META_TIMEOUT))
        if result.rc != 0 or result.timed_out:
            rc = AgentRc.NOT_INSTALLED if result.error and "not found" in result.error \
                else AgentRc.CONFIG_ERROR
            how = describe_exit(result)
            how = how if result.error else f"{spec.argv[0]} {how}"
            return Outcome(rc, f"{self._who}: cannot read the option file {spec.path} "
                               f"({how}): the agent would "
                               "use its own data directory instead; install the server "
                               "package and check the file")
        params = rhcs_types.option_file_params(spec, result.stdout)
        logger.debug("%s: from %s: %s", self._who, spec.path, params)
        return params

    def _program_problem(self) -> str | None:
        """Program parameters the agent would run (``*_script``, vm's ``status_program``),
        checked again just before each run: the files may have changed since validation."""
        for key, value in self._params.items():
            if trust.is_program_param(self.rtype, key, in_rm=True):
                problem = trust.program_problem(value)
                if problem is not None:
                    return f"parameter {key} {problem}"
        return None

    async def _limit(self, action: str, timeout: float | None, depth: int = 0) -> float:
        if timeout is not None:
            return timeout
        if action in self._timeouts:
            return self._timeouts[action]
        meta = self._meta
        if meta is None:
            loaded = await self.meta_data()
            meta = loaded.meta
        if meta is None:
            return DEFAULT_TIMEOUT
        if action == "status":
            return meta.status_timeout(depth, DEFAULT_TIMEOUT)
        return meta.action_timeout(action, DEFAULT_TIMEOUT)

    async def start(self, timeout: float | None = None) -> AgentResult:
        return await self._action(AgentAction.START, "start", await self._limit("start", timeout))

    async def stop(self, timeout: float | None = None) -> AgentResult:
        return await self._action(AgentAction.STOP, "stop", await self._limit("stop", timeout))

    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult:
        return await self._action(AgentAction.STATUS, self.status_action,
                                  await self._limit("status", timeout, depth), depth)

    async def validate_all(self, timeout: float | None = None) -> AgentResult:
        return await self._action(AgentAction.VALIDATE, "validate-all",
                                  await self._limit("validate-all", timeout))

    async def _action(self, action: AgentAction, verb: str, limit: float,
                      depth: int = 0) -> AgentResult:
        async def body() -> Outcome:
            return self._interpret(action, verb, await self._exec(verb, limit, depth))
        return await guarded(action, self._who, limit + self._runner.cleanup_budget, body)

    def _interpret(self, action: AgentAction, verb: str, result: RunResult | Outcome) -> Outcome:
        if isinstance(result, Outcome):
            return result
        output = result.stdout + result.stderr
        if result.timed_out:
            return Outcome(AgentRc.TIMEOUT, f"{self._who}: {verb} {describe_exit(result)}",
                           result.rc, output)
        if result.rc is None or result.rc < 0:
            return Outcome(AgentRc.FAILED, f"{self._who}: {verb} failed: {describe_exit(result)}",
                           result.rc, output)
        if result.rc not in OCF_RC:
            return Outcome(AgentRc.FAILED, f"{self._who}: {verb} failed: {describe_exit(result)}"
                                           " (not an OCF exit code)", result.rc, output)
        rc = OCF_RC[result.rc]
        note = OCF_RC_NOTE.get(result.rc, "")
        if action is AgentAction.START and rc is AgentRc.NOT_RUNNING:
            rc = AgentRc.FAILED
            note = " (start answered 'not running')"
        if action is AgentAction.STOP and rc is AgentRc.NOT_RUNNING:
            return Outcome(AgentRc.OK, f"{self._who}: stop: not running (exit 7)", 7, output)
        if rc is AgentRc.OK:
            return Outcome(rc, f"{self._who}: {verb} ok{note}", result.rc, output)
        if rc is AgentRc.NOT_RUNNING:
            return Outcome(rc, f"{self._who}: not running", result.rc, output)
        return Outcome(rc, f"{self._who}: {verb} failed: {describe_exit(result)}{note}",
                       result.rc, output)

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult:
        limit = timeout if timeout is not None else META_TIMEOUT
        meta_box: list[AgentMeta] = []

        async def body() -> Outcome:
            result = await self._exec("meta-data", limit)
            if isinstance(result, Outcome):
                return result
            if result.timed_out or result.rc != 0:
                return Outcome(AgentRc.TIMEOUT if result.timed_out else AgentRc.FAILED,
                               f"{self._who}: meta-data failed: {describe_exit(result)}",
                               result.rc)
            try:
                meta_box.append(parse_metadata(result.stdout))
            except MetaDataError as exc:
                return Outcome(AgentRc.FAILED, f"{self._who}: meta-data unusable: {exc}",
                               result.rc)
            return Outcome(AgentRc.OK, f"{self._who}: meta-data read", 0)

        answer = await guarded(AgentAction.META_DATA, self._who,
                               limit + self._runner.cleanup_budget, body)
        if answer.ok and meta_box:
            self._meta = meta_box[0]
            return MetaDataResult(answer, self._meta)
        return MetaDataResult(answer, None)

    def validate_params(self, where: str) -> list[Problem]:
        """Parameter problems against the meta-data read earlier (none known yet: [])."""
        if self._meta is None:
            return []
        return validate_params(self._meta, self._params, where)
