"""OCF agents against a fake agent in a temp OCF_ROOT: environment, exit codes, meta-data,
timeouts, garbage, secrets, path checks; plus rgmanager-style agents."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from clusterd.errors import ConfigError
from clusterd.resources.agents.base import AgentRc
from clusterd.resources.agents.ocf import AgentSpec, parse_agent_spec
from clusterd.resources.agents.registry import (
    build_agent,
    validate,
    validate_with_metadata,
)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    return directory


def dummy(agent_env, state, **params):
    attrs = {"name": "d1", "agent": "test:dummy", "state": str(state), **params}
    return build_agent("ocf", attrs, env=agent_env)


def read_env(state: Path, action: str) -> dict[str, str]:
    lines = (state / f"env-{action}").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_lifecycle_environment_and_idempotent_stop(agent_env, state):
    a = dummy(agent_env, state, count="2")

    async def scenario():
        first = [await a.status(), await a.stop(), await a.start(), await a.status(depth=10)]
        deep.update(read_env(state, "monitor"))
        return first + [await a.stop(), await a.stop(), await a.status()]
    deep: dict[str, str] = {}
    results = asyncio.run(scenario())
    assert [r.rc for r in results] == [AgentRc.NOT_RUNNING, AgentRc.OK, AgentRc.OK, AgentRc.OK,
                                       AgentRc.OK, AgentRc.OK, AgentRc.NOT_RUNNING]
    env = read_env(state, "start")
    assert env["OCF_ROOT"] == agent_env.ocf_root
    assert env["OCF_RESOURCE_INSTANCE"] == "d1"
    assert env["OCF_RESOURCE_TYPE"] == "dummy" and env["OCF_RESOURCE_PROVIDER"] == "test"
    assert env["OCF_RESKEY_count"] == "2" and env["OCF_RESKEY_state"] == str(state)
    assert env["HA_RSCTMP"] == agent_env.rsctmp and os.path.isdir(agent_env.rsctmp)
    assert env["OCF_RESKEY_CRM_meta_timeout"] == "7000"      # from the agent's meta-data
    assert "OCF_RESKEY_name" not in env and "OCF_RESKEY_agent" not in env
    assert deep["OCF_CHECK_LEVEL"] == "10" and read_env(state, "monitor")["OCF_CHECK_LEVEL"] == "0"
    assert deep["OCF_RESKEY_CRM_meta_timeout"] == "9000"      # the depth-10 monitor timeout
    assert deep["OCF_RESKEY_CRM_meta_interval"] == "60000"    # recurring (not a probe)
    assert "OCF_RESKEY_CRM_meta_interval" not in env
    assert read_env(state, "monitor")["OCF_RESKEY_CRM_meta_timeout"] == "5000"


def test_monitor_tells_failed_from_not_running(agent_env, state):
    a = dummy(agent_env, state)
    pidfile = Path(agent_env.rsctmp) / "dummy-d1.pid"

    async def scenario():
        started = await a.start()
        os.kill(int(pidfile.read_text()), signal.SIGKILL)   # the service dies, pid file stays
        deadline = asyncio.get_running_loop().time() + 5
        broken = await a.status()
        while broken.rc is AgentRc.OK and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)                        # until the kernel reaps it
            broken = await a.status()
        return started, broken, await a.stop(), await a.status()
    started, broken, stopped, after = asyncio.run(scenario())
    assert started.ok
    assert broken.rc is AgentRc.FAILED and "pid file present but process gone" in broken.message
    assert stopped.ok and not pidfile.exists()
    assert after.rc is AgentRc.NOT_RUNNING


def test_hanging_agent_times_out_and_its_process_group_is_gone(agent_env, state, gone):
    result = asyncio.run(dummy(agent_env, state, mode="hang").start(timeout=1.0))
    assert result.rc is AgentRc.TIMEOUT
    assert gone(int((state / "pgid").read_text()))


@pytest.mark.parametrize("mode, message", [
    ("rc42", "start failed: exit 42 (not an OCF exit code)"),
    ("selfkill", "start failed: killed by signal 9"),
])
def test_non_ocf_exits_are_failures(agent_env, state, mode, message):
    result = asyncio.run(dummy(agent_env, state, mode=mode).start())
    assert result.rc is AgentRc.FAILED and result.message.endswith(message)


def test_garbage_metadata_is_a_clear_failure(agent_env, state):
    loaded = asyncio.run(dummy(agent_env, state, mode="garbage").meta_data())
    assert loaded.meta is None and loaded.result.rc is AgentRc.FAILED
    assert "meta-data unusable: meta-data is not XML" in loaded.result.message


def test_metadata_defaults_required_and_timeouts(agent_env, state):
    loaded = asyncio.run(dummy(agent_env, state).meta_data())
    meta = loaded.meta
    assert loaded.result.ok and meta is not None
    assert meta.defaults() == {"mode": "normal", "count": "1"}
    assert [p.name for p in meta.params if p.required] == ["state"]
    assert (meta.action_timeout("start", 0), meta.action_timeout("stop", 0)) == (7.0, 8.0)


def test_secrets_in_agent_output_are_redacted(agent_env, state):
    a = dummy(agent_env, state, password="hunter2")
    try:
        result = asyncio.run(a.start())
    finally:
        asyncio.run(a.stop())
    assert result.ok and "hunter2" not in result.output
    assert "connecting with password ***" in result.output


@pytest.mark.parametrize("mode", ["0777", "0775"])
def test_untrusted_agent_is_refused(agent_env, state, mode):
    path = Path(agent_env.ocf_root) / "resource.d" / "test" / "dummy"
    os.chmod(path, int(mode, 8))
    result = asyncio.run(dummy(agent_env, state).start(timeout=5))
    assert result.rc is AgentRc.PERMISSION and "writable by group or others" in result.message
    assert not (state / "env-start").exists()


def test_missing_agent_is_not_installed(agent_env, state):
    a = build_agent("ocf", {"name": "x", "agent": "heartbeat:nginx"}, env=agent_env)
    result = asyncio.run(a.start(timeout=5))
    assert result.rc is AgentRc.NOT_INSTALLED
    assert "resource.d/heartbeat/nginx does not exist" in result.message


def test_validate_all_maps_config_error(agent_env, state, tmp_path):
    a = dummy(agent_env, tmp_path / "no-such-dir")
    assert asyncio.run(a.validate_all()).rc is AgentRc.CONFIG_ERROR
    assert asyncio.run(dummy(agent_env, state).validate_all()).ok


def test_validation_with_metadata_reports_every_problem(agent_env):
    problems = asyncio.run(validate_with_metadata(
        "ocf", {"name": "d1", "agent": "test:dummy", "mode": "turbo", "cuont": "3"},
        "service[web]/ocf[d1]", env=agent_env))
    assert [p.reason for p in problems] == [
        "dummy: required parameter 'state' is missing (state dir)",
        "dummy: parameter 'mode' = 'turbo' is not one of normal, hang, garbage, rc42, selfkill",
        "dummy: unknown parameter 'cuont' (known: count, mode, password, state)",
    ]


def test_validation_when_the_agent_is_missing(agent_env):
    problems = asyncio.run(validate_with_metadata(
        "ocf", {"name": "n", "agent": "heartbeat:nginx"}, "w", env=agent_env))
    assert len(problems) == 1 and "does not exist" in problems[0].reason


@pytest.mark.parametrize("text, expected", [
    ("heartbeat:nginx", AgentSpec("heartbeat", "nginx")),
    ("ocf:heartbeat:IPaddr2", AgentSpec("heartbeat", "IPaddr2")),
    ("Filesystem", AgentSpec("heartbeat", "Filesystem")),
    ("../../bin:sh", None), ("heartbeat:..", None), ("a:b:c", None), ("heartbeat:ng inx", None),
    ("", None),
])
def test_agent_spec(text, expected):
    parsed = parse_agent_spec(text)
    if expected is None:
        assert isinstance(parsed, str) and "is not PROVIDER:TYPE" in parsed
    else:
        assert parsed == expected


def test_structural_problems_refuse_building(agent_env):
    with pytest.raises(ConfigError) as caught:
        build_agent("ocf", {"agent": "../x:y", "bad-name": "1"}, env=agent_env)
    reasons = [p.reason for p in caught.value.problems]
    assert reasons == ["ocf: required attribute 'name' is missing",
                       ("ocf: agent '../x:y' is not PROVIDER:TYPE (letters, digits, '_', '.', "
                        "'-'; e.g. heartbeat:nginx)"),
                       "ocf: parameter name 'bad-name' cannot be passed as OCF_RESKEY_<name>"]


def test_rgmanager_style_agent_uses_status(agent_env, state):
    a = build_agent("fakeapp", {"name": "app1", "state": str(state)}, env=agent_env)

    async def scenario():
        return [await a.status(), await a.start(), await a.status(), await a.stop(),
                await a.status(), (await a.meta_data()).meta]
    *results, meta = asyncio.run(scenario())
    assert [r.rc for r in results] == [AgentRc.NOT_RUNNING, AgentRc.OK, AgentRc.OK, AgentRc.OK,
                                       AgentRc.NOT_RUNNING]
    assert meta.primary == "name" and meta.status_actions()[0].interval == 30.0


def test_unknown_type_names_the_ocf_alternative(agent_env):
    [problem] = validate("named", {"name": "dns"}, "service[web]/named[dns]", env=agent_env)
    assert problem.reason.startswith(
        "unknown resource type 'named': not built in (fs, ip, nfsexport, ocf, samba, script, "
        "service, systemd), not one clusterd translates (apache, lvm, mysql, netfs, nfsclient, "
        "nfsserver, postgres-8) and no rgmanager agent ")
    assert problem.reason.endswith('use <ocf agent="heartbeat:named" .../> for the '
                                   "resource-agents equivalent")
    [problem] = validate("smb", {"name": "s"}, "service[web]/smb[s]", env=agent_env)
    assert problem.reason.endswith('use <systemd unit="smbd.service" .../> (smb.service on '
                                   "Red Hat systems; resource-agents has no agent for it)")
    with pytest.raises(ConfigError, match="unknown resource type 'frobnicator'"):
        build_agent("frobnicator", {"name": "f"}, env=agent_env)
