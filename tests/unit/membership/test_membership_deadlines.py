"""Ticking a core only when it says a tick is due (``next_deadline``), as the runtime's
endpoint does, loses nothing: views form, quorum stays backed at every instant of an
idle cluster, a crashed peer is noticed one token after its last heartbeat, and an idle
node ticks about as often as it sends heartbeats (not every token/8)."""

from __future__ import annotations

import heapq
import itertools

from clusterd.events import NodeFailed, ViewInstalled
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.host import ClusterCore

KEY = b"k" * 256
DELAY = 0.001  # one-way packet delay (virtual seconds)


def _cfg(n: int) -> MembershipConfig:
    return MembershipConfig("deadlines", tuple(NodeSpec(f"n{i}", i, 1, f"198.18.0.{i}")
                                               for i in range(1, n + 1)))


class DeadlineNet:
    """Cores on a virtual clock; each core is ticked only at its own next_deadline."""

    def __init__(self, n: int) -> None:
        self.cfg = _cfg(n)
        self.cores = {i: ClusterCore(self.cfg, i, key=KEY, incarnation=100 + i,
                                     config_data=None, validator=lambda data: None)
                      for i in self.cfg.nodeids}
        self.by_addr = {c.addr: i for i, c in self.cores.items()}
        self.dead: set[int] = set()
        self.events: dict[int, list[tuple[float, object]]] = {i: [] for i in self.cores}
        self.ticks = dict.fromkeys(self.cores, 0)
        self.now = 0.0
        self._queue: list = []
        self._seq = itertools.count()
        self._armed: dict[int, float] = {}
        for i in self.cores:
            self._arm(i)

    def _push(self, when: float, kind: str, arg: object) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), kind, arg))

    def _arm(self, i: int) -> None:
        if i in self.dead:
            return
        due = max(self.cores[i].next_deadline(self.now), self.now)
        if self._armed.get(i) != due:
            self._armed[i] = due
            self._push(due, "tick", (i, due))

    def _out(self, i: int, out) -> None:
        self.events[i].extend((self.now, e) for e in out.events)
        for gram in out.datagrams:
            self._push(self.now + DELAY, "packet", (i, self.by_addr[gram.addr], gram.data))
        self._arm(i)

    def run_until(self, end: float, probe=None) -> None:
        while self._queue and self._queue[0][0] <= end:
            self.now, _, kind, arg = heapq.heappop(self._queue)
            if kind == "tick":
                i, due = arg
                if i in self.dead or self._armed.get(i) != due:
                    continue  # superseded by a later arming
                self.ticks[i] += 1
                self._out(i, self.cores[i].tick(self.now))
            else:
                src, dst, data = arg
                if src in self.dead or dst in self.dead:
                    continue
                self._out(dst, self.cores[dst].on_datagram(data, self.cores[src].addr,
                                                           self.now))
            if probe is not None:
                probe(self)
        self.now = end

    def members(self, i: int) -> set[int]:
        view = self.cores[i].membership.view
        return set(view.nodeids) if view else set()


def _formed(net: DeadlineNet, limit: float = 10.0) -> float:
    want = set(net.cores) - net.dead
    t = net.now
    while t < limit:
        t += 0.05
        net.run_until(t)
        if all(net.members(i) == want and net.cores[i].membership.is_quorate(t)
               for i in want):
            return t
    raise AssertionError(f"no common quorate view by {limit}s: "
                         f"{ {i: sorted(net.members(i)) for i in want} }")


def test_idle_cluster_stays_backed_at_every_instant_and_ticks_at_heartbeat_pace() -> None:
    net = DeadlineNet(5)
    start = _formed(net) + 2.0
    net.run_until(start)
    gaps: list[tuple[int, float]] = []

    def probe(n: DeadlineNet) -> None:
        gaps.extend((i, n.now) for i, c in n.cores.items()
                    if not c.membership.is_quorate(n.now))

    ticks0 = dict(net.ticks)
    net.run_until(start + 30.0, probe)
    assert gaps == []
    hb_per_s = 1 / net.cfg.heartbeat_interval
    for i in net.cores:
        per_s = (net.ticks[i] - ticks0[i]) / 30.0
        assert hb_per_s - 0.5 <= per_s <= hb_per_s + 0.5, (i, per_s)


def test_a_crashed_peer_is_noticed_one_token_after_its_last_heartbeat() -> None:
    net = DeadlineNet(3)
    net.run_until(_formed(net) + 1.0)
    heard = net.cores[1].membership.table.peers[3].heard_at
    net.dead.add(3)
    crash = net.now
    net.run_until(crash + 3.0)
    failed = [t for t, e in net.events[1] if isinstance(e, NodeFailed) and e.nodeid == 3]
    views = [t for t, e in net.events[1] if isinstance(e, ViewInstalled) and t > crash]
    assert failed and views, net.events[1][-5:]
    token = net.cfg.token
    # suspicion is due at heard_at + token exactly; the new view needs one round trip
    assert heard + token <= failed[0] <= heard + token + 10 * DELAY
    assert net.members(1) == net.members(2) == {1, 2}
    assert net.cores[1].membership.is_quorate(net.now)


def test_after_a_crash_the_new_view_is_backed_within_round_trips_not_a_heartbeat() -> None:
    """Leases for a new view are granted as soon as a member advertises it (or as soon as
    an older grant stops blocking), not at the next heartbeat round: fencing and recovery
    wait for the new view's backing, announced once by ViewBacked."""
    from clusterd.events import ViewBacked

    for victim in (1, 3):                     # the coordinator, then another member
        net = DeadlineNet(3)
        net.run_until(_formed(net) + 1.0)
        net.dead.add(victim)
        crash = net.now
        net.run_until(crash + 3.0)
        for i in set(net.cores) - {victim}:
            installed = [t for t, e in net.events[i]
                         if isinstance(e, ViewInstalled) and t > crash]
            backed = [(t, e) for t, e in net.events[i]
                      if isinstance(e, ViewBacked) and t > crash]
            assert installed and len(backed) == 1, net.events[i][-6:]
            t_backed, event = backed[0]
            view = net.cores[i].membership.view
            assert event.vid == view.vid and event.votes >= event.quorum
            assert t_backed - installed[0] <= 10 * DELAY, (victim, i, t_backed - installed[0])
            assert net.cores[i].membership.is_quorate(net.now)


def test_a_leave_that_arrives_after_the_view_change_is_reported_as_a_clean_leave() -> None:
    from clusterd.events import NodeLeft

    net = DeadlineNet(3)
    net.run_until(_formed(net) + 1.0)
    inc3 = net.cores[3].membership.inc
    net.dead.add(3)                              # cut off: the others drop it as failed
    net.run_until(net.now + 3.0)
    assert net.members(1) == net.members(2) == {1, 2}
    assert not [e for _, e in net.events[1] if isinstance(e, NodeLeft)]
    net.dead.discard(3)                          # ... then its leave gets through
    net._out(3, net.cores[3].leave("clean shutdown", net.now))   # a leaving core is silent
    net.run_until(net.now + 0.1)
    for i in (1, 2):
        left = [e for _, e in net.events[i] if isinstance(e, NodeLeft)]
        assert [(e.nodeid, e.incarnation) for e in left] == [(3, inc3)], net.events[i][-4:]


def test_a_deadline_that_passed_without_a_tick_stays_due() -> None:
    """A datagram handled after a peer's silence deadline but before the tick for it must
    not move the tick past it (the endpoint re-arms after every datagram)."""
    net = DeadlineNet(3)
    net.run_until(_formed(net) + 1.0)
    m = net.cores[1].membership
    silent_at = m.table.peers[3].heard_at + net.cfg.token
    m.tick(silent_at - 0.01)
    m._next_hb = silent_at + 0.2  # no heartbeat round due in between
    assert m.next_deadline(silent_at - 0.005) <= silent_at
    # a datagram handled just after it, before any tick: it is still named (due at once)
    assert m.next_deadline(silent_at + 0.01) <= silent_at
    m.tick(silent_at + 0.01)
    assert m.next_deadline(silent_at + 0.02) > silent_at + 0.02  # the tick consumed it
