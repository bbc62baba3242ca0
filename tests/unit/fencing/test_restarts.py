"""A member that restarts keeping its services running (``Leave.hold``): not fenced, not
recovered for the grace; back with a new incarnation, nothing happened; not back, a lost
node (intent, fence, recovery). Pure policy, plus the exchange between members."""

from __future__ import annotations

from dataclasses import replace

import pytest
from clusterd.fencing.exchange import FenceStateMessage
from clusterd.fencing.policy import next_wakeup, recovery_allowed, recovery_blocked
from clusterd.fencing.state import (
    FencePhase,
    FenceRequested,
    FenceResult,
    FencingState,
    PeerFenceState,
    Tick,
)
from fencing_builders import Run, cfg, runs, started, view

GRACE = 60.0


def restarts(*members: str, who: str = "node3", **kw):
    return replace(view(*members, **kw), restarting=frozenset({who}))


def test_no_intent_no_recovery_during_the_grace_then_a_lost_node():
    run = started(config=cfg(post_fail_delay=0))
    s = run.at(10.0, restarts("node1", "node2"))
    assert runs(s) == [] and run.op("node3") is None
    assert s.reason == ("node3 restarts keeping its services running: not fenced, its "
                        "services not recovered for 60s (or until it is back)")
    assert not recovery_allowed(run.state, "node3") and recovery_blocked(run.state, "node3")
    assert next_wakeup(run.state) == 10.0 + GRACE
    assert runs(run.at(69.9, Tick())) == [] and run.op("node3") is None
    s = run.at(70.0, Tick())                          # the grace is over, it is not back
    assert "node3 did not come back within 60s of announcing its restart: lost" in s.reason
    assert runs(s) == [("node3", 1)] and run.op("node3").incarnation == "node3-a"
    assert not recovery_allowed(run.state, "node3")
    run.at(71.0, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    assert recovery_allowed(run.state, "node3")


def test_back_with_a_new_incarnation_within_the_grace_nothing_happens():
    run = started(config=cfg(post_fail_delay=0))
    run.at(10.0, restarts("node1", "node2"))
    s = run.at(11.2, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    assert "node3 is back after its restart (incarnation node3-b)" in s.reason
    assert recovery_allowed(run.state, "node3") and run.op("node3") is None
    assert next_wakeup(run.state) is None
    assert runs(run.at(70.0, Tick())) == [] and run.op("node3") is None
    # its next loss is an ordinary one
    assert runs(run.at(80.0, view("node1", "node2"))) == [("node3", 1)]
    assert run.op("node3").incarnation == "node3-b"


def test_a_restart_announced_after_the_view_change_cancels_the_intent():
    run = started(config=cfg(post_fail_delay=5))
    run.at(10.0, view("node1", "node2"))                # dropped first: looks failed
    assert run.op("node3").phase is FencePhase.PENDING
    s = run.at(10.1, restarts("node1", "node2"))        # then its leave (hold) arrives
    assert "node3 announced its restart after the view change: node3#1 cancelled" in s.reason
    assert run.op("node3").phase is FencePhase.CANCELLED
    assert not recovery_allowed(run.state, "node3")     # held, not recovered
    assert runs(run.at(15.0, Tick())) == []
    assert runs(run.at(70.1, Tick())) == []             # lost: a new intent, post_fail_delay
    assert run.op("node3").phase is FencePhase.PENDING and run.op("node3").generation == 2
    assert runs(run.at(75.1, Tick())) == [("node3", 1)] and run.op("node3").op_id == "node3#2"


def test_every_quorate_member_wakes_at_the_end_of_the_grace_not_only_the_coordinator():
    run = started(local="node2", config=cfg(post_fail_delay=0))
    run.at(10.0, restarts("node1", "node2"))
    assert next_wakeup(run.state) == 70.0
    run.at(70.0, Tick())
    assert run.op("node3").phase is FencePhase.PENDING      # its intent (node1 executes it)
    assert recovery_blocked(run.state, "node3")


def test_an_inquorate_member_converts_the_grace_only_once_quorate():
    run = started(config=cfg(post_fail_delay=0))
    run.at(10.0, restarts("node1", "node2"))
    run.at(20.0, view("node1", quorate=False))          # node2 gone too: inquorate
    assert next_wakeup(run.state) is None
    assert runs(run.at(80.0, Tick())) == [] and run.op("node3") is None
    s = run.at(90.0, view("node1", "node2", inc={"node2": "node2-b"}))
    assert ("node3", 1) in runs(s)


def test_a_fence_of_the_restarting_incarnation_ends_the_wait():
    run = started(config=cfg(post_fail_delay=0))
    run.at(10.0, restarts("node1", "node2"))
    s = run.at(11.0, FenceRequested("node3", "uid 0", "fence_node"))
    assert runs(s) == [("node3", 1)]
    run.at(12.0, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    assert recovery_allowed(run.state, "node3")
    assert runs(run.at(70.0, Tick())) == [] and run.op("node3").phase is FencePhase.DONE


@pytest.mark.parametrize("grace", [5.0, 300.0])
def test_the_grace_is_the_configured_one(grace):
    run = started(config=cfg(restart_grace=grace))
    run.at(1.0, restarts("node1", "node2"))
    assert next_wakeup(run.state) == 1.0 + grace


def test_a_member_that_saw_the_restart_never_adopts_a_peers_intent_about_it():
    """node2 missed node3's announcement (it saw node3 fail) and opens an intent; node1,
    the coordinator, heard it: node1 does not adopt node2's intent, node2's own knowledge
    still blocks the recovery (its report names node3), and node3's return settles it."""
    n1 = Run(FencingState.initial("node1", cfg()))
    n2 = Run(FencingState.initial("node2", cfg()))
    for run in (n1, n2):
        run.at(0.0, view("node1", "node2", "node3"))
    n1.at(5.0, restarts("node1", "node2"))
    n2.at(5.0, view("node1", "node2"))
    assert n2.state.ops["node3"].phase is FencePhase.PENDING
    msg = FenceStateMessage.build(n2.state, 2, 5.01, 1_764_100_000.0)
    n1.at(5.01, PeerFenceState("node2", FenceStateMessage.from_wire(msg.to_wire())))
    assert "node3" not in n1.state.ops and runs(n1.at(5.02, Tick())) == []
    assert recovery_blocked(n2.state, "node3") and recovery_blocked(n1.state, "node3")
    back = view("node1", "node2", "node3", inc={"node3": "node3-b"})
    n1.at(6.0, back)
    n2.at(6.0, back)
    assert n2.state.ops["node3"].phase is FencePhase.CANCELLED
    assert recovery_allowed(n1.state, "node3") and recovery_allowed(n2.state, "node3")
