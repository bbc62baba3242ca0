"""Fuzz the packet path: random bytes, bit flips, truncations and oversize packets only
ever produce a counted drop (never another exception), and a dropped packet changes no
membership state."""

from __future__ import annotations

import logging

from clusterd.errors import WireError
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.host import ClusterCore
from clusterd.wire.codec import MAX_PACKET, decode_packet, encode_packet
from clusterd.wire.messages import Heartbeat, ViewId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEY = b"k" * 256
SHA = "cd" * 32
CFG = MembershipConfig("fuzz", tuple(NodeSpec(f"n{i}", i, 1, f"198.18.0.{i}")
                                     for i in (1, 2, 3)))
GOOD = encode_packet(Heartbeat(ViewId(3, 1, 7), 2, SHA, (1, 3), n=9, lease_ack=2),
                     key=KEY, cluster_id=CFG.cid, sender=2, incarnation=5, seq=11)
ADDR2 = ("198.18.0.2", CFG.port)
logging.getLogger("clusterd").setLevel(logging.CRITICAL)


def _validator(data: bytes):
    class V:
        version = 1
    return V()


def _core() -> ClusterCore:
    return ClusterCore(CFG, 1, key=KEY, incarnation=1, config_data=b"c", validator=_validator,
                       new_incarnation=lambda c: c + 1)


def _decode_only_wire_errors(data: bytes) -> None:
    try:
        decode_packet(data, KEY)
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
        decode_packet(bytes(flipped), KEY)
        raise AssertionError("a flipped bit passed the MAC")
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
              core.configsync.adverts.copy())
    flipped = bytearray(GOOD)
    flipped[bit // 8] ^= 1 << (bit % 8)
    for data in [*garbage, bytes(flipped), GOOD[:-1]]:
        out = core.on_datagram(data, ADDR2, 0.1)
        assert not out.datagrams and not out.events
    after = (core.membership.view, dict(core.membership.table.peers), core.guard.accepted,
             core.configsync.adverts.copy())
    assert before == after
    assert sum(core.guard.drops.values()) == len(garbage) + 2
    assert core.on_datagram(GOOD, ADDR2, 0.2).events == () and core.guard.accepted == 1
