"""The cluster key (/etc/cluster/authkey): load it only if it is safe to trust.

Refused (``FatalError``, the daemon does not start): a missing or unreadable file, a key
shorter than ``MIN_KEY_BYTES`` (128, as corosync's ``KNET_MIN_KEY_LEN``) or longer than
``MAX_KEY_BYTES``, a file not owned by root, or one whose mode grants any permission to
group or other. New keys are ``DEFAULT_KEY_BYTES`` (256) from the kernel's CSPRNG
(``generate_key``). The key bytes never appear in a repr, log or message; a key is named
by its ``key_id``, a short one-way fingerprint.

Two keys at once, for a hitless rekey (RELIABILITY S5): next to the active key ``PATH``
the daemon also loads ``PATH.next`` and ``PATH.old`` when they exist (``load_keyring``).
It sends with the active key only and accepts packets sealed with any loaded key, so the
cluster changes keys in three rounds without a lost heartbeat:

1. install the new key as ``authkey.next`` on every node, reload (``clusterd key
   reload`` or SIGHUP): every node accepts both, sends with the old;
2. on every node, ``clusterd key activate``: the old key becomes ``authkey.old``, the
   new one ``authkey``, and the daemon reloads: it sends with the new key and still
   accepts the old one from nodes not switched yet;
3. once ``clusterd key status`` shows every peer on the new key, remove ``authkey.old``
   everywhere and reload.

No key id travels on the wire: the receiver tries the key that last opened the sender's
packets first, then the others (an extra decryption only while keys differ), for every
protocol version. Protocol v3 never uses the authkey itself as a cipher key: it derives
one key per direction and sender incarnation from it (``keys.py``, HKDF-SHA256); v1/v2
(older nodes) authenticate with HMAC-SHA256 under it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field

from clusterd.errors import FatalError

DEFAULT_AUTHKEY = "/etc/cluster/authkey"
MIN_KEY_BYTES = 128
DEFAULT_KEY_BYTES = 256
MAX_KEY_BYTES = 4096
NEXT_SUFFIX = ".next"
OLD_SUFFIX = ".old"


def key_id(secret: bytes) -> str:
    """A short public name for a key: 12 hex digits of a domain-separated sha256 (a
    one-way function of a 128+ byte random secret reveals nothing usable)."""
    return hashlib.sha256(b"clusterd authkey id\0" + secret).hexdigest()[:12]


@dataclass(frozen=True)
class AuthKey:
    """The shared cluster key; ``repr`` shows only its length and id."""

    secret: bytes = field(repr=False)
    path: str = ""

    @property
    def key_id(self) -> str:
        return key_id(self.secret)

    def __repr__(self) -> str:
        return f"AuthKey({self.path or '?'}: <{len(self.secret)} bytes, id {self.key_id}>)"


@dataclass(frozen=True)
class KeyRing:
    """The active key (seals everything this node sends) plus the other keys it accepts
    on receive (``authkey.next`` before the switch, ``authkey.old`` after it)."""

    active: AuthKey
    accepted: tuple[AuthKey, ...] = ()

    @property
    def secrets(self) -> tuple[bytes, ...]:
        """Every key, active first (the order the guard tries them in)."""
        return (self.active.secret, *(k.secret for k in self.accepted))

    def describe(self) -> dict[str, object]:
        return {"active": self.active.key_id, "path": self.active.path,
                "accepted": [{"id": k.key_id, "path": k.path} for k in self.accepted]}


def load_authkey(path: str = DEFAULT_AUTHKEY, *, require_root_owner: bool = True) -> AuthKey:
    """Read and check the key file. ``require_root_owner=False`` is for tests run as a
    non-root user only; the daemon always checks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise FatalError(f"authkey {path} is missing: create it with 'clusterd keygen "
                         f"{path}' (or 'dd if=/dev/urandom of={path} bs={DEFAULT_KEY_BYTES} "
                         "count=1' and mode 0400 root:root), the same on every node") from None
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
                         f"{MIN_KEY_BYTES} required: generate a {DEFAULT_KEY_BYTES}-byte key "
                         f"with 'clusterd keygen' and install it on every node (a running "
                         "cluster changes keys without downtime: 'clusterd --help')")
    if len(data) > MAX_KEY_BYTES:
        raise FatalError(f"authkey {path} is longer than {MAX_KEY_BYTES} bytes")
    return AuthKey(data, path)


def load_keyring(path: str = DEFAULT_AUTHKEY, *, require_root_owner: bool = True) -> KeyRing:
    """The active key ``path`` (required) plus ``path.next`` and ``path.old`` when they
    exist, each checked like the active one. A second file holding the active key is
    ignored."""
    active = load_authkey(path, require_root_owner=require_root_owner)
    accepted: list[AuthKey] = []
    for extra in (path + NEXT_SUFFIX, path + OLD_SUFFIX):
        if not os.path.lexists(extra):
            continue
        key = load_authkey(extra, require_root_owner=require_root_owner)
        if key.secret not in (active.secret, *(k.secret for k in accepted)):
            accepted.append(key)
    return KeyRing(active, tuple(accepted))


def generate_key(path: str, size: int = DEFAULT_KEY_BYTES) -> AuthKey:
    """Write a new random key (``os.urandom``: the kernel CSPRNG) to ``path``, mode 0400,
    owned by the caller (root on a node). Never overwrites: FileExistsError."""
    if not MIN_KEY_BYTES <= size <= MAX_KEY_BYTES:
        raise ValueError(f"key size {size} is outside {MIN_KEY_BYTES}..{MAX_KEY_BYTES} bytes")
    secret = os.urandom(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    try:
        os.fchmod(fd, 0o400)
        view = memoryview(secret)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return AuthKey(secret, path)


def activate_next(path: str = DEFAULT_AUTHKEY, *, require_root_owner: bool = True) -> None:
    """Rekey step 2 on this node: ``path`` -> ``path.old``, ``path.next`` -> ``path``.
    Refuses (FatalError) when there is no ``path.next`` or an ``path.old`` is still there
    (finish the previous rekey first). The active file is never missing: ``path`` is
    hard-linked to ``.old`` first, then replaced by ``.next`` in one rename."""
    nxt, old = path + NEXT_SUFFIX, path + OLD_SUFFIX
    if not os.path.lexists(nxt):
        raise FatalError(f"no {nxt}: install the new key there on every node first")
    if os.path.lexists(old):
        raise FatalError(f"{old} still exists: remove it (the previous rekey is over once "
                         "every peer uses the active key) before activating another key")
    load_authkey(nxt, require_root_owner=require_root_owner)  # the same checks as at start: never activate an unusable key
    os.link(path, old)
    os.replace(nxt, path)
