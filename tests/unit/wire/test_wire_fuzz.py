"""Fuzz the packet path.

Outside the seal: random bytes, bit flips, truncations and oversize packets only ever
produce a counted drop (never another exception), and a dropped packet changes no
membership state. Behind the seal: validly sealed packets (the right key, direction,
fresh seq, this node's incarnation) carrying random bytes, random JSON and mutated valid
payloads of every message type are either decoded and handled or dropped as malformed;
nothing escapes ``ClusterCore.on_datagram`` as an exception.
"""

from __future__ import annotations

import itertools
import json
import logging

import pytest
from clusterd.errors import WireError
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.host import ClusterCore
from clusterd.wire.codec import (
    MAX_PACKET,
    PROTOCOL_VERSION,
    decode_packet,
    encode_packet,
    frame,
)
from clusterd.wire.keys import WireKeys
from clusterd.wire.messages import Heartbeat, MsgType, ViewId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEY = b"k" * 256
KEYS = WireKeys(KEY)
SHA = "cd" * 32
ME_INC = 1
CFG = MembershipConfig("fuzz", tuple(NodeSpec(f"n{i}", i, 1, f"198.18.0.{i}")
                                     for i in (1, 2, 3)))
GOOD = encode_packet(Heartbeat(ViewId(3, 1, 7), 2, SHA, (1, 3), n=9, lease_ack=2),
                     key=KEY, cluster_id=CFG.cid, sender=2, incarnation=5, seq=11,
                     receiver=1, receiver_incarnation=ME_INC)
ADDR2 = ("198.18.0.2", CFG.port)

# a valid payload of every type, the starting point of the mutations
VALID = {
    MsgType.HEARTBEAT: {"v": [3, 1, 7], "cv": 2, "cs": SHA, "h": [1, 3], "n": 9, "l": 2,
                        "x": 0, "t": 86_400_123},
    MsgType.PROPOSE: {"v": [4, 2, 5], "m": [[1, ME_INC], [2, 5]]},
    MsgType.ACK: {"v": [4, 1, ME_INC]},
    MsgType.COMMIT: {"v": [4, 2, 5]},
    MsgType.LEAVE: {"r": "bye"},
    MsgType.CONFIG_REQUEST: {"cv": 1, "cs": SHA, "o": 0},
    MsgType.CONFIG_CHUNK: {"cv": 2, "cs": SHA, "o": 0, "t": 4, "d": "YWJjZA=="},
    MsgType.APP: {"c": "svc.report", "p": {"s": {}}},
}
EDGE_INTS = st.sampled_from([-1, 0, 1, 2, 2**31 - 1, 2**31, 2**63, 2**64 - 1, 2**64, 10**30])
JSON = st.recursive(
    st.none() | st.booleans() | EDGE_INTS | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12)
MTYPES = st.sampled_from([*MsgType]) | st.integers(0, 255)
_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _quiet():
    """Thousands of drops are logged by design; keep them out of the output."""
    log = logging.getLogger("clusterd")
    level = log.level
    log.setLevel(logging.CRITICAL)
    yield
    log.setLevel(level)


def _validator(data: bytes):
    class V:
        version = 2
    return V()


def _core() -> ClusterCore:
    return ClusterCore(CFG, 1, key=KEY, incarnation=ME_INC, config_data=b"c",
                       validator=_validator)


def sealed(mtype: int, payload: bytes) -> bytes:
    """A packet from node 2 to node 1 that passes every check before the payload."""
    return frame(mtype, payload, keys=KEYS, version=PROTOCOL_VERSION, cluster_id=CFG.cid,
                 sender=2, incarnation=5, seq=next(_seq), receiver=1,
                 receiver_incarnation=ME_INC)


def _decode_only_wire_errors(data: bytes) -> None:
    try:
        decode_packet(data, KEY, receiver=1)
    except WireError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _decode_only_wire_errors(data)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(GOOD) * 8 - 1), st.integers(0, len(GOOD)))
def test_bit_flips_and_truncations(bit: int, cut: int) -> None:
    flipped = bytearray(GOOD)
    flipped[bit // 8] ^= 1 << (bit % 8)
    try:
        decode_packet(bytes(flipped), KEY, receiver=1)
        raise AssertionError("a flipped bit passed the tag")
    except WireError:
        pass
    if cut < len(GOOD):
        _decode_only_wire_errors(GOOD[:cut])


def test_oversize_is_refused() -> None:
    _decode_only_wire_errors(GOOD + b"\0" * MAX_PACKET)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(0, len(GOOD) * 8 - 1))
def test_dropped_packets_change_no_state(garbage: list[bytes], bit: int) -> None:
    core = _core()
    core.tick(0.0)
    before = (core.membership.view, dict(core.membership.table.peers), core.guard.accepted,
              core.configsync.adverts.copy(), core.guard.seen())
    flipped = bytearray(GOOD)
    flipped[bit // 8] ^= 1 << (bit % 8)
    for data in [*garbage, bytes(flipped), GOOD[:-1]]:
        out = core.on_datagram(data, ADDR2, 0.1)
        assert not out.datagrams and not out.events
    after = (core.membership.view, dict(core.membership.table.peers), core.guard.accepted,
             core.configsync.adverts.copy(), core.guard.seen())
    assert before == after
    assert sum(core.guard.drops.values()) == len(garbage) + 2
    assert core.on_datagram(GOOD, ADDR2, 0.2).events and core.guard.accepted == 1


# ------------------------------------------------------------------ behind the seal
def _feed(core: ClusterCore, mtype: int, payload: bytes) -> None:
    """Either accepted (and handled by the cores) or dropped as malformed: one counted
    outcome, and no exception out of on_datagram."""
    accepted, dropped = core.guard.accepted, sum(core.guard.drops.values())
    core.on_datagram(sealed(mtype, payload), ADDR2, 0.5)
    outcome = (core.guard.accepted - accepted, sum(core.guard.drops.values()) - dropped)
    assert outcome in ((1, 0), (0, 1)), outcome
    assert set(core.guard.drops) <= {"malformed"}, core.guard.drops
    core.tick(0.6)


@st.composite
def mutated(draw) -> tuple[int, bytes]:
    mtype = draw(st.sampled_from([*MsgType]))
    obj = dict(VALID[mtype])
    for key in draw(st.lists(st.sampled_from(sorted(obj)), max_size=3, unique=True)):
        action = draw(st.sampled_from(["replace", "drop"]))
        if action == "drop":
            del obj[key]
        else:
            obj[key] = draw(JSON)
    if draw(st.booleans()):
        obj[draw(st.text(max_size=3))] = draw(JSON)
    return mtype, json.dumps(obj, allow_nan=True).encode()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=6))
def test_mutated_valid_payloads_of_every_type(packets: list[tuple[int, bytes]]) -> None:
    core = _core()
    core.tick(0.0)
    for mtype, payload in packets:
        _feed(core, mtype, payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MTYPES, JSON)
def test_random_json_of_every_type(mtype: int, value) -> None:
    _feed(_core(), mtype, json.dumps(value, allow_nan=True).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MTYPES, st.binary(max_size=512))
def test_random_bytes_of_every_type(mtype: int, payload: bytes) -> None:
    _feed(_core(), mtype, payload)


def test_every_valid_sample_is_accepted() -> None:
    """The mutations start from payloads the decoders take (else they test nothing)."""
    core = _core()
    core.tick(0.0)
    for mtype, obj in VALID.items():
        _feed(core, mtype, json.dumps(obj).encode())
    assert core.guard.accepted == len(VALID) and not core.guard.drops
