"""Aggregated quorum leases (membership/leasetree.py) and their messages, hand-driven."""

from __future__ import annotations

import json

import pytest
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.leasetree import LeaseParams, LeaseTree
from clusterd.membership.leasetree_wire import (
    MAX_DIGEST,
    MAX_DURATION_US,
    MAX_MESSAGE_BYTES,
    MAX_NODEID,
    MAX_SEQ,
    MAX_TIME_US,
    MAX_U64,
    MAX_VOTES,
    Certificate,
    Down,
    Grant,
    ViewKey,
    compact,
    message_from_wire,
)
from clusterd.wire.messages import View, ViewId

P = LeaseParams()


def cfg(n: int) -> MembershipConfig:
    return MembershipConfig("t", tuple(NodeSpec(f"n{i}", i, 1, f"10.0.0.{i}")
                                       for i in range(1, n + 1)))


def view(epoch: int, members: list[int]) -> View:
    return View(ViewId(epoch, min(members), 1), tuple((m, 1) for m in sorted(members)))


def wire(msg):
    return message_from_wire(json.loads(compact(msg.to_wire())))


def test_messages_round_trip_and_the_widest_fit_the_bound():
    key = ViewKey(MAX_U64, MAX_NODEID, MAX_U64, MAX_DIGEST)
    widest = [Grant(key, MAX_SEQ, -MAX_TIME_US, MAX_SEQ, MAX_VOTES, MAX_DURATION_US),
              Down(key, MAX_SEQ, -MAX_TIME_US, MAX_SEQ,
                   Certificate(MAX_VOTES, MAX_VOTES, MAX_DURATION_US))]
    for msg in widest:
        assert wire(msg) == msg
        assert len(compact(msg.to_wire())) <= MAX_MESSAGE_BYTES
    assert max(len(compact(m.to_wire())) for m in widest) == MAX_MESSAGE_BYTES


GOOD = {"t": "grant", "v": [1, 1, 1, 5], "n": 1, "s": 0, "e": 1, "w": 1, "d": 10}


@pytest.mark.parametrize(("change", "error"), [
    ({"w": True}, "votes must be an integer, not bool"),
    ({"d": -1}, "validity must be in 0..4294967295, not -1"),
    ({"v": [1, 1, 1]}, "a view key must be"),
    ({"x": 1}, "grant keys"),
    ({"t": "nope"}, "unknown message type 'nope'"),
    ({"e": 0}, "answered round must be in 1.."),
])
def test_from_wire_refuses_anything_malformed(change, error):
    with pytest.raises((TypeError, ValueError), match=error):
        message_from_wire({**GOOD, **change})


def test_a_certificate_below_its_quorum_or_without_a_base_is_refused():
    down = {"t": "down", "v": [1, 1, 1, 5], "n": 1, "s": 0, "g": 1, "c": [2, 3, 10]}
    with pytest.raises(ValueError, match="2 votes is below its quorum 3"):
        message_from_wire(down)
    with pytest.raises(ValueError, match="count from an answered grant"):
        message_from_wire({**down, "g": 0, "c": [3, 2, 10]})


def deliver(nodes, outs, now):
    """Deliver every send in ``outs`` at ``now`` (through the wire), until quiet."""
    pending = [(src, s) for src, out in outs for s in out.sends]
    while pending:
        src, send = pending.pop(0)
        out = nodes[send.dest].on_message(src, wire(send.msg), now)
        pending += [(send.dest, s) for s in out.sends]


def test_three_nodes_certify_a_view_after_their_first_lease_and_keep_it():
    c, v = cfg(3), view(1, [1, 2, 3])
    nodes = {i: LeaseTree(i, c, 0.0) for i in (1, 2, 3)}
    deliver(nodes, [(i, nodes[i].install(v, 0.0)) for i in nodes], 0.0)
    t = 0.0
    while not nodes[3].is_quorate(t):
        t = round(t + P.period, 6)
        deliver(nodes, [(1, nodes[1].tick(t))], t)
        assert t <= P.lease + 2 * P.period, "certified within a lease and two rounds"
    assert t > P.lease, "no vote before a new incarnation's first lease"
    assert nodes[2].reason(t).startswith(f"certificate for view {nodes[1].key}: 3 votes")
    for _ in range(20):                                 # renewed every round
        t = round(t + P.period, 6)
        deliver(nodes, [(1, nodes[1].tick(t))], t)
        assert all(n.is_quorate(t) for n in nodes.values())
    cert = nodes[3].cert
    assert t < cert.expires <= t + P.lease


def test_a_vote_goes_to_one_view_at_a_time():
    c = cfg(3)
    node = LeaseTree(2, c, 0.0)
    node.install(view(1, [1, 2, 3]), 0.0)
    key1 = node.key
    node.on_message(1, Down(key1, 1, 0, 0), 2.0)
    assert node.promise == (key1, 2.0 + P.lease)
    node.install(view(2, [1, 2]), 2.1)
    out = node.on_message(1, Down(node.key, 7, 0, 0), 2.2)
    grant = out.sends[0].msg
    assert grant.votes == 0 and node.promise == (key1, 3.0), "still promised to view 1"
    out = node.on_message(1, Down(node.key, 8, 0, 0), 3.01)
    assert out.sends[0].msg.votes == 1 and node.promise[0] == node.key


def test_a_clock_that_lost_time_shortens_what_it_holds():
    c = cfg(3)
    node = LeaseTree(1, c, 0.0)
    node.install(view(1, [1, 2, 3]), 0.0)
    root_round = max(node.down_sent)
    node.on_message(2, Grant(node.key, 1, 5_000_000, root_round, 1, 1_000_000), 0.01)
    held = node.held[2].expires
    # the same peer's next message reads 0.4 s more ahead of my clock than its first:
    # my clock stood still that long
    node.on_message(2, Grant(node.key, 2, 5_420_000, root_round, 1, 1_000_000), 0.03)
    assert node.lag_total == pytest.approx(0.4)
    assert node.held[2].expires == pytest.approx(held - 0.4)
    assert node.down_sent[root_round] == pytest.approx(-0.4)


def test_grants_from_strangers_other_views_or_claiming_too_much_are_dropped():
    node = LeaseTree(1, cfg(3), 0.0)
    node.install(view(1, [1, 2, 3]), 0.0)
    r = max(node.down_sent)
    for sender, msg in [(9, Grant(node.key, 1, 0, r, 1, 10)),
                        (2, Grant(node.key._replace(digest=1), 1, 0, r, 1, 10)),
                        (2, Grant(node.key, 1, 0, r, 2, 10)),
                        (2, Grant(node.key, 1, 0, r, 1, 10**7)),
                        (2, Grant(node.key, 1, 0, r + 50, 1, 10))]:
        node.on_message(sender, msg, 0.01)
    assert node.held == {} and node.dropped == 5
