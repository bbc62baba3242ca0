"""Packet framing: fixed binary header + JSON payload + HMAC-SHA256 tag.

Layout (network byte order)::

    magic "RHCL" | version u8 | type u8 | cluster_id u16 | sender u32 |
    incarnation u64 | seq u64 | payload_len u32 | payload | tag (32 bytes)

The tag is HMAC-SHA256(key, header + payload). ``decode_packet`` checks the length
limits, magic, version and the tag (``hmac.compare_digest``) before it looks at the
payload; every failure raises ``WireError``. Protocol versions 1 and 2 share the header;
v2 added fields to the heartbeat payload (see ``messages.py``). A node accepts both, and
sends each peer the highest version that peer has been seen to speak (``PacketGuard``).
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from clusterd.errors import WireError
from clusterd.wire.messages import Message, decode_payload, encode_payload

MAGIC = b"RHCL"
PROTOCOL_VERSION = 2
MIN_PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1, 2})
HEADER = struct.Struct("!4sBBHIQQI")
TAG_BYTES = 32
MAX_PACKET = 64000
MAX_PAYLOAD = MAX_PACKET - HEADER.size - TAG_BYTES


@dataclass(frozen=True)
class Header:
    version: int
    mtype: int
    cluster_id: int
    sender: int
    incarnation: int
    seq: int
    payload_len: int


@dataclass(frozen=True)
class Packet:
    header: Header
    msg: Message


def _tag(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")  # OpenSSL one-shot: no Python HMAC object


def encode_packet(msg: Message, *, key: bytes, cluster_id: int, sender: int,
                  incarnation: int, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"cannot encode protocol version {version}")
    mtype, payload = encode_payload(msg, version)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = HEADER.pack(MAGIC, version, mtype, cluster_id, sender, incarnation, seq, len(payload))
    return head + payload + _tag(key, head + payload)


def unpack_header(data: bytes) -> Header:
    """Check length limits, magic and version; return the (not yet authenticated) header."""
    if len(data) > MAX_PACKET:
        raise WireError("oversize")
    if len(data) < HEADER.size + TAG_BYTES:
        raise WireError("truncated")
    magic, version, mtype, cluster_id, sender, inc, seq, plen = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireError("bad magic")
    if version not in SUPPORTED_VERSIONS:
        raise WireError("unsupported version")
    if plen != len(data) - HEADER.size - TAG_BYTES:
        raise WireError("length mismatch")
    return Header(version, mtype, cluster_id, sender, inc, seq, plen)


def verify_tag(data: bytes, key: bytes) -> None:
    body, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
    if not hmac.compare_digest(_tag(key, body), tag):
        raise WireError("bad mac")


def decode_packet(data: bytes, key: bytes) -> Packet:
    """Full decode without the membership checks (cluster, sender, replay: see guard)."""
    header = unpack_header(data)
    verify_tag(data, key)
    payload = data[HEADER.size:HEADER.size + header.payload_len]
    return Packet(header, decode_payload(header.mtype, payload, header.version))
