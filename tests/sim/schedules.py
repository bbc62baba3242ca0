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
                    test: str = "random", edits: float = 0.0) -> SimNet:
    """Start 3-5 nodes, inject random faults for ``horizon`` virtual seconds, heal, and
    require convergence. Safety invariants are checked after every step. A failure is
    reported with its seed and the command that replays it. ``edits``: the share of faults
    that are configs edited on a stopped node (the simulator's invariants: no such file is
    ever installed or accepted anywhere, no accepted config is lost)."""
    rng = random.Random(seed)
    n = rng.choice([2, 3, 3, 4, 5, 5])
    votes = {rng.randint(1, n): 2} if n > 2 and rng.random() < 0.25 else None
    sim = SimNet(n, seed, loss=rng.choice([0.0, 0.0, 0.05, 0.2]), dup=rng.choice([0.0, 0.05]),
                 delay=rng.choice([(0.0005, 0.005), (0.001, 0.05), (0.001, 0.2)]),
                 two_node=n == 2, votes=votes, fresh=rng.random() < 0.3)
    try:
        _inject(sim, rng, n, faults, horizon, seed, edits)
    except AssertionError as exc:
        raise AssertionError(sim.fail_message(test, exc)) from None
    return sim


def _inject(sim: SimNet, rng: random.Random, n: int, faults: int, horizon: float,
            seed: int, edits: float = 0.0) -> None:
    nodes = list(sim.nodes)
    version = [1]
    times = sorted(rng.uniform(0.5, horizon) for _ in range(faults))
    for t in times:
        sim.run_until(t)
        op = rng.choice(["crash", "restart", "partition", "one_way", "pause", "propose",
                         "heal", "stop", "invalid", "bounce"])
        if rng.random() < edits:
            op = "edit"
        a = rng.choice(nodes)
        if op == "edit":
            _edit(sim, rng, a, version[0], t)
        elif op == "crash" and sim.nodes[a].alive:
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


def _edit(sim: SimNet, rng: random.Random, a: int, version: int, t: float) -> None:
    """Stop node ``a`` if it runs, and rewrite its file: a higher version (the dangerous
    case), the same version with other content, or an invalid file."""
    if sim.nodes[a].copy is None and sim.cfg.two_node:
        # alone, a two_node node is quorate and accepts its own file (a first start): two
        # such files would be a conflict between two accepted configs (reported, never
        # merged; fencing settles a two-node split), not what this checks
        return
    if sim.nodes[a].alive:
        rng.choice([sim.crash, sim.stop])(a)
    body = f"edited offline on node {a} at {t:.3f}"
    kinds = ["higher", "higher", "same", "invalid"]
    if sim.nodes[a].copy is None:
        kinds.remove("invalid")  # no accepted copy to fall back on: clusterd refuses to
        #                          start, which the unit tests cover
    kind = rng.choice(kinds)
    new = version + rng.randint(1, 5) if kind != "same" else version
    sim.edit_offline(a, sim_config(new, "INVALID" if kind == "invalid" else body))
    if rng.random() < 0.7:
        sim.start(a)
