"""The contract wrapper: agent-side failures become results, programming errors do not."""

from __future__ import annotations

import asyncio

import pytest
from clusterd.resources.agents.base import AgentAction, AgentRc, Outcome, guarded


def guard(body, timeout=5.0):
    return asyncio.run(guarded(AgentAction.START, "test:x", timeout, body))


def test_outcome_becomes_a_result_with_duration():
    async def body():
        return Outcome(AgentRc.OK, "test:x: started", 0, "out")
    result = guard(body)
    assert (result.action, result.rc, result.message, result.exit_code, result.output) == (
        AgentAction.START, AgentRc.OK, "test:x: started", 0, "out")
    assert result.ok and result.duration >= 0


def test_deadline_becomes_timeout():
    async def body():
        await asyncio.Event().wait()
        raise AssertionError("unreachable")
    result = guard(body, timeout=0.05)
    assert result.rc is AgentRc.TIMEOUT and result.message == "test:x: start timed out after 0.05s"


def test_os_errors_become_failed():
    async def body():
        raise PermissionError(13, "Permission denied")
    result = guard(body)
    assert result.rc is AgentRc.FAILED and result.message == "test:x: start failed: Permission denied"


def test_programming_errors_propagate():
    async def body():
        raise KeyError("bug")
    with pytest.raises(KeyError):
        guard(body)
    with pytest.raises(ValueError, match="timeout must be positive"):
        guard(body, timeout=0)


@pytest.mark.parametrize("rc, hard, fatal", [
    (AgentRc.OK, False, False), (AgentRc.FAILED, False, False), (AgentRc.TIMEOUT, False, False),
    (AgentRc.NOT_RUNNING, False, False), (AgentRc.NOT_INSTALLED, True, False),
    (AgentRc.PERMISSION, True, False), (AgentRc.INVALID_ARGS, True, False),
    (AgentRc.CONFIG_ERROR, True, True)])
def test_rc_classes(rc, hard, fatal):
    assert (rc.hard, rc.fatal) == (hard, fatal)
