"""Type -> agent mapping, the agent contract, and per-type validation entry points."""

from __future__ import annotations

import asyncio

import pytest
from clusterd.errors import ConfigError
from clusterd.resources.agents import (
    AgentRc,
    Announcer,
    ResourceAgent,
    build_agent,
    status_schedule,
    validate,
)
from clusterd.resources.agents.fs import FsAgent
from clusterd.resources.agents.ip import IpAgent
from clusterd.resources.agents.ocf import OcfAgent
from clusterd.resources.agents.samba import SambaAgent
from clusterd.resources.agents.script import ScriptAgent
from clusterd.resources.agents.systemd import SystemdAgent


@pytest.mark.parametrize("rtype, attrs, cls", [
    ("ip", {"address": "198.18.0.100"}, IpAgent),
    ("fs", {"name": "d", "device": "/dev/sdb1", "mountpoint": "/srv"}, FsAgent),
    ("script", {"name": "s", "file": "/etc/init.d/x"}, ScriptAgent),
    ("systemd", {"name": "w", "unit": "nginx.service"}, SystemdAgent),
    ("samba", {"name": "files"}, SambaAgent),
    ("ocf", {"name": "w", "agent": "heartbeat:nginx"}, OcfAgent),
])
def test_every_agent_honours_the_contract(rtype, attrs, cls, agent_env):
    agent = build_agent(rtype, attrs, env=agent_env)
    assert isinstance(agent, cls) and isinstance(agent, ResourceAgent)
    assert agent.rtype == rtype and agent.name
    assert isinstance(agent, Announcer) is (rtype == "ip")


def test_the_service_node_is_a_no_op(agent_env):
    agent = build_agent("service", {"name": "web"}, env=agent_env)

    async def scenario():
        return [await agent.start(), await agent.status(), await agent.stop()]
    assert [r.rc for r in asyncio.run(scenario())] == [AgentRc.OK] * 3


def test_invalid_attributes_refuse_building_with_every_problem(agent_env):
    with pytest.raises(ConfigError) as caught:
        build_agent("fs", {"name": "d", "mountpoint": "relative", "bogus": "1"}, env=agent_env,
                    where="service[web]/fs[d]")
    assert [str(p) for p in caught.value.problems] == [
        "service[web]/fs[d]: fs: required parameter 'device' is missing",
        ("service[web]/fs[d]: fs: unknown parameter 'bogus' (known: device, force_fsck, "
        "force_unmount, fsid, fstype, mountpoint, name, nfslock, options, quick_status, "
        "self_fence)"),
        "service[web]/fs[d]: fs: mountpoint 'relative' must be an absolute path other than /",
    ]


def test_rgmanager_attributes_and_action_overrides_are_accepted_or_checked(agent_env):
    attrs = {"address": "198.18.0.7", "__independent_subtree": "1", "__max_restarts": "2"}
    assert validate("ip", attrs, "w", env=agent_env) == []
    [problem] = validate("ip", attrs, "w", overrides=[{"name": "status", "interval": "x"}],
                         env=agent_env)
    assert problem.reason == "<action name='status'> interval: 'x' is not a time (examples: " \
                             "20, 20s, 1m, 500ms)"


def test_path_traversal_in_a_type_name_is_unknown(agent_env):
    [problem] = validate("../../bin/sh", {}, "w", env=agent_env)
    assert problem.reason.startswith("unknown resource type '../../bin/sh'")


def test_status_schedule_for_an_ocf_agent_comes_from_its_metadata(agent_env, tmp_path):
    agent = build_agent("ocf", {"name": "d", "agent": "test:dummy", "state": str(tmp_path)},
                        env=agent_env)
    meta = asyncio.run(agent.meta_data()).meta
    schedule = status_schedule("ocf", meta, [{"name": "monitor", "depth": "0",
                                              "interval": "3s"}])
    assert [(c.depth, c.interval, c.timeout) for c in schedule.checks] == [
        (0, 3.0, 5.0), (10, 60.0, 9.0)]
