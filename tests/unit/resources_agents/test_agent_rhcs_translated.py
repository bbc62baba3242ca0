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
from clusterd.resources.agents.base import AgentRc
from clusterd.resources.agents.ocf import OcfAgent
from clusterd.resources.agents.runner import DEFAULT_PATH, Runner

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


def _fake_mysql(agent_env, tmp_path: Path, printer: str | None):
    """An env whose heartbeat:mysql records its OCF_RESKEY_* and whose PATH has a fake
    my_print_defaults (``printer`` is its body; None: not installed)."""
    agent_dir = Path(agent_env.ocf_root) / "resource.d" / "heartbeat"
    agent_dir.mkdir(parents=True, exist_ok=True)
    record = tmp_path / "reskeys"
    (agent_dir / "mysql").write_text(
        f"#!/bin/sh\necho \"$1\" >> {record}.actions\n"
        f"env | grep '^OCF_RESKEY_' | grep -v CRM_ | sort > {record}\nexit 0\n")
    os.chmod(agent_dir / "mysql", 0o755)
    bindir = tmp_path / "mysqlbin"
    bindir.mkdir(mode=0o755)
    if printer is not None:
        (bindir / "my_print_defaults").write_text("#!/bin/sh\n" + printer)
        os.chmod(bindir / "my_print_defaults", 0o755)
    runner = Runner(path=f"{bindir}:{DEFAULT_PATH}", kill_grace=0.5, drain_grace=0.2)
    return dataclasses.replace(agent_env, runner=runner), record


def test_mysql_takes_the_data_directory_from_its_option_file_at_each_action(agent_env,
                                                                            tmp_path: Path):
    """heartbeat:mysql's own datadir default would start an empty database on local disk:
    the option file's datadir (on the shared disk) is what RHCS's mysql.sh used."""
    printer = ('[ "$1" = "--defaults-file=/etc/mysql/my.cnf" ] || exit 9\n'
               'echo --datadir=/var/lib/mysql\necho --datadir=/srv/db/mysql\n'
               'echo --socket=/run/db/db.sock\necho --port=3306\n')
    env, record = _fake_mysql(agent_env, tmp_path, printer)
    agent = build_agent("mysql", MYSQL, env=env)
    assert asyncio.run(agent.start()).ok
    assert record.read_text().splitlines() == [
        "OCF_RESKEY_additional_parameters=--bind-address=198.18.0.50 --skip-name-resolve",
        "OCF_RESKEY_config=/etc/mysql/my.cnf",
        "OCF_RESKEY_datadir=/srv/db/mysql",
        "OCF_RESKEY_socket=/run/db/db.sock"]


@pytest.mark.parametrize("printer, rc, says", [
    (None, AgentRc.NOT_INSTALLED, "my_print_defaults: not found"),
    ("echo 'could not open /etc/mysql/my.cnf' >&2; exit 2\n", AgentRc.CONFIG_ERROR,
     "my_print_defaults exit 2: could not open /etc/mysql/my.cnf"),
])
def test_mysql_does_not_run_when_its_option_file_cannot_be_read(agent_env, tmp_path: Path,
                                                                printer, rc, says):
    env, record = _fake_mysql(agent_env, tmp_path, printer)
    agent = build_agent("mysql", MYSQL, env=env)
    for action in (agent.start(), agent.stop(), agent.status()):
        result = asyncio.run(action)
        assert result.rc is rc and says in result.message
        assert "cannot read the option file /etc/mysql/my.cnf" in result.message
    # the agent itself never ran an action with its own defaults (meta-data only)
    actions = Path(f"{record}.actions")
    assert set(actions.read_text().split() if actions.exists() else []) <= {"meta-data"}
