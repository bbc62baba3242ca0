"""systemd agent against a fake systemctl on PATH (the real one runs in the lab)."""

from __future__ import annotations

import asyncio

import pytest
from clusterd.resources.agents.base import AgentRc
from clusterd.resources.agents.registry import validate
from clusterd.resources.agents.systemd import SystemdAgent


def agent(unit, runner):
    return SystemdAgent({"name": "web", "unit": unit}, runner=runner)


def calls(state):
    return (state / "calls").read_text().splitlines()


def test_start_polls_until_active_then_stop_until_inactive(systemctl_env):
    runner, state = systemctl_env
    a = agent("good.service", runner)

    async def scenario():
        return [await a.status(), await a.start(), await a.status(), await a.stop(),
                await a.status(), await a.stop()]
    results = asyncio.run(scenario())
    assert [r.rc for r in results] == [AgentRc.NOT_RUNNING, AgentRc.OK, AgentRc.OK, AgentRc.OK,
                                       AgentRc.NOT_RUNNING, AgentRc.OK]
    log = calls(state)
    assert "start --no-block good.service" in log and "stop --no-block good.service" in log
    assert results[-1].message == "systemd:web (good.service): already inactive"


def test_unit_that_fails_to_start_is_failed_and_stop_resets_it(systemctl_env):
    runner, state = systemctl_env
    a = agent("bad.service", runner)

    async def scenario():
        return [await a.start(), await a.status(), await a.stop(), await a.status()]
    start, status, stop, after = asyncio.run(scenario())
    assert start.rc is AgentRc.FAILED and start.message.endswith("unit failed to start")
    assert status.rc is AgentRc.FAILED
    assert stop.rc is AgentRc.OK and "reset" in stop.message
    assert after.rc is AgentRc.NOT_RUNNING
    assert "reset-failed bad.service" in calls(state)


def test_unit_that_never_settles_times_out(systemctl_env):
    runner, _state = systemctl_env
    result = asyncio.run(agent("slow.service", runner).start(timeout=0.5))
    assert result.rc is AgentRc.TIMEOUT
    assert result.message == ("systemd:web (slow.service): still activating at the deadline "
                              "(0.5s)")


def test_stop_that_never_settles_times_out(systemctl_env):
    runner, _state = systemctl_env
    a = agent("sticky.service", runner)

    async def scenario():
        return await a.start(timeout=0.3), await a.stop(timeout=0.3)
    _start, stop = asyncio.run(scenario())
    assert stop.rc is AgentRc.TIMEOUT and "still deactivating" in stop.message


def test_missing_unit_is_not_installed_but_stops_ok(systemctl_env):
    runner, _state = systemctl_env
    a = agent("missing.service", runner)

    async def scenario():
        return await a.start(), await a.stop()
    start, stop = asyncio.run(scenario())
    assert start.rc is AgentRc.NOT_INSTALLED and stop.rc is AgentRc.OK


def test_without_systemctl_the_action_fails_cleanly(fast_runner):
    from clusterd.resources.agents.runner import Runner
    result = asyncio.run(agent("good.service", Runner(path="/nonexistent")).status())
    assert result.rc is AgentRc.FAILED and "systemctl: not found" in result.message


@pytest.mark.parametrize("attrs, reasons", [
    ({"name": "web", "unit": "nginx.service"}, []),
    ({"name": "web", "unit": "getty@tty1.service"}, []),
    ({"name": "web"}, [("systemd: required parameter 'unit' is missing (unit name, e.g. "
                       "nginx.service)")]),
    ({"name": "web", "unit": "nginx; rm -rf /"},
     [("systemd: unit 'nginx; rm -rf /' is not a unit name (NAME.service, .socket, .target, "
      ".mount, .timer, .path)")]),
    ({"name": "web", "unit": "nginx"},
     [("systemd: unit 'nginx' is not a unit name (NAME.service, .socket, .target, .mount, "
      ".timer, .path)")]),
])
def test_validate(attrs, reasons):
    assert [p.reason for p in validate("systemd", attrs, "w")] == reasons
