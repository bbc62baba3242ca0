"""The cluster key (/etc/cluster/authkey): load it only if it is safe to trust.

Refused (``FatalError``, the daemon does not start): a missing or unreadable file, a key
shorter than ``MIN_KEY_BYTES``, a file not owned by root, or one whose mode grants any
permission to group or other. The key bytes never appear in a repr, log or message.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from clusterd.errors import FatalError

DEFAULT_AUTHKEY = "/etc/cluster/authkey"
MIN_KEY_BYTES = 32
MAX_KEY_BYTES = 4096


@dataclass(frozen=True)
class AuthKey:
    """The shared HMAC key; ``repr`` shows only its length."""

    secret: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"AuthKey(<{len(self.secret)} bytes>)"


def load_authkey(path: str = DEFAULT_AUTHKEY, *, require_root_owner: bool = True) -> AuthKey:
    """Read and check the key file. ``require_root_owner=False`` is for tests run as a
    non-root user only; the daemon always checks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise FatalError(f"authkey {path} is missing: create it with 'dd if=/dev/urandom "
                         f"of={path} bs=256 count=1' and mode 0400 root:root, the same on "
                         "every node") from None
    except OSError as exc:
        raise FatalError(f"authkey {path} cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FatalError(f"authkey {path} is not a regular file")
        if require_root_owner and st.st_uid != 0:
            raise FatalError(f"authkey {path} is owned by uid {st.st_uid}, not root: "
                             f"chown root:root {path}")
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise FatalError(f"authkey {path} has mode {stat.S_IMODE(st.st_mode):04o}: group "
                             f"or other may access it; chmod 0400 {path}")
        data = os.read(fd, MAX_KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) < MIN_KEY_BYTES:
        raise FatalError(f"authkey {path} holds {len(data)} bytes, fewer than the "
                         f"{MIN_KEY_BYTES} required")
    if len(data) > MAX_KEY_BYTES:
        raise FatalError(f"authkey {path} is longer than {MAX_KEY_BYTES} bytes")
    return AuthKey(data)
