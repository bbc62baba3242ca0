"""PacketGuard: allow-list, address check, replay, freshness, downgrade, persisted floors,
counting and rate-limited logs (T28)."""

from __future__ import annotations

import logging

import pytest
from clusterd.wire.codec import HEADER, encode_packet, frame
from clusterd.wire.guard import (
    AUTH_HINT_THRESHOLD,
    LOG_INTERVAL,
    NOT_FRESH,
    PROBE_EVERY,
    PacketGuard,
)
from clusterd.wire.keys import WireKeys
from clusterd.wire.messages import Heartbeat, Leave

KEY = b"k" * 256
ADDR = {1: ("198.18.0.1", 5405), 2: ("198.18.0.2", 5405), 3: ("198.18.0.3", 5405)}
HB = Heartbeat(None, 1, "", (1,), n=1)
INC = 100  # every test guard runs incarnation 100 and, unless told, knows its peers at 100


def guard(me: int = 1, version: int = 3, *, knows: bool = True,
          seen: dict | None = None) -> PacketGuard:
    peers = {n: a for n, a in ADDR.items() if n != me}
    if seen is None:
        seen = {n: (INC, 1) for n in peers} if knows else {}
    return PacketGuard(nodeid=me, cluster_id=42, key=KEY, incarnation=INC, peers=peers,
                       version=version, seen=seen)


def packet(sender=2, inc=INC, seq=1, cluster_id=42, key=KEY, msg=HB, version=3, receiver=1,
           rinc=INC) -> bytes:
    return encode_packet(msg, key=key, cluster_id=cluster_id, sender=sender, incarnation=inc,
                         seq=seq, version=version, receiver=receiver, receiver_incarnation=rinc)


def test_sealed_packets_are_accepted_by_the_peer() -> None:
    a, b = guard(1), guard(2)
    seq, data = a.seal(2, HB)
    got = b.accept(data, ADDR[1], 0.0)
    assert got is not None and got.msg == HB and got.header.seq == seq == 1
    assert got.header.version == 3 and got.header.receiver_incarnation == INC
    assert b.accepted == 1 and not b.drops


def test_first_contact_costs_at_most_one_packet_each_way() -> None:
    """Nodes that know nothing of each other: a node refuses a first packet that names no
    incarnation of it, but learns the sender's incarnation from it, so its answer is
    accepted. Two nodes that send at once lose one packet each."""
    a, b = guard(1, knows=False), guard(2, knows=False)
    assert b.accept(a.seal(2, HB)[1], ADDR[1], 0.0) is None
    assert a.accept(b.seal(1, HB)[1], ADDR[2], 0.0) is not None
    assert b.accept(a.seal(2, HB)[1], ADDR[1], 0.0) is not None
    assert (a.drops, b.drops) == ({}, {NOT_FRESH: 1})
    assert a.seen() == {2: (INC, 3)} and b.seen() == {1: (INC, 3)}
    a, b = guard(1, knows=False), guard(2, knows=False)
    from_a, from_b = a.seal(2, HB)[1], b.seal(1, HB)[1]
    assert b.accept(from_a, ADDR[1], 0.0) is None and a.accept(from_b, ADDR[2], 0.0) is None
    assert b.accept(a.seal(2, HB)[1], ADDR[1], 0.0) is not None
    assert a.accept(b.seal(1, HB)[1], ADDR[2], 0.0) is not None
    assert a.drops == b.drops == {NOT_FRESH: 1}


@pytest.mark.parametrize("data,addr,reason", [
    (packet(cluster_id=7), ADDR[2], "foreign cluster"),
    (packet(sender=9), ADDR[2], "unknown sender"),
    (packet(sender=1), ADDR[1], "unknown sender"),
    (packet(), ("198.18.0.3", 5405), "address mismatch"),
    (packet(), ("198.18.0.2", 9999), "address mismatch"),
    (packet(key=b"w" * 256), ADDR[2], "bad mac"),
    (packet(receiver=3), ADDR[2], "bad mac"),            # sealed for node 3, sent to 1
    (packet()[:-1], ADDR[2], "length mismatch"),
    (packet()[:40], ADDR[2], "truncated"),
    (b"garbage", ADDR[2], "truncated"),
    (packet(inc=INC - 1), ADDR[2], "stale incarnation"),  # below the persisted floor
    (packet(rinc=INC - 1), ADDR[2], NOT_FRESH),           # sealed for my previous life
    (packet(rinc=0), ADDR[2], NOT_FRESH),
    (packet(rinc=INC + 1), ADDR[2], "for a later incarnation"),
])
def test_drops_are_counted_by_reason_and_change_nothing(data, addr, reason) -> None:
    g = guard()
    assert g.accept(data, addr, 0.0) is None
    assert g.drops == {reason: 1}
    assert g.accepted == 0 and g.take_seen() is None and g.peer_key(2) is None
    assert g.newer_self == ((INC + 1, 2) if reason == "for a later incarnation" else (0, 0))


@pytest.mark.parametrize("offset", [4, 5, 6, 7, 8, 11, 12, 19, 20, 27, 28, 31, 32, 39, 40])
def test_a_forged_header_byte_is_dropped_without_a_trace(offset) -> None:
    g = guard()
    forged = bytearray(packet(seq=7))
    forged[offset] ^= 0x01
    assert g.accept(bytes(forged), ADDR[2], 0.0) is None
    assert sum(g.drops.values()) == 1 and g.accepted == 0 and g.take_seen() is None
    assert g.accept(packet(seq=7), ADDR[2], 0.0) is not None, "the forgery burnt seq 7"


def test_replayed_and_stale_packets_are_dropped_without_state_change() -> None:
    g = guard()
    assert g.accept(packet(seq=5), ADDR[2], 0.0) is not None
    assert g.accept(packet(seq=5), ADDR[2], 0.0) is None
    assert g.accept(packet(inc=INC - 1, seq=99), ADDR[2], 0.0) is None
    assert g.drops == {"replay": 1, "stale incarnation": 1}
    assert g.accept(packet(seq=4), ADDR[2], 0.0) is not None  # reordered, inside window


def test_a_reused_nonce_is_a_replay_and_its_payload_never_surfaces() -> None:
    """A sender that sealed two different messages under one (incarnation, seq) - one
    nonce, the GCM failure mode - gets only the first through."""
    g = guard()
    assert g.accept(packet(seq=9, msg=Leave("first")), ADDR[2], 0.0).msg == Leave("first")
    assert g.accept(packet(seq=9, msg=Leave("second")), ADDR[2], 0.0) is None
    assert g.drops == {"replay": 1}


def test_malformed_payload_does_not_consume_the_seq() -> None:
    bad = frame(99, b"{}", keys=WireKeys(KEY), version=3, cluster_id=42, sender=2,
                incarnation=INC, seq=7, receiver=1, receiver_incarnation=INC)
    g = guard()
    assert g.accept(bad, ADDR[2], 0.0) is None
    assert g.drops == {"malformed": 1}
    assert g.accept(packet(seq=7), ADDR[2], 0.0) is not None, "seq 7 was burnt by a dropped packet"


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
        g.accept(packet(rinc=0), ADDR[2], 100.0)      # normal after a restart: debug only
        assert NOT_FRESH not in caplog.text
    assert KEY.decode() not in caplog.text
    assert all(r.exc_info is None for r in caplog.records), "a drop logged a traceback"


# ------------------------------------------------------------------ versions (rolling upgrade)
def test_speaks_each_peer_the_version_it_speaks() -> None:
    new, old = guard(1, version=3), guard(2, version=2)
    assert new.peer_version(2) == 3 and new.encrypts_to(2)
    _, data = new.seal(2, HB)
    assert old.accept(data, ADDR[1], 0.0) is None and old.drops == {"unsupported version": 1}
    _, data = old.seal(1, HB)
    assert new.accept(data, ADDR[2], 0.0) is not None
    assert new.peer_version(2) == 2 and not new.encrypts_to(2)
    _, data = new.seal(2, Leave("bye"))
    assert old.accept(data, ADDR[1], 0.0).msg == Leave("bye")
    assert b'"r":"bye"' in data                       # v2: authenticated, not encrypted


def _heartbeats(a: PacketGuard, b: PacketGuard, rounds: int) -> None:
    """``rounds`` heartbeats each way, each with its probe when one is due (as the host
    sends them)."""
    for _ in range(rounds):
        for src, dst in ((a, b), (b, a)):
            _, data = src.seal(dst.nodeid, HB)
            dst.accept(data, ADDR[src.nodeid], 0.0)
            probe = src.probe(dst.nodeid, HB)
            if probe is not None:
                dst.accept(probe, ADDR[src.nodeid], 0.0)


def test_two_upgraded_nodes_that_heard_old_ones_speak_v3_again() -> None:
    """The rolling-upgrade deadlock (molecule upgrade): node1 upgraded while node2 was old
    and kept speaking v2 to it; node2's new daemon hears node1 speak v2 and answers in v2.
    Probes (a v3 heartbeat every PROBE_EVERY) get both to v3 within a few rounds."""
    one, two = guard(1), guard(2)
    one._peer_version[2], two._peer_version[1] = 2, 2
    _heartbeats(one, two, PROBE_EVERY - 1)
    assert one.peer_version(2) == 2 and two.peer_version(1) == 2      # no probe yet
    _heartbeats(one, two, 2)
    assert one.peer_version(2) == 3 and two.peer_version(1) == 3
    assert one.encrypts_to(2) and two.encrypts_to(1)
    assert one.probe(2, HB) is None                                     # no more probes


def test_an_old_node_drops_the_probes_and_keeps_its_heartbeats() -> None:
    new, old = guard(1, version=3), guard(2, version=2)
    new._peer_version[2] = 2
    _heartbeats(new, old, 3 * PROBE_EVERY)
    assert old.drops == {"unsupported version": 3}
    assert old.accepted == 3 * PROBE_EVERY and new.peer_version(2) == 2
    assert new.probe(2, Leave("bye")) is None                          # heartbeats only


def test_an_incarnation_heard_speaking_v3_cannot_be_downgraded() -> None:
    """A v2 packet of a peer incarnation that spoke v3 is a replay of what it sent an old
    node (v2 binds no receiver), refused; a new incarnation of that peer (rolled back to
    an older version) may speak v2 again. The record survives a restart (``seen``)."""
    g = guard()
    assert g.accept(packet(seq=1), ADDR[2], 0.0) is not None
    assert g.accept(packet(seq=2, version=2), ADDR[2], 0.0) is None
    assert g.drops == {"downgrade": 1} and g.peer_version(2) == 3
    restarted = guard(seen=g.seen())
    assert restarted.accept(packet(seq=3, version=2), ADDR[2], 0.0) is None
    assert restarted.drops == {"downgrade": 1}
    assert restarted.accept(packet(inc=INC + 1, seq=1, version=2), ADDR[2], 0.0) is not None
    assert restarted.seen()[2] == (INC + 1, 2)


def test_persisted_floors_refuse_earlier_incarnations_and_address_the_known_one() -> None:
    g = guard(seen={2: (500, 2), 3: (600, 3)})
    assert g.accept(packet(inc=499, version=2), ADDR[2], 0.0) is None
    assert g.accept(packet(inc=500, version=2, seq=1), ADDR[2], 0.0) is not None
    assert g.drops == {"stale incarnation": 1}
    _, data = g.seal(3, HB)
    to3 = PacketGuard(nodeid=3, cluster_id=42, key=KEY, incarnation=600,
                      peers={1: ADDR[1]}, seen={1: (INC, 3)})
    assert to3.accept(data, ADDR[1], 0.0).header.receiver_incarnation == 600


def test_seen_changes_only_with_a_later_incarnation_or_version() -> None:
    g = guard(knows=False)
    assert g.accept(packet(seq=1, version=2, rinc=0), ADDR[2], 0.0) is not None
    assert g.take_seen() == {2: (INC, 2)} and g.take_seen() is None
    assert g.accept(packet(seq=2, version=2), ADDR[2], 0.0) is not None
    assert g.take_seen() is None
    assert g.accept(packet(inc=INC + 5, seq=1), ADDR[2], 0.0) is not None
    assert g.take_seen() == {2: (INC + 5, 3)}


def test_new_incarnation_must_increase() -> None:
    g = guard()
    with pytest.raises(ValueError):
        g.set_incarnation(INC)
    g.set_incarnation(INC + 1)
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


def test_a_rekey_works_for_old_protocol_peers_too() -> None:
    g = guard(1)
    g.set_keys(KEY, (NEW,))
    assert g.accept(packet(seq=1, key=NEW, version=2), ADDR[2], 0.0) is not None
    assert g.peer_key(2) == NEW


# ------------------------------------------------------------------ one encoding per broadcast
def test_seal_many_uses_one_seq_and_every_peer_opens_its_own_packet() -> None:
    g = guard(1)
    g._peer_version[3] = 2                       # node 3 was heard speaking v2
    packets = g.seal_many([2, 3], Leave("bye"))
    assert g.seq == 1 and packets[2] != packets[3]
    assert guard(2).accept(packets[2], ADDR[1], 0.0).header.version == 3
    assert guard(3).accept(packets[3], ADDR[1], 0.0).header.version == 2
    g._peer_version.pop(3)                       # node 3 upgraded
    both = g.seal_many([2, 3], Leave("again"))
    assert g.seq == 2 and both[2] != both[3]     # one seq, a key per direction
    assert guard(3).accept(both[3], ADDR[1], 0.0).msg == Leave("again")
    assert guard(2).accept(both[3], ADDR[1], 0.0) is None   # sealed for node 3 only
    old = g.seal_many([], Leave("x"))
    assert old == {}


def test_a_small_datagram_with_escapes_cannot_smuggle_an_oversize_app_payload() -> None:
    from clusterd.errors import WireError
    from clusterd.wire.messages import MAX_APP_PAYLOAD, decode_payload

    raw = ('{"c":"x","p":{"a":"' + "\u00e9" * (MAX_APP_PAYLOAD // 4) + '"}}').encode()
    assert len(raw) < MAX_APP_PAYLOAD            # 2 bytes each raw, 6 bytes re-encoded
    with pytest.raises(WireError, match="exceeds"):
        decode_payload(8, raw, 2)
    small = '{"c":"x","p":{"a":"\u00e9"}}'.encode()
    assert decode_payload(8, small, 2).payload == {"a": "\u00e9"}
    assert HEADER.size == 32
