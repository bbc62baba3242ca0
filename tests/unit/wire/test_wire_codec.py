"""Framing, per-type schemas, every protocol version, and the replay window."""

from __future__ import annotations

import pytest
from clusterd.errors import WireError
from clusterd.wire.codec import (
    HEADER,
    HEADER3_SIZE,
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
from clusterd.wire.replay import WINDOW, first_seen, floor

KEY = b"k" * 256
SHA = "ab" * 32
VID = ViewId(7, 1, 99)
MESSAGES = [
    Heartbeat(VID, 3, SHA, (2, 3), n=5, lease_ack=4, held=True),
    Heartbeat(None, 0, "", (), n=1),
    Propose(View(VID, ((1, 99), (2, 5), (3, 8)))),
    Ack(VID), Commit(VID), Leave("daemon stopped"), Leave("restart", hold=True),
    ConfigRequest(3, SHA, 16384),
    ConfigChunk(3, SHA, 0, 5, b"\x00\xffabc"),
]


def pack(msg, version=3):
    return encode_packet(msg, key=KEY, cluster_id=42, sender=2, incarnation=10, seq=1,
                         version=version, receiver=1, receiver_incarnation=77)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg, version) -> None:
    packet = decode_packet(pack(msg, version), KEY, receiver=1)
    assert packet.msg == msg
    assert (packet.header.sender, packet.header.incarnation, packet.header.cluster_id,
            packet.header.version) == (2, 10, 42, version)
    assert packet.header.receiver_incarnation == (77 if version == 3 else 0)


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


def test_a_plain_leave_is_the_bytes_it_always_was_and_a_v2_decoder_drops_a_hold() -> None:
    """``hold`` is sent only when set: a clean leave encodes as before. Decoders before the
    flag (v1/v2 nodes) check the key set exactly, so they drop a restart announcement as
    malformed: to them the node just falls silent (fenced as failed), which is why the
    daemon leaves cleanly instead while such a node is a member (node/shutdown.py)."""
    from clusterd.wire.messages import (
        LEAVE_HOLD_VERSION,
        decode_payload,
        encode_payload,
    )
    assert encode_payload(Leave("bye"), 2)[1] == b'{"r":"bye"}'
    assert encode_payload(Leave("bye", hold=True), 3)[1] == b'{"r":"bye","h":1}'
    assert LEAVE_HOLD_VERSION == 3
    assert decode_payload(5, b'{"r":"bye","h":0}', 3) == Leave("bye", hold=False)

    def v2_decoder(payload: bytes):          # _leave_from before the flag, verbatim
        from clusterd.wire.messages import _check_keys
        return Leave(_check_keys(__import__("json").loads(payload), {"r"}, "leave")["r"])

    with pytest.raises(WireError, match="leave payload keys"):
        v2_decoder(encode_payload(Leave("bye", hold=True), 2)[1])
    for bad in (b'{"r":"bye","h":2}', b'{"r":"bye","h":true}', b'{"r":"bye","x":1}'):
        with pytest.raises(WireError):
            decode_payload(5, bad, 3)


def _flip(offset: int):
    def mutate(data: bytes) -> bytes:
        out = bytearray(data)
        out[offset] ^= 1
        return bytes(out)
    return mutate


BROKEN = [
    (lambda d: d[:10], "truncated"),
    (lambda d: d[:HEADER.size + 8], "truncated"),
    (lambda d: d + b"x" * MAX_PACKET, "oversize"),
    (lambda d: b"XXXX" + d[4:], "bad magic"),
    (lambda d: d[:4] + bytes([9]) + d[5:], "unsupported version"),
    (lambda d: d[:-1], "length mismatch"),
    (_flip(-1), "bad mac"),                       # the tag
    (_flip(HEADER3_SIZE), "bad mac"),             # the payload (v3: first ciphertext byte)
]
HEADER_FIELDS = {"type": 5, "cluster id": 6, "sender": 11, "incarnation": 12, "seq": 20,
                 "receiver incarnation": HEADER.size + 7}


@pytest.mark.parametrize("mutate,reason", BROKEN)
def test_broken_packets_are_refused_before_the_payload(mutate, reason) -> None:
    with pytest.raises(WireError) as exc:
        decode_packet(mutate(pack(MESSAGES[0])), KEY, receiver=1)
    assert exc.value.reason == reason


@pytest.mark.parametrize("offset", HEADER_FIELDS.values(), ids=HEADER_FIELDS.keys())
def test_every_header_field_is_authenticated(offset) -> None:
    with pytest.raises(WireError, match="bad mac"):
        decode_packet(_flip(offset)(pack(MESSAGES[0])), KEY, receiver=1)


def test_wrong_key_or_receiver_is_a_bad_mac() -> None:
    with pytest.raises(WireError, match="bad mac"):
        decode_packet(pack(MESSAGES[0]), b"z" * 32, receiver=1)
    with pytest.raises(WireError, match="bad mac"):
        decode_packet(pack(MESSAGES[0]), KEY, receiver=3)   # sealed for node 1


def test_v3_payload_is_not_readable_and_v2_is() -> None:
    chunk = ConfigChunk(3, SHA, 0, 12, b'passwd="s3"\n')
    for version, readable in ((2, True), (3, False)):
        data = pack(chunk, version)
        assert (b'"cv":3' in data) is readable
        assert (b"cGFzc3dk" in data) is readable            # base64 of 'passwd'


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


def test_replay_window_floor_refuses_earlier_incarnations_only() -> None:
    state = floor(5)
    assert state.check(4, 1000) == "stale incarnation"
    assert state.check(5, 1) is None and state.check(6, 1) is None
    state = state.commit(5, 3)
    assert state.check(5, 3) == "replay" and state.check(5, 2) is None


def test_replay_window_big_jump_resets_the_bitmap() -> None:
    state = first_seen(1, 1).commit(1, 1 + 10 * WINDOW)
    assert state.check(1, 1 + 10 * WINDOW) == "replay"
    assert state.check(1, 10 * WINDOW) is None
