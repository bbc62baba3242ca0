"""Random fault schedules for the simulator, all drawn from one seed."""

from __future__ import annotations

import os
import random

from clusterd.errors import ClusterError
from harness import SimNet, sim_config


def seeds(default: range) -> list[int]:
    """The seeds to run: RHC_SIM_SEED replays one, else the default range."""
    env = os.environ.get("RHC_SIM_SEED")
    return [int(env)] if env else list(default)


def random_schedule(seed: int, *, faults: int = 6, horizon: float = 20.0,
                    test: str = "random") -> SimNet:
    """Start 3-5 nodes, inject random faults for ``horizon`` virtual seconds, heal, and
    require convergence. Safety invariants are checked after every step. A failure is
    reported with its seed and the command that replays it."""
    rng = random.Random(seed)
    n = rng.choice([2, 3, 3, 4, 5, 5])
    votes = {rng.randint(1, n): 2} if n > 2 and rng.random() < 0.25 else None
    sim = SimNet(n, seed, loss=rng.choice([0.0, 0.0, 0.05, 0.2]), dup=rng.choice([0.0, 0.05]),
                 delay=rng.choice([(0.0005, 0.005), (0.001, 0.05), (0.001, 0.2)]),
                 two_node=n == 2, votes=votes)
    try:
        _inject(sim, rng, n, faults, horizon, seed)
    except AssertionError as exc:
        raise AssertionError(sim.fail_message(test, exc)) from None
    return sim


def _inject(sim: SimNet, rng: random.Random, n: int, faults: int, horizon: float,
            seed: int) -> None:
    nodes = list(sim.nodes)
    version = [1]
    times = sorted(rng.uniform(0.5, horizon) for _ in range(faults))
    for t in times:
        sim.run_until(t)
        op = rng.choice(["crash", "restart", "partition", "one_way", "pause", "propose",
                         "heal", "stop", "invalid", "bounce"])
        a = rng.choice(nodes)
        if op == "crash" and sim.nodes[a].alive:
            sim.crash(a)
        elif op == "stop" and sim.nodes[a].alive:
            sim.stop(a)
        elif op == "restart" and not sim.nodes[a].alive:
            sim.start(a)
        elif op == "bounce" and sim.nodes[a].alive:  # crash and restart at once
            sim.crash(a)
            sim.start(a)
        elif op == "partition":
            k = rng.randint(1, max(1, n - 1))
            left = set(rng.sample(nodes, k))
            sim.partition(left, set(nodes) - left)
        elif op == "one_way":
            b = rng.choice([x for x in nodes if x != a])
            sim.one_way(a, b)
        elif op == "pause":
            sim.pause(a, rng.uniform(0.2, 3.0))
        elif op == "heal":
            sim.heal()
        elif op in ("propose", "invalid"):
            body = "INVALID" if op == "invalid" else f"seed {seed} t {t:.3f}"
            try:
                if sim.propose(a, sim_config(version[0] + 1, body)):
                    version[0] += 1
            except ClusterError:
                pass  # refused (invalid, not quorate, version): nothing may change
    sim.run_until(horizon)
    sim.heal()
    for i in nodes:
        if not sim.nodes[i].alive:
            sim.start(i)
    sim.settle(limit=30.0)
