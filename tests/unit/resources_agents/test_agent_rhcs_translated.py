"""RHCS types run through their OCF equivalents (registry + rhcs_types): the agent built,
its environment and timeouts, refusals at validation, and rgmanager's own agent winning
where a node still has it; clufter's NFS example (test1.conf) built end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from clusterd.conf import load
from clusterd.errors import ConfigError
from clusterd.resources.agents import build_agent, validate
from clusterd.resources.agents.base import AgentRc
from clusterd.resources.agents.nfsexport import NfsExportAgent
from clusterd.resources.agents.ocf import OcfAgent
from clusterd.resources.agents.rhcs_nfs import derived_fsid
from clusterd.resources.agents.runner import DEFAULT_PATH, Runner
from clusterd.services.agentset import ServiceAgents, default_build

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


TEST1 = Path("/work/shared/reference/clufter-tests/test1.conf")   # as tests/unit/conf reads it


def _reskeys(env: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("OCF_RESKEY_"): v for k, v in env.items()
            if k.startswith("OCF_RESKEY_") and not k.startswith("OCF_RESKEY_CRM_")}


def _recording_agents(agent_env, tmp_path: Path, *types: str):
    """heartbeat:TYPE fakes that append their action and OCF_RESKEY_* to tmp_path/TYPE."""
    agent_dir = Path(agent_env.ocf_root) / "resource.d" / "heartbeat"
    agent_dir.mkdir(parents=True, exist_ok=True)
    for rtype in types:
        record = tmp_path / rtype
        (agent_dir / rtype).write_text(
            "#!/bin/sh\n[ \"$1\" = meta-data ] && exit 0\n"
            f"{{ echo \"$1\"; env | grep '^OCF_RESKEY_' | grep -v CRM_ | sort; }} >> {record}\n"
            "exit 0\n")
        os.chmod(agent_dir / rtype, 0o755)
    return {rtype: tmp_path / rtype for rtype in types}


def test_nfsclient_runs_exportfs_with_its_inherited_path_and_fsid(agent_env, tmp_path: Path):
    records = _recording_agents(agent_env, tmp_path, "exportfs")
    attrs = {"name": "bill", "target": "bill.lab", "options": "rw", "path": "/mnt/1",
             "fsid": "17", "__independent_subtree": "1"}
    agent = build_agent("nfsclient", attrs, env=agent_env)
    assert isinstance(agent, OcfAgent)
    assert agent.path == os.path.join(agent_env.ocf_root, "resource.d", "heartbeat", "exportfs")
    assert agent.status_action == "monitor"
    assert asyncio.run(agent.start(timeout=10)).ok
    assert records["exportfs"].read_text().splitlines() == [
        "start", "OCF_RESKEY_clientspec=bill.lab", "OCF_RESKEY_directory=/mnt/1",
        "OCF_RESKEY_fsid=17", "OCF_RESKEY_options=rw", "OCF_RESKEY_unlock_on_stop=false"]


def test_nfsserver_runs_heartbeat_nfsserver_with_its_state_on_the_shared_fs(agent_env,
                                                                            tmp_path: Path):
    records = _recording_agents(agent_env, tmp_path, "nfsserver")
    agent = build_agent("nfsserver", {"name": "nfs", "path": "/srv/nfs"}, env=agent_env)
    assert asyncio.run(agent.stop(timeout=10)).ok
    assert records["nfsserver"].read_text().splitlines() == [
        "stop", "OCF_RESKEY_nfs_shared_infodir=/srv/nfs/.clumanager/nfs"]


def test_an_nfsclient_outside_an_export_is_refused_at_validation(agent_env):
    (problem,) = validate("nfsclient", {"name": "c", "target": "*"}, "service[s]/nfsclient[c]",
                          env=agent_env)
    assert problem.reason.startswith("<nfsclient> path: is not set")
    with pytest.raises(ConfigError, match="nfsexport: path is not set"):
        build_agent("nfsexport", {"name": "e"}, env=agent_env)


def _services(conf, agent_env) -> dict[str, ServiceAgents]:
    out = {}
    for root in conf.resource_tree.roots:
        agents = ServiceAgents(root.resource.primary, root, agent_env, default_build)
        assert agents.error == "", agents.error
        assert set(agents.agents) == {n.index for n in root.walk()}   # every resource
        out[root.resource.primary] = agents
    return out


def _clients(services: dict[str, ServiceAgents]) -> dict[str, list[dict[str, str]]]:
    return {name: [_reskeys(s.agents[n.index].env("start", 10.0)) for n in s.root.walk()
                   if n.type == "nfsclient"] for name, s in services.items()}


def test_clufter_test1_builds_an_agent_for_every_resource(agent_env, tmp_path: Path):
    """The RHCS example runs as written: fs > nfsexport > nfsclient, the client global and
    used by two services, each under its own file system."""
    records = _recording_agents(agent_env, tmp_path, "exportfs")
    services = _services(load(TEST1), agent_env)
    assert sorted(services) == ["nfs1", "nfs2"]
    kinds = {n.type: type(services["nfs1"].agents[n.index]).__name__
             for n in services["nfs1"].root.walk()}
    assert kinds == {"service": "ServiceAgent", "script": "ScriptAgent", "ip": "IpAgent",
                     "fs": "FsAgent", "nfsexport": "NfsExportAgent", "nfsclient": "OcfAgent"}
    assert _clients(services) == {
        "nfs1": [{"clientspec": "bill.lab", "directory": "/mnt/1", "options": "rw",
                  "fsid": derived_fsid("/mnt/1"), "unlock_on_stop": "false"}],
        "nfs2": [{"clientspec": "bill.lab", "directory": "/mnt/2", "options": "rw",
                  "fsid": derived_fsid("/mnt/2"), "unlock_on_stop": "false"}]}
    assert derived_fsid("/mnt/1") != derived_fsid("/mnt/2")
    export = next(services["nfs2"].agents[n.index] for n in services["nfs2"].root.walk()
                  if n.type == "nfsexport")
    assert isinstance(export, NfsExportAgent) and export.path == "/mnt/2"
    client = next(services["nfs1"].agents[n.index] for n in services["nfs1"].root.walk()
                  if n.type == "nfsclient")
    assert asyncio.run(client.stop(timeout=10)).ok
    assert "OCF_RESKEY_directory=/mnt/1" in records["exportfs"].read_text().splitlines()


def test_clients_of_one_directory_share_its_fsid_and_an_fs_fsid_wins(agent_env, tmp_path: Path):
    text = TEST1.read_text().replace(
        '<nfsexport name="nfsexports" />',
        '<nfsexport name="nfsexports" /><nfsclient name="ann" target="10.0.0.0/8"/>').replace(
        '<nfsclient ref="bill"/>', '<nfsclient ref="bill"/><nfsclient ref="ann"/>').replace(
        'mountpoint="/mnt/2"', 'mountpoint="/mnt/2" fsid="2002"')
    conf_path = tmp_path / "cluster.conf"
    conf_path.write_text(text)
    clients = _clients(_services(load(conf_path), agent_env))
    assert [(c["clientspec"], c["fsid"]) for c in clients["nfs1"]] == [
        ("bill.lab", derived_fsid("/mnt/1")), ("10.0.0.0/8", derived_fsid("/mnt/1"))]
    assert [(c["clientspec"], c["fsid"]) for c in clients["nfs2"]] == [
        ("bill.lab", "2002"), ("10.0.0.0/8", "2002")]
