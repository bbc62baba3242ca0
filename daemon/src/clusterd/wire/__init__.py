"""Cluster wire protocol: messages, sealed framing (AES-256-GCM; HMAC for older peers),
replay window, packet guard."""

from clusterd.wire.auth import AuthKey, load_authkey
from clusterd.wire.codec import PROTOCOL_VERSION, Packet, decode_packet, encode_packet
from clusterd.wire.guard import PacketGuard
from clusterd.wire.messages import (
    Ack,
    Commit,
    ConfigChunk,
    ConfigRequest,
    Heartbeat,
    Leave,
    Message,
    Propose,
    Send,
    View,
    ViewId,
)

__all__ = [
    "PROTOCOL_VERSION", "Ack", "AuthKey", "Commit", "ConfigChunk", "ConfigRequest", "Heartbeat",
    "Leave", "Message", "Packet", "PacketGuard", "Propose", "Send", "View", "ViewId",
    "decode_packet", "encode_packet", "load_authkey",
]
