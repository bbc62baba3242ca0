"""Fence state shared by every member: the fence.state message, its validation, and the
merge (every member shows the same operations; a new coordinator carries on)."""

from __future__ import annotations

import itertools

import pytest
from clusterd.fencing.exchange import (
    FenceStateMessage,
    MessageError,
    digest,
    peer_behind,
    rank,
)
from clusterd.fencing.ops import fence_status
from clusterd.fencing.policy import recovery_allowed
from clusterd.fencing.state import (
    FencePhase,
    FenceRequested,
    FenceResult,
    FencingState,
    PeerFenceState,
    Tick,
)
from fencing_builders import Run, cfg, runs, view

WALL = 1_764_100_000.0


def member(local: str, **config) -> Run:
    run = Run(FencingState.initial(local, cfg(**config)))
    run.at(0.0, view("node1", "node2", "node3"))
    return run


def share(src: Run, dst: Run, now: float, epoch: int = 2, skew: float = 0.0):
    """What dst's glue does with src's broadcast (through the wire form)."""
    msg = FenceStateMessage.build(src.state, epoch, now, WALL + skew)
    wire = FenceStateMessage.from_wire(msg.to_wire())
    return dst.at(now, PeerFenceState(src.state.local, wire))


def test_non_coordinator_shows_the_failed_fence_with_error_and_retry_then_done():
    n1, n2 = member("node1"), member("node2")
    for run in (n1, n2):
        run.at(5.0, view("node1", "node2"))
    assert runs(n1.steps[-1]) == [("node3", 1)]                 # only the coordinator runs
    n1.at(6.0, FenceResult("node3", "node3#1", ok=False, error="BMC timeout"))
    share(n1, n2, 6.1, skew=3600.0)                             # peer wall clock is 1h off
    op = n2.state.ops["node3"]
    assert (op.phase, op.attempts, op.last_error) == (FencePhase.FAILED, 1, "BMC timeout")
    assert op.not_before == pytest.approx(7.0)                  # skew cancels
    shown = fence_status(n2.state, 6.1, WALL)[0]
    assert shown["state"] == "failed" and shown["next_attempt"] == round(WALL + 0.9)
    assert not recovery_allowed(n2.state, "node3")
    assert runs(n2.at(8.0, Tick())) == []                       # n2 is not the executor
    runs(n1.at(7.0, Tick()))
    n1.at(7.5, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    share(n1, n2, 7.6)
    op = n2.state.ops["node3"]
    assert op.phase is FencePhase.DONE and op.method == "ipmi" and op.finished == pytest.approx(7.5)
    assert recovery_allowed(n2.state, "node3")
    assert fence_status(n2.state, 8.0, WALL) == fence_status(n1.state, 8.0, WALL)


def test_new_coordinator_carries_on_a_fence_the_lost_coordinator_was_running():
    n1, n2 = member("node1"), member("node2")
    for run in (n1, n2):
        run.at(5.0, view("node1", "node2"))
    share(n1, n2, 5.1)
    assert n2.state.ops["node3"].phase is FencePhase.RUNNING
    assert n2.state.ops["node3"].executor == "node1"
    # node1 dies mid-fence: node2 alone, quorate (two votes of three are not needed here:
    # the view is declared quorate by membership), takes over
    step = n2.at(9.0, view("node2", quorate=True))
    assert ("node3", 2) in runs(step) and ("node1", 1) in runs(step)
    assert not recovery_allowed(n2.state, "node3")


def test_manual_request_on_a_non_coordinator_is_executed_by_the_coordinator():
    n1, n2 = member("node1"), member("node2")
    n2.at(1.0, FenceRequested("node3", "uid 0", "by hand"))
    assert runs(n2.steps[-1]) == []
    step = share(n2, n1, 1.1)
    assert runs(step) == [("node3", 1)]
    assert n1.state.ops["node3"].requesters == ("uid 0",)


def test_merge_is_order_independent_and_idempotent():
    n1, n2, n3 = member("node1"), member("node2"), member("node3")
    for run in (n1, n2, n3):
        run.at(5.0, view("node1", "node2"))
    n1.at(6.0, FenceResult("node3", "node3#1", ok=False, error="first"))
    n2.at(6.0, FenceRequested("node3", "uid 7"))
    msgs = [FenceStateMessage.build(r.state, 2, 6.5, WALL) for r in (n1, n2)]
    results = set()
    for order in itertools.permutations(msgs * 2):
        probe = member("node3")
        probe.at(5.0, view("node1", "node2", "node3"))
        for i, msg in enumerate(order):
            probe.at(6.5, PeerFenceState(f"peer{i}", msg))
        op = probe.state.ops["node3"]
        results.add((rank(op), op.requesters))
    assert len(results) == 1
    (op_rank, requesters), = results
    assert op_rank[:4] == (1, 0, 1, 2) and set(requesters) == {"membership", "uid 7"}


def test_an_older_copy_never_undoes_a_newer_local_state():
    n1, n2 = member("node1"), member("node2")
    for run in (n1, n2):
        run.at(5.0, view("node1", "node2"))
    stale = FenceStateMessage.build(n2.state, 2, 5.0, WALL)        # pending, 0 attempts
    n1.at(6.0, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    before = digest(n1.state)
    n1.at(6.1, PeerFenceState("node2", stale))
    assert digest(n1.state) == before and n1.state.ops["node3"].phase is FencePhase.DONE


def test_remote_cancel_needs_the_rejoin_to_be_visible_here():
    n1, n2 = member("node1", post_fail_delay=10), member("node2", post_fail_delay=10)
    for run in (n1, n2):
        run.at(5.0, view("node1", "node2"))
    # node2 saw node3 rejoin with a new incarnation (cancelled); node1 has not (yet)
    n2.at(5.5, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    assert n2.state.ops["node3"].phase is FencePhase.CANCELLED
    share(n2, n1, 5.6)
    assert n1.state.ops["node3"].phase.open
    n1.at(5.7, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    assert n1.state.ops["node3"].phase is FencePhase.CANCELLED


def test_an_intent_about_a_gone_incarnation_is_not_adopted():
    n1, n2 = member("node1"), member("node2")
    for run in (n1, n2):
        run.at(5.0, view("node1", "node2"))
    n2.at(5.5, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    fresh = member("node2")                       # node2 restarted, knows node3-b only
    fresh.at(6.0, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    share(n1, fresh, 6.1)
    assert "node3" not in fresh.state.ops


@pytest.mark.parametrize("mutate, words", [
    (lambda p: p.update(v=9), "version 9 is not supported"),
    (lambda p: p.pop("epoch"), "'epoch' is missing"),
    (lambda p: p.update(ops="x"), "'ops' must be a list"),
    (lambda p: p["ops"][0].update(generation="1"), "ops[0]: field 'generation' must be int"),
    (lambda p: p["ops"][0].update(phase="exploded"), "ops[0]: 'exploded' is not a valid FencePhase"),
    (lambda p: p["ops"][0].update(attempts=True), "'attempts' must be int, got bool"),
    (lambda p: p["ops"][0].update(requesters=[1]), "'requesters' must be a list of strings"),
    (lambda p: p["ops"].append(dict(p["ops"][0])), "one operation per victim"),
    (lambda p: p["ops"][0].update(node=""), "'node' must be a non-empty name"),
])
def test_malformed_messages_are_refused_with_the_field_named(mutate, words):
    n1 = member("node1")
    n1.at(5.0, view("node1", "node2"))
    payload = FenceStateMessage.build(n1.state, 2, 5.0, WALL).to_wire()
    mutate(payload)
    with pytest.raises(MessageError) as info:
        FenceStateMessage.from_wire(payload)
    assert words in str(info.value)


def test_unknown_victims_are_ignored_and_messages_stay_small():
    n1 = member("node1")
    n1.at(5.0, view("node1", "node2"))
    payload = FenceStateMessage.build(n1.state, 2, 5.0, WALL).to_wire()
    payload["ops"][0]["node"] = "intruder"
    n2 = member("node2")
    n2.at(5.1, PeerFenceState("node1", FenceStateMessage.from_wire(payload)))
    assert "intruder" not in n2.state.ops


def test_a_peer_with_an_older_copy_is_detected_so_it_gets_an_answer():
    n1, n2 = member("node1"), member("node2")
    for run in (n1, n2):
        run.at(5.0, view("node1", "node2"))
    n1.at(6.0, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    old = FenceStateMessage.build(n2.state, 2, 6.0, WALL)
    assert peer_behind(n1.state, old)
    share(n1, n2, 6.1)
    assert not peer_behind(n1.state, FenceStateMessage.build(n2.state, 2, 6.2, WALL))


def test_a_leave_that_arrives_after_the_view_change_cancels_the_intent_and_is_not_undone():
    """Rolling upgrade race seen in the lab: node3 stops its daemon cleanly; node2 installs
    the view without node3 before node3's leave reaches it (so node3 looks failed and
    node2 opens an intent), node1 had the leave in time. Nobody may fence node3."""
    n1, n2 = member("node1"), member("node2")
    n1.at(5.0, view("node1", "node2", left=["node3"]))
    assert "node3" not in n1.state.ops
    n2.at(5.0, view("node1", "node2"))
    assert n2.state.ops["node3"].phase is FencePhase.PENDING
    share(n2, n1, 5.01)                          # node1 must not adopt it
    assert "node3" not in n1.state.ops
    assert runs(n1.at(5.02, Tick())) == []
    s = n2.at(5.03, view("node1", "node2", left=["node3"]))    # the late leave
    assert n2.state.ops["node3"].phase is FencePhase.CANCELLED
    assert "node3 left cleanly after the view change" in s.reason
    assert recovery_allowed(n2.state, "node3") and recovery_allowed(n1.state, "node3")


def test_a_success_after_a_peer_cancelled_the_run_still_counts():
    """The executor's attempt is cancelled by a peer that saw the victim rejoin; the attempt
    then cuts the power of that new incarnation. The success is recorded (covering both
    incarnations), so the new incarnation's loss is not fenced again: ignoring it fenced
    every next incarnation of a node that reboots faster than its fence completes."""
    n1, n2 = member("node1", post_fail_delay=0), member("node2", post_fail_delay=0)
    for run in (n1, n2):
        run.at(5.0, view("node1", "node2"))
    n1.at(5.1, Tick())
    assert n1.state.ops["node3"].phase is FencePhase.RUNNING
    share(n1, n2, 5.2)
    for run in (n1, n2):
        run.at(5.5, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    assert n2.state.ops["node3"].phase is FencePhase.CANCELLED
    share(n2, n1, 5.6)
    assert n1.state.ops["node3"].phase is FencePhase.CANCELLED
    step = n1.at(6.0, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    assert "although the intent was cancelled meanwhile: recovery allowed" in step.reason
    assert n1.state.ops["node3"].phase is FencePhase.DONE
    share(n1, n2, 6.1)
    for run in (n1, n2):
        step = run.at(6.5, view("node1", "node2"))              # node3-b died by that fence
        assert "gone after its fence: not fenced again" in step.reason
        assert run.state.ops["node3"].phase is FencePhase.DONE
        assert runs(run.at(7.0, Tick())) == []
