"""ClusterCore's side of the wire: cluster.conf never leaves in clear, and the events the
runtime persists or acts on (PeersSeen, IncarnationOutdated) come once."""

from __future__ import annotations

import logging

from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.host import ClusterCore, IncarnationOutdated, PeersSeen
from clusterd.wire.codec import decode_packet
from clusterd.wire.guard import PacketGuard
from clusterd.wire.messages import ConfigChunk, ConfigRequest, Heartbeat

KEY = b"k" * 256
CFG = MembershipConfig("host", tuple(NodeSpec(f"n{i}", i, 1, f"198.18.0.{i}")
                                     for i in (1, 2)))
ADDR = CFG.addresses()
REFUSED = ("node 1: not sending cluster.conf to node 2: it speaks protocol version 2, which "
           "does not encrypt (upgrade it; config changes wait until then)")


class _Conf:
    version = 1


def core() -> ClusterCore:
    return ClusterCore(CFG, 1, key=KEY, incarnation=10, config_data=b"passwd=s3cr3t\n",
                       validator=lambda data: _Conf())


def peer(incarnation: int, version: int) -> PacketGuard:
    return PacketGuard(nodeid=2, cluster_id=CFG.cid, key=KEY, incarnation=incarnation,
                       peers={1: ADDR[1]}, version=version, seen={1: (10, 3)})


def test_config_chunks_are_never_sent_in_clear(caplog) -> None:
    c = core()
    run = c.configsync.running
    old = peer(20, 2)
    with caplog.at_level(logging.WARNING, logger="clusterd.membership.host"):
        for t in (1.0, 2.0, 3.0):
            _, data = old.seal(1, ConfigRequest(run.version, run.sha256, 0))
            assert c.on_datagram(data, ADDR[2], t).datagrams == ()
    assert c.clear_refused == 3 and c.status(3.0)["wire"]["clear_refused"] == 3
    assert [r.getMessage() for r in caplog.records] == [REFUSED]
    new = peer(21, 3)                                  # node 2 upgraded (a new life)
    _, data = new.seal(1, ConfigRequest(run.version, run.sha256, 0))
    grams = c.on_datagram(data, ADDR[2], 4.0).datagrams
    assert len(grams) == 1 and b"s3cr3t" not in grams[0].data
    got = decode_packet(grams[0].data, KEY, receiver=2)
    assert isinstance(got.msg, ConfigChunk) and got.msg.data == b"passwd=s3cr3t\n"


def test_peer_records_and_an_outdated_incarnation_are_reported_once() -> None:
    c = core()
    p = peer(20, 3)
    hb = Heartbeat(None, 1, c.configsync.running.sha256, (), n=1)
    first = c.on_datagram(p.seal(1, hb)[1], ADDR[2], 1.0).events
    assert [e for e in first if isinstance(e, PeersSeen)] == [PeersSeen(((2, (20, 3)),))]
    again = c.on_datagram(p.seal(1, hb)[1], ADDR[2], 1.1).events
    assert not [e for e in again if isinstance(e, PeersSeen)]
    ahead = PacketGuard(nodeid=2, cluster_id=CFG.cid, key=KEY, incarnation=20,
                        peers={1: ADDR[1]}, seen={1: (99, 3)})   # it saw a later life of 1
    ahead.seq = p.seq                                    # the same life of node 2 goes on
    events = [c.on_datagram(ahead.seal(1, hb)[1], ADDR[2], t).events for t in (2.0, 2.1)]
    assert events == [(IncarnationOutdated(2, 99, 10),), ()]
    assert c.guard.drops["for a later incarnation"] == 2
