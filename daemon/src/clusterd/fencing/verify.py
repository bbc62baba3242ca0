"""Fence path verification (edge): can every node be fenced right now?

For each node, each fence method's devices are asked for the node's power state with the
agent's ``status`` action (the node's own port/options, on stdin like every call), or,
when the agent has no per-port status, the device's ``monitor`` action. A method works
when every one of its devices answers; a node is fenceable when one method works. Nothing
is powered off or on. Answers are redacted like every agent output (no secret reaches
the reply). Used by the ``fence.verify`` control op, ``fence_node --verify`` and the
collection's ``fence_device verify: true`` (RELIABILITY row 15: alert when a node has no
working fence path).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from clusterd.errors import AgentError, ConfigError
from clusterd.fencing.agent import AgentRunner, PowerState
from clusterd.fencing.metadata import Capability
from clusterd.fencing.plan import ConfLike, DeviceCall, fence_plan

logger = logging.getLogger(__name__)

VERIFY_TIMEOUT = 25.0          # below the control clients' 30 s
CONCURRENCY = 4


async def _check_device(call: DeviceCall, runner: AgentRunner,
                        timeout: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"device": call.device, "agent": call.agent}
    try:
        meta = await runner.metadata(call.agent)
        if meta.supports(Capability.STATUS):
            entry["action"] = "status"
            power, why = await runner.status(call.agent, call.options, timeout)
            entry["ok"] = power is not PowerState.UNKNOWN
            if entry["ok"]:
                entry["power"] = power.value
            else:
                entry["error"] = f"{call.agent} status: {why}"
        elif meta.supports(Capability.MONITOR):
            entry["action"] = "monitor"
            result = await runner.run(call.agent, "monitor", call.options, timeout)
            why = result.failure(timeout)
            entry["ok"] = why is None
            if why is not None:
                entry["error"] = f"{call.agent} monitor: {why}"
        else:
            entry.update(ok=False, action="",
                         error=f"{call.agent} offers neither status nor monitor; "
                               f"this device cannot be verified")
    except AgentError as exc:
        entry.update(ok=False, error=exc.reason or str(exc))
    return entry


async def verify_node(node: str, conf: ConfLike, runner: AgentRunner,
                      timeout: float = VERIFY_TIMEOUT) -> dict[str, Any]:
    """``{"node", "ok", "method", "methods": [...], "error"}`` for one node."""
    try:
        plans = fence_plan(conf, node)
    except ConfigError as exc:
        return {"node": node, "ok": False, "method": "", "methods": [],
                "error": "; ".join(p.reason for p in exc.problems)}
    methods = []
    working = ""
    for plan in plans:
        devices = [await _check_device(call, runner, timeout) for call in plan.calls]
        ok = bool(devices) and all(d["ok"] for d in devices)
        methods.append({"name": plan.name, "ok": ok, "devices": devices})
        if ok and not working:
            working = plan.name
    result: dict[str, Any] = {"node": node, "ok": bool(working), "method": working,
                              "methods": methods}
    if not working:
        errors = [f"method {m['name']}: {d['error']}" for m in methods for d in m["devices"]
                  if not d["ok"]]
        result["error"] = "; ".join(errors) or "no fence method answered"
        logger.warning("fence verify: node %s has no working fence path: %s", node,
                       result["error"])
    return result


async def verify_nodes(conf: ConfLike, nodes: Iterable[str], runner: AgentRunner,
                       timeout: float = VERIFY_TIMEOUT,
                       concurrency: int = CONCURRENCY) -> list[dict[str, Any]]:
    """Every named node, a few at a time (BMCs answer slowly), in the given order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(node: str) -> dict[str, Any]:
        async with gate:
            return await verify_node(node, conf, runner, timeout)

    return list(await asyncio.gather(*(one(n) for n in nodes)))
