"""RHCS's <nfsexport> as the built-in nfsexport agent against a fake systemctl: it makes
sure the node's NFS server runs, never stops it (other services export through it), and
answers status for its own export only (a marker in HA_RSCTMP)."""

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
from clusterd.resources.agents.nfsexport import (
    NFS_MOUNTD_UNIT,
    NFS_SERVER_UNIT,
    NfsExportAgent,
    marker_name,
)
from clusterd.resources.agents.registry import BUILTIN_META, known_types
from clusterd.resources.agents.runner import DEFAULT_PATH, Runner

# A systemctl that keeps each unit's ActiveState in $FAKE_SYSTEMCTL_DIR/UNIT (default
# inactive): start makes it active (failed if UNIT.broken exists), stop inactive; a unit
# with UNIT.missing is not found. Every call is appended to $FAKE_SYSTEMCTL_DIR/calls.
FAKE_SYSTEMCTL = r"""#!/usr/bin/python3
import os, sys
state = os.environ["FAKE_SYSTEMCTL_DIR"]
with open(os.path.join(state, "calls"), "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
args = [a for a in sys.argv[1:] if not a.startswith("--")]
verb, unit = args[0], args[-1]
path = os.path.join(state, unit)
missing = os.path.exists(path + ".missing")
current = open(path).read().strip() if os.path.exists(path) else "inactive"
if verb == "show":
    print("not-found" if missing else "loaded")
elif missing:
    print("inactive")
    sys.exit(3 if verb == "is-active" else 5)
elif verb == "start":
    open(path, "w").write("failed" if os.path.exists(path + ".broken") else "active")
elif verb == "stop":
    open(path, "w").write("inactive")
elif verb == "is-active":
    print(current)
    sys.exit(0 if current == "active" else 3)
"""


@pytest.fixture
def nfs_env(agent_env, tmp_path: Path):
    state = tmp_path / "units"
    state.mkdir()
    bindir = tmp_path / "fakebin"
    bindir.mkdir(mode=0o755)
    (bindir / "systemctl").write_text(FAKE_SYSTEMCTL)
    os.chmod(bindir / "systemctl", 0o755)
    runner = Runner(path=f"{bindir}:{DEFAULT_PATH}", env={"FAKE_SYSTEMCTL_DIR": str(state)},
                    kill_grace=0.5, drain_grace=0.2)
    return dataclasses.replace(agent_env, runner=runner), state


def export(env, path: str = "/mnt/1", name: str = "nfsexports") -> NfsExportAgent:
    agent = build_agent("nfsexport", {"name": name, "path": path, "device": "/dev/sda1"},
                        env=env)
    assert isinstance(agent, NfsExportAgent)
    return agent


def calls(state: Path) -> list[str]:
    return (state / "calls").read_text().splitlines() if (state / "calls").exists() else []


def run(*coroutines):
    async def scenario():
        return [await c for c in coroutines]
    return asyncio.run(scenario())


def test_start_brings_the_nfs_server_up_and_stop_leaves_it_running(nfs_env):
    env, state = nfs_env
    agent = export(env)
    before, started, running = run(agent.status(), agent.start(), agent.status())
    assert before.rc is AgentRc.NOT_RUNNING and started.ok and running.ok
    assert started.message == ("nfsexport:nfsexports (/mnt/1): NFS server running "
                               f"({NFS_MOUNTD_UNIT}, {NFS_SERVER_UNIT})")
    assert f"start --no-block {NFS_MOUNTD_UNIT}" in calls(state)
    assert f"start --no-block {NFS_SERVER_UNIT}" in calls(state)
    stopped, after = run(agent.stop(), agent.status())
    assert stopped.ok and "keeps running" in stopped.message
    assert after.rc is AgentRc.NOT_RUNNING                 # this export: stopped here
    assert not any(c.startswith("stop") for c in calls(state))
    assert (state / NFS_SERVER_UNIT).read_text() == "active"   # the server: untouched


def test_each_export_answers_for_itself_on_a_shared_server(nfs_env):
    """Two services' exports on one node (test1.conf's nfs1 and nfs2, one global
    nfsexport under two file systems): stopping one leaves the other running."""
    env, _state = nfs_env
    one, two = export(env, "/mnt/1"), export(env, "/mnt/2")
    run(one.start(), two.start(), one.stop())
    first, second = run(one.status(), two.status())
    assert first.rc is AgentRc.NOT_RUNNING and second.ok
    assert marker_name("nfsexports", "/mnt/1/") == marker_name("nfsexports", "/mnt/1")
    assert marker_name("nfsexports", "/mnt/1") != marker_name("nfsexports", "/mnt/2")


def test_an_export_started_before_a_clusterd_restart_is_found_running(nfs_env):
    env, _state = nfs_env
    run(export(env).start())
    (found,) = run(export(env).status())      # a new agent object, as after a restart
    assert found.ok


def test_a_server_that_died_under_a_running_export_fails_its_status(nfs_env):
    env, state = nfs_env
    agent = export(env)
    run(agent.start())
    (state / NFS_MOUNTD_UNIT).write_text("failed")
    (status,) = run(agent.status())
    assert status.rc is AgentRc.FAILED
    assert status.message == (f"nfsexport:nfsexports (/mnt/1): {NFS_MOUNTD_UNIT} is failed: "
                              "the NFS server this export needs is down")


def test_without_nfs_kernel_server_the_start_is_not_installed(nfs_env):
    env, state = nfs_env
    (state / f"{NFS_MOUNTD_UNIT}.missing").write_text("")
    agent = export(env)
    started, status = run(agent.start(), agent.status())
    assert started.rc is AgentRc.NOT_INSTALLED and started.rc.hard
    assert started.message.endswith("unit not found (install nfs-kernel-server)")
    assert status.rc is AgentRc.NOT_RUNNING                # nothing recorded as started


def test_a_server_that_fails_to_start_fails_the_start(nfs_env):
    env, state = nfs_env
    (state / f"{NFS_SERVER_UNIT}.broken").write_text("")
    started, status = run(export(env).start(), export(env).status())
    assert started.rc is AgentRc.FAILED and "unit failed to start" in started.message
    assert status.rc is AgentRc.NOT_RUNNING


@pytest.mark.parametrize(("attrs", "words"), [
    ({"name": "e"}, ("nfsexport: path is not set: an <nfsexport> takes the mountpoint of "
                     "the <fs> it sits in; put it inside that <fs>")),
    ({"name": "e", "path": "mnt/1"}, "nfsexport: path 'mnt/1' must be an absolute path"),
    ({"name": "e", "path": "/m", "colour": "red"}, "nfsexport: unknown parameter 'colour'"),
])
def test_an_export_without_a_usable_path_is_refused_at_validation(agent_env, attrs, words):
    (problem,) = validate("nfsexport", attrs, "service[s]/nfsexport[e]", env=agent_env)
    assert problem.reason.startswith(words)
    with pytest.raises(ConfigError):
        build_agent("nfsexport", attrs, env=agent_env)


def test_nfsexport_is_built_in_even_where_rgmanagers_agent_is_installed(nfs_env,
                                                                        tmp_path: Path):
    env, _state = nfs_env
    cluster = tmp_path / "with-nfsexport"
    shutil.copytree(env.rgmanager_dir, cluster)
    shutil.copy(cluster / "fakeapp.sh", cluster / "nfsexport.sh")
    assert isinstance(export(dataclasses.replace(env, rgmanager_dir=str(cluster))),
                      NfsExportAgent)
    assert "nfsexport" in known_types() and "nfsexport" in BUILTIN_META
    (meta,) = run(export(env).meta_data())
    assert meta.meta is BUILTIN_META["nfsexport"] and meta.meta.primary == "name"
