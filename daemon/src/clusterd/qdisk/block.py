"""The quorum disk's layout: a header and one status block per node id (1..16).

Every slot is :data:`SLOT` bytes (4 KiB: aligned for O_DIRECT on 512-byte and 4Kn devices).
Slot 0 is the header ``mkqdisk`` writes (magic, format version, label, creation time); slot
``n`` is node ``n``'s status block. A status block is a fixed struct followed by an
HMAC-SHA256 over the cluster name and the struct, keyed from the cluster key: a block
from another cluster, a foreign key or a torn write reads as no block at all, so nothing
on the disk that clusterd did not write can give a node votes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
import time
from dataclasses import dataclass

SLOT = 4096
MAX_NODEID = 16
HEADER_MAGIC = b"RHCQDHDR"
BLOCK_MAGIC = b"RHCQDSK1"
FORMAT = 1
SIZE = SLOT * (MAX_NODEID + 1)   # what the device must hold at least
_HEADER = struct.Struct("!8sH64sQ")
# magic, format, nodeid, incarnation, seq, state, score, max_score, vote_for,
# grant epoch, grant coordinator, grant coordinator incarnation, grant mask, wall ms
_BLOCK = struct.Struct("!8sHHQQBHHHQIQIQ")
_MAC = 32
_KEY_INFO = b"clusterd quorum disk v1\0"


class DiskState(enum.IntEnum):
    NONE = 0        # starting, or its score is too low: claims nothing
    AVAILABLE = 1   # alive and fit: may be granted the disk's votes
    BID = 2         # bids to become master
    MASTER = 3      # the master: grants the disk's votes to its view


@dataclass(frozen=True)
class Header:
    label: str
    created: int   # wall-clock seconds


@dataclass(frozen=True)
class Block:
    nodeid: int
    incarnation: int
    seq: int
    state: DiskState
    score: int = 0
    max_score: int = 0
    vote_for: int = 0
    grant: tuple[int, int, int] | None = None   # the view id granted (epoch, coord, inc)
    mask: int = 0                                # bit n: node n is granted
    wall_ms: int = 0

    def granted(self) -> frozenset[int]:
        return frozenset(n for n in range(1, MAX_NODEID + 1) if self.mask >> n & 1)


def mask_of(nodeids: frozenset[int] | set[int]) -> int:
    return sum(1 << n for n in nodeids if 0 < n <= MAX_NODEID)


def disk_key(secret: bytes, cluster: str) -> bytes:
    """The block-signing key: derived from the cluster key, bound to the cluster name."""
    return hmac.new(secret, _KEY_INFO + cluster.encode(), hashlib.sha256).digest()


def encode_header(label: str, created: int | None = None) -> bytes:
    raw = label.encode()
    if len(raw) > 64:
        raise ValueError(f"label {label!r} is longer than 64 bytes")
    body = _HEADER.pack(HEADER_MAGIC, FORMAT, raw.ljust(64, b"\0"),
                        int(time.time()) if created is None else created)
    return body.ljust(SLOT, b"\0")


def decode_header(data: bytes) -> Header | None:
    """The header in slot 0, or None when there is none (not a quorum disk)."""
    if len(data) < _HEADER.size:
        return None
    magic, fmt, label, created = _HEADER.unpack_from(data)
    if magic != HEADER_MAGIC or fmt != FORMAT:
        return None
    return Header(label.rstrip(b"\0").decode(errors="replace"), created)


def encode_block(block: Block, key: bytes) -> bytes:
    epoch, coord, cinc = block.grant or (0, 0, 0)
    body = _BLOCK.pack(BLOCK_MAGIC, FORMAT, block.nodeid, block.incarnation, block.seq,
                       int(block.state), block.score, block.max_score, block.vote_for,
                       epoch, coord, cinc, block.mask, block.wall_ms)
    mac = hmac.new(key, body, hashlib.sha256).digest()
    return (body + mac).ljust(SLOT, b"\0")


def decode_block(data: bytes, nodeid: int, keys: tuple[bytes, ...]) -> Block | None:
    """Node ``nodeid``'s block, or None: never written, torn, another node's, or signed
    with none of ``keys`` (another cluster, or a key this node does not hold)."""
    size = _BLOCK.size
    if len(data) < size + _MAC:
        return None
    body, mac = data[:size], data[size:size + _MAC]
    if not any(hmac.compare_digest(hmac.new(k, body, hashlib.sha256).digest(), mac)
               for k in keys):
        return None
    (magic, fmt, who, inc, seq, state, score, max_score, vote_for, epoch, coord, cinc,
     mask, wall_ms) = _BLOCK.unpack(body)
    if magic != BLOCK_MAGIC or fmt != FORMAT or who != nodeid or state > DiskState.MASTER:
        return None
    grant = (epoch, coord, cinc) if epoch else None
    return Block(who, inc, seq, DiskState(state), score, max_score, vote_for, grant, mask,
                 wall_ms)
