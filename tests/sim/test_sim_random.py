"""Random fault schedules: a fast run, a slow run of ten thousand, and the shrinker.

Every run draws new seeds; a failure prints its seed, the invariant it broke, the command
that replays it (``RHC_SIM_SEED=<n> .venv/bin/pytest tests/sim -k <test>``) and the
shortest subset of its faults that still breaks it (``RHC_SIM_KEEP=i,j`` with the seed
replays that subset).
"""

from __future__ import annotations

import logging
import os

import pytest
from harness import SimNet
from schedules import draw, random_schedule, seeds, violation_of
from shrink import ddmin, shrink_schedule
from volume import run

FAST = 150        # new seeds per run, faults=4, horizon 10 s
EDITS = 60        # new seeds per run with offline edits
SLOW = 10_000     # new seeds per run, the volume mix (schedules.MIX), on every core


@pytest.fixture(autouse=True)
def _quiet():
    """Thousands of schedules log a lot of expected drops; keep the output readable."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_random_schedules_fast() -> None:
    for seed in seeds(FAST):
        random_schedule(seed, faults=4, horizon=10.0, test="random_schedules_fast")


def test_config_edit_schedules_new_seeds() -> None:
    """Random schedules where stopped nodes' files are edited (higher versions, same version
    with other content, invalid), with the other faults: nothing edited offline is ever
    installed or accepted, no accepted config is lost, and a quorate cluster converges on
    one accepted config. New seeds every run (printed on failure with the replay command)."""
    for seed in seeds(EDITS):
        random_schedule(seed, faults=6, horizon=12.0, test="config_edit_schedules",
                        edits=0.35)


@pytest.mark.slow
def test_random_schedules_slow() -> None:
    """Ten thousand schedules of the volume mix (most short, a fifth long), new seeds,
    on every core (a dead worker fails the test with BrokenProcessPool, not a hang)."""
    todo = seeds(SLOW)
    tally = run(seeds=todo, test="random_schedules_slow")
    print(tally.summary())
    assert not tally.failures, (f"{len(tally.failures)} of {tally.schedules} schedules "
                                f"failed; first:\n{tally.failures[0]}")


# ---------------------------------------------------------------- replay and shrinking
def test_a_seed_replays_exactly() -> None:
    """The same seed gives the same run, event for event (what RHC_SIM_SEED relies on);
    a schedule is a pure function of its seed (nothing in it is shared between runs)."""
    for seed in (11, 12, 13):
        sched = draw(seed, faults=8, horizon=8.0)
        first = violation_of(sched, None)
        assert first == violation_of(sched, None)
        assert draw(seed, faults=8, horizon=8.0) == sched
    if not os.environ.get("RHC_SIM_SEED"):
        assert seeds(3) != seeds(3), "each run draws new seeds"


def _after(first: str, then: str):
    """A planted, test-only invariant: broken once a ``then`` fault follows a ``first``."""
    def check(sim: SimNet) -> str | None:
        kinds = [kind for _t, kind, _node in sim.applied]
        if first in kinds and then in kinds[kinds.index(first) + 1:]:
            return f"a {then} fault came after a {first} fault"
        return None
    return check


PLANTED = ("planted: freeze after partition", _after("partition", "freeze"))


def _planted_seed() -> int:
    """The first seed whose 12-fault plan breaks the planted invariant (and only it)."""
    for seed in range(500):
        sched = draw(seed, faults=12, horizon=10.0)
        kinds = [f.kind for f in sched.plan]
        if kinds.count("partition") + kinds.count("freeze") < 4:
            continue  # want decoys: several partitions/freezes, not just the one pair
        if violation_of(sched, None, [PLANTED])[0] == PLANTED[0]:
            return seed
    raise AssertionError("no seed in 0..499 breaks the planted invariant")


def test_shrinker_finds_the_minimal_trace() -> None:
    """A planted invariant (a freeze after a partition breaks it) in a 12-fault schedule:
    the shrinker keeps exactly one partition and one freeze, in that order, and the
    result is minimal: without either of them (or with nothing) the invariant holds."""
    sched = draw(_planted_seed(), faults=12, horizon=10.0)
    result = shrink_schedule(sched, PLANTED[0], range(len(sched.plan)), [PLANTED])
    kept = [sched.plan[k] for k in result.keep]
    assert [f.kind for f in kept] == ["partition", "freeze"], [str(f) for f in kept]
    assert result.trace[-1] == f"-> invariant {PLANTED[0]!r} broken"
    assert any("partition" in line for line in result.trace)
    assert any(" freeze " in line for line in result.trace)
    for k in [*result.keep, None]:
        sub = [x for x in result.keep if x != k] if k is not None else []
        assert violation_of(sched, sub, [PLANTED])[0] != PLANTED[0], sub


def test_a_failure_reports_seed_invariant_replay_and_shrunk_trace(monkeypatch) -> None:
    """What a failing schedule prints: its seed, the invariant's name, the replay command
    and the shrunk subset (which, replayed through RHC_SIM_KEEP, fails the same way)."""
    seed = _planted_seed()
    with pytest.raises(AssertionError) as err:
        random_schedule(seed, faults=12, horizon=10.0, test="shrinker",
                        invariants=[PLANTED])
    text = str(err.value)
    assert f"SEED={seed} invariant={PLANTED[0]}" in text
    assert f"RHC_SIM_SEED={seed} .venv/bin/pytest tests/sim -k shrinker" in text
    keep = text.split("RHC_SIM_KEEP=")[1].split()[0]
    assert len(keep.split(",")) == 2
    monkeypatch.setenv("RHC_SIM_SEED", str(seed))
    monkeypatch.setenv("RHC_SIM_KEEP", keep)
    with pytest.raises(AssertionError, match="shrunk from 2 to 2 faults"):
        random_schedule(seed, faults=12, horizon=10.0, test="shrinker",
                        invariants=[PLANTED])


def test_ddmin_is_one_minimal() -> None:
    """ddmin on a set test: fails iff it holds 3 and (5 or 8) and 9."""
    def fails(sub: list[int]) -> bool:
        return 3 in sub and (5 in sub or 8 in sub) and 9 in sub
    got, runs = ddmin(list(range(12)), fails)
    assert sorted(got) in ([3, 5, 9], [3, 8, 9]) and runs < 60
    assert ddmin(list(range(4)), lambda sub: True)[0] == []


# ---------------------------------------------------------------- the new faults, by hand
def test_two_node_split_both_quorate_each_must_fence() -> None:
    """two_node: a split leaves both nodes quorate alone (quorum 1; fencing decides), which
    the invariant allows because each has the other outside its view; healed, they
    rejoin one view."""
    sim = SimNet(2, 5, two_node=True)
    sim.settle(10)
    sim.partition({1}, {2})
    sim.run_for(5)
    views = {i: sim.core(i).membership.view for i in (1, 2)}
    assert all(sim.core(i).membership.is_quorate(sim.node_now(i)) for i in (1, 2))
    assert views[1].nodeids == {1} and views[2].nodeids == {2}
    sim.heal()
    sim.settle(15)


def test_each_node_reads_its_own_clock() -> None:
    """Offsets and drift: every ``now`` a core gets is its node's clock; a cluster whose
    clocks are a day apart and drift 500 ppm forms one view and converges."""
    from harness import NodeClock
    clocks = {1: NodeClock(0.0, 1.0), 2: NodeClock(86_000.0, 1.0005), 3: NodeClock(5.0, 0.9995)}
    sim = SimNet(3, 9, clocks=clocks)
    sim.settle(10)
    sim.run_for(3)
    assert abs(sim.node_now(2) - (86_000.0 + 1.0005 * sim.now)) < 1e-9
    sim.crash(3)
    sim.run_for(5)
    sim.start(3)
    sim.settle(10)


def test_state_dir_loss_with_the_wall_clock_behind_restarts_above() -> None:
    """A node that lost its state dir and rebooted with its wall clock a minute behind
    starts below its last incarnation; peers that saw the later one make it restart
    above it, and the cluster converges."""
    sim = SimNet(3, 21)
    sim.settle(10)
    sim.run_for(70)
    sim.crash(2)            # a restart at t=80: its incarnation is its wall clock then
    sim.run_for(0.1)
    sim.start(2)
    sim.settle(10)
    before = sim.nodes[2].incarnation
    assert before > 70_000
    sim.lose_state_dir(2, reboot=True, wall_behind=60.0)
    assert sim.nodes[2].incarnation < before
    sim.settle(20)
    assert sim.nodes[2].incarnation > before


def test_receiver_restart_drops_what_is_in_flight() -> None:
    """A receiver restart loses its buffer and what is in flight; nothing else changes."""
    sim = SimNet(3, 4, delay=(0.05, 0.1))
    sim.settle(10)
    sim.restart_receiver(1, 0.5)
    sim.run_for(0.4)
    sim.check_safety()
    sim.settle(10)


# ---------------------------------------------------------------- found by the new faults
def test_found_stale_lease_after_clock_stopping_freeze() -> None:
    """Seed 978211305018 (volume mix, freezes drawn with clock_stops=0.7), shrunk to one
    fault: node 3 of 3 is frozen at 0.992 for 2.24 s with its clock stopped. Nodes 1 and 2
    install view 3/1 at 1.992 and are quorate; at 3.232 node 3 resumes and was quorate in
    view 2/1 on the support leases of nodes 1 and 2 (0.88 s left on its stopped clock):
    two quorate groups ('one-quorate-group'). Heartbeats now carry their send time: the
    ones node 3 reads first on resume show it lost 2.24 s, and its leases are gone."""
    random_schedule(978211305018, faults=None, horizon=None, keep=[0], shrink=False,
                    clock_stops=0.7, test="found_stale_lease")


def test_found_lease_retaken_whole_after_clock_stopping_freeze() -> None:
    """Seed 871070050318 (volume mix, clock_stops=0.7), one fault: node 2 of 3 frozen at
    5.116 for 0.78 s with its clock stopped. On resume it read that it lost the time and
    shortened its leases, then retook them from the acks in the same packets, counted from
    the send time of its heartbeat before the freeze on its stopped clock: whole again, it
    stayed quorate in 2/1 while nodes 1 and 3 were in 3/1. Send times now move back too."""
    random_schedule(871070050318, faults=None, horizon=None, keep=[0], shrink=False,
                    clock_stops=0.7, test="found_lease_retaken")


def test_found_resumed_node_cut_off_is_the_allowed_blind_window() -> None:
    """Seed 962896538244 (volume mix, clock_stops=0.7), shrunk to three faults: node 1 of
    3 is frozen at 8.996 for 3.48 s with its clock stopped and cut off from 2 and 3 at
    9.923. On resume it reads what node 3 sent before the cut (0.72 s of the 3.48 s lost)
    and nothing since, so it counts 0.18 s of a lease nodes 2 and 3 let lapse; they are
    quorate in 4/2. No protocol can tell it more; check_safety allows exactly this
    (not counted in 'one-quorate-group', bounded by 'stale-lease-bounded'), and the
    services runs check that nothing runs twice meanwhile."""
    random_schedule(962896538244, faults=None, horizon=None, keep=[0, 1, 3], shrink=False,
                    clock_stops=0.7, test="found_blind_window")


def test_found_stale_quorum_memo_after_freeze() -> None:
    """Seed 460318050728 (volume mix, clock_stops=0.7), shrunk to one fault: node 3 of 3
    frozen at 2.431 for 1.77 s with its clock stopped; at 4.257 it installs view 4/3
    (members [3]) in the input whose earlier is_quorate (view 2/1, still backed on its
    stopped clock) was memoised, and answers quorate in 4/3 although a fresh computation
    says 0 votes of quorum 2; node 2 is quorate in 2/1 ('one-quorate-group')."""
    random_schedule(460318050728, faults=None, horizon=None, keep=[0], shrink=False,
                    clock_stops=0.7, test="found_stale_quorum_memo")


def test_found_same_epoch_views_converge() -> None:
    """Seed 563813348415 (volume mix), shrunk to one fault: node 1 of 3 paused 0.93 s at
    0.93. On resume it proposes 2/1 [1, 2, 3] while node 2 proposes 2/2 [2, 3]; nodes 2
    and 3 ack both and install 2/2, node 1 installs 2/1. Node 1 ignored heartbeats of a
    view of its own epoch, node 2 waited for node 1 (the lowest id) to coordinate: the
    cluster stayed split for good ('convergence'). A view of the same epoch this node
    never acked now drops it, as a later one did."""
    random_schedule(563813348415, faults=None, horizon=None, keep=[1], shrink=False,
                    test="found_same_epoch_views")


def test_found_reordered_heartbeat_voided_a_live_lease() -> None:
    """Seed 999779179075 (volume mix), shrunk to one fault: node 1's receiver restarts.
    Node 3's heartbeat of no view, overtaken in flight by its install round for 5/2,
    arrived last at node 2, which took it for node 3's view, ignored the lease it had
    granted node 3 for 5/2 and backed node 1's 6/1: two quorate groups. A heartbeat
    older than the newest one heard from that incarnation is now dropped."""
    random_schedule(999779179075, faults=None, horizon=None, keep=[1], shrink=False,
                    test="found_reordered_heartbeat")


def test_found_member_that_ran_a_later_view_is_taken_back() -> None:
    """Seed 999779179342 (volume mix), shrunk to three faults: node 3 cut off, then the
    partition moves and a config is proposed. Node 3 formed 3/3 alone; nodes 1 and 2
    never noticed it gone and stayed in 2/1 [1, 2, 3], whose coordinator saw the same
    members it wanted and proposed nothing: split for good ('convergence'). A member
    advertising a later view now makes the coordinator propose."""
    random_schedule(999779179342, faults=None, horizon=None, keep=[1, 2, 3], shrink=False,
                    test="found_stray_member")


def test_found_members_dropped_from_the_coordinators_view_are_taken_back() -> None:
    """Seed 579853886433 (volume mix), shrunk to three faults: node 2 paused, node 3 frozen
    (clock jumps), then node 3's receiver restarts. Node 1 installs 4/1 [1, 2, 3] while
    node 3 forms 5/3 alone; node 2 sees member 3 run a later view without it and node 3
    reads an old heartbeat of node 1's, so both take themselves for dropped and wait, with
    no view, to be proposed again. Node 1 saw the same members it wanted and none running
    a later view, so it proposed nothing: stuck for good ('convergence', CI 2026-12-07).
    A member that still advertises no view (or an older one) a token after the view was
    installed now makes the coordinator propose."""
    random_schedule(579853886433, faults=None, horizon=None, keep=[0, 2, 3], shrink=False,
                    clock_stops=0.5, test="found_dropped_members")


def test_found_a_member_s_unaccepted_file_is_not_pulled_by_an_accepted_cluster() -> None:
    """Seed 1024797792538 (config edits), shrunk to four faults: node 1 loses its state
    dir (its accepted copy), its file is edited to config_version 7, and it restarts.
    Nodes 2-5, quorate on the accepted version 2 and still counting node 1 a member of
    their view (its old incarnation), pulled the unaccepted 7 from it as if this were a
    first start, while node 1 adopted the accepted 2: split for good ('convergence'). An
    unaccepted config is now pulled from a member only while nothing is accepted here."""
    random_schedule(1024797792538, faults=6, horizon=12.0, keep=[2, 3, 4, 5], shrink=False,
                    edits=0.35, clock_stops=0.5, test="found_unaccepted_member_file")
