"""The daemon's log names each part of its config that clusterd accepts but does not use,
once per occurrence, when it starts with a config and when it applies a new one (a
one-node cluster on loopback, as in test_node_daemon.py; needs root for the authkey)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from pathlib import Path

import pytest
from clusterd.control import protocol as p
from clusterd.control.client import ControlClient
from clusterd.node.daemon import Daemon
from clusterd.node.wiring import Options, Runtime
from node_testdata import conf_bytes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the authkey must be owned by root")
ADDR = "127.0.0.23"


@pytest.fixture
def opts(tmp_path: Path) -> Options:
    port = random.randrange(40000, 50000)
    (tmp_path / "cluster.conf").write_bytes(conf_bytes(1, names=(ADDR,), extra=(
        f'<cman port="{port}"/><logging to_syslog="yes"><logging_daemon name="rgmanager"/>'
        "</logging>")))
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(256))
    key.chmod(0o400)
    return Options(config_path=str(tmp_path / "cluster.conf"), authkey_path=str(key),
                   node=ADDR, control_socket=str(tmp_path / "ctl.sock"),
                   state_dir=str(tmp_path / "state"))


def _unused(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "accepted but not used" in r.getMessage()]


def test_unused_parts_are_logged_on_start_and_on_apply(opts, caplog):
    caplog.set_level(logging.INFO)

    async def scenario():
        daemon = Daemon(opts, Runtime(opts))
        run = asyncio.create_task(daemon.run())
        async with asyncio.timeout(10):
            while not daemon.status.get("quorum", {}).get("quorate"):
                await asyncio.sleep(0.02)
        started = _unused(caplog)
        new = conf_bytes(2, names=(ADDR,), extra=(
            f'<cman port="{daemon.rt.conf.port}" keyfile="/etc/cluster/k"/>'
            '<totem token="2000" consensus="2400"/>'))
        client = ControlClient(opts.control_socket, timeout=10)
        await asyncio.to_thread(client.call, p.OP_CONF_PROPOSE, {"conf": new.decode()})
        await asyncio.to_thread(client.call, p.OP_LEAVE)
        await asyncio.wait_for(run, 10)
        return started, _unused(caplog)[len(started):]

    started, applied = asyncio.run(scenario())
    assert [m.split(" (", 1)[0] for m in started] == [
        f"node {ADDR}: config_version 1: accepted but not used by clusterd: /cluster/logging"]
    assert [m.split(" (", 1)[0] for m in applied] == [
        (f"node {ADDR}: config_version 2: accepted but not used by clusterd: "
         "/cluster/cman/@keyfile"),
        (f"node {ADDR}: config_version 2: accepted but not used by clusterd: "
         "/cluster/totem/@consensus")]
