"""Program parameters of OCF/rgmanager agents (``*_script``) are checked again just before
each run: an agent that would run an untrusted program is not started."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from clusterd.resources.agents.base import AgentRc
from clusterd.resources.agents.registry import build_agent


def hook(directory: Path, uid: int = 0, mode: int = 0o755) -> Path:
    directory.mkdir(mode=0o755, exist_ok=True)
    path = directory / "hook"
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(path, mode)
    os.chown(path, uid, 0)
    return path


def start(agent_env, state: Path, script: str):
    attrs = {"name": "d1", "agent": "test:dummy", "state": str(state), "notify_script": script}
    return asyncio.run(build_agent("ocf", attrs, env=agent_env).start(timeout=5))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown test files")
def test_an_untrusted_script_parameter_keeps_the_agent_from_running(agent_env, tmp_path,
                                                                    caplog):
    state = tmp_path / "state"
    state.mkdir()
    script = hook(tmp_path / "hooks", uid=65534)
    with caplog.at_level(logging.ERROR, logger="clusterd.resources.agents.ocf"):
        result = start(agent_env, state, str(script))
    assert result.rc is AgentRc.PERMISSION
    assert result.message == (f"ocf:d1 (test:dummy): refusing to run agent: parameter "
                              f"notify_script cannot be run as root: {script} is owned by "
                              "uid 65534, not root")
    assert not (state / "env-start").exists()
    assert "refusing to run agent: parameter notify_script" in caplog.text
    os.chown(script, 0, 0)
    assert start(agent_env, state, str(script)).rc is AgentRc.OK
    assert (state / "env-start").exists()
