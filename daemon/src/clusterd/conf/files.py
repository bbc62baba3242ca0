"""cluster.conf and its companion files on disk: read with a bound, write atomically.

Atomic write (:mod:`clusterd.atomicfile`): temp file in the same directory, mode 0640
owned by root (when run as root), fsync, rename, fsync of the directory. The daemon also keeps its state files
(accepted copy, incarnation, peers, services) this way. Blocking file I/O; the daemon
calls it through ``asyncio.to_thread`` so the loop never waits on the disk.
"""

from __future__ import annotations

from clusterd import atomicfile

CONF_MODE = 0o640


def write_atomic(path: str, data: bytes, mode: int = CONF_MODE) -> None:
    """cluster.conf, its accepted copy and the state files: 0640 root unless told."""
    atomicfile.write_atomic(path, data, mode, prefix=".cluster.conf.")


def read_limited(path: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes, so that the parser can refuse an oversized file."""
    with open(path, "rb") as fh:
        return fh.read(limit + 1)
