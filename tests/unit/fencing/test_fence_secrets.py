"""S9: fence parameters referencing a local 0600 secret file pinned by a checksum in
cluster.conf; the agent gets the value on stdin, nothing of it leaks."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from clusterd.errors import AgentError
from clusterd.fencing import secrets
from clusterd.fencing.agent import AgentRunner

VALUE = "Ipmi-Pa55!"


@pytest.fixture
def secret_dir(tmp_path):
    d = tmp_path / "secrets"
    d.mkdir(mode=0o700)
    f = d / "ipmi_node1"
    f.write_text(VALUE + "\n")
    os.chmod(f, 0o600)
    return d


def test_reference_resolves_to_the_first_line_when_the_checksum_matches(secret_dir):
    ref = secrets.reference("ipmi_node1", VALUE)
    assert ref.startswith("secret://ipmi_node1#sha256=") and VALUE not in ref
    assert secrets.resolve("passwd", ref, str(secret_dir)) == VALUE


@pytest.mark.parametrize("setup, words", [
    (lambda d: os.chmod(d / "ipmi_node1", 0o640), "has mode 0640; make it 0600"),
    (lambda d: (d / "ipmi_node1").write_text("old-password\n"),
     "does not match the checksum in cluster.conf"),
    (lambda d: os.unlink(d / "ipmi_node1"), "cannot be opened: No such file"),
    (lambda d: (os.rename(d / "ipmi_node1", d / "real"),
                os.symlink(d / "real", d / "ipmi_node1")), "cannot be opened"),
    (lambda d: (d / "ipmi_node1").write_text(""), "is empty"),
])
def test_refusals_name_the_file_and_the_fix_never_the_value(secret_dir, setup, words):
    ref = secrets.reference("ipmi_node1", VALUE)
    setup(secret_dir)
    with pytest.raises(AgentError) as info:
        secrets.resolve("passwd", ref, str(secret_dir))
    assert words in info.value.reason and "parameter passwd" in info.value.reason
    assert VALUE not in str(info.value) and "old-password" not in str(info.value)


@pytest.mark.parametrize("bad", ["secret://ipmi", "secret://../etc/shadow#sha256=" + "0" * 64,
                                 "secret://.hidden#sha256=" + "0" * 64,
                                 "secret://x#md5=" + "0" * 32])
def test_malformed_references_are_refused(secret_dir, bad):
    with pytest.raises(AgentError) as info:
        secrets.resolve("passwd", bad, str(secret_dir))
    assert "secret://NAME#sha256=" in info.value.reason


def test_the_agent_gets_the_value_on_stdin_and_its_output_is_redacted(agent_dir, secret_dir,
                                                                      tmp_path):
    log = tmp_path / "calls"
    runner = AgentRunner(search_dirs=[str(agent_dir)], timeout=10,
                         secrets_dir=str(secret_dir))
    opts = {"passwd": secrets.reference("ipmi_node1", VALUE), "fake_echo_password": "1",
            "fake_log": str(log)}
    result = asyncio.run(runner.run("fence_fake", "status", opts))
    assert result.rc == 0
    assert json.loads(log.read_text())["options"]["passwd"] == VALUE
    assert VALUE not in result.stdout + result.stderr
    os.chmod(secret_dir / "ipmi_node1", 0o644)
    with pytest.raises(AgentError) as info:
        asyncio.run(runner.run("fence_fake", "status", opts))
    assert info.value.agent == "fence_fake" and "make it 0600" in info.value.reason
