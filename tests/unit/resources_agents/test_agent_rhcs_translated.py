"""RHCS types run through their OCF equivalents (registry + rhcs_types): the agent built,
its environment and timeouts, refusals at validation, and rgmanager's own agent winning
where a node still has it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from clusterd.errors import ConfigError
from clusterd.resources.agents import build_agent, validate
from clusterd.resources.agents.ocf import OcfAgent

MYSQL = {"name": "db", "config_file": "/etc/mysql/my.cnf", "listen_address": "198.18.0.50",
         "mysqld_options": "--skip-name-resolve", "startup_wait": "45", "shutdown_wait": "30",
         "service_name": "dbsvc", "__independent_subtree": "1"}


def test_mysql_runs_the_ocf_agent_with_rhcs_attributes_translated(agent_env):
    agent = build_agent("mysql", MYSQL, env=agent_env)
    assert isinstance(agent, OcfAgent)
    assert agent.path == os.path.join(agent_env.ocf_root, "resource.d", "heartbeat", "mysql")
    env = agent.env("start", 45.0)
    assert env["OCF_RESOURCE_INSTANCE"] == "db" and env["OCF_RESOURCE_TYPE"] == "mysql"
    reskeys = {k: v for k, v in env.items() if k.startswith("OCF_RESKEY_")
               and not k.startswith("OCF_RESKEY_CRM_")}
    assert reskeys == {
        "OCF_RESKEY_config": "/etc/mysql/my.cnf",
        "OCF_RESKEY_additional_parameters": "--bind-address=198.18.0.50 --skip-name-resolve"}

    async def limits():
        return await agent._limit("start", None), await agent._limit("stop", None)
    assert asyncio.run(limits()) == (45.0, 30.0)


def test_a_value_the_ocf_agent_cannot_honour_is_refused_at_validation(agent_env):
    problems = validate("netfs", {"name": "n", "mountpoint": "/srv/n", "host": "filer"},
                        "service[web]/netfs[n]", env=agent_env)
    assert len(problems) == 1 and "export" in problems[0].reason
    problems = validate("lvm", {"name": "l", "vg_name": "vg0", "self_fence": "1"},
                        "service[web]/lvm[l]", env=agent_env)
    assert len(problems) == 1 and "self_fence" in problems[0].reason
    with pytest.raises(ConfigError, match="self_fence"):
        build_agent("lvm", {"name": "l", "vg_name": "vg0", "self_fence": "yes"}, env=agent_env)


def test_rgmanagers_own_agent_still_runs_where_it_is_installed(agent_env, tmp_path: Path):
    cluster = tmp_path / "with-apache"
    shutil.copytree(agent_env.rgmanager_dir, cluster)
    shutil.copy(cluster / "fakeapp.sh", cluster / "apache.sh")
    env = dataclasses.replace(agent_env, rgmanager_dir=str(cluster))
    agent = build_agent("apache", {"name": "web", "server_root": "/etc/httpd"}, env=env)
    assert agent.path == str(cluster / "apache.sh") and agent.status_action == "status"
    translated = build_agent("apache", {"name": "web", "server_root": "/etc/httpd"},
                             env=agent_env)
    assert translated.path.endswith("resource.d/heartbeat/apache")
    assert translated.status_action == "monitor"
