"""``systemd`` agent (our extension type): ``<systemd name="web" unit="nginx.service"/>``.

- start: ``systemctl start --no-block UNIT``, then poll ``systemctl is-active`` until
  ``active`` (OK) or ``failed`` (FAILED) before the deadline (else TIMEOUT). A unit systemd
  does not know (LoadState not-found) is NOT_INSTALLED.
- stop: ``systemctl stop --no-block UNIT``, poll until ``inactive`` or ``failed``; a
  ``failed`` leftover is cleared with ``reset-failed`` so the next status reads NOT_RUNNING.
  A unit that does not exist is stopped by definition (OK).
- status: ``is-active``: active/reloading OK; inactive NOT_RUNNING; failed, activating,
  deactivating (not steady) and anything else FAILED.

Polling starts at 20 ms and backs off to 500 ms; every systemctl call has its own bound.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping

from clusterd.errors import Problem
from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    MetaDataResult,
    Outcome,
    guarded,
)
from clusterd.resources.agents.metadata import (
    AgentMeta,
    validate_params,
)
from clusterd.resources.agents.runner import Runner
from clusterd.resources.agents.script import describe_exit, printable
from clusterd.resources.rules import ActionSpec, ParamSpec

logger = logging.getLogger(__name__)

CALL_TIMEOUT = 10.0
POLL_FIRST = 0.02
POLL_MAX = 0.5
_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount|timer|path|scope)$")

META = AgentMeta(
    name="systemd",
    shortdesc="A systemd unit as a clustered resource",
    params=(
        ParamSpec("name", required=True, unique=True, primary=True),
        ParamSpec("unit", required=True, unique=True, shortdesc="unit name, e.g. nginx.service"),
    ),
    actions=(
        ActionSpec("start", timeout=100.0), ActionSpec("stop", timeout=100.0),
        ActionSpec("status", timeout=20.0, interval=30.0, depth=0),
        ActionSpec("meta-data", timeout=5.0),
    ),
)


def validate(attrs: Mapping[str, str], where: str) -> list[Problem]:
    problems = validate_params(META, attrs, where)
    unit = attrs.get("unit", "")
    if unit and not _UNIT.match(unit):
        problems.append(Problem(where, f"systemd: unit {unit!r} is not a unit name "
                                       "(NAME.service, .socket, .target, .mount, .timer, .path)"))
    return problems


class SystemdAgent:
    rtype = "systemd"

    def __init__(self, attrs: Mapping[str, str], *, runner: Runner | None = None):
        self.attrs = dict(attrs)
        self.name = self.attrs.get("name", "")
        self.unit = self.attrs["unit"]
        self._runner = runner or Runner()
        self._who = f"systemd:{self.name} ({self.unit})"

    def _timeout(self, action: str, timeout: float | None) -> float:
        return timeout if timeout is not None else META.action_timeout(action, 100.0)

    async def _systemctl(self, *args: str) -> tuple[int | None, str]:
        result = await self._runner.run(["systemctl", *args], timeout=CALL_TIMEOUT)
        if result.error or result.timed_out:
            raise OSError(f"systemctl {' '.join(args)}: {describe_exit(result)}")
        return result.rc, (result.stdout.strip().splitlines() or [""])[0]

    async def active_state(self) -> str:
        _rc, state = await self._systemctl("is-active", self.unit)
        return state or "unknown"

    async def _known(self) -> bool:
        _rc, load = await self._systemctl("show", "--property=LoadState", "--value", self.unit)
        return load not in ("not-found", "")

    async def _wait_for(self, wanted: frozenset[str], limit: float) -> str:
        """Poll is-active until a wanted state, 'failed', or the deadline (returns last)."""
        delay = POLL_FIRST
        deadline = time.monotonic() + limit
        while True:
            state = await self.active_state()
            if state in wanted or state == "failed" or time.monotonic() >= deadline:
                return state
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, POLL_MAX)

    async def start(self, timeout: float | None = None) -> AgentResult:
        limit = self._timeout("start", timeout)

        async def body() -> Outcome:
            if not await self._known():
                return Outcome(AgentRc.NOT_INSTALLED, f"{self._who}: unit not found")
            rc, _out = await self._systemctl("start", "--no-block", self.unit)
            if rc != 0:
                return Outcome(AgentRc.FAILED, f"{self._who}: systemctl start exit {rc}", rc)
            state = await self._wait_for(frozenset({"active"}), limit)
            if state == "active":
                return Outcome(AgentRc.OK, f"{self._who}: active")
            if state == "failed":
                return Outcome(AgentRc.FAILED, f"{self._who}: unit failed to start")
            return Outcome(AgentRc.TIMEOUT, f"{self._who}: still {printable(state)} at the "
                                            f"deadline ({limit:g}s)")
        return await guarded(AgentAction.START, self._who, limit + CALL_TIMEOUT, body)

    async def stop(self, timeout: float | None = None) -> AgentResult:
        limit = self._timeout("stop", timeout)

        async def body() -> Outcome:
            if not await self._known():
                return Outcome(AgentRc.OK, f"{self._who}: unit not found, nothing to stop")
            if await self.active_state() in ("inactive",):
                return Outcome(AgentRc.OK, f"{self._who}: already inactive")
            rc, _out = await self._systemctl("stop", "--no-block", self.unit)
            if rc != 0:
                return Outcome(AgentRc.FAILED, f"{self._who}: systemctl stop exit {rc}", rc)
            state = await self._wait_for(frozenset({"inactive"}), limit)
            if state == "failed":
                await self._systemctl("reset-failed", self.unit)
                return Outcome(AgentRc.OK, f"{self._who}: stopped (was failed; reset)")
            if state == "inactive":
                return Outcome(AgentRc.OK, f"{self._who}: inactive")
            return Outcome(AgentRc.TIMEOUT, f"{self._who}: still {printable(state)} at the "
                                            f"deadline ({limit:g}s)")
        return await guarded(AgentAction.STOP, self._who, limit + CALL_TIMEOUT, body)

    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult:
        async def body() -> Outcome:
            state = await self.active_state()
            if state in ("active", "reloading"):
                return Outcome(AgentRc.OK, f"{self._who}: {state}")
            if state == "inactive":
                return Outcome(AgentRc.NOT_RUNNING, f"{self._who}: inactive")
            return Outcome(AgentRc.FAILED, f"{self._who}: {printable(state)}")
        return await guarded(AgentAction.STATUS, self._who, self._timeout("status", timeout), body)

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult:
        result = AgentResult(AgentAction.META_DATA, AgentRc.OK, "systemd: built-in meta-data", 0.0)
        return MetaDataResult(result, META)
