"""The application channel: APP messages encode/decode with strict checks, pass the same
packet guard as every packet, and reach every view member through ClusterCore."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from clusterd.errors import WireError
from clusterd.membership.host import AppReceived
from clusterd.wire.codec import decode_packet, encode_packet
from clusterd.wire.guard import PacketGuard
from clusterd.wire.messages import (
    MAX_APP_PAYLOAD,
    AppMessage,
    MsgType,
    decode_payload,
    encode_payload,
)

sys.path.insert(0, str(Path(__file__).parents[2] / "sim"))
from harness import SimNet  # the simulator lives beside the sim tests

KEY = b"k" * 256
ADDR = {1: ("198.18.0.1", 5405), 2: ("198.18.0.2", 5405)}


def test_roundtrip_in_every_protocol_version() -> None:
    msg = AppMessage("svc.report", {"s": {"service:web": {"st": "started"}}, "r": True})
    for version in (1, 2, 3):
        mtype, body = encode_payload(msg, version)
        assert mtype == MsgType.APP
        assert decode_payload(mtype, body, version) == msg
        data = encode_packet(msg, key=KEY, cluster_id=1, sender=2, incarnation=3, seq=4,
                             version=version, receiver=1)
        assert decode_packet(data, KEY, receiver=1).msg == msg


@pytest.mark.parametrize("body,why", [
    (b'{"c":"svc.report"}', "keys"),
    (b'{"c":"","p":{}}', "channel"),
    (b'{"c":"a b","p":{}}', "channel"),
    (b'{"c":"x","p":[]}', "object"),
    (b'{"c":"x","p":{},"z":1}', "keys"),
    (b'{"c":"x","p":{"a":"' + b"y" * MAX_APP_PAYLOAD + b'"}}', "exceeds"),
])
def test_bad_payloads_are_wire_errors(body: bytes, why: str) -> None:
    with pytest.raises(WireError, match=why):
        decode_payload(MsgType.APP, body, 2)


def test_oversize_payloads_are_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="over the"):
        encode_payload(AppMessage("x", {"a": "y" * MAX_APP_PAYLOAD}), 2)


def test_forged_app_packets_are_dropped_by_the_guard() -> None:
    g = PacketGuard(nodeid=1, cluster_id=1, key=KEY, incarnation=9, peers={2: ADDR[2]})
    msg = AppMessage("svc.cmd", {"ep": 1})
    forged = encode_packet(msg, key=b"w" * 256, cluster_id=1, sender=2, incarnation=3, seq=1,
                           receiver=1, receiver_incarnation=9)
    assert g.accept(forged, ADDR[2], 0.0) is None and g.drops == {"bad mac": 1}
    good = encode_packet(msg, key=KEY, cluster_id=1, sender=2, incarnation=3, seq=1,
                         receiver=1, receiver_incarnation=9)
    assert g.accept(good, ADDR[2], 0.0).msg == msg
    assert g.accept(good, ADDR[2], 0.0) is None and g.drops["replay"] == 1


def test_send_app_reaches_every_member_or_one_node_in_the_simulator() -> None:
    logging.getLogger("clusterd").setLevel(logging.WARNING)
    sim = SimNet(3, 7)
    sim.settle(10)
    t0 = sim.now
    sim._send(1, sim.core(1).send_app(None, "svc.report", {"n": 1}, sim.now))
    sim._send(3, sim.core(3).send_app(2, "svc.req", {"rid": "3.1"}, sim.now))
    sim.run_for(0.5)
    got = {i: sorted(((e.src, e.channel, e.payload) for e in sim.events(i, AppReceived, t0)),
                     key=repr) for i in (1, 2, 3)}
    assert got == {1: [], 2: [(1, "svc.report", {"n": 1}), (3, "svc.req", {"rid": "3.1"})],
                   3: [(1, "svc.report", {"n": 1})]}
    inc1 = sim.core(1).membership.inc
    assert all(e.incarnation == inc1 for e in sim.events(3, AppReceived, t0))
    assert sim.core(1).send_app(1, "x", {}, sim.now).datagrams == ()   # not to itself
