"""Control server over a real Unix socket: T29 (root / unprivileged / allow-listed uid),
readiness, client cap, timeouts, oversized requests, client error messages.

The unprivileged cases fork a child that drops to ``nobody`` with os.setuid, so they need
root (skipped otherwise).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import stat
import tempfile
from contextlib import asynccontextmanager

import pytest
from clusterd.control import protocol as p
from clusterd.control.client import (
    EXIT_DENIED,
    EXIT_NOT_RUNNING,
    ControlClient,
    exit_code_for,
)
from clusterd.control.server import AccessPolicy, ControlServer, RateLimit
from clusterd.errors import ControlError, FatalError

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to setuid a child")


@pytest.fixture
def sockdir():
    # Not under pytest's tmp_path: its parents are 0700 root and nobody must reach the socket.
    path = tempfile.mkdtemp(prefix="rhc-ctl-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _whoami(args, peer):
    return {"uid": peer.uid, "gid": peer.gid}


async def _slow(args, peer):
    await asyncio.sleep(3600)


def _registry() -> p.OpRegistry:
    reg = p.OpRegistry()
    reg.register("status", _whoami, role=p.Role.READ)
    reg.register("slow", _slow, role=p.Role.READ)
    return reg


@asynccontextmanager
async def running(path, **kw):
    server = ControlServer(_registry(), path, **kw)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _call_as(uid: int, path: str) -> dict:
    """Fork, drop to ``uid``, call 'status'; returns {"result": ...} or {"code": ...}."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                                  # child: no asyncio, raw client only
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                out = {"result": ControlClient(path, timeout=10).call("status")}
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


async def _as(uid: int, path: str) -> dict:
    return await asyncio.get_running_loop().run_in_executor(None, _call_as, uid, path)


async def _call(path: str, op: str = "status", **args):
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: ControlClient(path, timeout=10).call(op, args))


@needs_root
def test_t29_root_allowed_nobody_denied_and_logged_allowlisted_allowed(sockdir, caplog):
    path = os.path.join(sockdir, "c.sock")

    async def scenario():
        async with running(path, socket_mode=0o666) as server:
            assert (await _call(path)) == {"uid": 0, "gid": 0}
            denied = await _as(NOBODY, path)
            assert denied["code"] == p.E_DENIED
            assert "uid 65534" in denied["message"]
            assert server.stats["denied"] == 1
        async with running(path, socket_mode=0o666,
                           policy=AccessPolicy(uids=frozenset({NOBODY}))):
            assert (await _as(NOBODY, path)) == {"result": {"uid": NOBODY, "gid": NOBODY}}
        async with running(path, socket_mode=0o666,
                           policy=AccessPolicy(gids=frozenset({NOBODY}))):
            assert (await _as(NOBODY, path))["result"]["uid"] == NOBODY

    with caplog.at_level(logging.WARNING, logger="clusterd.control.server"):
        asyncio.run(scenario())
    assert "denied control connection from uid 65534" in caplog.text


@needs_root
def test_default_socket_mode_keeps_unprivileged_users_out_at_connect(sockdir):
    path = os.path.join(sockdir, "sub", "c.sock")

    async def scenario():
        async with running(path):
            st = os.stat(path)
            assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0
            assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o750
            return await _as(NOBODY, path)

    out = asyncio.run(scenario())
    assert out["code"] == p.E_PERMISSION
    assert out["message"].startswith("permission denied: the control socket is root-only")
    assert exit_code_for(ControlError(out["code"], out["message"])) == EXIT_DENIED


def test_denial_log_is_rate_limited():
    rl = RateLimit(burst=2, interval=10)
    assert [rl.allow(t)[0] for t in (0, 1, 2, 3)] == [True, True, False, False]
    assert rl.allow(11) == (True, 2)             # new window reports what it suppressed


def test_not_running_message(sockdir):
    path = os.path.join(sockdir, "none.sock")
    with pytest.raises(ControlError) as info:
        ControlClient(path).call("status")
    assert info.value.message == f"clusterd is not running on this node (no socket at {path})"
    assert exit_code_for(info.value) == EXIT_NOT_RUNNING


def test_not_ready_until_ready(sockdir):
    path = os.path.join(sockdir, "c.sock")
    ready = False

    async def scenario():
        nonlocal ready
        async with running(path, is_ready=lambda: ready):
            with pytest.raises(ControlError) as info:
                await _call(path)
            assert info.value.code == p.E_NOT_READY
            ready = True
            assert (await _call(path))["uid"] == 0

    asyncio.run(scenario())


def test_errors_are_replies_not_disconnects(sockdir):
    path = os.path.join(sockdir, "c.sock")

    async def scenario():
        async with running(path):
            with pytest.raises(ControlError) as info:
                await _call(path, "nope")
            assert info.value.code == p.E_UNKNOWN_OP
            reader, writer = await asyncio.open_unix_connection(path)
            for line, code in ((b"garbage\n", p.E_BAD_REQUEST), (b'{"v":9,"op":"x"}\n', p.E_VERSION)):
                writer.write(line)
                reply = json.loads(await reader.readline())
                assert reply["error"]["code"] == code       # same connection stays usable
            writer.write(p.encode_request("status"))
            assert json.loads(await reader.readline())["result"]["uid"] == 0
            writer.close()

    asyncio.run(scenario())


def test_oversized_request_refused(sockdir):
    path = os.path.join(sockdir, "c.sock")

    async def scenario():
        async with running(path):
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"x" * (p.MAX_REQUEST_BYTES + 10))
            reply = json.loads(await reader.readline())
            writer.close()
            return reply

    assert asyncio.run(scenario())["error"]["code"] == p.E_TOO_LARGE


def test_idle_timeout_and_client_cap_go_through_cleanup(sockdir):
    path = os.path.join(sockdir, "c.sock")

    async def scenario():
        async with running(path, max_clients=1, idle_timeout=0.3) as server:
            _, w1 = await asyncio.open_unix_connection(path)
            # first client holds the only slot; wait until the server has registered it
            async with asyncio.timeout(5):
                while not server._clients:
                    await asyncio.sleep(0.01)
            r2, w2 = await asyncio.open_unix_connection(path)
            assert json.loads(await r2.readline())["error"]["code"] == p.E_BUSY
            w2.close()
            async with asyncio.timeout(5):                 # idle client times out
                while server.stats["timeouts"] == 0:
                    await asyncio.sleep(0.02)
                while server._clients:
                    await asyncio.sleep(0.02)
            w1.close()
            assert (await _call(path))["uid"] == 0         # slot is free again
            assert server.stats["busy"] == 1

    asyncio.run(scenario())


def test_close_cancels_in_flight_handlers_and_removes_socket(sockdir):
    path = os.path.join(sockdir, "c.sock")

    async def scenario():
        server = ControlServer(_registry(), path)
        await server.start()
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(p.encode_request("slow"))
        async with asyncio.timeout(5):
            while not server._clients:
                await asyncio.sleep(0.01)
        await server.close()
        assert await reader.read() == b""                  # closed, no reply
        assert not server._clients and not os.path.exists(path)

    asyncio.run(scenario())


def test_refuses_second_daemon_and_replaces_stale_socket(sockdir):
    path = os.path.join(sockdir, "c.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()                                          # a dead daemon's socket file

    async def scenario():
        async with running(path):
            with pytest.raises(FatalError, match="already listening"):
                await ControlServer(_registry(), path).start()

    asyncio.run(scenario())
    with open(path, "w"):
        pass
    with pytest.raises(FatalError, match="not a socket"):
        asyncio.run(ControlServer(_registry(), path).start())
