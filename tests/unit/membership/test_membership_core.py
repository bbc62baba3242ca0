"""MembershipCore fed by hand (no bytes, no sockets): the protocol steps and their events."""

from __future__ import annotations

from clusterd.events import (
    MustStopServices,
    NodeJoined,
    NodeLeft,
    QuorumChanged,
    ViewInstalled,
)
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.core import MembershipCore
from clusterd.wire.messages import Ack, Heartbeat, Leave, Propose, View, ViewId

CFG = MembershipConfig("unit", tuple(NodeSpec(f"n{i}", i, 1, f"198.18.0.{i}")
                                     for i in (1, 2, 3)))


class Bus:
    """Delivers every Send at once, in order, unless the (src, dst) link is cut."""

    def __init__(self, *ids: int):
        self.cores = {i: MembershipCore(CFG, i, 10 * i)
                      for i in ids}
        self.events: dict[int, list] = {i: [] for i in ids}
        self.cut: set[tuple[int, int]] = set()
        self.now = 0.0

    def pump(self, src: int, out) -> None:
        queue = [(src, out)]
        while queue:
            s, o = queue.pop(0)
            self.events[s].extend(o.events)
            for send in o.sends:
                if send.dest in self.cores and (s, send.dest) not in self.cut:
                    core = self.cores[send.dest]
                    queue.append((send.dest, core.on_message(s, self.cores[s].inc, send.msg,
                                                             self.now)))

    def run(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += step
            for i, core in self.cores.items():
                self.pump(i, core.tick(self.now))

    def of(self, i: int, kind: type) -> list:
        return [e for e in self.events[i] if isinstance(e, kind)]


def test_alone_a_node_installs_its_own_view_and_is_not_quorate() -> None:
    bus = Bus(1)
    bus.run(0.1)
    (ev,) = bus.of(1, ViewInstalled)
    assert ev.view.nodeids == {1} and ev.reason
    assert not bus.cores[1].is_quorate(bus.now)
    assert bus.cores[1].heartbeat_targets(bus.now) == [2, 3]


def test_three_nodes_agree_on_one_view_and_become_quorate() -> None:
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    views = {i: bus.cores[i].view for i in (1, 2, 3)}
    assert len(set(views.values())) == 1
    view = views[1]
    assert view.coordinator == 1 and view.members == ((1, 10), (2, 20), (3, 30))
    for i in (1, 2, 3):
        assert bus.cores[i].is_quorate(bus.now)
        (q,) = [e for e in bus.of(i, QuorumChanged) if e.quorate]
        assert q.votes >= 2 and q.quorum == 2 and "votes back view" in q.reason
    assert {e.nodeid for e in bus.of(1, NodeJoined)} == {2, 3}


def test_member_acks_only_its_rightful_coordinator() -> None:
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    core2 = bus.cores[2]
    bogus = View(ViewId(99, 3, 30), ((2, 20), (3, 30)))
    out = core2.on_message(3, 30, Propose(bogus), bus.now)
    assert not [s for s in out.sends if isinstance(s.msg, Ack)], "acked a lower-ranked node"
    assert core2.view.coordinator == 1


def test_clean_leave_is_reported_as_left_not_failed() -> None:
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    bus.pump(3, bus.cores[3].leave("daemon stopped", bus.now))
    del bus.cores[3]
    bus.run(1.0)
    for i in (1, 2):
        assert [(e.nodeid, e.clean) for e in bus.of(i, NodeLeft)] == [(3, True)]
        assert bus.cores[i].view.nodeids == {1, 2} and bus.cores[i].is_quorate(bus.now)


def test_a_restart_announcement_is_reported_as_a_leave_that_holds_services() -> None:
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    bus.pump(3, bus.cores[3].leave("restart", bus.now, hold=True))
    del bus.cores[3]
    bus.run(1.0)
    for i in (1, 2):
        (left,) = bus.of(i, NodeLeft)
        assert (left.nodeid, left.clean, left.hold) == (3, True, True)
        assert left.reason == "node 3 restarts keeping its services running"
    (view,) = [e for e in bus.of(1, ViewInstalled) if e.view.nodeids == {1, 2}]
    assert "node 3 restarts keeping its services running" in view.reason   # coordinator's
    # the next incarnation is a new member; a later plain leave of it is no hold
    bus.cores[3] = MembershipCore(CFG, 3, 31)
    bus.events[3] = []
    bus.run(3.0)
    assert (3, 31) in bus.cores[1].view.members
    bus.pump(3, bus.cores[3].leave("stop", bus.now))
    del bus.cores[3]
    bus.run(1.0)
    assert [(e.incarnation, e.hold) for e in bus.of(1, NodeLeft)] == [(30, True), (31, False)]


def test_a_restart_announcement_after_the_view_change_is_a_late_hold() -> None:
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    bus.cut = {(3, 1), (3, 2), (1, 3), (2, 3)}
    bus.run(2.0)                                 # dropped as failed first ...
    assert bus.cores[1].view.nodeids == {1, 2}
    out = bus.cores[1].on_message(3, 30, Leave("restart", hold=True), bus.now)
    (late,) = [e for e in out.events if isinstance(e, NodeLeft)]
    assert (late.nodeid, late.incarnation, late.hold) == (3, 30, True)
    assert late.reason.endswith("(its leave arrived after the view change)")


def test_silent_peer_is_suspected_after_token_and_removed() -> None:
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    t0, seen = bus.now, len(bus.events[1])
    bus.cut = {(3, 1), (3, 2), (1, 3), (2, 3)}
    bus.run(2.0)
    (ev,) = [e for e in bus.events[1][seen:] if isinstance(e, ViewInstalled)]
    assert ev.view.nodeids == {1, 2}
    assert "silent for 1000 ms" in ev.reason
    assert bus.now - t0 > CFG.token


def test_node_dropped_while_alive_stops_services_and_rejoins_as_the_same_incarnation() -> None:
    # issue 11: an incarnation changes only when the daemon restarts, so a member holding
    # a fence intent for it still fences it when it reappears
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    core3 = bus.cores[3]
    old = core3.inc
    newer = ViewId(core3.view.epoch + 5, 1, 10)
    hb = Heartbeat(newer, 0, "", (1, 2, 3), n=bus.cores[1]._hb_n + 1)  # node 1's next
    bus.cut = {(1, 3), (2, 3)}
    bus.run(1.5)  # node 3 loses its leases (it cannot hear anyone)
    out = core3.on_message(1, 10, hb, bus.now)
    kinds = [type(e) for e in out.events]
    assert MustStopServices in kinds
    assert core3.inc == old and core3.view is None
    (stop,) = [e for e in out.events if isinstance(e, MustStopServices)]
    assert "dropped from the view while alive" in stop.reason
    bus.cut = set()
    bus.run(4.0)
    for i in (1, 2, 3):
        assert (3, old) in bus.cores[i].view.members, bus.cores[i].view


def test_reconfigure_removes_a_node_and_recomputes_quorum() -> None:
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    two = MembershipConfig("unit", CFG.nodes[:2])
    for i in (1, 2):
        bus.pump(i, bus.cores[i].reconfigure(two, bus.now))
    bus.run(1.0)
    for i in (1, 2):
        core = bus.cores[i]
        assert core.view.nodeids == {1, 2} and core.quorum.quorum == 2
        assert core.heartbeat_targets(bus.now) == [3 - i]
    assert not bus.cores[1].on_message(3, 30, Heartbeat(None, 0, "", (1,), n=1),
                                       bus.now).events


def test_host_reconfigure_updates_the_allow_list_and_refuses_a_moved_address() -> None:
    import pytest
    from clusterd.membership.host import ClusterCore

    class V:
        version = 1

    host = ClusterCore(CFG, 1, key=b"k" * 256, incarnation=1, config_data=b"c",
                       validator=lambda data: V())
    four = MembershipConfig("unit", (*CFG.nodes, NodeSpec("n4", 4, 1, "198.18.0.4")))
    host.reconfigure(four, 0.0)
    assert set(host.guard.peers) == {2, 3, 4}
    moved = MembershipConfig("unit", (NodeSpec("n1", 1, 1, "198.18.0.77"), *CFG.nodes[1:]))
    with pytest.raises(ValueError, match="restart clusterd"):
        host.reconfigure(moved, 0.0)
    with pytest.raises(KeyError):
        host.reconfigure(MembershipConfig("unit", CFG.nodes[1:]), 0.0)
