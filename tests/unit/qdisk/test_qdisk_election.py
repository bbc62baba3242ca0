"""Master election and grants on the quorum disk (clusterd.qdisk.election), driven by a
small discrete-event simulation: N ``Election`` objects share a dict standing for the disk
(nodeid -> last block that landed), each runs the runner's cycle (decide, write, read,
publish the grant) on one clock.

The key safety property, checked at every instant a grant changes: never do two nodes
each hold a valid grant (``mine`` and ``until`` > now) for different views from different
masters; else two partitions could each count the disk's votes."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import pytest
from clusterd.conf.qdisk import Heuristic, QdiskConf
from clusterd.membership.quorum import QdiskGrant
from clusterd.qdisk.block import Block, DiskState, mask_of
from clusterd.qdisk.election import Election
from clusterd.wire.messages import View, ViewId

INTERVAL = 1.0


def qconf(*, tko: int = 4, tko_up: int = 1, upgrade_wait: int = 2, master_wait: int = 2,
          master_wins: bool = False, votes: int = 2) -> QdiskConf:
    return QdiskConf(device="/dev/x", label="", interval=int(INTERVAL), tko=tko,
                     tko_up=tko_up, upgrade_wait=upgrade_wait, master_wait=master_wait,
                     votes=votes, min_score=1, master_wins=master_wins,
                     heuristics=(Heuristic("/usr/bin/true", 1),))


CONF = qconf()
FIT, UNFIT = 1, 0


@dataclass
class Timing:
    """How long one cycle's pieces take: all below half an interval (the runner counts
    slower I/O as failed), and cycles never start sooner than one interval apart. Without
    ``rng`` (the scenarios): instant I/O and no delay. ``calm``: a healthy disk and host
    (quick I/O, no stalls)."""

    calm: bool = False

    def write(self, rng: random.Random | None) -> float:
        return 0.0 if rng is None else rng.uniform(0.0, 0.05 if self.calm else 0.45)

    def read(self, rng: random.Random | None) -> float:
        return 0.001 if rng is None else rng.uniform(0.001, 0.05 if self.calm else 0.45)

    def stall(self, rng: random.Random | None) -> float:
        """Extra delay before the next cycle: a busy host, a paused VM."""
        if rng is None or self.calm:
            return 0.0
        r = rng.random()
        return 0.0 if r < 0.7 else rng.uniform(0, 0.3) if r < 0.97 else rng.uniform(0.5, 3)


@dataclass
class SimNode:
    nodeid: int
    inc: int
    election: Election | None
    score: int = FIT
    lost_write: bool = False     # writes do not land (and report failure)
    lost_read: bool = False      # reads fail (no observe)
    slow_write: bool = False     # writes land but report failure (took too long)
    published: QdiskGrant | None = None
    published_at: float = 0.0
    view: View | None = None
    cycles: int = 0
    states: list[DiskState] = field(default_factory=list)


class Violation(AssertionError):
    pass


class Sim:
    def __init__(self, nodeids: tuple[int, ...], conf: QdiskConf = CONF, *,
                 rng: random.Random | None = None, start_offsets: bool = True) -> None:
        self.conf = conf
        self.ids = nodeids
        self.rng = rng
        self.timing = Timing()
        self.disk: dict[int, Block] = {}
        self.now = 0.0
        self.epoch = 0
        self.nodes = {n: SimNode(n, 1, Election(conf, n, 1, nodeids, conf.votes))
                      for n in nodeids}
        self._events: list[tuple[float, int, str, int, object]] = []
        self._seq = 0
        self.history: list[str] = []     # what happened, for a failure message
        self.grant_log: list[tuple[float, int, QdiskGrant]] = []
        for i, n in enumerate(nodeids):
            offset = (rng.uniform(0, 0.9) if rng is not None else 0.01 * i) \
                if start_offsets else 0.0
            self._push(offset, "start", n, self.nodes[n].inc)
        self.partition([set(nodeids)])

    # ------------------------------------------------------------------ world
    def partition(self, groups: list[set[int]]) -> None:
        """A new view per group (as membership would install them)."""
        self.epoch += 1
        for group in groups:
            members = tuple(sorted((n, self.nodes[n].inc) for n in group
                                   if self.nodes[n].election is not None))
            if not members:
                continue
            coord = members[0]
            view = View(ViewId(self.epoch, coord[0], coord[1]), members)
            for n, _ in members:
                self.nodes[n].view = view
        self.history.append(f"{self.now:.3f} views {[sorted(g) for g in groups]}")

    def crash(self, n: int) -> None:
        node = self.nodes[n]
        node.election, node.published, node.view = None, None, None
        self.history.append(f"{self.now:.3f} node {n} crashed")

    def restart(self, n: int) -> None:
        node = self.nodes[n]
        node.inc += 1
        node.election = Election(self.conf, n, node.inc, self.ids, self.conf.votes)
        node.view = None
        self.history.append(f"{self.now:.3f} node {n} restarted (incarnation {node.inc})")
        self._push(self.now + 0.001, "start", n, node.inc)

    # ------------------------------------------------------------------ events
    def _push(self, at: float, kind: str, n: int, inc: int, data: object = None) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, self._seq, kind, n, (inc, data)))

    def run_until(self, t: float) -> None:
        while self._events and self._events[0][0] <= t:
            at, _, kind, n, (inc, data) = heapq.heappop(self._events)
            self.now = at
            node = self.nodes[n]
            if node.election is None or node.inc != inc:
                continue   # crashed (or restarted since): this cycle never happens
            getattr(self, f"_{kind}")(node, data)
        self.now = t

    def run_cycles(self, cycles: int) -> None:
        self.run_until(self.now + cycles * INTERVAL)

    def _start(self, node: SimNode, _data: object) -> None:
        e = node.election
        started = self.now
        block = e.next_block(started, node.view, node.score)
        node.cycles += 1
        node.states.append(e.state)
        self._push(started + self.timing.write(self.rng), "landed", node.nodeid, node.inc,
                   (started, block))

    def _landed(self, node: SimNode, data: object) -> None:
        started, block = data
        lands = not node.lost_write
        if lands:
            self.disk[node.nodeid] = block
        node.election.wrote(block, started, lands and not node.slow_write)
        read_start = self.now
        self._push(read_start + self.timing.read(self.rng), "read", node.nodeid, node.inc,
                   (started, read_start, {m: self.disk.get(m) for m in self.ids
                                          if m != node.nodeid}))

    def _read(self, node: SimNode, data: object) -> None:
        started, read_start, snapshot = data
        e = node.election
        if not node.lost_read:
            e.observe(read_start, snapshot)
        e.take_notes()
        self._publish(node, e.grant(self.now))
        self.check_safety()
        nxt = max(started + INTERVAL, self.now) + self.timing.stall(self.rng)
        self._push(nxt, "start", node.nodeid, node.inc)

    def _publish(self, node: SimNode, grant: QdiskGrant | None) -> None:
        if grant != node.published:
            node.published, node.published_at = grant, self.now
            if grant is not None:
                self.grant_log.append((self.now, node.nodeid, grant))

    # ------------------------------------------------------------------ answers
    def valid_grants(self, *, live: bool = False) -> dict[int, QdiskGrant]:
        """Grants held now: as published by each node's last cycle (what the membership
        core counts), or, with ``live``, as ``Election.grant`` answers at this instant."""
        out = {}
        for n, node in self.nodes.items():
            if node.election is None:
                continue
            g = node.election.grant(self.now) if live else node.published
            if g is not None and g.mine and g.until > self.now:
                out[n] = g
        return out

    def check_safety(self) -> None:
        for live in (False, True):
            grants = self.valid_grants(live=live)
            for a, ga in grants.items():
                for b, gb in grants.items():
                    if a < b and ga.master != gb.master and ga.vid != gb.vid:
                        raise Violation(
                            f"at {self.now:.3f} ({'live' if live else 'published'}): node {a} "
                            f"holds {ga} and node {b} holds {gb}\n" + self.trace())

    def masters(self) -> list[int]:
        return [n for n, node in self.nodes.items()
                if node.election is not None and node.election.state is DiskState.MASTER]

    def state(self, n: int) -> DiskState:
        return self.nodes[n].election.state

    def trace(self) -> str:
        states = {n: (node.election.state.name if node.election else "down")
                  for n, node in self.nodes.items()}
        return "\n".join(self.history[-30:] + [f"states now: {states}"])


def first_cycle_with_master(sim: Sim, n: int, cycles: int) -> int | None:
    """Run ``cycles`` cycles; the first (1-based) after which node ``n`` is master."""
    for c in range(1, cycles + 1):
        sim.run_cycles(1)
        if sim.state(n) is DiskState.MASTER:
            return c
    return None


# ====================================================================== steady state
@pytest.mark.parametrize("nodeids", [(1, 2), (1, 2, 3), (2, 5, 7, 9), (1, 2, 3, 4, 5, 16)])
def test_one_master_emerges_the_lowest_node_id(nodeids):
    sim = Sim(nodeids)
    sim.run_cycles(12)
    assert sim.masters() == [min(nodeids)], sim.trace()
    master = sim.nodes[min(nodeids)].election
    for n in nodeids:
        e = sim.nodes[n].election
        assert e.master(sim.now) == min(nodeids)
        if n != min(nodeids):
            assert e.state is DiskState.AVAILABLE and e.vote_for == min(nodeids)
            assert e.online() == frozenset(nodeids) - {n}
    assert master.online() == frozenset(nodeids) - {min(nodeids)}


def test_the_master_is_elected_within_a_few_cycles_and_stays():
    sim = Sim((1, 2, 3))
    c = first_cycle_with_master(sim, 1, 10)
    assert c is not None and c <= 2 + CONF.upgrade_wait + CONF.master_wait
    for _ in range(30):
        sim.run_cycles(1)
        assert sim.masters() == [1]


def test_the_lowest_fit_node_is_master():
    sim = Sim((1, 2, 3))
    sim.nodes[1].score = UNFIT
    sim.run_cycles(12)
    assert sim.masters() == [2]
    assert sim.state(1) is DiskState.NONE


def test_the_grant_names_the_masters_view_and_the_fit_online_nodes():
    sim = Sim((1, 2, 3, 4))
    sim.nodes[4].score = UNFIT
    sim.run_cycles(12)
    view = sim.nodes[1].view
    written = sim.nodes[1].election.written
    assert written.state is DiskState.MASTER
    assert written.grant == tuple(view.vid)
    assert written.granted() == {1, 2, 3}          # 4 is online but not fit
    assert written.mask == mask_of({1, 2, 3})
    now = sim.now
    for n in (1, 2, 3):
        g = sim.nodes[n].election.grant(now)
        assert g is not None and g.mine and g.until > now, n
        assert (g.master, g.vid, g.votes) == (1, view.vid, CONF.votes)
    g4 = sim.nodes[4].election.grant(now)
    assert g4 is not None and not g4.mine and g4.vid == view.vid


def test_a_grant_vouches_for_a_bounded_time_after_the_write_or_read_it_is_on():
    sim = Sim((1, 2))
    sim.run_cycles(10)
    vouch = Election.VOUCH * INTERVAL
    e1, e2 = sim.nodes[1].election, sim.nodes[2].election
    assert e1.grant(sim.now).until == e1.wrote_at + vouch
    assert e2.grant(sim.now).until == e2.read_at + vouch
    # nothing more happens: both lapse
    for node in sim.nodes.values():
        node.lost_write = node.lost_read = True
    sim.run_cycles(vouch + 1)
    assert sim.valid_grants() == {} and sim.valid_grants(live=True) == {}


def test_only_nodes_in_the_masters_view_are_granted():
    """Two network partitions on one disk: the master grants its own view only."""
    sim = Sim((1, 2, 3))
    sim.partition([{1, 2}, {3}])
    sim.run_cycles(12)
    assert sim.masters() == [1]
    vid12 = sim.nodes[1].view.vid
    assert sim.nodes[1].election.written.granted() == {1, 2}
    g3 = sim.nodes[3].election.grant(sim.now)
    assert g3 is not None and g3.vid == vid12 and not g3.mine
    assert set(sim.valid_grants()) == {1, 2}


def test_a_master_outside_any_view_grants_nothing():
    sim = Sim((1, 2))
    for node in sim.nodes.values():
        node.view = None
    sim.run_cycles(10)
    assert sim.masters() == [1]
    assert sim.nodes[1].election.written.grant is None
    assert sim.valid_grants() == {}


def test_the_grant_follows_the_masters_view():
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.partition([{1, 2, 3}])
    new = sim.nodes[1].view.vid
    sim.run_cycles(3)
    assert {g.vid for g in sim.valid_grants().values()} == {new}


# ====================================================================== score
def test_a_follower_below_min_score_is_not_granted_and_comes_back():
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.nodes[3].score = UNFIT
    sim.run_cycles(3)
    assert sim.state(3) is DiskState.NONE
    assert sim.nodes[1].election.written.granted() == {1, 2}
    g3 = sim.nodes[3].election.grant(sim.now)
    assert g3 is None or not g3.mine
    assert 3 not in sim.valid_grants()
    sim.nodes[3].score = FIT
    sim.run_cycles(4)
    assert sim.masters() == [1]
    assert sim.nodes[1].election.written.granted() == {1, 2, 3}
    assert 3 in sim.valid_grants()


def test_a_master_below_min_score_steps_down_and_the_next_is_elected():
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.nodes[1].score = UNFIT
    sim.run_cycles(1)
    assert sim.state(1) is DiskState.NONE
    sim.run_until(sim.now + 0.5)    # every node read its NONE block: nobody counts it
    assert sim.valid_grants() == {} and sim.valid_grants(live=True) == {}
    c = first_cycle_with_master(sim, 2, 10)
    assert c is not None and c <= 1 + CONF.upgrade_wait + CONF.master_wait + 2, sim.trace()
    assert sim.masters() == [2]
    assert sim.nodes[2].election.written.granted() == {2, 3}
    # 1 fit again: 2 stays master (no pre-emption), 1 is granted again
    sim.nodes[1].score = FIT
    sim.run_cycles(5)
    assert sim.masters() == [2]
    assert set(sim.valid_grants()) == {1, 2, 3}


def test_a_bidder_below_min_score_withdraws():
    sim = Sim((1, 2))
    for _ in range(10):
        sim.run_cycles(1)
        if sim.state(1) is DiskState.BID:
            break
    assert sim.state(1) is DiskState.BID, sim.trace()
    sim.nodes[1].score = UNFIT
    sim.run_cycles(1)
    assert sim.state(1) is DiskState.NONE
    sim.run_cycles(10)
    assert sim.masters() == [2]


def test_nobody_fit_nobody_master():
    sim = Sim((1, 2, 3))
    for node in sim.nodes.values():
        node.score = UNFIT
    sim.run_cycles(20)
    assert sim.masters() == [] and sim.valid_grants() == {}
    assert all(sim.state(n) is DiskState.NONE for n in (1, 2, 3))


# ====================================================================== disk lost
@pytest.mark.parametrize("reads_too", [False, True])
def test_a_new_master_only_after_tko_misses_and_master_wait(reads_too):
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    assert sim.masters() == [1]
    last_write = sim.nodes[1].election.wrote_at
    sim.nodes[1].lost_write = True
    sim.nodes[1].lost_read = reads_too
    lost_at = sim.now
    c = None
    for i in range(1, 20):
        sim.run_cycles(1)
        if sim.state(2) is DiskState.MASTER:
            c = i
            break
        assert sim.nodes[2].election.master(sim.now) in (1, None)
    assert c is not None, sim.trace()
    assert c >= CONF.tko + CONF.master_wait, sim.trace()
    assert c <= CONF.tko + CONF.master_wait + 3, sim.trace()
    # the old master's grant ran out long before: it vouched from its last write only
    assert last_write + Election.VOUCH * INTERVAL < lost_at + c * INTERVAL
    assert 1 not in sim.valid_grants()
    sim.run_cycles(3)
    assert set(sim.valid_grants()) == {2, 3}
    assert sim.nodes[2].election.written.granted() == {2, 3}


def test_a_master_whose_writes_stopped_landing_steps_down():
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.nodes[1].lost_write = True
    sim.run_cycles(4)
    assert sim.state(1) is not DiskState.MASTER
    assert sim.nodes[1].election.grant(sim.now) is None or \
        not sim.nodes[1].election.grant(sim.now).mine


def test_a_master_back_on_the_disk_does_not_take_over_beside_the_new_one():
    """The master loses the disk in a network partition ({1} | {2, 3}); {2, 3} elect 2.
    When 1's writes land again it must not resume as master: for a cycle both masters'
    grants would be valid, each for its own partition's view (a split brain)."""
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.partition([{1}, {2, 3}])
    sim.nodes[1].lost_write = True
    sim.run_cycles(CONF.tko + CONF.master_wait + 6)
    assert sim.masters() in ([2], [1, 2])
    assert sim.state(2) is DiskState.MASTER
    sim.nodes[1].lost_write = False
    sim.run_cycles(10)                     # check_safety runs on every grant published
    assert sim.masters() == [2]
    assert set(sim.valid_grants()) == {2, 3}


def test_a_read_after_a_long_gap_does_not_revive_a_dead_masters_grant():
    """Partition {1, 3} | {2}; master 1. Node 3's disk path fails, then node 1's, after
    one more write of 1 that 3 never saw; {2} elects 2. When 3 reads again, 1's block has
    changed since 3's previous read, long ago: that proves nothing about now, so 3 must
    not count 1's grant for {1, 3} (3 and 1 are still in that view: membership would
    count the disk's votes there, beside 2's)."""
    sim = Sim((1, 2, 3))
    sim.partition([{1, 3}, {2}])
    sim.run_cycles(10)
    assert sim.masters() == [1]
    sim.nodes[3].lost_write = sim.nodes[3].lost_read = True
    sim.run_cycles(1)
    sim.nodes[1].lost_write = sim.nodes[1].lost_read = True
    sim.run_cycles(CONF.tko + CONF.master_wait + 6)
    assert sim.state(2) is DiskState.MASTER, sim.trace()
    sim.nodes[3].lost_write = sim.nodes[3].lost_read = False
    sim.run_cycles(6)                      # check_safety runs on every grant published
    g3 = sim.nodes[3].election.grant(sim.now)
    assert g3 is None or g3.master != 1 or g3.until <= sim.now


def test_a_lost_follower_goes_offline_and_loses_its_grant():
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.nodes[3].lost_write = True
    sim.run_cycles(CONF.tko + 2)
    assert 3 not in sim.nodes[1].election.online()
    assert sim.nodes[1].election.written.granted() == {1, 2}
    assert 3 not in sim.valid_grants()
    sim.nodes[3].lost_write = False
    sim.run_cycles(CONF.tko_up + 3)
    assert 3 in sim.nodes[1].election.online()
    assert set(sim.valid_grants()) == {1, 2, 3}
    assert sim.masters() == [1]


def test_a_lost_node_without_its_own_writes_is_not_granted_even_if_listed():
    """A node whose own writes stop landing stops counting the grant at once (mine needs
    its own recent write), before the master notices it is offline."""
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.nodes[3].lost_write = True
    sim.run_cycles(2)
    assert 3 in sim.nodes[1].election.written.granted()     # not offline yet
    g = sim.nodes[3].election.grant(sim.now)
    assert g is not None and not g.mine


# ====================================================================== restarts
def test_a_stale_master_block_blocks_the_election_for_tko_cycles():
    """Node 1 was master and died (its MASTER block, with a grant, stays on the disk).
    Nodes 2 and 3 start: nobody is elected while that block may still be live (until it
    has been unchanged for tko reads), and the stale grant gives nobody votes."""
    old_vid = ViewId(3, 1, 1)
    sim = Sim((1, 2, 3))
    sim.crash(1)
    sim.disk[1] = Block(1, 1, 999, DiskState.MASTER, 1, 1, 1, tuple(old_vid),
                        mask_of({1, 2, 3}), 0)
    first = None
    for c in range(1, 25):
        sim.run_cycles(1)
        assert sim.valid_grants() == {} or all(g.master != 1 for g in
                                               sim.valid_grants().values())
        for n in (2, 3):
            g = sim.nodes[n].election.grant(sim.now)
            assert g is None or g.vid != old_vid, sim.trace()
        if sim.masters():
            first = c
            break
    assert first is not None, sim.trace()
    assert sim.masters() == [2]
    assert first > CONF.tko, sim.trace()
    assert first <= CONF.tko + CONF.master_wait + 3, sim.trace()
    sim.run_cycles(3)
    assert set(sim.valid_grants()) == {2, 3}


def test_a_stale_master_block_alone_never_elects_anyone_early():
    """Same, without any votes to wait for: a single survivor."""
    sim = Sim((1, 2))
    sim.crash(1)
    sim.disk[1] = Block(1, 1, 5, DiskState.MASTER, 1, 1, 1, (3, 1, 1), mask_of({1, 2}), 0)
    c = first_cycle_with_master(sim, 2, 20)
    assert c is not None and CONF.tko < c <= CONF.tko + CONF.master_wait + 3, sim.trace()


def test_a_restarted_follower_rejoins_without_disturbing_the_master():
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.crash(3)
    sim.run_cycles(2)
    sim.restart(3)
    sim.partition([{1, 2, 3}])
    for _ in range(10):
        sim.run_cycles(1)
        assert sim.masters() == [1]
    assert set(sim.valid_grants()) == {1, 2, 3}


def test_a_restarted_master_hands_over_and_no_grant_overlaps():
    sim = Sim((1, 2, 3))
    sim.run_cycles(10)
    sim.crash(1)
    sim.restart(1)          # at once, with a new incarnation: its block says AVAILABLE
    sim.partition([{1, 2, 3}])
    sim.run_cycles(15)
    assert len(sim.masters()) == 1


def test_a_lower_node_joining_late_does_not_preempt_the_master():
    sim = Sim((1, 2, 3))
    sim.crash(1)
    sim.run_cycles(12)
    assert sim.masters() == [2]
    sim.restart(1)
    sim.partition([{1, 2, 3}])
    sim.run_cycles(10)
    assert sim.masters() == [2]
    assert set(sim.valid_grants()) == {1, 2, 3}


# ====================================================================== random schedules
# fixed seeds (200 kept from the first runs, 2115 found two masters at startup) and
# new ones every run: a failure names its seed in the test id
SEEDS = [*range(200), 2115, *random.SystemRandom().sample(range(200, 1 << 40), 100)]


def random_conf(rng: random.Random) -> QdiskConf:
    tko = rng.choice([2, 3, 4, 6])
    tko_up = rng.choice([1, 2])
    master_wait = rng.choice([m for m in (2, 3) if m > tko_up] or [tko_up + 1])
    return qconf(tko=tko, tko_up=tko_up, upgrade_wait=rng.choice([1, 2]),
                 master_wait=master_wait, master_wins=rng.random() < 0.2)


def chaos(sim: Sim, rng: random.Random, cycles: int) -> None:
    ids = sim.ids
    for _ in range(cycles):
        r = rng.random()
        n = rng.choice(ids)
        node = sim.nodes[n]
        if r < 0.06:
            node.lost_write = not node.lost_write
            node.lost_read = node.lost_write and rng.random() < 0.5
            sim.history.append(f"{sim.now:.3f} node {n} disk "
                               f"{'lost' if node.lost_write else 'back'}"
                               f"{' (reads too)' if node.lost_read else ''}")
        elif r < 0.09:
            node.slow_write = not node.slow_write
            sim.history.append(f"{sim.now:.3f} node {n} slow writes {node.slow_write}")
        elif r < 0.15:
            node.score = UNFIT if node.score == FIT else FIT
            sim.history.append(f"{sim.now:.3f} node {n} score {node.score}")
        elif r < 0.22:
            shuffled = list(ids)
            rng.shuffle(shuffled)
            cut = rng.randint(1, len(ids))
            groups = [set(shuffled[:cut]), set(shuffled[cut:])]
            sim.partition([g for g in groups if g])
        elif r < 0.25:
            if node.election is None:
                sim.restart(n)
            elif rng.random() < 0.5:
                sim.crash(n)
            else:
                sim.crash(n)
                sim.restart(n)
        sim.run_until(sim.now + rng.choice([0.3, 0.5, 1.0, 1.0, 2.0]))


def heal(sim: Sim) -> None:
    for n, node in sim.nodes.items():
        if node.election is None:
            sim.restart(n)
        node.lost_write = node.lost_read = node.slow_write = False
        node.score = FIT
    sim.timing.calm = True
    sim.history.append(f"{sim.now:.3f} healed")
    sim.run_cycles(2)
    sim.partition([set(sim.ids)])


@pytest.mark.parametrize("seed", SEEDS)
def test_never_two_masters_grants_for_two_views(seed):
    rng = random.Random(seed)
    ids = tuple(sorted(rng.sample(range(1, 17), rng.randint(2, 5))))
    conf = random_conf(rng)
    sim = Sim(ids, conf, rng=rng)
    try:
        sim.run_cycles(rng.randint(0, 12))
        chaos(sim, rng, 120)
        # liveness: once every node is healthy, fit and in one view, exactly one master,
        # and every node holds its grant
        heal(sim)
        sim.run_cycles(conf.tko + conf.master_wait + conf.upgrade_wait + 12)
        assert len(sim.masters()) == 1, "no single master after healing\n" + sim.trace()
        (master,) = sim.masters()
        vid = sim.nodes[master].view.vid
        assert {n: (g.master, g.vid) for n, g in sim.valid_grants().items()} == \
            {n: (master, vid) for n in ids}, sim.trace()
    except AssertionError as exc:
        raise AssertionError(f"seed {seed} ({ids}, {conf}): {exc}") from None


def test_the_safety_check_catches_two_masters():
    """The checker itself: two masters granting two views at once is reported."""
    sim = Sim((1, 2))
    now = sim.now
    for n in (1, 2):
        sim.nodes[n].published = QdiskGrant(n, ViewId(n, n, 1), 1, True, now + 5)
    with pytest.raises(Violation, match="node 1 holds"):
        sim.check_safety()
