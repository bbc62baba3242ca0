"""Framing, per-type schemas, both protocol versions, and the replay window."""

from __future__ import annotations

import pytest
from clusterd.errors import WireError
from clusterd.wire.codec import (
    HEADER,
    MAX_PACKET,
    TAG_BYTES,
    decode_packet,
    encode_packet,
)
from clusterd.wire.messages import (
    Ack,
    Commit,
    ConfigChunk,
    ConfigRequest,
    Heartbeat,
    Leave,
    Propose,
    View,
    ViewId,
)
from clusterd.wire.replay import WINDOW, first_seen

KEY = b"k" * 256
SHA = "ab" * 32
VID = ViewId(7, 1, 99)
MESSAGES = [
    Heartbeat(VID, 3, SHA, (2, 3), n=5, lease_ack=4, held=True),
    Heartbeat(None, 0, "", (), n=1),
    Propose(View(VID, ((1, 99), (2, 5), (3, 8)))),
    Ack(VID), Commit(VID), Leave("daemon stopped"),
    ConfigRequest(3, SHA, 16384),
    ConfigChunk(3, SHA, 0, 5, b"\x00\xffabc"),
]


def pack(msg, version=2):
    return encode_packet(msg, key=KEY, cluster_id=42, sender=2, incarnation=10, seq=1,
                         version=version)


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_in_v2(msg) -> None:
    packet = decode_packet(pack(msg), KEY)
    assert packet.msg == msg
    assert (packet.header.sender, packet.header.incarnation, packet.header.cluster_id) == \
        (2, 10, 42)


def test_v1_heartbeat_has_no_held_flag_and_decodes_with_default() -> None:
    data = pack(MESSAGES[0], version=1)
    assert b'"x"' not in data
    msg = decode_packet(data, KEY).msg
    assert msg == Heartbeat(VID, 3, SHA, (2, 3), n=5, lease_ack=4, held=False)


def test_v2_payload_under_a_v1_header_is_malformed() -> None:
    """The schemas are strict per version: an extra key is not silently ignored."""
    from clusterd.wire import codec
    v2 = pack(MESSAGES[0], version=2)
    head = bytearray(v2[:HEADER.size])
    head[4] = 1
    body = bytes(head) + v2[HEADER.size:-TAG_BYTES]
    forged = body + codec._tag(KEY, body)
    with pytest.raises(WireError, match="heartbeat payload keys"):
        decode_packet(forged, KEY)


@pytest.mark.parametrize("mutate,reason", [
    (lambda d: d[:10], "truncated"),
    (lambda d: d + b"x" * MAX_PACKET, "oversize"),
    (lambda d: b"XXXX" + d[4:], "bad magic"),
    (lambda d: d[:4] + bytes([9]) + d[5:], "unsupported version"),
    (lambda d: d[:-1], "length mismatch"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "bad mac"),
    (lambda d: d[:HEADER.size] + bytes([d[HEADER.size] ^ 1]) + d[HEADER.size + 1:], "bad mac"),
])
def test_broken_packets_are_refused_before_the_payload(mutate, reason) -> None:
    with pytest.raises(WireError) as exc:
        decode_packet(mutate(pack(MESSAGES[0])), KEY)
    assert exc.value.reason == reason


def test_wrong_key_is_a_bad_mac() -> None:
    with pytest.raises(WireError, match="bad mac"):
        decode_packet(pack(MESSAGES[0]), b"z" * 32)


def test_oversize_payload_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        pack(Leave("x" * MAX_PACKET))


# ------------------------------------------------------------------ replay window
def test_replay_window_accepts_each_seq_once_and_tolerates_reordering() -> None:
    state = first_seen(5, 100)
    assert state.check(5, 100) == "replay"
    for seq in (103, 101, 102):
        assert state.check(5, seq) is None
        state = state.commit(5, seq)
        assert state.check(5, seq) == "replay"
    assert state.check(5, 103 - WINDOW) == "replay", "older than the window"
    assert state.check(5, 104) is None


def test_replay_window_incarnations() -> None:
    state = first_seen(5, 100)
    assert state.check(4, 1000) == "stale incarnation"
    assert state.check(6, 1) is None
    state = state.commit(6, 1)
    assert state.check(5, 101) == "stale incarnation"
    assert state.check(6, 1) == "replay"


def test_replay_window_big_jump_resets_the_bitmap() -> None:
    state = first_seen(1, 1).commit(1, 1 + 10 * WINDOW)
    assert state.check(1, 1 + 10 * WINDOW) == "replay"
    assert state.check(1, 10 * WINDOW) is None
