"""The services layer in the simulator (services_sim.py): the real ServicesCore on
every node over the real cluster cores, fake agents and a fake fence device, with
"never on two nodes", "no recovery before a confirmed fence" and "an inquorate node
never acts" checked after every step."""

from __future__ import annotations

import random

import pytest
from fencing_sim import FakeAgent, FenceSim
from harness import SimNet
from schedules import new_seeds, seeds
from services_sim import AgentFaults, SimServices


def run(sim: SimNet, test: str, body) -> None:
    try:
        body()
    except AssertionError as exc:
        raise AssertionError(sim.fail_message(test, exc)) from None


def settle_services(sim: SimNet, svc: SimServices, limit: float = 30.0) -> None:
    start = sim.now
    while True:
        sim.run_for(0.5)
        try:
            svc.check_all_running()
            return
        except AssertionError:
            if sim.now - start > limit:
                raise


def test_every_service_starts_once() -> None:
    sim = SimNet(3, 7)
    svc = SimServices(sim, services=5, seed=7)
    run(sim, "starts_once", lambda: (sim.settle(10), settle_services(sim, svc)))


@pytest.mark.parametrize("policy", [False, True], ids=["fake-device", "real-policy"])
def test_an_owner_crash_is_fenced_then_its_services_recover(policy: bool) -> None:
    """With the fake device, or with every node's real fencing policy (FenceSim)."""
    sim = FenceSim(3, 19) if policy else SimNet(3, 11)
    svc = SimServices(sim, services=4, seed=11)

    def body():
        sim.settle(10)
        settle_services(sim, svc)
        owner = svc.running()["service:s0"][0]
        sim.crash(owner)
        settle_services(sim, svc, limit=40)
        assert svc.running()["service:s0"] != [owner]
        fenced = sim.fenced(owner) if policy else f"node{owner}" in svc.fencer.confirmed
        assert fenced, "recovered without fencing the owner"
    run(sim, "owner_crash", body)


def test_a_partitioned_owner_is_fenced_before_its_services_move() -> None:
    sim = SimNet(3, 13)
    svc = SimServices(sim, services=3, seed=13)

    def body():
        sim.settle(10)
        settle_services(sim, svc)
        owner = svc.running()["service:s1"][0]
        others = [n for n in sim.nodes if n != owner]
        sim.partition([owner], others)
        sim.run_for(10)
        assert not sim.nodes[owner].alive          # powered off by the fence
        settle_services(sim, svc)
    run(sim, "partitioned_owner", body)


def test_a_dead_bmc_keeps_the_services_of_a_lost_node_down() -> None:
    sim = SimNet(3, 17)
    svc = SimServices(sim, services=3, seed=17, faults=AgentFaults(dead_bmc=frozenset({1, 2, 3})))

    def body():
        sim.settle(10)
        settle_services(sim, svc)
        owner = svc.running()["service:s2"][0]
        sim.crash(owner)
        sim.run_for(15)
        assert "service:s2" not in svc.running()   # never recovered without a fence
    run(sim, "dead_bmc", body)


FAULTY = AgentFaults(start_fails=0.1, stop_fails=0.05, hangs=0.05)


def random_run(seed: int, fencing: bool = False) -> SimNet:
    """Random crashes, restarts, partitions, pauses and freezes (a suspended VM whose
    clock stops, or jumps ahead on resume) with failing and hanging agents, then heal and
    restart everything; the invariants are checked after every step, and where nothing
    keeps a service down for good (no failing agent, no dead BMC) every service ends up
    running on exactly one node. ``fencing``: on a ``FenceSim``, the real fencing core of
    every node answers the services core and fences, through a fake agent that fails
    first, never answers (a dead BMC) or succeeds late."""
    rng = random.Random(seed)
    n = rng.choice((3, 4, 5))
    loss = rng.choice((0.0, 0.02))
    outcomes: dict[str, object] = {}
    if fencing:
        # per victim: fails once then works, or a dead BMC (never answers: every attempt
        # hangs until its timeout, so that node's services must stay down), else works;
        # the agent is quick, or succeeds late (after the victim may have rebooted)
        for j in range(1, n + 1):
            roll = rng.random()
            if roll < 0.3:
                outcomes[f"node{j}"] = ["fail", "ok"]
            elif roll < 0.4:
                outcomes[f"node{j}"] = "dead"
        delay = rng.uniform(0.1, 1.0) if rng.random() < 0.7 else rng.uniform(3.0, 8.0)
        sim = FenceSim(n, seed, loss=loss, agent=FakeAgent(outcomes=outcomes, delay=delay))
    else:
        sim = SimNet(n, seed, loss=loss)
    faults = FAULTY if rng.random() < 0.5 else AgentFaults()
    svc = SimServices(sim, services=rng.randint(1, 6), seed=seed, faults=faults)
    # liveness where nothing may keep a service down for good: no failing or hanging
    # resource agent (a failed start or stop leaves it to an admin), no dead BMC
    startable = faults is not FAULTY and "dead" not in outcomes.values()

    def body():
        sim.settle(10)
        for _ in range(6):
            sim.run_for(rng.uniform(0.5, 3.0))
            kind = rng.choice(("crash", "restart", "partition", "heal", "pause", "freeze"))
            a = rng.choice(list(sim.nodes))
            if kind == "crash" and sim.nodes[a].alive:
                sim.crash(a)
            elif kind == "restart" and not sim.nodes[a].alive:
                sim.start(a)
            elif kind == "partition":
                sim.partition([a], [b for b in sim.nodes if b != a])
            elif kind == "heal":
                sim.heal()
            elif kind == "pause" and sim.nodes[a].alive:
                sim.pause(a, rng.uniform(0.5, 3.0))
            elif kind == "freeze" and sim.nodes[a].alive:
                # a suspended VM, its clock stopped (kvmclock) or jumping ahead on resume
                sim.freeze(a, rng.uniform(0.5, 3.0), clock_stops=rng.random() < 0.7)
        sim.heal()
        for i in sim.nodes:
            if not sim.nodes[i].alive:
                sim.start(i)
        sim.run_for(20)
        if startable:
            # a fence that completed after the restarts above left its victim powered
            # off; the operator powers it on again (up to twice), then every service runs
            for _ in range(2):
                down = [i for i in sim.nodes if not sim.nodes[i].alive]
                for i in down:
                    sim.start(i)
                if down:
                    sim.run_for(15)
            settle_services(sim, svc, limit=40)
    run(sim, f"random_faults[{seed}]", body)
    return sim


@pytest.mark.parametrize("seed", seeds(new_seeds(40)))
def test_random_faults_keep_services_on_one_node(seed: int) -> None:
    random_run(seed)


@pytest.mark.parametrize("seed", seeds(new_seeds(25)))
def test_random_faults_with_the_real_fencing_policy(seed: int) -> None:
    random_run(seed, fencing=True)
