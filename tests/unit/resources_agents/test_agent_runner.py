"""The hygienic subprocess runner: clean env, deadlines that kill the whole process
group, bounded output, redaction, background children that keep pipes open."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from clusterd.resources.agents.runner import (
    DEFAULT_PATH,
    Runner,
    kill_running,
    redact_values,
    running_groups,
)
from clusterd.trust import untrusted_reason


def run(coro):
    return asyncio.run(coro)


def test_environment_is_clean_and_path_fixed(fast_runner, monkeypatch):
    monkeypatch.setenv("CLUSTERD_LEAK_CHECK", "leaked")
    result = run(fast_runner.run(["env"], timeout=5, env={"OCF_ROOT": "/x"}))
    env = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert result.rc == 0
    assert env["PATH"] == DEFAULT_PATH and env["OCF_ROOT"] == "/x" and env["LANG"] == "C"
    assert "CLUSTERD_LEAK_CHECK" not in env


def test_runs_in_its_own_session_with_cwd_root(fast_runner):
    result = run(fast_runner.run(["sh", "-c", "pwd; ps -o sid= -p $$; echo $$"], timeout=5))
    cwd, sid, pid = result.stdout.split()
    assert cwd == "/" and sid == pid and int(sid) != os.getsid(0)


def test_timeout_kills_the_whole_process_group(fast_runner, tmp_path, gone):
    script = f"echo $$ > {tmp_path}/pgid; sleep 300 & sleep 300 & wait"
    result = run(fast_runner.run(["sh", "-c", script], timeout=0.5))
    pgid = int((tmp_path / "pgid").read_text())
    assert result.timed_out and result.rc is not None and result.rc < 0
    assert gone(pgid)


def test_term_ignoring_program_is_killed(fast_runner, tmp_path, gone):
    script = f"trap '' TERM; echo $$ > {tmp_path}/pgid; while :; do sleep 0.05; done"
    result = run(fast_runner.run(["sh", "-c", script], timeout=0.5))
    assert result.timed_out and result.rc == -9
    assert gone(int((tmp_path / "pgid").read_text()))


def test_background_child_holding_stdout_does_not_block_the_caller(fast_runner, tmp_path):
    script = f"sleep 30 & echo $! > {tmp_path}/bg; echo started"
    result = run(fast_runner.run(["sh", "-c", script], timeout=10))
    background = int((tmp_path / "bg").read_text())
    try:
        assert result.rc == 0 and result.stdout.strip() == "started" and not result.timed_out
        # the runner stops a group only on timeout: a started daemon is left alone
        os.kill(background, 0)
    finally:
        os.kill(background, 9)


def test_output_is_bounded_and_drained():
    runner = Runner(max_output=1000)
    result = run(runner.run(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo done >&2"],
                            timeout=10))
    assert result.rc == 0 and result.truncated
    assert result.stdout.startswith("x" * 1000) and "299000 more bytes dropped" in result.stdout
    assert result.stderr.strip() == "done"


def test_binary_garbage_is_decoded_safely(fast_runner):
    result = run(fast_runner.run(["head", "-c", "4096", "/dev/urandom"], timeout=5))
    assert result.rc == 0 and isinstance(result.stdout, str)


def test_redaction_hook_hides_secrets(fast_runner):
    result = run(fast_runner.run(["sh", "-c", "echo user=admin pass=s3cr3t; echo s3cr3t >&2"],
                                 timeout=5, redact=redact_values(["s3cr3t", ""])))
    assert "s3cr3t" not in result.stdout + result.stderr
    assert result.stdout.strip() == "user=admin pass=***"


def test_missing_program_is_a_result_not_an_exception(fast_runner):
    result = run(fast_runner.run(["no-such-agent-program"], timeout=5))
    assert not result.ran and "not found" in result.error


def test_stdin_input_reaches_the_program(fast_runner):
    result = run(fast_runner.run(["cat"], timeout=5, input=b"action=status\n"))
    assert result.stdout == "action=status\n"


def test_cancellation_kills_the_group_and_propagates(fast_runner, tmp_path, gone):
    async def scenario():
        task = asyncio.ensure_future(fast_runner.run(
            ["sh", "-c", f"echo $$ > {tmp_path}/pgid; sleep 300"], timeout=60))
        deadline = time.monotonic() + 5
        while not (tmp_path / "pgid").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    run(scenario())
    assert gone(int((tmp_path / "pgid").read_text()))


def test_groups_running_now_are_known_and_killed_at_once_at_exit(tmp_path, gone):
    """Daemon exit (services.executor close): a status check that ignores SIGTERM does
    not get the runner's grace; what ran is never listed once it ended."""
    slow = Runner(kill_grace=30.0)              # SIGTERM grace far beyond the test
    script = f"trap '' TERM; echo $$ > {tmp_path}/pgid; while :; do sleep 0.05; done"

    async def scenario():
        task = asyncio.ensure_future(slow.run(["sh", "-c", script], timeout=60))
        deadline = time.monotonic() + 5
        while not (tmp_path / "pgid").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        pgid = int((tmp_path / "pgid").read_text())
        while pgid not in running_groups() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)           # a busy loop connects the pipes late
        assert pgid in running_groups()
        task.cancel()                           # the runner sends SIGTERM: ignored
        await asyncio.sleep(0.2)
        assert not task.done() and not gone(pgid)
        assert kill_running() == [pgid]
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)    # a hang guard: SIGKILL ends it at once
        return pgid

    pgid = run(scenario())
    assert gone(pgid) and pgid not in running_groups() and kill_running() == []


def test_a_group_cancelled_while_it_is_being_started_is_known_to_the_exit_kill(tmp_path, gone):
    """Cancelled before asyncio finished connecting its pipes (a busy loop makes this
    window seconds long): the group is still stopped, and while it is, a daemon exit
    (kill_running) finds and kills it instead of waiting out the TERM grace."""
    slow = Runner(kill_grace=30.0)
    script = f"trap '' TERM; echo $$ > {tmp_path}/pgid; while :; do sleep 0.05; done"

    async def scenario():
        task = asyncio.ensure_future(slow.run(["sh", "-c", script], timeout=60))
        await asyncio.sleep(0)                  # the run has asked asyncio for the process
        task.cancel()                           # before the pipes are connected
        deadline = time.monotonic() + 10
        while not (tmp_path / "pgid").exists() and not task.done() \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not (tmp_path / "pgid").exists():
            # the runner's SIGTERM reached the shell before its trap (and its echo): the
            # group ended at once, which is right too; nothing of it may be left running
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
            assert not _processes_with(str(tmp_path)) and kill_running() == []
            return None
        pgid = int((tmp_path / "pgid").read_text())
        while pgid not in running_groups() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert pgid in running_groups(), "a group being stopped is unknown to kill_running"
        assert kill_running() == [pgid]
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        return pgid

    pgid = run(scenario())
    if pgid is not None:
        assert gone(pgid) and pgid not in running_groups() and kill_running() == []


def _processes_with(marker: str) -> list[int]:
    """PIDs whose command line contains ``marker`` (this test's own tmp path)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_nonpositive_timeout_is_a_programming_error(fast_runner):
    with pytest.raises(ValueError, match="timeout must be positive"):
        run(fast_runner.run(["true"], timeout=0))


def test_untrusted_reasons(tmp_path):
    good = tmp_path / "agent"
    good.write_text("#!/bin/sh\n")
    good.chmod(0o755)
    assert untrusted_reason(str(good)) is None
    good.chmod(0o775)
    assert "writable by group or others (mode 0775)" in untrusted_reason(str(good))
    good.chmod(0o644)
    assert "not executable" in untrusted_reason(str(good))
    good.chmod(0o755)
    os.chown(good, 65534, 0)
    assert "owned by uid 65534, not root" in untrusted_reason(str(good))
    os.chown(good, 0, 0)
    tmp_path.chmod(0o777)
    try:
        assert f"{tmp_path} is writable by group or others" in untrusted_reason(str(good))
    finally:
        tmp_path.chmod(0o700)
    assert "does not exist" in untrusted_reason(str(tmp_path / "nope"))
    assert "not a regular file" in untrusted_reason(str(tmp_path))
