"""cluster.conf and its companion files on disk: read with a bound, write atomically.

Atomic write: temp file in the same directory, mode 0640 owned by root (when run as
root), fsync, rename, fsync of the directory. The daemon also keeps its state files
(accepted copy, incarnation, peers, services) this way. Blocking file I/O; the daemon
calls it through ``asyncio.to_thread`` so the loop never waits on the disk.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

CONF_MODE = 0o640


def write_atomic(path: str, data: bytes, mode: int = CONF_MODE) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".cluster.conf.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            if os.geteuid() == 0:
                os.fchown(fh.fileno(), 0, 0)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_limited(path: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes, so that the parser can refuse an oversized file."""
    with open(path, "rb") as fh:
        return fh.read(limit + 1)
