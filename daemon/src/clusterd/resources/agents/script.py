"""Built-in ``script`` agent: an LSB init script (``<script name= file=/>``).

Runs ``FILE start|stop|status`` through the hygienic runner (clean env, own process group,
deadline). Exit codes per LSB:
- start/stop: 0 OK; 1 FAILED; 2 INVALID_ARGS; 3 UNIMPLEMENTED; 4 PERMISSION;
  5 NOT_INSTALLED; 6 CONFIG_ERROR; 7 on start FAILED. ``stop`` of a stopped service must
  return 0 (LSB); a non-compliant 7 ("program is not running") on stop is taken as
  stopped (OK) and said so in the message.
- status: 0 OK; 3 NOT_RUNNING; 1 ("dead, pid file exists"), 2 ("dead, lock file exists"),
  4 (unknown) and anything else FAILED.
The script must be root-owned and not writable by group/others (nor its directories).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from clusterd.errors import Problem
from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    Body,
    MetaDataResult,
    Outcome,
    guarded,
)
from clusterd.resources.agents.metadata import (
    AgentMeta,
    validate_params,
)
from clusterd.resources.agents.runner import Runner, RunResult
from clusterd.resources.rules import ActionSpec, ParamSpec
from clusterd.trust import untrusted_reason

logger = logging.getLogger(__name__)

META = AgentMeta(
    name="script",
    shortdesc="LSB-compliant init script as a clustered resource",
    params=(
        ParamSpec("name", required=True, unique=True, primary=True),
        ParamSpec("file", required=True, unique=True, shortdesc="path to the init script"),
        ParamSpec("service_name"),
    ),
    actions=(
        ActionSpec("start", timeout=60.0), ActionSpec("stop", timeout=60.0),
        ActionSpec("status", timeout=30.0, interval=30.0, depth=0),
        ActionSpec("meta-data", timeout=5.0),
    ),
)

LSB_ACTION_RC = {0: AgentRc.OK, 1: AgentRc.FAILED, 2: AgentRc.INVALID_ARGS,
                 3: AgentRc.UNIMPLEMENTED, 4: AgentRc.PERMISSION, 5: AgentRc.NOT_INSTALLED,
                 6: AgentRc.CONFIG_ERROR, 7: AgentRc.FAILED}
LSB_STATUS_RC = {0: AgentRc.OK, 3: AgentRc.NOT_RUNNING}
LSB_STATUS_TEXT = {1: "dead but pid file exists", 2: "dead but lock file exists",
                   4: "status unknown"}


def validate(attrs: Mapping[str, str], where: str) -> list[Problem]:
    problems = validate_params(META, attrs, where)
    path = attrs.get("file", "")
    if path and not path.startswith("/"):
        problems.append(Problem(where, f"script: file {path!r} must be an absolute path"))
    return problems


def describe_exit(result: RunResult) -> str:
    """A short, safe description of how a program ended."""
    if result.error:
        return result.error
    if result.timed_out:
        return "timed out (process group killed)"
    if result.rc is not None and result.rc < 0:
        return f"killed by signal {-result.rc}"
    last = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return f"exit {result.rc}" + (f": {printable(last[-1][:200])}" if last else "")


def printable(text: str) -> str:
    """Control and undecodable characters replaced by '?' (agent output is untrusted)."""
    return "".join(c if c.isprintable() and c != "\ufffd" else "?" for c in text)


class ScriptAgent:
    rtype = "script"

    def __init__(self, attrs: Mapping[str, str], *, runner: Runner | None = None):
        self.attrs = META.with_defaults(attrs)
        self.name = self.attrs.get("name", "")
        self.file = self.attrs["file"]
        self._runner = runner or Runner()
        self._who = f"script:{self.name} ({self.file})"

    def _timeout(self, action: str, timeout: float | None) -> float:
        return timeout if timeout is not None else META.action_timeout(action, 60.0)

    async def _run(self, action: str, timeout: float) -> RunResult | Outcome:
        reason = await asyncio.to_thread(untrusted_reason, self.file)
        if reason:
            rc = AgentRc.NOT_INSTALLED if "does not exist" in reason else AgentRc.PERMISSION
            return Outcome(rc, f"{self._who}: refusing to run: {reason}")
        # The runner enforces the deadline itself and kills the group; guarded() is only
        # the outer net, given the runner's cleanup budget on top (see _guard).
        return await self._runner.run([self.file, action], timeout=timeout)

    async def _guard(self, action: AgentAction, limit: float, body: Body) -> AgentResult:
        return await guarded(action, self._who, limit + self._runner.cleanup_budget, body)

    async def start(self, timeout: float | None = None) -> AgentResult:
        limit = self._timeout("start", timeout)

        async def body() -> Outcome:
            return self._action_outcome("start", await self._run("start", limit))
        return await self._guard(AgentAction.START, limit, body)

    async def stop(self, timeout: float | None = None) -> AgentResult:
        limit = self._timeout("stop", timeout)

        async def body() -> Outcome:
            result = await self._run("stop", limit)
            if isinstance(result, Outcome) and result.rc is AgentRc.NOT_INSTALLED:
                return Outcome(AgentRc.OK, f"{self._who}: script is absent, nothing to stop")
            if isinstance(result, RunResult) and result.rc == 7:
                return Outcome(AgentRc.OK, f"{self._who}: stopped (script said 'not running' "
                                           "with exit 7; LSB wants 0)", 7, result.stdout)
            return self._action_outcome("stop", result)
        return await self._guard(AgentAction.STOP, limit, body)

    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult:
        limit = self._timeout("status", timeout)

        async def body() -> Outcome:
            result = await self._run("status", limit)
            if isinstance(result, Outcome):
                return result
            if result.timed_out:
                return Outcome(AgentRc.TIMEOUT, f"{self._who}: status {describe_exit(result)}")
            rc = LSB_STATUS_RC.get(result.rc if result.rc is not None else -1, AgentRc.FAILED)
            text = LSB_STATUS_TEXT.get(result.rc or 0, "")
            detail = {AgentRc.OK: "running", AgentRc.NOT_RUNNING: "not running"}.get(
                rc, f"broken ({text or describe_exit(result)})")
            return Outcome(rc, f"{self._who}: {detail}", result.rc, result.stdout)
        return await self._guard(AgentAction.STATUS, limit, body)

    def _action_outcome(self, action: str, result: RunResult | Outcome) -> Outcome:
        if isinstance(result, Outcome):
            return result
        if result.timed_out:
            return Outcome(AgentRc.TIMEOUT, f"{self._who}: {action} {describe_exit(result)}")
        if result.rc is None or result.rc < 0:
            return Outcome(AgentRc.FAILED, f"{self._who}: {action} {describe_exit(result)}",
                           result.rc)
        rc = LSB_ACTION_RC.get(result.rc, AgentRc.FAILED)
        if rc is AgentRc.OK:
            return Outcome(rc, f"{self._who}: {action} done", 0, result.stdout)
        return Outcome(rc, f"{self._who}: {action} failed: {describe_exit(result)}", result.rc,
                       result.stdout + result.stderr)

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult:
        result = AgentResult(AgentAction.META_DATA, AgentRc.OK, "script: built-in meta-data", 0.0)
        return MetaDataResult(result, META)
