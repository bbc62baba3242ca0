"""Fence-agent runner: stdin protocol, hygiene, timeouts, outcomes, redaction."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from clusterd.errors import AgentError
from clusterd.fencing.agent import AgentRunner, PowerState, stdin_payload
from clusterd.fencing.metadata import fence_steps
from clusterd.fencing.redact import MASK

SECRET = "Sup3r-S3cret_pw"


def run(coro):
    return asyncio.run(coro)


def runner(agent_dir: Path, timeout: float = 20.0) -> AgentRunner:
    return AgentRunner(search_dirs=[str(agent_dir)], timeout=timeout)


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_gone(pid: int, deadline: float = 10.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # reap if it is our child (it is not; it belongs to the killed group)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


def test_options_go_on_stdin_with_clean_env_and_own_session(agent_dir, tmp_path):
    log = tmp_path / "log"
    os.environ["CLUSTERD_TEST_LEAK"] = "should-not-reach-agent"
    try:
        result = run(runner(agent_dir).power("fence_fake", "off", {
            "ip": "198.18.0.10", "port": "node2", "password": SECRET, "fake_log": str(log)}))
    finally:
        del os.environ["CLUSTERD_TEST_LEAK"]
    assert result.rc == 0 and "Powered OFF" in result.stdout
    (entry,) = log_lines(log)
    assert entry["argv"] == []                      # nothing on argv (ps shows no secret)
    assert entry["options"]["action"] == "off"
    assert entry["options"]["port"] == "node2" and entry["options"]["password"] == SECRET
    assert entry["env"].get("PATH") == "/usr/sbin:/usr/bin:/sbin:/bin"
    assert entry["env"].get("LANG") == "C"
    assert "CLUSTERD_TEST_LEAK" not in entry["env"]
    assert entry["pgid"] == entry["pid"]            # own process group (killable as a whole)


@pytest.mark.parametrize("name", ["../fence_fake", "fence_fake;id", "ls", "fence_", "/usr/sbin/fence_x",
                                  "fence_a b", ""])
def test_agent_names_outside_the_pattern_are_refused(agent_dir, name):
    with pytest.raises(AgentError, match=r"must match \^fence_"):
        runner(agent_dir).resolve(name)


def test_unknown_agent_is_reported_not_installed(agent_dir):
    with pytest.raises(AgentError, match="fence_nosuch is not installed"):
        runner(agent_dir).resolve("fence_nosuch")


@pytest.mark.parametrize("setup, message", [
    (lambda d: os.chmod(d / "fence_fake", 0o775), "group- or world-writable"),
    (lambda d: os.chmod(d / "fence_fake", 0o757), "group- or world-writable"),
    (lambda d: os.chown(d / "fence_fake", 1000, 0), "owned by uid 1000"),
    (lambda d: os.chmod(d, 0o777), "directory of agent .* world-writable"),
    (lambda d: os.chown(d, 1000, 1000), "directory of agent .* owned by uid 1000"),
    (lambda d: os.chmod(d / "fence_fake", 0o644), "not an executable file"),
])
def test_untrusted_agent_paths_are_refused(agent_dir, setup, message):
    setup(agent_dir)
    with pytest.raises(AgentError, match=message):
        run(runner(agent_dir).power("fence_fake", "off", {}))


def test_symlink_to_untrusted_file_is_refused(agent_dir, tmp_path):
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    os.chown(evil_dir, 1000, 1000)
    shutil.copy(agent_dir / "fence_fake", evil_dir / "fence_evil")
    os.symlink(evil_dir / "fence_evil", agent_dir / "fence_evil")
    with pytest.raises(AgentError, match="owned by uid 1000"):
        runner(agent_dir).resolve("fence_evil")


def test_hang_is_killed_with_its_whole_process_group(agent_dir, tmp_path):
    pidfile = tmp_path / "child.pid"
    r = runner(agent_dir, timeout=1.5)
    with pytest.raises(AgentError, match=r"timed out after 1.5s; its process group was killed"):
        run(r.power("fence_fake", "off", {"fake_mode": "hang",
                                          "fake_child_pidfile": str(pidfile)}))
    assert pidfile.exists()
    assert wait_gone(int(pidfile.read_text())), "the agent's child survived the timeout"


@pytest.mark.parametrize("mode, message", [
    ("crash", "crashed: killed by signal SIGKILL"),
    ("garbage", r"unreadable output \(binary garbage\), rc=0; not trusted"),
    ("rc=7", r"unknown exit code 7 \(rc=7\)"),
    ("rc=2", r"refused its arguments \(rc=2\)"),
    ("fail", r"the agent reported failure \(rc=1\): Failed: Unable to connect"),
])
def test_bad_agent_behaviour_is_a_clear_agent_error_never_success(agent_dir, mode, message):
    with pytest.raises(AgentError, match=message) as info:
        run(runner(agent_dir).power("fence_fake", "off", {"fake_mode": mode}))
    assert info.value.agent == "fence_fake" and info.value.action == "off"


def test_secrets_are_redacted_from_output_and_errors(agent_dir):
    opts = {"password": SECRET, "fake_echo_password": "1", "fake_fail_actions": "off"}
    with pytest.raises(AgentError) as info:
        run(runner(agent_dir).power("fence_fake", "off", opts))
    err = info.value
    everything = " ".join([str(err), err.stdout, err.stderr, repr(err.kwargs)])
    assert SECRET not in everything
    assert base64.b64encode(SECRET.encode()).decode() not in everything
    assert MASK in err.stdout and MASK in err.stderr


def test_passwd_script_supplies_the_password_without_logging_it(agent_dir, tmp_path, caplog):
    script = agent_dir / "get_pw"
    script.write_text(f"#!/bin/sh\necho '{SECRET}'\necho second-line\n")
    os.chmod(script, 0o755)
    log = tmp_path / "log"
    caplog.set_level("DEBUG")
    result = run(runner(agent_dir).power("fence_fake", "off", {
        "passwd_script": str(script), "fake_log": str(log), "fake_echo_password": "1"}))
    (entry,) = log_lines(log)
    assert entry["options"]["passwd"] == SECRET          # first line only
    assert "passwd_script" not in entry["options"]
    assert SECRET not in result.stdout + result.stderr + caplog.text


@pytest.mark.parametrize("command, message", [
    ("get_pw", "is not an absolute path"),
    ("{dir}/missing", "missing does not exist"),
    ("{dir}/writable", r"writable by group or others \(mode 0777\)"),
    ("/bin/sh -c 'echo pw'", "runs inline code through '/bin/sh'"),
    ("{dir}/failing --verbose", r"has arguments \('.*/failing' followed by 1 more\)"),
    ("/usr/bin/python3", r"is a shell or interpreter \(python3\)"),
    ("{dir}/failing", "exited with rc=3"),
    ("{dir}/silent", "printed no password"),
])
def test_bad_passwd_script_is_refused(agent_dir, command, message):
    for name, body, mode in [("writable", "echo x", 0o777), ("failing", "exit 3", 0o755),
                             ("silent", "true", 0o755)]:
        (agent_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        os.chmod(agent_dir / name, mode)
    with pytest.raises(AgentError, match=message):
        run(runner(agent_dir).power("fence_fake", "off",
                                    {"passwd_script": command.format(dir=agent_dir)}))


def test_option_values_cannot_inject_more_options():
    with pytest.raises(AgentError, match="option password contains a newline") as info:
        stdin_payload("off", {"password": "x\naction=on"})
    assert "action=on" not in str(info.value)
    assert stdin_payload("off", {"action": "on", "port": "3"}) == b"action=off\nport=3\n"


@pytest.mark.parametrize("opts, expected", [
    ({}, PowerState.ON),
    ({"fake_state": "off"}, PowerState.OFF),
    ({"fake_mode": "fail"}, PowerState.UNKNOWN),
    ({"fake_mode": "garbage"}, PowerState.UNKNOWN),
    ({"fake_mode": "rc=5"}, PowerState.UNKNOWN),
    ({"fake_mode": "crash"}, PowerState.UNKNOWN),
])
def test_status_maps_rc_to_on_off_unknown(agent_dir, tmp_path, opts, expected):
    state_file = tmp_path / "state"
    if opts.pop("fake_state", None) == "off":
        state_file.write_text("off")
    state, detail = run(runner(agent_dir).status(
        "fence_fake", {**opts, "fake_state_file": str(state_file)}))
    assert state is expected, detail
    assert detail


def test_off_then_status_through_the_state_file(agent_dir, tmp_path):
    opts = {"fake_state_file": str(tmp_path / "state")}
    r = runner(agent_dir)
    run(r.power("fence_fake", "off", opts))
    assert run(r.status("fence_fake", opts))[0] is PowerState.OFF
    run(r.power("fence_fake", "on", opts))
    assert run(r.status("fence_fake", opts))[0] is PowerState.ON


def test_metadata_is_parsed_and_cached_until_the_agent_changes(agent_dir):
    r = runner(agent_dir)
    meta = run(r.metadata("fence_fake_noreboot"))
    assert "reboot" not in meta.actions and {"on", "off", "status"} <= meta.actions
    assert run(r.metadata("fence_fake_noreboot")) is meta
    os.utime(agent_dir / "fence_fake_noreboot", ns=(1, 1))
    assert run(r.metadata("fence_fake_noreboot")) is not meta


@pytest.mark.parametrize("agent, requested, expected", [
    ("fence_fake", None, ("off", True)),            # reboot = off (confirmed) then on
    ("fence_fake", "reboot", ("off", True)),
    ("fence_fake", "off", ("off", False)),
    ("fence_fake", "on", ("on", False)),
    ("fence_fake", "enable", ("on", False)),
    ("fence_fake", "disable", ("off", False)),
    ("fence_fake_noreboot", None, ("off", False)),  # storage-like: never re-enable
    ("fence_fake_nooff", None, ("reboot", False)),  # only reboot: recovery waits for it
])
def test_fence_steps_branch_on_capabilities(agent_dir, agent, requested, expected):
    meta = run(runner(agent_dir).metadata(agent))
    assert fence_steps(meta, requested) == expected


@pytest.mark.parametrize("agent, requested, message", [
    ("fence_fake_nooff", "off", "does not support action off"),
    ("fence_fake_nooff", "on", "does not support action on"),
    ("fence_fake", "status", "'status' is not a fencing action"),
])
def test_fence_steps_refuse_unsupported_actions(agent_dir, agent, requested, message):
    meta = run(runner(agent_dir).metadata(agent))
    with pytest.raises(AgentError, match=message):
        fence_steps(meta, requested)


def test_an_agent_that_cannot_be_executed_is_a_clear_agent_error(agent_dir):
    broken = agent_dir / "fence_broken"
    broken.write_text("#!/nonexistent/interpreter\n")
    os.chmod(broken, 0o755)
    r = runner(agent_dir)
    with pytest.raises(AgentError, match="cannot start .*fence_broken") as info:
        run(r.power("fence_broken", "off", {}))
    assert info.value.action == "off"
    with pytest.raises(AgentError, match="cannot start"):
        run(r.metadata("fence_broken"))
