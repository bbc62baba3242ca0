"""The SWIM + Lifeguard detector alone at 3, 30, 100 and 300 nodes (``swim_sim.py``): every
crash declared by every responsive node within the bound derived from the parameters, no
responsive node declared failed at up to 5 % loss (with duplication, pauses, saturated
nodes and a partition), and a per-node load that does not grow with n. Not the daemon:
the detector is not wired in yet (docs/architecture.md, "Planned: membership at 300
nodes").

New seeds every run (``schedules.seeds``); a failure prints the seed, the scenario, the
replay command (``RHC_SIM_SEED=<n> .venv/bin/pytest tests/sim/test_sim_swim.py -k
<test>``) and the last steps of the run.
"""

from __future__ import annotations

import random
import statistics

import pytest
from clusterd.membership.swim import SwimConfig, SwimDetector
from clusterd.membership.swim_wire import Update
from schedules import seeds
from swim_sim import Scenario, SwimNet, SwimViolation, check, draw, run, summary


def run_checked(scn: Scenario, test: str, *, false_failures: bool = True,
                cfg: SwimConfig | None = None) -> SwimNet:
    try:
        sim = run(scn, cfg)
        check(sim, false_failures=false_failures)
    except Exception as exc:  # noqa: BLE001 - a detector exception is a failure too
        trace = getattr(getattr(exc, "sim", None), "trace", [])
        raise AssertionError("\n".join([
            f"SEED={scn.seed} {type(exc).__name__}: {exc}", f"scenario: {scn}",
            (f"replay: RHC_SIM_SEED={scn.seed} .venv/bin/pytest "
             f"tests/sim/test_sim_swim.py -k {test}"),
            "last steps:", *(f"  {line}" for line in trace)])) from None
    print(summary(sim))
    return sim


@pytest.mark.parametrize(("n", "crashes", "pauses"), [(3, 1, 0), (30, 2, 1), (100, 3, 2)])
def test_crashes_are_detected_and_no_live_node_fails(n, crashes, pauses):
    """Loss 0, 1 or 5 % (drawn from the seed), 1 % duplication, delays of 0.5-5 or 1-20
    ms a link, and pauses of 0.2-3 s (a paused node may be declared failed: it is not
    counted as responsive)."""
    for seed in seeds(3):
        loss = random.Random(seed).choice([0.0, 0.01, 0.05])
        scn = draw(seed, n, horizon=16.0, loss=loss, dup=0.01, crashes=crashes,
                   pauses=pauses)
        sim = run_checked(scn, "test_crashes_are_detected")
        assert len(sim.stats.suspected) == crashes


def test_saturated_nodes_cost_no_responsive_node_its_membership():
    """10 % of the nodes handle every message and timer 50-500 ms late: they suspect
    others falsely, and are suspected, but Lifeguard's local health slows them down and
    the buddy system lets the responsive ones refute in time."""
    for seed in seeds(2):
        scn = draw(seed, 30, horizon=16.0, loss=0.01, crashes=1, saturated=0.1)
        sim = run_checked(scn, "test_saturated_nodes")
        assert sim.stats.false_suspicions > 0, "the saturated nodes suspect someone"


def test_each_side_of_a_partition_declares_the_other_failed():
    for seed in seeds(2):
        scn = draw(seed, 24, horizon=12.0, crashes=0, partition=True)
        sim = run_checked(scn, "test_each_side_of_a_partition")
        side = scn.partition[1] if scn.partition else frozenset()
        assert len(sim.stats.false_failures) == 2 * len(side) * (24 - len(side))


def test_the_load_per_node_does_not_grow_with_n():
    per_period = {}
    for n in (3, 30, 100):
        sim = run_checked(Scenario(seeds(1)[0], n, horizon=10.0), "test_the_load")
        periods = sim.now / sim.cfg.period
        per_period[n] = statistics.mean(sim.stats.sent[i] / periods for i in sim.nodes)
    assert max(per_period.values()) < 1.1 * min(per_period.values()), per_period
    assert 1.9 < per_period[100] < 2.2, "a probe and an ack a period"


def test_the_checks_are_not_blind(monkeypatch):
    scn = draw(5, 12, horizon=10.0, crashes=1)
    sim = run(scn)
    check(sim)
    sim.cfg = SwimConfig(period=1.0)           # as if it had probed three times too often
    with pytest.raises(SwimViolation, match="^load: node"):
        check(sim)
    apply = SwimDetector._apply

    def never_refute(self: SwimDetector, sender: int, u: Update, now: float) -> None:
        if u.node != self.me:
            apply(self, sender, u, now)

    with monkeypatch.context() as patch:
        patch.setattr(SwimDetector, "_apply", never_refute)
        with pytest.raises(SwimViolation, match="^no-false-failure: node"):
            check(run(draw(5, 12, horizon=20.0, crashes=0, loss=0.2)))
    monkeypatch.setattr(SwimDetector, "_fail_suspect",
                        lambda self, node, now: self._suspects.discard(node))
    monkeypatch.setattr(SwimDetector, "_mark_failed", lambda self, *args: None)
    with pytest.raises(SwimViolation, match="^detected: node"):
        check(run(scn))
    monkeypatch.setattr(SwimDetector, "next_deadline", lambda self: 0.0)
    with pytest.raises(SwimViolation, match="^livelock: node"):
        run(scn)


@pytest.mark.slow
def test_300_nodes():
    """300 nodes, 30 simulated seconds: three crashes, 2 % loss, 1 % duplication, 10 %
    of the nodes saturated and two pauses (25-45 s of wall time on a busy 2-core machine)."""
    for seed in seeds(1):
        scn = draw(seed, 300, horizon=30.0, loss=0.02, dup=0.01, crashes=3,
                   saturated=0.1, pauses=2)
        sim = run_checked(scn, "test_300_nodes")
        assert len(sim.stats.suspected) == 3
