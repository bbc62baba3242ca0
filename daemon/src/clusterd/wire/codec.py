"""Packet framing: a fixed binary header, then the JSON payload sealed by the version's rule.

Layout (network byte order)::

    v1, v2: magic "RHCL" | version u8 | type u8 | cluster_id u16 | sender u32 |
            incarnation u64 | seq u64 | payload_len u32 | payload | HMAC-SHA256 tag (32)
    v3:     the same 32 bytes, then receiver_incarnation u64 |
            AES-256-GCM(payload) | GCM tag (16)

v3 (the current version) encrypts the payload with the key of its direction and sender
incarnation (``keys.py``), nonce = the seq, the 40-byte header as associated data: nothing
of the header can change without the tag failing, and nothing of the payload is readable
without the authkey. ``receiver_incarnation`` is the receiver's incarnation as the sender
knows it (0: not known yet); the guard uses it to refuse packets sealed for an earlier
life of the receiver. v1 and v2 (older nodes during a rolling upgrade) authenticate the
header and the clear payload with HMAC-SHA256 under the authkey itself; v2 added fields to
the heartbeat payload (``messages.py``), v3 changes no payload. Decoding checks length
limits, magic, version and the tag (``hmac.compare_digest`` / GCM) before it looks at the
payload; every failure raises ``WireError``.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from clusterd.errors import WireError
from clusterd.wire.keys import TAG_BYTES as AEAD_TAG_BYTES
from clusterd.wire.keys import WireKeys, as_keys, nonce
from clusterd.wire.messages import Message, decode_payload, encode_payload

MAGIC = b"RHCL"
PROTOCOL_VERSION = 4
MIN_PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1, 2, 3, 4})
SEALED_VERSION = 3                       # the first version that encrypts
HEADER = struct.Struct("!4sBBHIQQI")     # common to every version
RECEIVER = struct.Struct("!Q")           # v3: appended to the common header
HEADER3_SIZE = HEADER.size + RECEIVER.size
TAG_BYTES = 32                           # HMAC-SHA256 (v1, v2)
MAX_PACKET = 64000
MAX_PAYLOAD = MAX_PACKET - HEADER.size - TAG_BYTES  # the smaller of the versions' limits


@dataclass(frozen=True)
class Header:
    version: int
    mtype: int
    cluster_id: int
    sender: int
    incarnation: int
    seq: int
    payload_len: int
    receiver_incarnation: int = 0  # v3 only


@dataclass(frozen=True)
class Packet:
    header: Header
    msg: Message


def _tag(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")  # OpenSSL one-shot: no Python HMAC object


def frame(mtype: int, payload: bytes, *, keys: WireKeys, version: int, cluster_id: int,
          sender: int, incarnation: int, seq: int, receiver: int = 0,
          receiver_incarnation: int = 0) -> bytes:
    """Seal an encoded payload: v3 encrypted for ``receiver``, v1/v2 HMAC-authenticated."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"cannot encode protocol version {version}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = HEADER.pack(MAGIC, version, mtype, cluster_id, sender, incarnation, seq,
                       len(payload))
    if version < SEALED_VERSION:
        return head + payload + _tag(keys.secret, head + payload)
    head += RECEIVER.pack(receiver_incarnation)
    cipher = keys.aead(cluster_id, sender, receiver, incarnation)
    return head + cipher.encrypt(nonce(seq), payload, head)


def encode_packet(msg: Message, *, key: bytes | WireKeys, cluster_id: int, sender: int,
                  incarnation: int, seq: int, version: int = PROTOCOL_VERSION,
                  receiver: int = 0, receiver_incarnation: int = 0) -> bytes:
    mtype, payload = encode_payload(msg, version)
    return frame(mtype, payload, keys=as_keys(key), version=version, cluster_id=cluster_id,
                 sender=sender, incarnation=incarnation, seq=seq, receiver=receiver,
                 receiver_incarnation=receiver_incarnation)


def unpack_header(data: bytes) -> Header:
    """Check length limits, magic and version; return the (not yet authenticated) header."""
    if len(data) > MAX_PACKET:
        raise WireError("oversize")
    if len(data) < HEADER.size:
        raise WireError("truncated")
    magic, version, mtype, cluster_id, sender, inc, seq, plen = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireError("bad magic")
    if version not in SUPPORTED_VERSIONS:
        raise WireError("unsupported version")
    sealed = version >= SEALED_VERSION
    head, tag = (HEADER3_SIZE, AEAD_TAG_BYTES) if sealed else (HEADER.size, TAG_BYTES)
    if len(data) < head + tag:
        raise WireError("truncated")
    if plen != len(data) - head - tag:
        raise WireError("length mismatch")
    receiver_inc = RECEIVER.unpack_from(data, HEADER.size)[0] if sealed else 0
    return Header(version, mtype, cluster_id, sender, inc, seq, plen, receiver_inc)


def verify_tag(data: bytes, key: bytes) -> None:
    body, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
    if not hmac.compare_digest(_tag(key, body), tag):
        raise WireError("bad mac")


def open_payload(data: bytes, header: Header, keys: WireKeys, receiver: int) -> bytes:
    """The authenticated (v3: decrypted) payload of ``data`` sealed for ``receiver``;
    WireError("bad mac") when the tag does not verify under ``keys``."""
    if header.version < SEALED_VERSION:
        verify_tag(data, keys.secret)
        return data[HEADER.size:HEADER.size + header.payload_len]
    cipher = keys.aead(header.cluster_id, header.sender, receiver, header.incarnation)
    try:
        return cipher.decrypt(nonce(header.seq), data[HEADER3_SIZE:], data[:HEADER3_SIZE])
    except InvalidTag:
        raise WireError("bad mac") from None


def decode_packet(data: bytes, key: bytes | WireKeys, *, receiver: int = 0) -> Packet:
    """Full decode without the membership checks (cluster, sender, replay: see guard)."""
    header = unpack_header(data)
    payload = open_payload(data, header, as_keys(key), receiver)
    return Packet(header, decode_payload(header.mtype, payload, header.version))
