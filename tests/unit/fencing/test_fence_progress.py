"""A running fence shows what it does: each agent call reported when it starts and ends
(method, device, agent, action, since, the agent's timeout), the agent's error output the
moment it fails, in the status section and in the log with the node and the op id."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from clusterd.fencing.agent import AgentRunner
from clusterd.fencing.methods import fence_node
from clusterd.fencing.ops import fence_status
from clusterd.fencing.progress import AgentStep, Progress, progress_view
from clusterd.fencing.runtime import Fencer
from clusterd.fencing.state import (
    FenceOp,
    FencePhase,
    FencingState,
    Origin,
    PolicyConfig,
)
from fencing_builders import Conf, Dev, Method, Node, Ref, cfg, view

STEP = AgentStep("node3", "ipmi", "bmc3", "fence_ipmilan", "off", 100.0, 20.0)

LINES = [
    (STEP, "method ipmi device bmc3 (fence_ipmilan) action off, agent timeout 20s"),
    (AgentStep(**{**vars(STEP), "took": 0.0712}),
     "method ipmi device bmc3 (fence_ipmilan) action off succeeded in 0.07s"),
    (AgentStep(**{**vars(STEP), "took": 20.013, "error": "timed out after 20s"}),
     ("method ipmi device bmc3 (fence_ipmilan) action off failed after 20.01s: timed out "
     "after 20s")),
]


@pytest.mark.parametrize(("step", "line"), LINES)
def test_step_lines(step, line):
    assert step.line() == line


def test_progress_keeps_the_errors_of_the_attempt_and_the_status_shows_them():
    p = Progress("node3#2", 1, STEP)
    assert p.prefix == "fencing node3 (node3#2, attempt 1)"
    p = p.after(AgentStep(**{**vars(STEP), "took": 3.0, "error": "rc=1: no route"}))
    p = p.after(AgentStep("node3", "apc", "pdu1", "fence_apc", "off", 104.0, 20.0))
    view_ = progress_view(p, now=110.0, wall_now=1_000_000.0)
    assert view_ == {"method": "apc", "device": "pdu1", "agent": "fence_apc", "action": "off",
                     "since": 999_994, "timeout": 20.0, "running": True,
                     "errors": [("method ipmi device bmc3 (fence_ipmilan) action off: "
                                "rc=1: no route")]}
    op = FenceOp("node3", 2, Origin.MEMBERSHIP, FencePhase.RUNNING, 90.0, 90.0, executor="node1",
                 attempts=1)
    state = FencingState("node1", PolicyConfig(), ops={"node3": op})
    (entry,) = fence_status(state, 110.0, 1_000_000.0, progress={"node3": p})
    assert entry["executor"] == "node1" and entry["current"] == view_
    (entry,) = fence_status(state, 110.0, 1_000_000.0)   # another member: who runs it
    assert entry["executor"] == "node1" and "current" not in entry


def conf(log, methods=("m",), **params) -> Conf:
    devs = {m: Dev(m, "fence_fake", {"fake_log": str(log), "password": "s3cr3t",
                                     **params.get(m, {})}) for m in methods}
    nodes = tuple(Node(n, i, tuple(Method(m, (Ref(m, {"port": n}),)) for m in methods))
                  for n, i in (("node1", 1), ("node2", 2), ("node3", 3)))
    return Conf(devs, nodes)


def test_fence_node_reports_every_agent_call(agent_dir, tmp_path):
    runner = AgentRunner(search_dirs=[str(agent_dir)], timeout=7)
    c = conf(tmp_path / "log", ("a", "b"), a={"fake_mode": "fail"})
    steps: list[AgentStep] = []
    out = asyncio.run(fence_node("node3", lambda: c, runner, None, steps.append))
    assert out.ok and out.method == "b"
    assert [(s.method, s.action, s.took is None, s.timeout) for s in steps] == [
        ("a", "off", True, 7), ("a", "off", False, 7), ("b", "off", True, 7),
        ("b", "off", False, 7), ("b", "on", True, 7), ("b", "on", False, 7)]
    assert steps[1].error == ("the agent reported failure (rc=1): Failed: Unable to "
                              "connect/login to fencing device")
    assert out.errors == ("method a device a (fence_fake) action off: " + steps[1].error,)
    assert not any(s.error for s in steps[2:])


def test_a_hanging_agent_shows_its_step_while_it_runs_then_its_error(agent_dir, tmp_path,
                                                                     caplog):
    caplog.set_level(logging.INFO, logger="clusterd.fencing")
    holder = {"conf": conf(tmp_path / "log", m={"fake_mode": "hang"})}

    async def scenario():
        f = Fencer("node1", cfg(backoff_base=30, backoff_cap=30), lambda: holder["conf"],
                   AgentRunner(search_dirs=[str(agent_dir)], timeout=1.5),
                   intents_path=str(tmp_path / "intents.json"))
        f.handle(view("node1", "node2", "node3"))
        f.handle(view("node1", "node2"))
        deadline = time.monotonic() + 10
        while not f.status_section()[0].get("current") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        (running,) = f.status_section()
        while f.state.ops["node3"].phase is FencePhase.RUNNING and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        (failed,) = f.status_section()
        await f.close()
        return running, failed

    running, failed = asyncio.run(scenario())
    assert running["state"] == "running" and running["executor"] == "node1"
    cur = running["current"]
    assert (cur["method"], cur["device"], cur["agent"], cur["action"], cur["timeout"],
            cur["running"], cur["errors"]) == ("m", "m", "fence_fake", "off", 1.5, True, [])
    assert abs(cur["since"] - time.time()) < 15
    assert failed["state"] == "failed" and "current" not in failed
    assert failed["last_error"] == ("method m device m (fence_fake) action off: timed out "
                                    "after 1.5s; its process group was killed")
    lines = [r.getMessage() for r in caplog.records]
    assert ("node node1: fencing node3 (node3#1, attempt 1): method m device m (fence_fake) "
            "action off, agent timeout 1.5s") in lines
    (fail,) = [r for r in caplog.records if "failed after" in r.getMessage()]
    assert fail.levelno == logging.WARNING and fail.getMessage().startswith(
        "node node1: fencing node3 (node3#1, attempt 1): method m device m (fence_fake) "
        "action off failed after 1.5")
    assert fail.getMessage().endswith("timed out after 1.5s; its process group was killed")
    assert not any("s3cr3t" in line for line in lines)
