"""Least privilege on a real daemon's control socket, with a non-root client.

A one-node clusterd on loopback (the real cores, registry and server) whose cluster.conf
names an admin group and holds a fence password; a forked child that becomes ``nobody``
(allow-listed) with or without that group as a supplementary group calls it over the Unix
socket. Needs root (authkey ownership, setuid).
"""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from clusterd.conf.secrets import MASK
from clusterd.control import protocol as p
from clusterd.control.access import AccessPolicy
from clusterd.control.client import ControlClient
from clusterd.errors import ControlError
from clusterd.node.daemon import Daemon
from clusterd.node.wiring import Options, Runtime
from node_testdata import conf_bytes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (authkey, setuid)")
ADDR = "127.0.0.22"
NOBODY = 65534
SECRET = "Sup3r-S3cret-ipmi"
GROUP = next(g for g in grp.getgrall() if g.gr_gid not in (0, NOBODY))
READ_OPS = {"status", "conf.get", "fence.status", "svc.status", "svc.lock_state", "svc.candidates",
            "key.status"}


def conf(version: int, port: int, passwd: str = SECRET) -> bytes:
    return conf_bytes(version, names=(ADDR,), extra=(
        f'<cman port="{port}"/><clusterd admin_group="{GROUP.gr_name}"/><fencedevices>'
        '<fencedevice name="ipmi" agent="fence_ipmilan" ipaddr="198.18.0.1" login="admin" '
        f'passwd="{passwd}"/></fencedevices>'))


@pytest.fixture
def opts(tmp_path: Path):
    sockdir = tempfile.mkdtemp(prefix="rhc-node-roles-")   # nobody must reach the socket
    os.chmod(sockdir, 0o755)
    (tmp_path / "cluster.conf").write_bytes(conf(1, random.randrange(40000, 50000)))
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(256))
    key.chmod(0o400)
    yield Options(config_path=str(tmp_path / "cluster.conf"), authkey_path=str(key),
                  node=ADDR, control_socket=os.path.join(sockdir, "clusterd.sock"),
                  state_dir=str(tmp_path / "state"),
                  policy=AccessPolicy(uids=frozenset({NOBODY})))
    shutil.rmtree(sockdir, ignore_errors=True)


def _call_as_nobody(path: str, groups: list[int], op: str, args: dict) -> dict:
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups(groups)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                out = {"result": ControlClient(path, timeout=10).call(op, args)}
            except ControlError as exc:
                out = {"code": exc.code, "message": exc.message}
            os.write(wfd, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_roles_conf_get_masking_and_the_admin_group_on_a_running_daemon(opts, caplog):
    path = opts.control_socket

    async def nobody(groups: list[int], op: str, **args) -> dict:
        return await asyncio.to_thread(_call_as_nobody, path, groups, op, args)

    async def root(op: str, **args):
        return await asyncio.to_thread(ControlClient(path, timeout=10).call, op, args)

    async def scenario():
        daemon = Daemon(opts, Runtime(opts))
        run = asyncio.create_task(daemon.run())
        async with asyncio.timeout(10):
            while not daemon.status.get("quorum", {}).get("quorate"):
                await asyncio.sleep(0.02)
        os.chmod(path, 0o666)            # the test stands in for the haclient group
        roles = daemon.registry.roles()
        assert {op for op, role in roles.items() if role is p.Role.READ} == READ_OPS
        assert set(roles.values()) == {p.Role.READ, p.Role.ADMIN}
        port = daemon.rt.conf.port

        # allow-listed, not in the admin group: reads (secrets masked), changes nothing
        assert (await nobody([], "status"))["result"]["cluster"]["config_version"] == 1
        got = (await nobody([], "conf.get", text=True))["result"]
        assert got["masked"] and SECRET not in got["conf"] and f'passwd="{MASK}"' in got["conf"]
        for op in ("fence.status", "svc.status", "key.status"):
            assert "result" in await nobody([], op), op
        refused = await nobody([], "conf.propose", conf=conf(2, port).decode())
        assert refused == {"code": p.E_DENIED, "message": (
            f"permission denied: conf.propose needs the admin role (root or group "
            f"'{GROUP.gr_name}'); you are uid {NOBODY} (nobody) in group {NOBODY} "
            f"({grp.getgrgid(NOBODY).gr_name})")}
        for op, args in (("leave", {}), ("reload", {}), ("key.activate", {}),
                         ("quorum.expected", {"expected": 1}),
                         ("fence.node", {"node": ADDR}), ("node.standby", {"node": ADDR}),
                         ("svc.disable", {"service": "web"})):
            out = await nobody([], op, **args)
            assert out["code"] == p.E_DENIED, op
            assert out["message"].startswith(f"permission denied: {op} needs the admin role")
        hidden = await nobody([GROUP.gr_gid], "conf.get", text=True, reveal_secrets=True)
        assert hidden["code"] == p.E_DENIED and "needs the root role (uid 0 only)" in \
            hidden["message"]

        # in the admin group (a supplementary group): a masked copy cannot go back ...
        masked = got["conf"].replace('config_version="1"', 'config_version="2"')
        back = await nobody([GROUP.gr_gid], "conf.propose", conf=masked)
        assert back["code"] == p.E_INVALID_CONFIG and "holds the mask" in back["message"]
        # ... but a real change goes through
        accepted = await nobody([GROUP.gr_gid], "conf.propose",
                                conf=conf(2, port, passwd="n3w-pw").decode())
        assert accepted["result"]["changed"] and accepted["result"]["version"] == 2

        revealed = await root(p.OP_CONF_GET, text=True, reveal_secrets=True)
        assert 'passwd="n3w-pw"' in revealed["conf"] and not revealed["masked"]
        assert await root(p.OP_LEAVE) == {"leaving": True, "mode": "leave"}
        return await asyncio.wait_for(run, 10)

    with caplog.at_level(logging.WARNING, logger="clusterd.control.server"):
        assert asyncio.run(scenario()) == 0
    assert "control op refused: conf.propose needs the admin role" in caplog.text
