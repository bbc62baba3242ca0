"""Control socket client used by every CLI (blocking: CLIs are short-lived).

Connection failures become :class:`ControlError` with stable codes and sentences a human
can act on: ``not_running`` ("clusterd is not running on this node (no socket at ...)")
and ``permission_denied`` ("permission denied: the control socket is root-only").
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from clusterd.control import protocol as p
from clusterd.control.access import socket_path
from clusterd.errors import ControlError

# Exit codes shared by the CLIs (clustat, clusterd conf ...).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_DENIED = 4
EXIT_REFUSED = 5          # the daemon refused the request (invalid config, stale ...)

_EXIT_BY_CODE = {p.E_NOT_RUNNING: EXIT_NOT_RUNNING, p.E_PERMISSION: EXIT_DENIED,
                 p.E_DENIED: EXIT_DENIED, p.E_BAD_ARGS: EXIT_USAGE,
                 p.E_UNKNOWN_OP: EXIT_USAGE, p.E_INVALID_CONFIG: EXIT_REFUSED,
                 p.E_STALE_VERSION: EXIT_REFUSED, p.E_CONFLICT: EXIT_REFUSED,
                 p.E_NO_QUORUM: EXIT_REFUSED}


def exit_code_for(error: ControlError) -> int:
    return _EXIT_BY_CODE.get(error.code, EXIT_FAILURE)


class ControlClient:
    """One request per call, on a fresh connection."""

    def __init__(self, path: str | None = None, timeout: float = 30.0) -> None:
        self.path = socket_path(path)
        self.timeout = timeout

    def call(self, op: str, args: Mapping[str, Any] | None = None,
             on_behalf: p.OnBehalf | None = None) -> Any:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError):
                raise ControlError(p.E_NOT_RUNNING, "clusterd is not running on this node "
                                                    f"(no socket at {self.path})") from None
            except PermissionError:
                raise ControlError(p.E_PERMISSION, "permission denied: the control socket "
                                                   f"is root-only ({self.path})") from None
            sock.sendall(p.encode_request(op, args, on_behalf))
            return p.decode_response(self._read_line(sock))
        except TimeoutError:
            raise ControlError(p.E_TIMEOUT, f"clusterd did not answer {op!r} within "
                                            f"{self.timeout:g}s ({self.path})") from None
        except (BrokenPipeError, ConnectionResetError):
            raise ControlError(p.E_PROTOCOL, "clusterd closed the control connection "
                                             f"({self.path})") from None
        finally:
            sock.close()

    @staticmethod
    def _read_line(sock: socket.socket) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if chunk.endswith(b"\n") or size > p.MAX_RESPONSE_BYTES:
                break
        data = b"".join(chunks)
        if not data.endswith(b"\n"):
            raise ControlError(p.E_PROTOCOL, "clusterd closed the connection before a "
                                             "complete reply")
        return data
