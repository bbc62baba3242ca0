"""The resource-agent contract: the ``ResourceAgent`` protocol and its frozen results.

This module is the authoritative definition of what the service runtime may call on an
agent. An agent is built from (resource type, attributes after inheritance) by
``registry.build_agent`` and answers four coroutines, each with an explicit timeout
(``None`` = the agent's meta-data default):

- ``start()``, ``stop()``: ``stop`` of a stopped resource returns ``OK`` (OCF contract;
  resource-agents #137);
- ``status(depth)``: ``OK`` running, ``NOT_RUNNING`` cleanly stopped, anything else broken;
- ``meta_data()``: parameters (defaults, required) and action timeouts/intervals.

Agents never raise for agent failures (a hung, missing or garbage-printing program is an
``AgentResult``); they raise only for programming errors. ``asyncio.CancelledError`` always
propagates.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from clusterd.resources.agents.metadata import AgentMeta

logger = logging.getLogger(__name__)


class AgentAction(str, enum.Enum):
    START = "start"
    STOP = "stop"
    STATUS = "status"
    META_DATA = "meta-data"
    VALIDATE = "validate-all"
    ANNOUNCE = "announce"


class AgentRc(enum.Enum):
    """Outcome of one agent action, OCF exit codes folded into names."""

    OK = "ok"                          # OCF 0
    FAILED = "failed"                  # OCF 1 (generic error), broken, killed, garbage
    INVALID_ARGS = "invalid-args"      # OCF 2
    UNIMPLEMENTED = "unimplemented"    # OCF 3
    PERMISSION = "permission"          # OCF 4
    NOT_INSTALLED = "not-installed"    # OCF 5
    CONFIG_ERROR = "config-error"      # OCF 6
    NOT_RUNNING = "not-running"        # OCF 7
    TIMEOUT = "timeout"                # no answer before the deadline (process group killed)

    @property
    def hard(self) -> bool:
        """True when retrying on this node cannot help (config or installation problem)."""
        return self in _HARD

    @property
    def fatal(self) -> bool:
        """True when the resource cannot run on any node as configured (OCF 6 semantics)."""
        return self is AgentRc.CONFIG_ERROR


_HARD = frozenset({AgentRc.INVALID_ARGS, AgentRc.UNIMPLEMENTED, AgentRc.PERMISSION,
                   AgentRc.NOT_INSTALLED, AgentRc.CONFIG_ERROR})


@dataclass(frozen=True)
class AgentResult:
    """One action's outcome. ``message`` is a sentence naming the resource (safe to log:
    secrets are redacted); ``exit_code`` is the program's raw code when one ran."""

    action: AgentAction
    rc: AgentRc
    message: str
    duration: float
    exit_code: int | None = None
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.rc is AgentRc.OK

    @property
    def running(self) -> bool:
        """For status: the resource is up."""
        return self.rc is AgentRc.OK

    @property
    def stopped_cleanly(self) -> bool:
        """For status: the resource is cleanly not running (not broken)."""
        return self.rc is AgentRc.NOT_RUNNING


@dataclass(frozen=True)
class MetaDataResult:
    """``meta_data()`` outcome: ``meta`` is None when ``result`` is not OK."""

    result: AgentResult
    meta: AgentMeta | None


@runtime_checkable
class ResourceAgent(Protocol):
    """What the service runtime calls. ``rtype`` is the cluster.conf element name (``ip``,
    ``fs``, ``script``, ``systemd``, ``ocf``, or an rgmanager-agent type), ``name`` the
    instance's primary attribute value (for messages), ``attrs`` the inherited attributes."""

    rtype: str
    name: str
    attrs: Mapping[str, str]

    async def start(self, timeout: float | None = None) -> AgentResult: ...

    async def stop(self, timeout: float | None = None) -> AgentResult: ...

    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult: ...

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult: ...


@dataclass(frozen=True)
class Outcome:
    """What an action body found; ``guarded`` adds the action and the duration."""

    rc: AgentRc
    message: str
    exit_code: int | None = None
    output: str = ""


@runtime_checkable
class Announcer(Protocol):
    """Agents whose resource must be re-announced to the network after a partition heals
    or membership changes (``ip``: gratuitous ARP / unsolicited NA; keepalived #166)."""

    async def announce(self, timeout: float | None = None) -> AgentResult: ...


Body = Callable[[], Awaitable[Outcome]]


async def guarded(action: AgentAction, who: str, timeout: float, body: Body) -> AgentResult:
    """Run one agent action body under a deadline and fold every agent-side failure into
    an ``AgentResult``: ``TimeoutError`` -> TIMEOUT, ``OSError`` -> FAILED. Programming
    errors and cancellation propagate."""
    if timeout <= 0:
        raise ValueError(f"{who}: {action.value} timeout must be positive, got {timeout!r}")
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            outcome = await body()
    except TimeoutError:
        outcome = Outcome(AgentRc.TIMEOUT, f"{who}: {action.value} timed out after {timeout:g}s")
    except OSError as exc:
        outcome = Outcome(AgentRc.FAILED, f"{who}: {action.value} failed: {exc.strerror or exc}")
    duration = time.monotonic() - started
    result = AgentResult(action, outcome.rc, outcome.message, duration, outcome.exit_code,
                         outcome.output)
    level = logging.DEBUG if outcome.rc in (AgentRc.OK, AgentRc.NOT_RUNNING) else logging.WARNING
    logger.log(level, "%s (%.3fs)", outcome.message, duration)
    return result
