"""Fixtures for the resource-agent tests: temp copies of the fake agents with root
ownership and safe modes, a fast runner, and helpers to prove a process group is gone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from clusterd.resources.agents.registry import AgentEnv
from clusterd.resources.agents.runner import DEFAULT_PATH, Runner

FIXTURES = Path(__file__).parent / "fixtures"


def _install(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for root, dirs, files in os.walk(dst):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o755)
    return dst


@pytest.fixture
def fast_runner() -> Runner:
    return Runner(kill_grace=0.5, drain_grace=0.2)


@pytest.fixture
def ocf_root(tmp_path: Path) -> Path:
    return _install(FIXTURES / "ocf", tmp_path / "ocf")


@pytest.fixture
def agent_env(tmp_path: Path, ocf_root: Path, fast_runner: Runner) -> AgentEnv:
    return AgentEnv(runner=fast_runner, ocf_root=str(ocf_root), rsctmp=str(tmp_path / "rsctmp"),
                    rgmanager_dir=str(_install(FIXTURES / "cluster", tmp_path / "cluster")))


@pytest.fixture
def lsb_script(tmp_path: Path) -> Path:
    directory = tmp_path / "initd"
    directory.mkdir(mode=0o755)
    target = directory / "fake"
    shutil.copy(FIXTURES / "lsb-fake", target)
    os.chmod(target, 0o755)
    return target


@pytest.fixture
def systemctl_env(tmp_path: Path) -> tuple[Runner, Path]:
    state = tmp_path / "systemd-state"
    state.mkdir()
    bindir = _install(FIXTURES / "bin", tmp_path / "bin")
    runner = Runner(path=f"{bindir}:{DEFAULT_PATH}", env={"FAKE_SYSTEMCTL_DIR": str(state)})
    return runner, state


@pytest.fixture
def gone():
    """``gone(pgid)`` is True once no live process is left in that process group."""
    return lambda pgid: group_members(pgid) == []


def group_members(pgid: int) -> list[int]:
    """PIDs whose process group is ``pgid`` (zombies excluded)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(name))
    return found
