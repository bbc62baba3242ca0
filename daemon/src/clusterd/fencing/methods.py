"""Fence methods and unfencing over the agent runner (edge).

Methods are tried in order; every device of a method must succeed; a failing method moves
to the next; all failing = the attempt failed (the policy retries with backoff). Within a
method the *off* phase runs first on every device (default action, ``off``/``disable``),
then the *on* phase (explicit ``action="on"`` for dual power supplies, and the power-on
half of an emulated reboot). The node counts as fenced when the off phase succeeded:
``on_off_confirmed`` is awaited at that moment so recovery can start (DESIGN 5) while the
victim is being powered back on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from clusterd.errors import AgentError, ConfigError, Problem
from clusterd.fencing.agent import AgentRunner
from clusterd.fencing.metadata import check_device_params, fence_steps
from clusterd.fencing.plan import (
    ConfLike,
    DeviceCall,
    MethodPlan,
    fence_plan,
    unfence_plan,
)
from clusterd.fencing.progress import AgentStep, OnStep

logger = logging.getLogger(__name__)

_ON_ACTIONS = frozenset({"on", "enable"})
OffConfirmed = Callable[[str, str], Awaitable[None]]   # (node, method)


@dataclass(frozen=True)
class FenceOutcome:
    """What one fencing attempt did. ``errors`` are redacted sentences."""

    node: str
    ok: bool
    method: str = ""
    errors: tuple[str, ...] = ()
    on_errors: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    duration: float = 0.0

    @property
    def error(self) -> str:
        return "; ".join(self.errors)


def log_step(step: AgentStep) -> None:
    """The default step reporter: one line when an agent call starts and when it ends."""
    logger.log(logging.WARNING if step.error else logging.INFO, "fencing %s: %s",
               step.node, step.line())


async def _call(node: str, method: str, call: DeviceCall, action: str, runner: AgentRunner,
                on_step: OnStep) -> str:
    """One power call, reported as a step; returns the error ('' on success)."""
    begun = AgentStep(node, method, call.device, call.agent, action, time.monotonic(),
                      runner.timeout)
    on_step(begun)
    try:
        await runner.power(call.agent, action, call.options)
        error = ""
    except AgentError as exc:
        error = exc.reason or str(exc)
    on_step(replace(begun, took=time.monotonic() - begun.started, error=error))
    return error


async def _run_method(node: str, plan: MethodPlan, runner: AgentRunner,
                      on_off_confirmed: OffConfirmed | None,
                      on_step: OnStep) -> tuple[bool, list[str], list[str]]:
    offs = [c for c in plan.calls if (c.action or "reboot").lower() not in _ON_ACTIONS]
    ons: list[tuple[DeviceCall, str]] = [(c, "on") for c in plan.calls
                                         if (c.action or "").lower() in _ON_ACTIONS]
    if not offs:
        why = f"method {plan.name}: no device turns {node} off (every device has action=on)"
        return False, [why], []
    for call in offs:
        try:
            meta = await runner.metadata(call.agent)
            action, then_on = fence_steps(meta, call.action)
        except AgentError as exc:   # before any power call: the agent or its metadata
            why = f"method {plan.name} device {call.device}: {exc}"
            logger.warning("fencing %s: %s", node, why)
            return False, [why], []
        error = await _call(node, plan.name, call, action, runner, on_step)
        if error:
            return False, [(f"method {plan.name} device {call.device} ({call.agent}) "
                           f"action {action}: {error}")], []
        if then_on:
            ons.append((call, "on"))
    if on_off_confirmed is not None:
        await on_off_confirmed(node, plan.name)
    on_errors = []
    for call, action in ons:
        # the node is off: fencing succeeded; power-on trouble is shown, not retried
        error = await _call(node, plan.name, call, action, runner, on_step)
        if error:
            on_errors.append(f"method {plan.name} device {call.device}: {error}")
    return True, [], on_errors


async def fence_node(node: str, conf_provider: Callable[[], ConfLike], runner: AgentRunner,
                     on_off_confirmed: OffConfirmed | None = None,
                     on_step: OnStep = log_step) -> FenceOutcome:
    """One fencing attempt against ``node`` with the config in force *now*; each agent
    call is reported to ``on_step`` when it starts and when it ends."""
    started = time.monotonic()
    try:
        plans = fence_plan(conf_provider(), node)
    except ConfigError as exc:
        return FenceOutcome(node, False, errors=tuple(str(p) for p in exc.problems),
                            duration=time.monotonic() - started)
    errors: list[str] = []
    for index, plan in enumerate(plans):
        ok, errs, on_errs = await _run_method(node, plan, runner, on_off_confirmed, on_step)
        if ok:
            logger.info("fenced %s with method %s in %.2fs", node, plan.name,
                        time.monotonic() - started)
            return FenceOutcome(node, True, plan.name, tuple(errors), tuple(on_errs),
                                tuple(c.device for c in plan.calls),
                                time.monotonic() - started)
        errors.extend(errs)
        if index + 1 < len(plans):
            logger.info("fencing %s: method %s failed, trying method %s", node, plan.name,
                        plans[index + 1].name)
    return FenceOutcome(node, False, errors=tuple(errors), duration=time.monotonic() - started)


async def unfence_node(node: str, conf: ConfLike, runner: AgentRunner) -> FenceOutcome:
    """Run the node's ``<unfence>`` devices (explicit action, default on); all must succeed."""
    started = time.monotonic()
    try:
        calls = unfence_plan(conf, node)
    except ConfigError as exc:
        return FenceOutcome(node, False, errors=tuple(str(p) for p in exc.problems))
    errors = []
    for call in calls:
        try:
            meta = await runner.metadata(call.agent)
            action, _ = fence_steps(meta, call.action)
            await runner.power(call.agent, action, call.options)
        except AgentError as exc:
            errors.append(f"unfence device {call.device}: {exc}")
    return FenceOutcome(node, not errors, "unfence", tuple(errors),
                        devices=tuple(c.device for c in calls),
                        duration=time.monotonic() - started)


async def check_fencing_config(conf: ConfLike, nodes: list[str],
                               runner: AgentRunner) -> list[Problem]:
    """Validation helper: unknown devices, agents not installed, and missing required
    agent parameters (from each agent's own metadata), for every node at once."""
    problems: list[Problem] = []
    refs: dict[str, dict[str, dict[str, str]]] = {}
    for node in nodes:
        try:
            plans = fence_plan(conf, node)
            calls = [c for p in plans for c in p.calls] + list(unfence_plan(conf, node))
        except ConfigError as exc:
            if "no fence method" not in str(exc):
                problems.extend(exc.problems)
            continue
        for call in calls:
            refs.setdefault(call.device, {})[node] = dict(call.options)
    for name, device in sorted(conf.fencedevices.items()):
        where = f"/cluster/fencedevices/fencedevice[@name='{name}']"
        try:
            meta = await runner.metadata(device.agent)
        except AgentError as exc:
            problems.append(Problem(where, exc.reason or str(exc)))
            continue
        params = {k: v for k, v in device.params.items() if k not in ("name", "agent")}
        node_refs = {n: {k: v for k, v in o.items() if k != "nodename"}
                     for n, o in refs.get(name, {}).items()}
        problems.extend(check_device_params(name, device.agent, meta, params, node_refs))
    return problems
