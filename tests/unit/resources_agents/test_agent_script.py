"""LSB ``script`` agent against a fake init script: exit-code mapping, idempotent stop,
timeouts that kill the process group, garbage output, untrusted files."""

from __future__ import annotations

import asyncio
import os

import pytest
from clusterd.resources.agents.base import AgentAction, AgentRc
from clusterd.resources.agents.script import ScriptAgent


def agent(path, runner):
    return ScriptAgent({"name": "fake", "file": str(path)}, runner=runner)


def test_start_status_stop_cycle_and_idempotence(lsb_script, fast_runner):
    a = agent(lsb_script, fast_runner)

    async def scenario():
        return [await a.status(), await a.stop(), await a.start(), await a.start(),
                await a.status(), await a.stop(), await a.stop(), await a.status()]
    results = asyncio.run(scenario())
    assert [r.rc for r in results] == [AgentRc.NOT_RUNNING, AgentRc.OK, AgentRc.OK, AgentRc.OK,
                                       AgentRc.OK, AgentRc.OK, AgentRc.OK, AgentRc.NOT_RUNNING]
    assert [r.action for r in results[:3]] == [AgentAction.STATUS, AgentAction.STOP,
                                                AgentAction.START]
    assert results[0].message == f"script:fake ({lsb_script}): not running"
    assert results[4].message == f"script:fake ({lsb_script}): running"


def test_status_tells_broken_from_stopped(lsb_script, fast_runner):
    (lsb_script.parent / "dead").touch()
    result = asyncio.run(agent(lsb_script, fast_runner).status())
    assert result.rc is AgentRc.FAILED and result.exit_code == 1
    assert result.message.endswith("broken (dead but pid file exists)")


@pytest.mark.parametrize("action, code, rc", [
    ("start", "1", AgentRc.FAILED), ("start", "2", AgentRc.INVALID_ARGS),
    ("start", "3", AgentRc.UNIMPLEMENTED), ("start", "4", AgentRc.PERMISSION),
    ("start", "5", AgentRc.NOT_INSTALLED), ("start", "6", AgentRc.CONFIG_ERROR),
    ("start", "7", AgentRc.FAILED), ("start", "99", AgentRc.FAILED),
    ("stop", "1", AgentRc.FAILED), ("stop", "7", AgentRc.OK), ("stop", "5", AgentRc.NOT_INSTALLED),
    ("status", "2", AgentRc.FAILED), ("status", "4", AgentRc.FAILED),
    ("status", "150", AgentRc.FAILED), ("status", "3", AgentRc.NOT_RUNNING),
])
def test_lsb_exit_codes(lsb_script, fast_runner, action, code, rc):
    (lsb_script.parent / f"rc-{action}").write_text(code)
    a = agent(lsb_script, fast_runner)
    result = asyncio.run(getattr(a, action)())
    assert result.rc is rc and result.exit_code == int(code)


def test_hanging_start_times_out_and_its_process_group_is_gone(lsb_script, fast_runner, gone):
    (lsb_script.parent / "hang-start").touch()
    result = asyncio.run(agent(lsb_script, fast_runner).start(timeout=1.0))
    assert result.rc is AgentRc.TIMEOUT
    assert "timed out (process group killed)" in result.message
    assert gone(int((lsb_script.parent / "pgid").read_text()))


def test_garbage_output_is_bounded_and_printable(lsb_script, fast_runner):
    (lsb_script.parent / "garbage-start").touch()
    (lsb_script.parent / "rc-start").write_text("1")
    result = asyncio.run(agent(lsb_script, fast_runner).start())
    assert result.rc is AgentRc.FAILED
    assert result.message.endswith("start failed: exit 1: ?? not text ?")
    assert result.message.isprintable()


def test_missing_script_cannot_start_but_stops_ok(tmp_path, fast_runner):
    a = agent(tmp_path / "absent", fast_runner)

    async def scenario():
        return await a.start(), await a.stop(), await a.status()
    start, stop, status = asyncio.run(scenario())
    assert start.rc is AgentRc.NOT_INSTALLED and "does not exist" in start.message
    assert stop.rc is AgentRc.OK and "nothing to stop" in stop.message
    assert status.rc is AgentRc.NOT_INSTALLED


def test_world_writable_script_is_refused(lsb_script, fast_runner):
    os.chmod(lsb_script, 0o777)
    result = asyncio.run(agent(lsb_script, fast_runner).start())
    assert result.rc is AgentRc.PERMISSION and "writable by group or others" in result.message
    assert not (lsb_script.parent / "running").exists()


def test_environment_is_clean(lsb_script, fast_runner, monkeypatch):
    monkeypatch.setenv("SECRET_FROM_PARENT", "x")
    a = agent(lsb_script, fast_runner)
    result = asyncio.run(fast_runner.run([str(lsb_script), "env"], timeout=5))
    assert result.rc == 0 and "SECRET_FROM_PARENT" not in result.stdout
    assert a.attrs["file"] == str(lsb_script)
