"""Expected votes set by hand (``cman_tool expected -e N``) in the membership core: cman's
checks, the quorum before and after (its floor reset), the spread to the view's members
(answered, repeated, given up on), and the end of the override at the next config change."""

from __future__ import annotations

import logging

import pytest
from clusterd.events import QuorumChanged
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.core import MembershipCore
from clusterd.membership.override import (
    CH_EXPECTED,
    CH_EXPECTED_ACK,
    RESEND_ROUNDS,
    refusal,
)
from clusterd.wire.messages import AppMessage, View, ViewId
from test_membership_core import Bus


def config(n: int, **kw) -> MembershipConfig:
    return MembershipConfig("unit", tuple(NodeSpec(f"n{i}", i, 1, f"198.18.0.{i}")
                                          for i in range(1, n + 1)), **kw)


CFG5 = config(5)


class CfgBus(Bus):
    """The core test's bus with another membership config."""

    def __init__(self, cfg: MembershipConfig, *ids: int) -> None:
        super().__init__(*ids)
        self.cores = {i: MembershipCore(cfg, i, 10 * i) for i in ids}


def view(*members: int, epoch: int = 4) -> View:
    return View(ViewId(epoch, min(members), 10), tuple((m, 10 * m) for m in members))


@pytest.mark.parametrize(("cfg", "members", "expected", "why"), [
    (config(3), (1,), 1, ""),
    (config(3), (1,), 0, "expected votes must be at least 1, not 0"),
    (config(3), (1,), 3, "need a quorum of 2 votes and the members of view 4/1 hold 1"),
    (CFG5, (1, 2), 2, ""),
    (CFG5, (1, 2), 3, ""),           # quorum max(2, 2) = 2: the two can make it
    (CFG5, (1, 2), 4, "need a quorum of 3 votes"),
    (CFG5, (1, 2, 3), 9, "need a quorum of 5 votes"),
    (config(2, two_node=True, expected_votes=1), (1,), 1, ""),
    (config(3), None, 1, "this node is in no view"),
])
def test_cmans_checks(cfg, members, expected, why) -> None:
    got = refusal(cfg, 1, view(*members) if members else None, expected)
    assert (why in got and bool(got) == bool(why)), got


def test_alone_of_three_expected_1_makes_it_quorate_with_quorum_1(caplog) -> None:
    bus = CfgBus(config(3), 1)
    bus.run(3.0)
    core = bus.cores[1]
    assert not core.is_quorate(bus.now) and core.quorum.quorum == 2
    for bad in (0, 3):
        with pytest.raises(ValueError):
            core.set_expected(bad, "uid 0 on n1", bus.now)
    assert core.cfg.expected == 3 and core.expected.current is None   # nothing changed
    with caplog.at_level(logging.INFO, logger="clusterd.membership.core"):
        out = core.set_expected(1, "uid 0 on n1", bus.now)
    (changed,) = [e for e in out.events if isinstance(e, QuorumChanged)]
    assert (changed.quorate, changed.votes, changed.quorum) == (True, 1, 1)
    assert core.is_quorate(bus.now) and core.quorum.expected_votes == 1
    assert core.configured.expected == 3 and not out.sends      # nobody to tell
    assert core.expected.status() == {"expected_votes": 1, "configured": 3,
                                      "origin": "uid 0 on n1", "epoch": core.view.epoch,
                                      "unconfirmed": []}
    line, effect = [r.getMessage() for r in caplog.records]    # the cause, then its effect
    assert effect == "node 1: quorate: 1 votes back view 1/1, quorum 1"
    assert "EXPECTED VOTES SET BY HAND to 1 by uid 0 on n1 (was 3, cluster.conf 3)" in line
    assert "quorum now 1" in line and "RISK" in line and "next config change" in line
    bus.run(3.0)
    assert core.is_quorate(bus.now)


def test_the_floor_is_reset_and_every_member_of_the_view_takes_it() -> None:
    bus = CfgBus(CFG5, 1, 2, 3)
    bus.run(3.0)
    assert all(c.quorum.quorum == 3 and c.is_quorate(bus.now) for c in bus.cores.values())
    del bus.cores[3]                      # n3 fails: {1, 2} keep the floor of 3
    bus.run(3.0)
    one, two = bus.cores[1], bus.cores[2]
    assert one.view.nodeids == {1, 2} and one.quorum.quorum == 3
    assert not one.is_quorate(bus.now) and not two.is_quorate(bus.now)
    bus.pump(1, one.set_expected(2, "uid 0 on n1", bus.now))
    for core in (one, two):
        assert (core.quorum.quorum, core.quorum.expected_votes) == (2, 2)
        assert core.is_quorate(bus.now)
    assert two.expected.current.origin == "uid 0 on n1 (via node 1)"
    assert one.expected.pending == {} and two.expected.pending == {}   # n2 answered
    bus.run(3.0)
    assert one.is_quorate(bus.now) and two.is_quorate(bus.now)


def test_the_next_config_change_ends_it_and_the_minority_is_inquorate_again(caplog) -> None:
    bus = CfgBus(CFG5, 1, 2)
    bus.run(3.0)
    one = bus.cores[1]
    bus.pump(1, one.set_expected(2, "uid 0 on n1", bus.now))
    assert one.is_quorate(bus.now)
    with caplog.at_level(logging.WARNING, logger="clusterd.membership.core"):
        out = one.reconfigure(CFG5, bus.now)   # the same file, a new config_version
    assert one.expected.current is None and one.cfg is CFG5
    assert (one.quorum.expected_votes, one.quorum.quorum) == (5, 3)
    assert not one.is_quorate(bus.now)    # exact at once; the flag after LOSS_GRACE
    assert not [e for e in out.events if isinstance(e, QuorumChanged) and e.quorate]
    assert "expected votes 2 set by hand by uid 0 on n1 end" in caplog.text
    bus.run(3.0)
    assert not one.quorum.quorate


def test_a_lost_message_is_repeated_each_round_and_a_silent_member_given_up(caplog) -> None:
    bus = CfgBus(CFG5, 1, 2, 3)
    bus.run(3.0)
    one = bus.cores[1]
    bus.cut = {(1, 2)}                    # the first send to n2 is lost
    bus.pump(1, one.set_expected(2, "uid 0 on n1", bus.now))
    assert one.expected.pending == {2: RESEND_ROUNDS - 1}       # n3 answered
    bus.cut = set()
    bus.run(0.5)                          # the next heartbeat round repeats it
    assert bus.cores[2].quorum.expected_votes == 2 and one.expected.pending == {}
    bus.cut = {(3, 1)}                    # n3's answers never arrive
    bus.pump(1, one.set_expected(3, "uid 0 on n1", bus.now))
    assert set(one.expected.pending) == {3}
    with caplog.at_level(logging.WARNING, logger="clusterd.membership.core"):
        for _ in range(RESEND_ROUNDS + 1):
            one.expected.resend()
            bus.pump(1, one._out.take())
    assert one.expected.pending == {}
    assert "node 3 did not confirm expected votes 3" in caplog.text


def test_a_message_for_another_view_is_not_taken_and_not_answered() -> None:
    bus = CfgBus(CFG5, 1, 2)
    bus.run(3.0)
    two = bus.cores[2]
    stale = ViewId(two.view.epoch - 1, 1, 10)
    out = two.on_message(1, 10, AppMessage(CH_EXPECTED, {"e": 2, "vid": stale.to_wire(),
                                                         "by": "uid 0 on n1"}), bus.now)
    assert two.expected.current is None
    assert not [s for s in out.sends if isinstance(s.msg, AppMessage)]
    out = two.on_message(1, 10, AppMessage(CH_EXPECTED, {"e": True, "vid": [], "by": 1}),
                         bus.now)
    assert two.expected.current is None and not out.events


def test_a_member_refuses_a_value_its_view_cannot_reach_and_says_so(caplog) -> None:
    bus = CfgBus(CFG5, 1, 2)
    bus.run(3.0)
    two = bus.cores[2]
    with caplog.at_level(logging.WARNING, logger="clusterd.membership.core"):
        out = two.on_message(1, 10, AppMessage(CH_EXPECTED, {
            "e": 5, "vid": two.view.vid.to_wire(), "by": "uid 0 on n1"}), bus.now)
    (ack,) = [s.msg for s in out.sends if isinstance(s.msg, AppMessage)]
    assert ack.channel == CH_EXPECTED_ACK and ack.payload["ok"] is False
    assert "need a quorum of 3 votes" in ack.payload["why"]
    assert two.expected.current is None and "refused here" in caplog.text


def test_refused_while_leaving_and_wait_for_all_is_waived() -> None:
    bus = CfgBus(config(3), 1)
    bus.run(3.0)
    bus.cores[1].leave("stop", bus.now)
    with pytest.raises(ValueError, match="leaving"):
        bus.cores[1].set_expected(1, "uid 0", bus.now)

    two = CfgBus(config(2, two_node=True, expected_votes=1), 1)
    two.run(3.0)
    core = two.cores[1]
    assert not core.is_quorate(two.now) and not core.seen_all     # wait_for_all
    core.set_expected(1, "uid 0 on n1", two.now)
    assert core.is_quorate(two.now)


def test_joined_records_the_epoch_and_time_each_member_last_joined() -> None:
    bus = CfgBus(config(3), 1, 2)
    bus.run(3.0)
    first = dict(bus.cores[1].joined)
    assert set(first) == {1, 2}
    bus.cores[3] = MembershipCore(config(3), 3, 30)
    bus.events[3] = []
    bus.run(3.0)
    joined = bus.cores[1].joined
    assert joined[1] == first[1] and joined[2] == first[2]      # still the same members
    assert joined[3][0] == bus.cores[1].view.epoch > first[2][0]


def test_through_the_packet_guard_the_override_reaches_the_core_not_the_runtime() -> None:
    """Two ClusterCores exchanging sealed datagrams: the override's channel is the
    membership core's own business (never an ``AppReceived`` for the runtime)."""
    from clusterd.membership.host import AppReceived, ClusterCore

    class Parsed:
        version = 1

    hosts = {i: ClusterCore(CFG5, i, key=b"k" * 256, incarnation=10 * i, config_data=b"c",
                            validator=lambda data: Parsed()) for i in (1, 2)}
    by_addr = {h.addr: h for h in hosts.values()}
    seen: list = []

    def deliver(src: ClusterCore, out, now: float) -> None:
        queue = [(src, out)]
        while queue:
            s, o = queue.pop(0)
            seen.extend(o.events)
            for gram in o.datagrams:
                if gram.addr in by_addr:
                    queue.append((by_addr[gram.addr],
                                  by_addr[gram.addr].on_datagram(gram.data, s.addr, now)))

    now = 0.0
    for _ in range(80):
        now += 0.05
        for h in hosts.values():
            deliver(h, h.tick(now), now)
    assert hosts[2].membership.view.nodeids == {1, 2}
    assert not hosts[2].membership.is_quorate(now)
    deliver(hosts[1], hosts[1].set_expected(2, "uid 0 on n1", now), now)
    assert hosts[2].membership.quorum.expected_votes == 2
    assert hosts[2].membership.is_quorate(now) and hosts[1].membership.is_quorate(now)
    assert hosts[1].membership.expected.pending == {}
    assert not [e for e in seen if isinstance(e, AppReceived)]
    assert hosts[2].status(now)["quorum"]["override"]["origin"] == "uid 0 on n1 (via node 1)"


def test_nodes_back_raise_the_quorum_again_and_a_later_minority_is_not_quorate() -> None:
    """The override lowers the floor once; the view growing back raises the quorum as
    always, and it stays there when the others fail again (it never drops on its own)."""
    cfg = config(3)
    bus = CfgBus(cfg, 1)
    bus.run(3.0)
    one = bus.cores[1]
    one.set_expected(1, "uid 0 on n1", bus.now)
    assert one.is_quorate(bus.now) and one.quorum.quorum == 1
    for i in (2, 3):
        bus.cores[i] = MembershipCore(cfg, i, 10 * i)
        bus.events[i] = []
    bus.run(3.0)
    assert one.view.nodeids == {1, 2, 3} and one.quorum.quorum == 2
    assert one.cfg.expected == 1 and bus.cores[2].cfg.expected == 3   # joiners keep theirs
    assert all(c.is_quorate(bus.now) for c in bus.cores.values())
    del bus.cores[2], bus.cores[3]
    bus.run(3.0)
    assert one.view.nodeids == {1} and one.quorum.quorum == 2
    assert not one.is_quorate(bus.now)
