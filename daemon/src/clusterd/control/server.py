"""Control socket server (asyncio edge): Unix socket, SO_PEERCRED authorization, roles.

Security (RELIABILITY.md S7, after corosync ``cs_ipcs_connection_accept``): the socket
lives in a 0750 directory, is 0660 root:root (root:haclient when that group exists);
root is always allowed, any other uid/gid only when it is in the allow-list or the admin
group of cluster.conf; every denial is answered with a ``denied`` error and logged with a
rate limit. Each op declares the role it needs (``read``, ``admin``, ``root``; see
``control.access``) and a call by a peer without it is refused the same way, naming the op
and the role. Until the daemon says it is ready, every connection is answered
``not_ready``. Concurrent clients are capped (``busy``), each connection has an idle
timeout, and every way a connection ends goes through :meth:`ControlServer._cleanup`.

The file system is the first gate: only root and members of ``haclient`` can reach the
socket at all, so an allow-listed uid or gid must also be in that group; SO_PEERCRED
then decides. Request arguments are never logged (a proposed cluster.conf may hold fence
passwords).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from clusterd.control import protocol as p
from clusterd.control.access import (
    DEFAULT_SOCKET,
    ROOT_ONLY,
    AccessPolicy,
    AdminGroup,
    peer_credentials,
    refusal,
    socket_path,
    with_groups,
)
from clusterd.errors import ControlError, FatalError

logger = logging.getLogger(__name__)

SOCKET_GROUP = "haclient"    # the group of the socket file (the file-system gate)


class RateLimit:
    """At most ``burst`` events per ``interval`` seconds; counts what it suppressed."""

    def __init__(self, burst: int = 5, interval: float = 60.0) -> None:
        self.burst, self.interval = burst, interval
        self._window_start = float("-inf")
        self._count = 0
        self.suppressed = 0

    def allow(self, now: float) -> tuple[bool, int]:
        """Returns (log this one?, how many were suppressed since the last one logged)."""
        if now - self._window_start >= self.interval:
            self._window_start, self._count = now, 0
        if self._count < self.burst:
            self._count += 1
            dropped, self.suppressed = self.suppressed, 0
            return True, dropped
        self.suppressed += 1
        return False, 0


class ControlServer:
    def __init__(self, registry: p.OpRegistry, path: str | None = None, *,
                 policy: AccessPolicy = ROOT_ONLY, max_clients: int = 16,
                 idle_timeout: float = 30.0, socket_mode: int = 0o660,
                 dir_mode: int = 0o750, node: str = "-",
                 is_ready: Callable[[], bool] = lambda: True,
                 admin_group: Callable[[], str | None] = lambda: None) -> None:
        self.registry = registry
        self.path = socket_path(path)
        self.policy = policy
        self.admin_group = admin_group      # the running cluster.conf's, read per connection
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        self.socket_mode = socket_mode
        self.dir_mode = dir_mode
        self.node = node
        self.is_ready = is_ready
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task] = set()
        self._deny_log = RateLimit()
        self._closing = False
        self.stats = {"accepted": 0, "denied": 0, "busy": 0, "not_ready": 0,
                      "timeouts": 0, "errors": 0}

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        self._prepare_path()
        self._server = await asyncio.start_unix_server(
            self._on_connect, path=self.path, limit=p.MAX_REQUEST_BYTES + 1)
        os.chmod(self.path, self.socket_mode)
        gid = _socket_gid()
        if os.geteuid() == 0:
            os.chown(self.path, 0, gid)
        logger.info("node %s: control socket listening on %s (mode %o, gid %d)", self.node,
                    self.path, self.socket_mode, gid)
        if self.policy.proxy_uid is not None:
            logger.info("node %s: the web service (uid %d) may act for its logged-in users, "
                        "with their role (viewer: read, admin: changes)", self.node,
                        self.policy.proxy_uid)

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _prepare_path(self) -> None:
        directory = os.path.dirname(self.path) or "."
        created = not os.path.isdir(directory)
        if created:
            os.makedirs(directory, mode=self.dir_mode, exist_ok=True)
        if created or directory == os.path.dirname(DEFAULT_SOCKET):
            # Our own directory (systemd's RuntimeDirectory or created here): 0750,
            # group haclient when it exists so that allow-listed members can reach it.
            os.chmod(directory, self.dir_mode)
            if os.geteuid() == 0:
                os.chown(directory, 0, _socket_gid())
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise FatalError(f"{self.path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(self.path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(self.path)       # stale socket of a dead daemon
            return
        except OSError as exc:
            raise FatalError(f"cannot probe existing control socket {self.path}: {exc}") from None
        finally:
            probe.close()
        raise FatalError(f"another clusterd is already listening on {self.path}")

    # -- connections ----------------------------------------------------------------
    async def _on_connect(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            if self._closing:
                # Our own close() cancelled this handler. Ending normally keeps asyncio's
                # stream callback (which calls task.exception()) from logging a spurious
                # "Exception in callback"; any other cancellation propagates.
                return
            raise
        except ConnectionError as exc:
            # the client went away before reading its answer (a CLI killed, or one
            # refused busy after it gave up): its business, not a failure of ours
            logger.debug("node %s: control client gone: %s", self.node, exc)
        except Exception:
            self.stats["errors"] += 1
            logger.exception("node %s: control connection failed", self.node)
        finally:
            await self._cleanup(task, writer)

    async def _cleanup(self, task: asyncio.Task, writer: asyncio.StreamWriter) -> None:
        """The one place where a connection ends, however it ended."""
        self._clients.discard(task)
        with contextlib.suppress(Exception):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _reply(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.idle_timeout)

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      data: bytes) -> None:
        """Answer a refused client, then drain what it already sent (briefly, bounded):
        closing a Unix socket with unread data would reset the peer before it reads why."""
        await self._reply(writer, data)
        with contextlib.suppress(Exception):
            writer.write_eof()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                budget = p.MAX_REQUEST_BYTES
                while budget > 0 and (chunk := await reader.read(65536)):
                    budget -= len(chunk)

    async def _identify(self, sock: socket.socket) -> tuple[p.Peer, AdminGroup, p.Role | None]:
        """Who is calling and in which role. Root needs no lookup; anyone else's groups and
        the admin group are resolved in a thread (NSS may block on a network directory)."""
        peer, groups = peer_credentials(sock)
        if peer.uid == 0:
            return peer, AdminGroup(), p.Role.ROOT
        name = self.admin_group()

        def lookup() -> tuple[p.Peer, AdminGroup]:
            return with_groups(peer, groups), AdminGroup.lookup(name)
        peer, admin = await asyncio.to_thread(lookup)
        return peer, admin, self.policy.role_of(peer, admin)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer, admin, role = await self._identify(writer.get_extra_info("socket"))
        if role is None:
            self.stats["denied"] += 1
            self._log_denied(f"denied control connection from uid {peer.uid} gid {peer.gid} "
                             f"pid {peer.pid}")
            await self._refuse(reader, writer, p.encode_error(
                p.E_DENIED, f"permission denied: uid {peer.uid} gid {peer.gid} is not allowed "
                            "on the control socket (root, the admin group of cluster.conf "
                            "and the allow-list only)"))
            return
        if len(self._clients) > self.max_clients:
            self.stats["busy"] += 1
            logger.warning("node %s: control socket busy (%d clients), refusing pid %d",
                           self.node, len(self._clients) - 1, peer.pid)
            await self._refuse(reader, writer, p.encode_error(
                p.E_BUSY, f"too many control clients (limit {self.max_clients}); retry"))
            return
        if not self.is_ready():
            self.stats["not_ready"] += 1
            await self._refuse(reader, writer, p.encode_error(
                p.E_NOT_READY, "clusterd is starting and not ready yet; retry in a moment"))
            return
        self.stats["accepted"] += 1
        while True:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), self.idle_timeout)
            except TimeoutError:
                self.stats["timeouts"] += 1
                await self._reply(writer, p.encode_error(
                    p.E_TIMEOUT, f"no complete request within {self.idle_timeout:g}s"))
                return
            except asyncio.IncompleteReadError:
                return                                   # client closed the connection
            except asyncio.LimitOverrunError:
                await self._refuse(reader, writer, p.encode_error(
                    p.E_TOO_LARGE, f"request exceeds the limit of {p.MAX_REQUEST_BYTES} bytes"))
                return
            await self._reply(writer, await self._dispatch(line, peer, role, admin))

    async def _dispatch(self, line: bytes, peer: p.Peer, role: p.Role,
                        admin: AdminGroup) -> bytes:
        op = "?"
        try:
            request = p.Request.from_line(line)
            op = request.op
            spec, args = self.registry.resolve(request)
            if request.on_behalf is not None:
                if not self.policy.is_proxy(peer):
                    self.stats["denied"] += 1
                    self._log_denied(f"control op {op} with 'as' refused from uid {peer.uid} "
                                     f"pid {peer.pid}: not the web service's user")
                    raise ControlError(p.E_DENIED, (
                        "permission denied: 'as' (acting for a web user) is accepted only "
                        "from the web service's user (clusterd --web-user); you are uid "
                        f"{peer.uid}"))
                peer = replace(peer, on_behalf=request.on_behalf)
                role = request.on_behalf.socket_role
            needed, what = spec.needs(args)
            if not role.includes(needed):
                self.stats["denied"] += 1
                why = await asyncio.to_thread(refusal, what, needed, admin, peer)
                self._log_denied(f"control op refused: {why} (pid {peer.pid})")
                raise ControlError(p.E_DENIED, f"permission denied: {why}")
            if spec.role is p.Role.READ:
                logger.debug("node %s: control op %s from %s pid %d", self.node, op,
                             peer.who, peer.pid)
            else:
                # every change is recorded with who asked (the arguments that name what
                # it acts on only: a proposed cluster.conf may hold fence passwords)
                logger.info("node %s: control op %s%s by %s pid %d", self.node, op,
                            _audit_args(args), peer.who, peer.pid)
            return p.encode_result(await spec.handler(args, peer))
        except ControlError as exc:
            logger.info("node %s: control op %s from %s refused: %s", self.node, op,
                        peer.who, exc.code)
            return p.encode_error(exc.code, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats["errors"] += 1
            logger.exception("node %s: control op %s failed", self.node, op)
            return p.encode_error(p.E_INTERNAL, f"op {op!r} failed: {type(exc).__name__}")

    def _log_denied(self, what: str) -> None:
        """Connections and ops refused share one rate limit: a flood of either cannot
        flood the journal."""
        log_it, suppressed = self._deny_log.allow(asyncio.get_running_loop().time())
        if log_it:
            logger.warning("node %s: %s%s", self.node, what,
                           f" ({suppressed} more denials not logged)" if suppressed else "")


# Arguments an audit line names (what an op acts on); never a config text or a secret.
_AUDIT_ARGS = ("service", "member", "node", "mode", "expected", "follow_domain")


def _audit_args(args: Mapping[str, Any]) -> str:
    shown = [f"{k}={args[k]!r}" for k in _AUDIT_ARGS if k in args]
    return f" ({' '.join(shown)})" if shown else ""


def _socket_gid() -> int:
    try:
        return grp.getgrnam(SOCKET_GROUP).gr_gid
    except KeyError:
        return 0
