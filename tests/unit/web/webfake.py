"""Shared pieces of the web service's tests: a fake clusterd
(a real asyncio Unix socket server speaking the control protocol, one JSON line per
request, with canned answers; it records every request and its ``as``), and a harness
that runs the app over HTTPS on 127.0.0.1 with an injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import TCPConnector
from aiohttp.test_utils import TestClient, TestServer
from clusterd.control import protocol as p
from clusterd.web.app import WebService
from clusterd.web.config import WebConfig
from clusterd.web.users import User, hash_password

FAST_N = 2**4          # scrypt cost in tests (the parameters travel in the hash)
PASSWORDS = {"alice": ("admin", "alice-pw"), "victor": ("viewer", "victor-pw")}


def status_doc(**changes: Any) -> dict[str, Any]:
    """A three-node status document as clusterd's ``status`` op returns it."""
    doc: dict[str, Any] = {
        "cluster": {"name": "alpha", "config_version": 7, "config_sha256": "ab" * 32},
        "quorum": {"quorate": True, "votes": 3, "expected_votes": 3, "quorum": 2},
        "local": {"name": "node1", "nodeid": 1, "pid": 0, "incarnation": 5,
                  "version": "0.1.0"},
        "view": {"epoch": 4, "members": [1, 2, 3]},
        "nodes": [{"name": f"node{i}", "nodeid": i, "state": "online", "local": i == 1,
                   "votes": 1, "standby": False, "estranged": False} for i in (1, 2, 3)],
        "services": [{"name": "service:web", "state": "started", "owner": "node1",
                      "last_owner": None, "flags": [], "restarts": 0, "domain": "d1",
                      "last_transition": 100}],
        "services_locked": False,
        "fencing": [],
        "qdisk": None,
        "wire": {"accepted": 10, "drops": {}},
    }
    doc.update(changes)
    return doc


CANDIDATES = {"services": {"service:web": [
    {"node": "node1", "candidate": True, "score": 2, "why": "owner, in domain d1"},
    {"node": "node3", "candidate": False, "score": None, "why": "not in restricted domain d1"},
]}}


class FakeDaemon:
    """clusterd's control socket, as far as the web service uses it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.status: dict[str, Any] = status_doc()
        self.candidates: Any = copy.deepcopy(CANDIDATES)  # None: unknown op; a list: pages
        self.replies: dict[str, Any] = {}     # op -> result, or (code, message) for an error
        self.requests: list[dict[str, Any]] = []
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._handle, self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            Path(self.path).unlink(missing_ok=True)

    def actions(self) -> list[dict[str, Any]]:
        """The requests other than the page's reads."""
        return [r for r in self.requests if r["op"] not in ("status", "svc.candidates")]

    def count(self, op: str) -> int:
        return sum(1 for r in self.requests if r["op"] == op)

    def _answer(self, req: dict[str, Any]) -> bytes:
        op = req.get("op")
        if op == "status":
            return p.encode_result(self.status)
        if op == "svc.candidates":
            if self.candidates is None:
                return p.encode_error(p.E_UNKNOWN_OP, "unknown op 'svc.candidates'")
            if isinstance(self.candidates, list):     # pages, by the request's start
                return p.encode_result(self.candidates[req.get("args", {}).get("start", 0)])
            return p.encode_result(self.candidates)
        reply = self.replies.get(str(op), {"code": 0, "message": "Success"})
        if isinstance(reply, tuple):
            return p.encode_error(*reply)
        return p.encode_result(reply)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            req = json.loads(line)
            self.requests.append(req)
            writer.write(self._answer(req))
            await writer.drain()
        finally:
            writer.close()


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class StaticAuth:
    """The users file's logic without scrypt's cost: hashes made with a tiny N."""

    def __init__(self) -> None:
        self.users = {name: User(name, role, hash_password(pw, n=FAST_N))
                      for name, (role, pw) in PASSWORDS.items()}

    def authenticate(self, name: str, password: str) -> str | None:
        from clusterd.web.users import verify_password
        user = self.users.get(name)
        return user.role if user and verify_password(password, user.hash) else None


@dataclass
class Harness:
    client: TestClient
    fake: FakeDaemon
    service: WebService
    clock: Clock
    origin: str
    csrf: dict[str, str] = field(default_factory=dict)

    async def login(self, user: str = "alice", password: str | None = None,
                    origin: str | None = None) -> Any:
        page = await self.client.get("/login")
        token = csrf_of(await page.text())
        if password is None:
            password = PASSWORDS[user][1]
        return await self.client.post(
            "/login", data={"csrf": token, "username": user, "password": password},
            headers={"Origin": origin or self.origin}, allow_redirects=False)

    async def page(self) -> str:
        resp = await self.client.get("/")
        assert resp.status == 200, resp.status
        return await resp.text()

    async def action(self, token: str | None = None, json_reply: bool = True,
                     origin: str | None = None, **form: str) -> Any:
        if token is None:
            token = csrf_of(await self.page())
        headers = {"Origin": origin or self.origin}
        if json_reply:
            headers["Accept"] = "application/json"
        data = dict(form)
        if token:
            data["csrf"] = token
        return await self.client.post("/action", data=data, headers=headers,
                                      allow_redirects=False)


def csrf_of(text: str) -> str:
    m = re.search(r'name="csrf" value="([^"]*)"', text)
    assert m, "no csrf field in the page"
    return m.group(1)


async def wait_for(predicate: Callable[[], bool], deadline: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``deadline`` seconds)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not predicate():
        assert loop.time() < end, "condition not met before the deadline"
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def harness(tmp_path: Path, cert_files: tuple[str, str], *, start_daemon: bool = True,
                  metrics_token: str | None = None, max_clients: int = 64,
                  idle: int = 900, max_age: int = 28800) -> AsyncIterator[Harness]:
    # a short directory: a Unix socket path has at most 107 bytes
    short = tempfile.mkdtemp(prefix="cweb-")
    sock = f"{short}/clusterd.sock"
    fake = FakeDaemon(sock)
    if start_daemon:
        await fake.start()
    conf = WebConfig(listen=("127.0.0.1",), port=0, certificate=cert_files[0],
                     key=cert_files[1], control_socket=sock, session_idle=idle,
                     session_max=max_age, metrics_token=metrics_token)
    clock = Clock()
    service = WebService(conf, StaticAuth(), clock=clock, interval=0.02,
                         max_clients=max_clients)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert_files)
    server = TestServer(service.app(), host="127.0.0.1")
    await server.start_server(ssl=ctx)       # (TestServer takes ssl here, not above)
    client = TestClient(server, connector=TCPConnector(ssl=False))
    await client.start_server()
    try:
        origin = str(client.make_url("")).rstrip("/")
        yield Harness(client, fake, service, clock, origin)
    finally:
        await client.close()
        await fake.stop()
        shutil.rmtree(short, ignore_errors=True)


def run(coro: Awaitable[Any], timeout: float = 15.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())
