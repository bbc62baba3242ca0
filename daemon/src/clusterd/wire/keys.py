"""Packet keys of protocol v3: derived from the authkey with HKDF-SHA256, one AES-256-GCM
key per direction and sender incarnation.

For each loaded authkey (``WireKeys``)::

    prk   = HKDF-Extract(SHA-256, salt = "clusterd wire v3", ikm = authkey)
    key   = HKDF-Expand(SHA-256, prk, 32 bytes, info = "clusterd/3 packet" 0x00 ||
                        cluster_id u16 || sender u32 || receiver u32 || sender incarnation u64)
    nonce = 0x00000000 || seq u64                      (96 bits, network byte order)

The nonce is the sender's packet counter, which starts again at 1 in every incarnation and
is shared by all of the sender's destinations; each key belongs to one (cluster, sender,
receiver, sender incarnation), so a (key, nonce) pair repeats only if a node ran the same
incarnation twice, which the state dir and the peers' reports prevent (docs/security.md,
"Replay and incarnations"). A packet sealed for one node does not open on another, and
another cluster sharing the authkey cannot open this one's packets. The extract step runs
once per loaded key; derived keys are cached (a bounded cache: forged packets naming
random incarnations only cost a derivation each).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

SALT = b"clusterd wire v3"
PACKET_LABEL = b"clusterd/3 packet\0"
DIRECTION = struct.Struct("!HIIQ")  # cluster id, sender, receiver, sender incarnation
NONCE = struct.Struct("!IQ")        # 32 zero bits, then the seq
KEY_BYTES = 32                      # AES-256
TAG_BYTES = 16                      # GCM tag
MAX_CACHED = 1024


def nonce(seq: int) -> bytes:
    return NONCE.pack(0, seq)


class WireKeys:
    """The v3 packet keys derived from one authkey. ``secret`` is the authkey itself (v1
    and v2 packets are HMAC-SHA256 under it); the repr never shows it."""

    __slots__ = ("_cache", "_prk", "secret")

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        # HKDF-Extract is HMAC(salt, ikm) (RFC 5869 2.2); done with hmac so that the
        # cryptography of Debian 12 (38.0, no HKDF.extract) serves as well as PyPI's
        self._prk = hmac.new(SALT, secret, hashlib.sha256).digest()
        self._cache: dict[tuple[int, int, int, int], AESGCM] = {}

    def aead(self, cluster_id: int, sender: int, receiver: int, incarnation: int) -> AESGCM:
        """The cipher of packets from ``sender`` (running ``incarnation``) to ``receiver``."""
        ident = (cluster_id, sender, receiver, incarnation)
        cipher = self._cache.get(ident)
        if cipher is None:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            cipher = self._cache[ident] = AESGCM(packet_key(self._prk, *ident))
        return cipher

    def __repr__(self) -> str:
        return f"WireKeys(<{len(self.secret)}-byte authkey>)"


def packet_key(prk: bytes, cluster_id: int, sender: int, receiver: int,
               incarnation: int) -> bytes:
    info = PACKET_LABEL + DIRECTION.pack(cluster_id, sender, receiver, incarnation)
    return HKDFExpand(hashes.SHA256(), KEY_BYTES, info).derive(prk)


def as_keys(key: bytes | WireKeys) -> WireKeys:
    return key if isinstance(key, WireKeys) else WireKeys(key)
