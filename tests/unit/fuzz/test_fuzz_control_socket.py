"""Fuzzing the control protocol over the real Unix socket.

A ``ControlServer`` on a temporary socket (ops declaring every argument kind) gets
random and mutated request lines, pipelined several to a write and split across writes
at random points: bad JSON, deep nesting, unknown ops and fields, wrong argument types,
64-bit overflowing integers, NUL bytes, lines that are not UTF-8, huge lines, partial
lines and then a close, many connections at once. Every line gets exactly one reply:
the op's result for a valid request, otherwise an error with a known code and a message;
an oversize line gets ``too_large`` and the connection closes; a partial line closed by
the client ends its connection quietly. The server never logs a traceback, counts no
internal error, and serves a valid request afterwards.

The last test does the same to a real one-node daemon (its registry: status, conf,
fencing and services ops) where only a refusal can follow (wrong types, unknown ops)
or the op only reads, and pins the two protocol bugs found here.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from clusterd.control import protocol as p
from clusterd.control.server import ControlServer
from fuzzlib import deep, dumps, mutated_bytes, value

CODES = {p.E_BAD_REQUEST, p.E_TOO_LARGE, p.E_VERSION, p.E_UNKNOWN_OP, p.E_BAD_ARGS,
         p.E_BUSY, p.E_DENIED}
KINDS = {"s": str, "i": int, "b": bool, "l": list, "d": dict}


async def _echo(args, peer):
    return {"args": dict(args)}


def _registry() -> p.OpRegistry:
    reg = p.OpRegistry()
    reg.register("echo", _echo, tuple(p.Arg(n, k, required=False) for n, k in KINDS.items()),
                 role=p.Role.READ)
    reg.register("need", _echo, (p.Arg("s", str), p.Arg("i", int, required=False)),
                 role=p.Role.ADMIN)
    return reg


@pytest.fixture
def sock():
    path = tempfile.mkdtemp(prefix="rhc-fuzz-")
    yield os.path.join(path, "c.sock")
    shutil.rmtree(path, ignore_errors=True)


def good_args(rng: random.Random) -> dict:
    samples = {"s": "x\u00e9", "i": rng.randint(-(2**63), 2**63 - 1), "b": True,
               "l": [1, "a"], "d": {"k": [None]}}
    return {k: samples[k] for k in rng.sample(sorted(KINDS), rng.randint(0, len(KINDS)))}


def request_line(rng: random.Random) -> tuple[bytes, bool]:
    """One request line (no newline inside) and whether it is a valid echo call."""
    r = rng.random()
    if r < 0.25:
        return json.dumps({"v": 1, "op": "echo", "args": good_args(rng)}).encode(), True
    base = {"v": 1, "op": rng.choice(("echo", "need", "status", "")), "args": good_args(rng)}
    if r < 0.85:
        data = mutated_bytes(rng, base)
    elif r < 0.9:
        data = dumps({"v": 1, "op": "echo", "args": {"i": value(rng)}}).encode()
    elif r < 0.95:
        data = dumps({"v": 1, "op": "echo", "args": {"d": deep(rng)}}).encode()
    else:
        data = rng.choice((b"", b" ", b"\x00", b"\xff\xfe{", b"{}", b"[]", b"null", b"1",
                           b'{"v":1}', b'{"v":true,"op":"echo"}', b'{"v":1,"op":"echo","args":[]}',
                           b'{"v":1,"op":"echo","x":1}', b'{"v":2,"op":"echo"}'))
    if len(data) > p.MAX_REQUEST_BYTES:
        # an oversize request is answered, then the connection is closed once 4 MiB more
        # were drained, so what a client pipelined after it meets a reset: that case is
        # test_partial_lines_huge_lines_and_a_crowd's; here a truncated (invalid) line
        data = data[:4096]
    return data.replace(b"\n", b" "), False


def check_reply(line: bytes, valid: bool, sent: bytes) -> str:
    reply = json.loads(line)
    assert set(reply) <= {"v", "ok", "result", "error"} and reply["v"] == 1, reply
    if valid:
        assert reply["ok"] and reply["result"] == {"args": json.loads(sent).get("args", {})}, reply
        return "ok"
    if reply["ok"]:                       # a mutant can still be a valid echo call
        assert reply["result"] == {"args": json.loads(sent).get("args", {})}
        return "ok"
    err = reply["error"]
    assert err["code"] in CODES and isinstance(err["message"], str) and err["message"], err
    return err["code"]


async def session(path: str, rng: random.Random) -> list[str]:
    """One connection: several lines pipelined, written in random pieces; one reply per
    line, in order."""
    lines = [request_line(rng) for _ in range(rng.randint(1, 6))]
    data = b"".join(line + b"\n" for line, _ in lines)
    reader, writer = await asyncio.open_unix_connection(path, limit=2**24)
    cuts = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        writer.write(data[a:b])
        await writer.drain()
    codes = []
    for line, valid in lines:
        async with asyncio.timeout(10):
            got = await reader.readline()
        if codes == [p.E_BUSY]:          # refused at connect: one answer, then closed
            assert got == b""
            break
        if not codes and json.loads(got).get("error", {}).get("code") == p.E_BUSY:
            codes.append(p.E_BUSY)
            continue
        codes.append(check_reply(got, valid, line))
    writer.close()
    return codes


async def until_idle(server: ControlServer) -> None:
    async with asyncio.timeout(10):
        while server._clients:
            await asyncio.sleep(0.01)


def test_random_frames_get_one_clear_answer_each(sock, fuzz_seed: int) -> None:
    rng = random.Random(fuzz_seed)

    async def scenario() -> dict:
        server = ControlServer(_registry(), sock, max_clients=64)
        await server.start()
        try:
            seen: dict[str, int] = {}
            for _ in range(120):
                for code in await session(sock, rng):
                    seen[code] = seen.get(code, 0) + 1
            await until_idle(server)
            assert server.stats["errors"] == 0
            return seen
        finally:
            await server.close()

    seen = asyncio.run(scenario())
    assert seen.get("ok", 0) > 30 and seen.get(p.E_BAD_REQUEST, 0) > 10, seen
    assert seen.get(p.E_BAD_ARGS, 0) > 10 and seen.get(p.E_UNKNOWN_OP, 0) > 0, seen


def test_partial_lines_huge_lines_and_a_crowd(sock, fuzz_seed: int) -> None:
    rng = random.Random(fuzz_seed)

    async def partial() -> None:
        """Gone before the answer: more of them than the cap, so some are refused busy
        after they left (that used to log a BrokenPipeError traceback)."""
        _, writer = await asyncio.open_unix_connection(sock)
        line, _ = request_line(rng)
        writer.write(line[:rng.randint(0, len(line))])        # no newline, then gone
        await writer.drain()
        writer.close()

    async def huge(size: int, newline: bool) -> bytes:
        reader, writer = await asyncio.open_unix_connection(sock, limit=2**24)
        writer.write(b'{"v":1,"op":"echo","args":{"s":"' + b"a" * size + b'"}}'
                     + (b"\n" if newline else b""))
        writer.write_eof()
        async with asyncio.timeout(20):
            got = await reader.readline()
            assert await reader.read() == b""   # one answer, then the server closes
        writer.close()
        return got

    async def scenario() -> None:
        server = ControlServer(_registry(), sock, max_clients=16)
        await server.start()
        try:
            await asyncio.gather(*(partial() for _ in range(20)))
            big = await huge(p.MAX_REQUEST_BYTES - 100, newline=True)   # fits: answered
            assert json.loads(big)["result"]["args"]["s"] == "a" * (p.MAX_REQUEST_BYTES - 100)
            over = json.loads(await huge(p.MAX_REQUEST_BYTES + 10, newline=False))
            assert over["error"]["code"] == p.E_TOO_LARGE
            await until_idle(server)
            # a crowd past the client cap: each connection is served or told busy
            results = await asyncio.gather(*(session(sock, rng) for _ in range(40)),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            await until_idle(server)
            assert server.stats["errors"] == 0
            codes = await session(sock, random.Random(0))           # still serving
            assert codes and all(c in CODES | {"ok"} for c in codes)
        finally:
            await server.close()

    asyncio.run(scenario())


def test_regression_deeply_nested_request_is_a_bad_request() -> None:
    """``json.loads`` raises RecursionError (not a ValueError) on deep nesting: it
    escaped ``Request.from_line`` and the server answered ``internal`` after logging a
    traceback."""
    for depth in (2000, 100_000):
        line = b'{"v":1,"op":"echo","args":{"d":' + b"[" * depth + b"]" * depth + b"}}"
        with pytest.raises(p.ControlError) as info:
            p.Request.from_line(line)
        assert info.value.code == p.E_BAD_REQUEST and "nested too deeply" in info.value.message
    with pytest.raises(p.ControlError) as info:
        p.decode_response(b"[" * 100_000)
    assert info.value.code == p.E_PROTOCOL


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**400])
def test_regression_integer_args_past_64_bits_are_bad_args(value) -> None:
    """``svc.enable`` and friends did ``float(timeout)``: a timeout of 10**400 raised
    OverflowError in the handler (``internal`` and a traceback in the log)."""
    with pytest.raises(p.ControlError) as info:
        _registry().resolve(p.Request(1, "echo", {"i": value}))
    assert info.value.code == p.E_BAD_ARGS and "-9223372036854775808..9223372036854775807" \
        in info.value.message
    for edge in (2**63 - 1, -(2**63)):
        assert _registry().resolve(p.Request(1, "echo", {"i": edge}))[1] == {"i": edge}


# ------------------------------------------------------------------ the real daemon
ADDR = "127.0.0.24"
WRONG = {str: 5, int: "5", bool: 1, list: {"a": 1}, dict: [1]}


@pytest.mark.skipif(os.geteuid() != 0, reason="the authkey must be owned by root")
def test_a_real_daemon_answers_fuzzed_ops_and_keeps_serving(tmp_path: Path,
                                                             fuzz_seed: int) -> None:
    from clusterd.errors import ControlError
    from clusterd.node.daemon import Daemon
    from clusterd.node.wiring import Options, Runtime

    rng = random.Random(fuzz_seed)
    port = rng.randrange(40000, 50000)
    (tmp_path / "cluster.conf").write_bytes(
        f'<?xml version="1.0"?><cluster name="fz" config_version="1"><clusternodes>'
        f'<clusternode name="{ADDR}" nodeid="1"/></clusternodes><cman port="{port}"/>'
        '<rm><service name="web" autostart="0"/></rm></cluster>'.encode())
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(256))
    key.chmod(0o400)
    opts = Options(config_path=str(tmp_path / "cluster.conf"), authkey_path=str(key),
                   node=ADDR, control_socket=str(tmp_path / "c.sock"),
                   state_dir=str(tmp_path / "state"))

    def call(op: str, args: dict) -> str:
        """One request line written by the fuzz writer (odd values included); the reply
        decoded by the CLIs' own decoder."""
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(10)
            conn.connect(opts.control_socket)
            conn.sendall(dumps({"v": 1, "op": op, "args": args}).encode() + b"\n")
            reply = conn.makefile("rb").readline()
        try:
            p.decode_response(reply)
            return "ok"
        except ControlError as exc:
            assert exc.message
            return exc.code

    async def scenario() -> None:
        daemon = Daemon(opts, Runtime(opts))
        run = asyncio.create_task(daemon.run())
        async with asyncio.timeout(15):
            while not daemon.status.get("quorum", {}).get("quorate"):
                await asyncio.sleep(0.02)
        specs = {name: daemon.registry._ops[name] for name in daemon.registry.names()}
        codes = set()
        for _ in range(150):
            op = rng.choice([*specs, "nope", "svc", "status.", "conf.get\x00"])
            spec = specs.get(op)
            args = {a.name: WRONG[a.kind] for a in spec.args} if spec and spec.args else {}
            if spec is None or not args or rng.random() < 0.3:
                args = {**args, rng.choice(("zz", "", "\u00e9")): value(rng)}
            if spec is not None and spec.role is p.Role.READ and rng.random() < 0.5:
                args = {}                       # a valid read: it runs
            codes.add(await asyncio.to_thread(call, op, args))
        for op in ("svc.enable", "svc.relocate", "node.standby"):   # the int regression
            args = {"service": "web", "node": ADDR, "timeout": 10**400}
            args = {a.name: args[a.name] for a in specs[op].args if a.name in args}
            assert await asyncio.to_thread(call, op, args) == p.E_BAD_ARGS
        assert daemon.server.stats["errors"] == 0
        assert codes <= CODES | {"ok", "unknown_node"} and "ok" in codes, codes
        assert await asyncio.to_thread(call, p.OP_STATUS, {}) == "ok"
        assert await asyncio.to_thread(call, p.OP_LEAVE, {}) == "ok"
        assert await asyncio.wait_for(run, 15) == 0

    asyncio.run(scenario())
