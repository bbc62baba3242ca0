"""The web service's client of clusterd's control socket (asyncio; one request per
connection, as the daemon serves them).

Requests made for a logged-in user carry ``as`` (the user and their web role); the daemon
grants at most that role to the web service's uid (``clusterd --web-user``). Requests made
for nobody in particular (the shared live-view poller, /metrics with the bearer token)
go without it and get the web service's own access (read, through the haclient group).
Encoding and decoding are clusterd.control.protocol's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clusterd.control import protocol as p
from clusterd.errors import ControlError


@dataclass(frozen=True)
class ActingFor:
    user: str
    role: str        # viewer | admin


def encode(op: str, args: Mapping[str, Any] | None, acting: ActingFor | None) -> bytes:
    """The request line; ``as`` added when acting for a user."""
    return p.encode_request(op, args, None if acting is None
                            else p.OnBehalf(acting.user, acting.role))


def not_running(path: str, why: str) -> ControlError:
    return ControlError(p.E_NOT_RUNNING, f"clusterd is not running on this node (control "
                                         f"socket {path}: {why})")


class AsyncControl:
    def __init__(self, path: str, timeout: float = 75.0) -> None:
        self.path = path
        self.timeout = timeout     # svc.* wait up to 60 s for the outcome by default

    async def call(self, op: str, args: Mapping[str, Any] | None = None,
                   acting: ActingFor | None = None, timeout: float | None = None) -> Any:
        try:
            return await asyncio.wait_for(self._call(op, args, acting),
                                          timeout if timeout is not None else self.timeout)
        except TimeoutError:
            raise ControlError(p.E_TIMEOUT, f"clusterd did not answer {op!r} within "
                                            f"{timeout or self.timeout:g}s ({self.path})") from None

    async def _call(self, op: str, args: Mapping[str, Any] | None,
                    acting: ActingFor | None) -> Any:
        try:
            reader, writer = await asyncio.open_unix_connection(
                self.path, limit=p.MAX_RESPONSE_BYTES + 1)
        except FileNotFoundError:
            raise not_running(self.path, "no such file") from None
        except ConnectionRefusedError:
            raise not_running(self.path, "nobody listening") from None
        except PermissionError:
            raise ControlError(p.E_PERMISSION, f"permission denied on the control socket "
                                               f"{self.path}: the web service's user (uid "
                                               f"{os.geteuid()}) must be in its group "
                                               "(haclient)") from None
        except OSError as exc:
            raise not_running(self.path, exc.strerror or str(exc)) from None
        try:
            writer.write(encode(op, args, acting))
            await writer.drain()
            try:
                line = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                raise ControlError(p.E_PROTOCOL, "clusterd's reply is too large") from None
            if not line.endswith(b"\n"):
                raise ControlError(p.E_PROTOCOL, "clusterd closed the connection before a "
                                                 "complete reply")
            return p.decode_response(line)
        except (BrokenPipeError, ConnectionResetError):
            raise ControlError(p.E_PROTOCOL, "clusterd closed the control connection "
                                             f"({self.path})") from None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
