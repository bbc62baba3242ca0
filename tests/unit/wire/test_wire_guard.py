"""PacketGuard: allow-list, address check, replay, counting and rate-limited logs (T28)."""

from __future__ import annotations

import logging

import pytest
from clusterd.wire.codec import encode_packet
from clusterd.wire.guard import AUTH_HINT_THRESHOLD, LOG_INTERVAL, PacketGuard
from clusterd.wire.messages import Heartbeat, Leave

KEY = b"k" * 256
ADDR = {1: ("198.18.0.1", 5405), 2: ("198.18.0.2", 5405), 3: ("198.18.0.3", 5405)}
HB = Heartbeat(None, 1, "", (1,), n=1)


def guard(me: int = 1, version: int = 2) -> PacketGuard:
    return PacketGuard(nodeid=me, cluster_id=42, key=KEY, incarnation=100,
                       peers={n: a for n, a in ADDR.items() if n != me}, version=version)


def packet(sender=2, inc=50, seq=1, cluster_id=42, key=KEY, msg=HB, version=2) -> bytes:
    return encode_packet(msg, key=key, cluster_id=cluster_id, sender=sender, incarnation=inc,
                         seq=seq, version=version)


def test_sealed_packets_are_accepted_by_the_peer() -> None:
    a, b = guard(1), guard(2)
    seq, data = a.seal(2, HB)
    got = b.accept(data, ADDR[1], 0.0)
    assert got is not None and got.msg == HB and got.header.seq == seq == 1
    assert b.accepted == 1 and not b.drops


@pytest.mark.parametrize("data,addr,reason", [
    (packet(cluster_id=7), ADDR[2], "foreign cluster"),
    (packet(sender=9), ADDR[2], "unknown sender"),
    (packet(sender=1), ADDR[1], "unknown sender"),
    (packet(), ("198.18.0.3", 5405), "address mismatch"),
    (packet(), ("198.18.0.2", 9999), "address mismatch"),
    (packet(key=b"w" * 256), ADDR[2], "bad mac"),
    (b"garbage", ADDR[2], "truncated"),
])
def test_drops_are_counted_by_reason(data, addr, reason) -> None:
    g = guard()
    assert g.accept(data, addr, 0.0) is None
    assert g.drops == {reason: 1}


def test_replayed_and_stale_packets_are_dropped_without_state_change() -> None:
    g = guard()
    assert g.accept(packet(seq=5), ADDR[2], 0.0) is not None
    assert g.accept(packet(seq=5), ADDR[2], 0.0) is None
    assert g.accept(packet(inc=49, seq=99), ADDR[2], 0.0) is None
    assert g.drops == {"replay": 1, "stale incarnation": 1}
    assert g.accept(packet(seq=4), ADDR[2], 0.0) is not None  # reordered, inside window


def test_malformed_payload_does_not_consume_the_seq() -> None:
    from clusterd.wire import codec
    good = packet(seq=7)
    head = bytearray(good[:codec.HEADER.size])
    head[5] = 99  # unknown message type, correctly authenticated
    body = bytes(head) + good[codec.HEADER.size:-codec.TAG_BYTES]
    g = guard()
    assert g.accept(body + codec._tag(KEY, body), ADDR[2], 0.0) is None
    assert g.drops == {"malformed": 1}
    assert g.accept(good, ADDR[2], 0.0) is not None, "seq 7 was burnt by a dropped packet"


def test_logging_is_rate_limited_with_an_authkey_hint(caplog) -> None:
    g = guard()
    bad = packet(key=b"w" * 256)
    with caplog.at_level(logging.WARNING, logger="clusterd.wire.guard"):
        for i in range(AUTH_HINT_THRESHOLD + 5):
            g.accept(bad, ADDR[2], i * 0.01)
        lines = [r.getMessage() for r in caplog.records]
        assert len([m for m in lines if "bad mac" in m]) == 1
        assert len([m for m in lines if "same /etc/cluster/authkey" in m]) == 1
        g.accept(bad, ADDR[2], LOG_INTERVAL + 1)
        last = caplog.records[-2].getMessage() if "authkey" in caplog.records[-1].getMessage() \
            else caplog.records[-1].getMessage()
    assert "similar lines suppressed" in last and f"{AUTH_HINT_THRESHOLD + 4} similar" in last
    assert KEY.decode() not in caplog.text


def test_speaks_each_peer_the_version_it_speaks() -> None:
    new, old = guard(1, version=2), guard(2, version=1)
    assert new.peer_version(2) == 2
    _, data = new.seal(2, HB)
    assert old.accept(data, ADDR[1], 0.0) is None and old.drops == {"unsupported version": 1}
    _, data = old.seal(1, HB)
    assert new.accept(data, ADDR[2], 0.0) is not None
    assert new.peer_version(2) == 1
    _, data = new.seal(2, Leave("bye"))
    assert old.accept(data, ADDR[1], 0.0).msg == Leave("bye")


def test_new_incarnation_must_increase() -> None:
    g = guard()
    with pytest.raises(ValueError):
        g.set_incarnation(100)
    g.set_incarnation(101)
    assert g.seal(2, HB)[0] == 1


# ------------------------------------------------------------------ two keys (S5 rekey)
NEW = b"n" * 256


def test_a_second_key_is_accepted_on_receive_while_sending_uses_the_active_one() -> None:
    g = guard(1)
    g.set_keys(KEY, (NEW,))
    assert g.accept(packet(seq=1, key=KEY), ADDR[2], 0.0) is not None
    assert g.peer_key(2) == KEY
    assert g.accept(packet(seq=2, key=NEW), ADDR[2], 0.0) is not None
    assert g.peer_key(2) == NEW
    assert g.accept(packet(sender=3, seq=1, key=b"w" * 256), ADDR[3], 0.0) is None
    assert g.drops == {"bad mac": 1} and g.peer_key(3) is None
    _seq, data = g.seal(2, HB)
    old_only, new_only = guard(2), guard(2)
    new_only.set_keys(NEW)
    assert old_only.accept(data, ADDR[1], 0.0) is not None
    assert new_only.accept(data, ADDR[1], 0.0) is None


def test_switching_the_active_key_and_dropping_the_old_one() -> None:
    g = guard(1)
    g.set_keys(NEW, (KEY,))                  # step 2: send new, still accept old
    assert g.accept(packet(seq=1, key=KEY), ADDR[2], 0.0) is not None
    _seq, data = g.seal(2, HB)
    peer = guard(2)
    peer.set_keys(KEY, (NEW,))               # a peer still at step 1 takes it
    assert peer.accept(data, ADDR[1], 0.0) is not None
    g.set_keys(NEW)                          # step 3: the old key is gone
    assert g.peer_key(2) is None
    assert g.accept(packet(seq=2, key=KEY), ADDR[2], 0.0) is None
    assert g.accept(packet(seq=3, key=NEW), ADDR[2], 0.0) is not None
    assert g.drops == {"bad mac": 1}


# ------------------------------------------------------------------ one encoding per broadcast
def test_seal_many_encodes_once_per_version_and_every_peer_accepts_it() -> None:
    g = guard(1)
    g._peer_version[3] = 1                       # node 3 was heard speaking v1
    packets = g.seal_many([2, 3], Leave("bye"))
    assert g.seq == 2                            # one seq per version group
    assert packets[2] != packets[3]
    assert guard(2).accept(packets[2], ADDR[1], 0.0).header.version == 2
    assert guard(3).accept(packets[3], ADDR[1], 0.0).header.version == 1
    g._peer_version.pop(3)                       # node 3 upgraded
    same = g.seal_many([2, 3], Leave("again"))
    assert same[2] is same[3] and g.seq == 3     # identical bytes, one seq


def test_a_small_datagram_with_escapes_cannot_smuggle_an_oversize_app_payload() -> None:
    from clusterd.errors import WireError
    from clusterd.wire.messages import MAX_APP_PAYLOAD, decode_payload

    raw = ('{"c":"x","p":{"a":"' + "\u00e9" * (MAX_APP_PAYLOAD // 4) + '"}}').encode()
    assert len(raw) < MAX_APP_PAYLOAD            # 2 bytes each raw, 6 bytes re-encoded
    with pytest.raises(WireError, match="exceeds"):
        decode_payload(8, raw, 2)
    small = '{"c":"x","p":{"a":"\u00e9"}}'.encode()
    assert decode_payload(8, small, 2).payload == {"a": "\u00e9"}
