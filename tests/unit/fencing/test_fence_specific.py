"""Issue 11: a fence result covers only the failure it was run for.

A completed operation restored from disk, or a peer's record of an earlier fence, never
settles a later failure; a fresh daemon treats a node it never saw as unknown (startup
fencing); a node dropped out of every view is not quorate for fencing.
"""

from __future__ import annotations

from clusterd.fencing.exchange import FenceStateMessage
from clusterd.fencing.intents import restore, to_record
from clusterd.fencing.policy import recovery_allowed, recovery_blocked
from clusterd.fencing.state import (
    FencePhase,
    FenceRequested,
    FenceResult,
    FencingState,
    Origin,
    PeerFenceState,
    Tick,
    ViewLost,
)
from fencing_builders import Run, cfg, runs, started, view

WALL = 1_764_100_000.0


def fenced_node1_once() -> Run:
    """node2's fencer: node1 lost and fenced (node1#1 done)."""
    run = started(local="node2", members=("node1", "node2", "node3"))
    run.at(10.0, view("node2", "node3"))
    run.at(10.5, FenceResult("node1", "node1#1", ok=True, method="ipmi"))
    assert run.op("node1").phase is FencePhase.DONE
    return run


def test_a_restored_completed_record_does_not_settle_a_node_this_daemon_never_saw():
    record = to_record(fenced_node1_once().state, now=11.0, wall_now=WALL)
    # the daemon restarts much later; node1 rebooted, rejoined and failed since
    run = Run(restore("node2", cfg(), record, now=5.0, wall_now=WALL + 600))
    assert run.op("node1").phase is FencePhase.DONE          # kept as history
    assert "node1" not in run.state.nodes                # but not "seen", not settled
    run.at(6.0, view("node2", "node3"))                  # first quorate view
    op = run.op("node1")
    assert op.phase is FencePhase.PENDING and op.origin is Origin.STARTUP
    assert op.generation == 2
    assert not recovery_allowed(run.state, "node1") and recovery_blocked(run.state, "node1")
    run.at(12.0, Tick())                                 # post_join_delay 6 s
    assert runs(run.steps[-1]) == [("node1", 1)]


def test_a_peer_fence_that_finished_before_the_intent_does_not_settle_it():
    peer = fenced_node1_once()                           # node1#1 done at t=10.5
    # the peer broadcasts its history when node3 loses node1 again (at t=20)
    msg = FenceStateMessage.build(peer.state, epoch=3, now=20.05, wall_now=WALL + 20.05)
    run = started(local="node3")
    run.at(20.0, view("node2", "node3"))                 # node3 loses node1 later
    assert run.op("node1").phase is FencePhase.PENDING and run.op("node1").generation == 1
    run.at(20.1, PeerFenceState("node2", msg))           # same generation, older fence
    op = run.op("node1")
    assert op.phase.open, op
    assert op.generation == 2, "not renumbered: the peer would ignore it as older"
    assert not recovery_allowed(run.state, "node1")


def test_a_peer_fence_that_finished_after_the_intent_settles_it():
    run = started(local="node3")
    run.at(10.0, view("node2", "node3"))
    peer = started(local="node2")
    peer.at(10.0, view("node2", "node3"))
    peer.at(10.4, FenceResult("node1", "node1#1", ok=True, method="ipmi"))
    msg = FenceStateMessage.build(peer.state, epoch=3, now=10.5, wall_now=WALL + 10.5)
    run.at(10.6, PeerFenceState("node2", msg))
    assert run.op("node1").phase is FencePhase.DONE
    assert recovery_allowed(run.state, "node1")


def test_a_node_out_of_every_view_neither_fences_nor_allows_recovery():
    run = started(config=cfg(post_fail_delay=5))
    run.at(10.0, view("node1", "node2"))                 # node3 lost, due at 15
    result = run.at(11.0, ViewLost("dropped from the view while alive"))
    assert not run.state.quorate and "no fencing" in result.reason
    assert runs(run.at(16.0, Tick())) == []
    assert not recovery_allowed(run.state, "node2")


def test_a_fresh_member_that_joins_a_running_cluster_blocks_nothing_it_never_saw():
    run = Run(FencingState.initial("node2", cfg()))
    run.at(1.0, view("node2", "node3", joined=True))
    # it knows nothing of node1: it must not block (the running members decide)...
    assert not recovery_blocked(run.state, "node1")
    # ...and once it sees node1 lost itself, it does
    run.at(2.0, view("node1", "node2", "node3"))
    run.at(3.0, view("node2", "node3"))
    assert recovery_blocked(run.state, "node1")


def test_a_fence_of_the_coordinator_is_run_by_another_member_never_by_itself():
    """Simulator seed 3304835208143: the coordinator ran a manual fence of itself; the power
    cut killed the daemon before it recorded the result, the intent stayed open, and at
    every return the coordinator fenced itself again (and whoever it fenced alongside)."""
    coordinator = started(local="node1")
    step = coordinator.at(1.0, FenceRequested("node1", "admin@node2"))
    assert runs(step) == []                               # never its own power cut
    assert not coordinator.state.executes("node1")
    deputy = started(local="node2")
    step = deputy.at(1.0, FenceRequested("node1", "admin@node2"))
    assert runs(step) == [("node1", 1)]                   # the next member by nodeid
    assert deputy.state.executor_of("node1") == "node2"
    assert deputy.state.executor_of("node3") == "node1"   # others: still the coordinator
    step = deputy.at(2.0, FenceRequested("node3", "admin@node2"))
    assert runs(step) == []
    alone = Run(FencingState.initial("node1", cfg({"node1": 1})))
    alone.at(0.0, view("node1"))
    step = alone.at(1.0, FenceRequested("node1", "admin@node1"))
    assert runs(step) == [("node1", 1)]                   # alone: nobody else can
