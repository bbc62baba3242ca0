"""Random fault schedules on 30 and 100 simulated nodes (issue 18): the same real cores
and the same invariants as the 2-5 node runs (one view id, one member set; at most one
quorate group at a time; stale leases bounded; convergence after the heal), checked
incrementally (``SimNet(incremental=True)``: a whole check after every event is
quadratic at this size). The faults are the volume mix's that make sense at this size:
crashes and restarts, partitions into two random groups, one-way links, pauses, freezes,
receiver restarts, proposals and heals. New seeds every run; a failure prints the seed
and the replay command (``RHC_SIM_SEED=<n> .venv/bin/pytest tests/sim -k <test>``).

The membership is still all-to-all (heartbeats every token/3 to every peer): these runs
prove the invariants at this size for the protocol as it is; their cost per simulated
second is what a SWIM-style membership would make flat (docs/architecture.md,
"Planned: membership at 300 nodes"). 300 nodes take minutes of wall time per simulated
second: that figure is measured by ``make bench`` (bench_sim_scale.py), not here.
"""

from __future__ import annotations

import logging
import random

import pytest
from schedules import Fault, Schedule, execute, failure_message, seeds

KINDS = ("crash", "restart", "partition", "one_way", "pause", "freeze", "rx_restart",
         "propose", "heal", "bounce")


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def draw_scale(seed: int, n: int, *, faults: int, horizon: float) -> Schedule:
    """A schedule of ``faults`` faults on ``n`` nodes within ``horizon`` seconds: each
    kind's parameters drawn as the volume mix draws them (a partition splits the nodes
    into two random groups); a lossy network with jittered delays."""
    from schedules import _args

    rng = random.Random(seed)
    nodes = list(range(1, n + 1))
    net = {"loss": rng.choice([0.0, 0.02]), "dup": 0.0,
           "delay": rng.choice([(0.0005, 0.005), (0.001, 0.05)]), "incremental": True}
    plan = []
    for t in sorted(rng.uniform(1.0, horizon) for _ in range(faults)):
        kind = rng.choice(KINDS)
        a = rng.choice(nodes)
        plan.append(Fault(round(t, 6), kind, a, _args(rng, kind, a, nodes, 0.5)))
    return Schedule(seed, n, net, tuple(plan), horizon, frozenset())


def run_scale(seed: int, n: int, *, faults: int, horizon: float, test: str) -> None:
    sched = draw_scale(seed, n, faults=faults, horizon=horizon)
    try:
        sim = execute(sched)
    except Exception as exc:  # noqa: BLE001 - a core exception is a failure too
        raise AssertionError(failure_message(sched, None, exc, test, False, [])) from None
    assert len(sim.live()) == n, f"seed {seed}: not every node runs after the heal"
    assert sim.applied, f"seed {seed}: no fault applied"


def test_random_schedules_at_30_nodes() -> None:
    for seed in seeds(2):
        run_scale(seed, 30, faults=6, horizon=8.0, test="random_schedules_at_30_nodes")


@pytest.mark.slow
def test_many_random_schedules_at_30_nodes() -> None:
    for seed in seeds(10):
        run_scale(seed, 30, faults=8, horizon=10.0, test="many_random_schedules_at_30")


@pytest.mark.slow
def test_random_schedules_at_100_nodes() -> None:
    """About a minute and a half of wall time for 6 simulated seconds plus the heal."""
    for seed in seeds(1):
        run_scale(seed, 100, faults=5, horizon=6.0, test="random_schedules_at_100_nodes")


def test_incremental_checks_find_two_quorate_groups() -> None:
    """The incremental checker is not blind: a planted second quorate view (one node's
    core made to answer quorate in a view of its own) is found at that node's next
    event."""
    from clusterd.wire.messages import View, ViewId
    from harness import SimNet, Violation

    sim = SimNet(12, 3, incremental=True)
    sim.settle(limit=20.0)
    rogue = sim.nodes[7].core.membership
    rogue.view = View(ViewId(99, 7, rogue.inc), ((7, rogue.inc),))
    rogue.is_quorate = lambda now: True          # type: ignore[method-assign]
    with pytest.raises(Violation) as err:
        sim.run_for(1.0)
    assert err.value.name == "one-quorate-group"
