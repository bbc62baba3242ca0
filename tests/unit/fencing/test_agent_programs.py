"""Program options of fence agents are checked again just before the agent runs (defense in
depth: the file may have changed since the config was validated)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil

import pytest
from clusterd.errors import AgentError
from clusterd.fencing.agent import AgentRunner


def helper(agent_dir, name: str = "ssh", mode: int = 0o755, uid: int = 0) -> str:
    path = agent_dir / name
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(path, mode)
    os.chown(path, uid, 0)
    return str(path)


def power_off(agent_dir, **options):
    runner = AgentRunner(search_dirs=[str(agent_dir)], timeout=20)
    return asyncio.run(runner.power("fence_fake", "off", options))


@pytest.mark.parametrize("option, make, reason", [
    ("ssh_path", lambda d: helper(d, uid=65534), r"ssh is owned by uid 65534, not root"),
    ("ipmitool-path", lambda d: helper(d, mode=0o777), r"writable by group or others"),
    ("exec", lambda d: "/usr/bin/env", r"is a shell or interpreter \(env\)"),
    ("snmp_priv_passwd_script", lambda d: "/bin/sh -c 'echo pw'",
     "runs inline code through '/bin/sh'"),
    ("passwd_script", lambda d: str(d / "gone"), r"gone does not exist"),
])
def test_untrusted_program_options_stop_the_run_with_a_logged_error(agent_dir, tmp_path,
                                                                    caplog, option, make,
                                                                    reason):
    log = tmp_path / "log"
    with caplog.at_level(logging.ERROR, logger="clusterd.fencing.agent"), \
            pytest.raises(AgentError, match=reason) as info:
        power_off(agent_dir, **{option: make(agent_dir), "fake_log": str(log)})
    assert info.value.reason.startswith(option)
    assert not log.exists()                                  # the agent never ran
    assert f"fence agent fence_fake action off: refusing to run option {option}: it " in \
        caplog.text


def test_a_script_swapped_for_a_symlink_to_a_shell_is_refused(agent_dir):
    script = agent_dir / "get_pw"
    script.symlink_to(shutil.which("bash") or "/bin/bash")
    with pytest.raises(AgentError, match=r"resolves to .*bash, a shell or interpreter"):
        power_off(agent_dir, passwd_script=str(script))


def test_trusted_program_options_reach_the_agent(agent_dir, tmp_path):
    log = tmp_path / "log"
    path = helper(agent_dir)
    result = power_off(agent_dir, ssh_path=path, fake_log=str(log))
    assert result.rc == 0
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["options"]["ssh_path"] == path
