"""Fencing on the simulator (DESIGN 5; RELIABILITY T13-T16, T18, T19, T22): every node runs
the fencing policy over simulated membership and shares fence state on the app channel;
a fake agent powers victims off. Invariants F1 (no recovery before fence) and F2
(inquorate partitions never fence) are checked after every step (fencing_sim.py).

Replay a failing seed: ``RHC_SIM_SEED=<n> .venv/bin/pytest tests/sim -k fencing``.
"""

from __future__ import annotations

import itertools
import random

import pytest
from clusterd.fencing.state import FencePhase
from fencing_sim import FakeAgent, FenceSim, name
from schedules import seeds


def formed(sim: FenceSim) -> FenceSim:
    sim.settle(20)
    return sim


def shown(sim: FenceSim, victim: int) -> set:
    """What each live member shows for the victim (phase, attempts, last error)."""
    return {(op.phase, op.attempts, op.last_error) if op else None
            for i in sim.fstate if (op := sim.op(i, victim)) or True}


def test_no_recovery_before_the_fence_succeeds_and_every_member_shows_it():
    sim = formed(FenceSim(3, 11, agent=FakeAgent(delay=3.0)))
    sim.crash(3)
    sim.run_while(lambda: not sim.runs, limit=10)
    assert [r.executor for r in sim.runs] == ["node1"]            # the coordinator only
    sim.run_for(1.0)
    assert not sim.allowed(1, 3) and not sim.allowed(2, 3)
    assert {sim.op(i, 3).phase for i in (1, 2)} == {FencePhase.RUNNING}  # node2 shows it too
    sim.run_while(lambda: not sim.fenced(3), limit=10)
    sim.run_for(0.5)
    assert sim.allowed(1, 3) and sim.allowed(2, 3)
    assert shown(sim, 3) == {(FencePhase.DONE, 1, "")}


def test_failures_retry_with_backoff_and_block_recovery_until_success():
    agent = FakeAgent(outcomes={"node3": ["fail", "fail", "fail", "ok"]}, delay=0.2)
    sim = formed(FenceSim(3, 12, agent=agent))
    sim.pause(3, 60.0)                   # alive but silent: a partitioned, paused owner
    sim.run_while(lambda: len(sim.runs) < 3, limit=30)
    assert not any(sim.allowed(i, 3) for i in (1, 2))
    sim.run_for(0.3)
    op = sim.op(2, 3)                    # the failure is visible on a non-coordinator
    assert op.phase is FencePhase.FAILED and op.last_error == "fake agent: failed"
    sim.run_while(lambda: not sim.fenced(3), limit=30)
    starts = [r.at for r in sim.runs]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == sorted(gaps) and len(sim.runs) == 4          # 1, 2, 4 s backoff
    sim.run_for(0.5)
    assert sim.allowed(1, 3) and sim.allowed(2, 3)


def test_dead_bmc_blocks_recovery_until_an_ack_on_any_member():
    agent = FakeAgent(outcomes={"node3": "dead"}, delay=0.5)
    sim = formed(FenceSim(3, 13, agent=agent))
    sim.crash(3)                                         # power and BMC lost together
    sim.run_for(20)
    assert len(sim.runs) >= 3 and not sim.fenced(3)
    assert not sim.allowed(1, 3) and not sim.allowed(2, 3)
    assert "exceeded" in sim.op(2, 3).last_error
    sim.ack(2, 3)                                        # fence_ack_manual on node2
    sim.run_for(1.0)
    assert sim.allowed(1, 3) and sim.op(1, 3).phase is FencePhase.ACKED
    runs = len(sim.runs)
    sim.run_for(10)
    assert len(sim.runs) == runs                         # no retries after the ack


def test_an_inquorate_partition_never_fences():
    sim = formed(FenceSim(5, 14))
    sim.partition({1, 2}, {3, 4, 5})
    sim.run_while(lambda: not (sim.fenced(1) and sim.fenced(2)), limit=20)
    assert {r.executor for r in sim.runs} == {"node3"}
    assert not any(r.victim in ("node3", "node4", "node5") for r in sim.runs)


def test_two_requests_for_one_victim_merge_into_one_operation():
    sim = formed(FenceSim(3, 15, agent=FakeAgent(delay=1.0)))
    sim.request(2, 3, "uid 0 on node2")
    sim.request(1, 3, "uid 0 on node1")
    sim.run_while(lambda: not sim.fenced(3), limit=10)
    sim.run_for(5)
    assert [(r.victim, r.op_id) for r in sim.runs] == [("node3", "node3#1")]
    assert set(sim.op(1, 3).requesters) == {"uid 0 on node1", "uid 0 on node2"}


def test_a_rebooted_victim_rejoins_and_is_not_fenced_again():
    agent = FakeAgent(actions=frozenset({"reboot", "status"}), delay=0.3, boot=1.0)
    sim = formed(FenceSim(3, 16, agent=agent))
    sim.pause(3, 30.0)
    sim.run_while(lambda: not sim.fenced(3), limit=10)
    sim.run_while(lambda: name(3) not in sim.fstate[1].members, limit=20)  # back, new inc
    assert sim.fstate[1].members[name(3)] != sim.op(1, 3).incarnation
    sim.run_for(20)
    assert len(sim.runs) == 1


@pytest.mark.parametrize("late_start, clean_start, fenced", [
    (None, False, True),      # never joins: fenced after post_join_delay
    (3.0, False, False),      # joins within post_join_delay: not fenced
    (None, True, False),      # clean_start: never fenced at startup
])
def test_startup_fencing_waits_post_join_delay(late_start, clean_start, fenced):
    sim = FenceSim(3, 17, start=False, policy={"clean_start": clean_start})
    sim.start(1)
    sim.start(2)
    sim.run_while(lambda: not sim.fstate[1].quorate, limit=10)
    if late_start is not None:
        sim.at(sim.now + late_start, lambda: sim.start(3))
    sim.run_for(15)
    assert bool(sim.fenced(3)) is fenced
    if fenced:
        op = sim.op(1, 3)
        assert op.origin.value == "startup" and op.op_id == sim.runs[0].op_id == "node3#1"
        assert sim.runs[0].at - op.since >= 6.0


@pytest.mark.parametrize("services, survivor", [
    ({}, 1),                   # tie: the lower nodeid fences first
    ({"node2": 1}, 2),         # the side running the service fences first
    ({"node1": 2, "node2": 1}, 1),
])
def test_two_node_partition_ends_with_exactly_one_survivor(services, survivor):
    sim = formed(FenceSim(2, 18, two_node=True, services=services,
                          agent=FakeAgent(delay=0.5)))
    sim.partition({1}, {2})
    sim.run_for(15)
    loser = 3 - survivor
    assert [r.victim for r in sim.runs if r.outcome == "ok"] == [name(loser)]
    assert sim.nodes[survivor].alive and not sim.nodes[loser].alive


def test_new_coordinator_finishes_the_fence_of_a_lost_coordinator():
    sim = formed(FenceSim(5, 19, agent=FakeAgent(delay=4.0)))
    sim.pause(5, 120.0)
    sim.run_while(lambda: not sim.runs, limit=10)
    assert sim.runs[0].executor == "node1"
    sim.run_for(1.0)
    assert sim.op(2, 5).phase is FencePhase.RUNNING               # node2 learned it
    sim.crash(1)                                # mid-fence: it never hears the result

    def by_node2():
        return [r for r in sim.runs if r.executor == "node2" and r.victim == "node5"]
    sim.run_while(lambda: not by_node2(), limit=30)
    by_node2 = by_node2()
    assert by_node2[0].op_id == "node5#1"       # the same operation, carried on
    assert not any(sim.allowed(i, 5) for i in (2, 3, 4))
    sim.run_while(lambda: by_node2[0].outcome != "ok", limit=30)
    sim.run_while(lambda: not sim.fenced(1), limit=30)
    sim.run_for(1.0)
    assert all(sim.allowed(i, 5) and sim.allowed(i, 1) for i in (2, 3, 4))


def test_intents_survive_a_restart_of_every_member():
    agent = FakeAgent(outcomes={"node3": "dead"}, delay=0.2)
    sim = formed(FenceSim(3, 20, agent=agent))
    sim.crash(3)
    sim.run_while(lambda: len(sim.runs) < 2, limit=20)
    sim.crash(1)
    sim.crash(2)
    sim.start(1)
    sim.start(2)
    sim.run_for(3.0)
    assert not sim.allowed(1, 3) and not sim.allowed(2, 3)
    assert sim.op(1, 3).op_id == "node3#1" and sim.op(1, 3).attempts >= 2
    agent.outcomes["node3"] = "ok"
    sim.run_while(lambda: not sim.fenced(3), limit=40)


def test_members_converge_on_the_outcome_despite_lost_messages():
    # 20 % loss each way: the fence-state exchange must converge. (At 30 % about one seed
    # in ten never fences within a minute: membership itself does not settle, as
    # non-acking members are kept out of proposals for up to 32 tokens; that is
    # membership's trade-off against flapping, not what this test is about.)
    sim = formed(FenceSim(3, 21, loss=0.2, agent=FakeAgent(delay=0.5)))
    sim.crash(3)
    sim.run_while(lambda: not sim.fenced(3), limit=30)
    sim.run_while(lambda: {sim.op(i, 3).phase for i in (1, 2)} != {FencePhase.DONE}, limit=30)
    sim.heal()                                   # no loss: quorum is stable again
    sim.run_while(lambda: not (sim.allowed(1, 3) and sim.allowed(2, 3)), limit=10)


def _random_run(seed: int) -> FenceSim:
    rng = random.Random(seed)
    n = rng.choice([2, 3, 3, 4, 5])
    outcomes = {name(i): rng.choice(["ok", "ok", ["fail", "ok"], ["fail", "fail", "ok"]])
                for i in range(1, n + 1)}
    sim = FenceSim(n, seed, two_node=n == 2, agent=FakeAgent(outcomes, rng.uniform(0.1, 2)),
                   loss=rng.choice([0.0, 0.05]), services={name(1): rng.randint(0, 2)})
    nodes = list(sim.nodes)
    for t in sorted(rng.uniform(1, 25) for _ in range(6)):
        sim.run_until(t)
        op, a = rng.choice(["crash", "restart", "partition", "pause", "heal", "stop",
                            "request"]), rng.choice(nodes)
        if op == "crash" and sim.nodes[a].alive:
            sim.crash(a)
        elif op == "stop" and sim.nodes[a].alive:
            sim.stop(a)
        elif op == "restart" and not sim.nodes[a].alive:
            sim.start(a)
        elif op == "partition":
            left = set(rng.sample(nodes, rng.randint(1, max(1, n - 1))))
            sim.partition(left, set(nodes) - left)
        elif op == "pause":
            sim.pause(a, rng.uniform(0.5, 5.0))
        elif op == "heal":
            sim.heal()
        elif op == "request" and sim.nodes[a].alive:
            sim.request(a, rng.choice(nodes))
    sim.run_until(30)
    sim.heal()
    for i in nodes:
        if not sim.nodes[i].alive:
            sim.start(i)
    sim.settle(40)
    sim.run_for(5.0)
    agreed = {i: {v: (op.generation, op.phase.open, op.phase)
                  for v, op in sim.fstate[i].ops.items()} for i in sim.fstate}
    assert len({tuple(sorted(a.items())) for a in agreed.values()}) == 1, (
        f"members disagree on fence operations after settling: {agreed}")
    return sim


def test_random_fencing_schedules():
    for seed in seeds(range(40)):
        try:
            _random_run(seed)
        except AssertionError as exc:
            raise AssertionError(f"SEED={seed}: {exc}\nreplay: RHC_SIM_SEED={seed} "
                                 f".venv/bin/pytest tests/sim -k random_fencing") from None
