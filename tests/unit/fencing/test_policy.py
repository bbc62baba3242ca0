"""Fencing policy: table-style tests of every rule (pure, no I/O)."""

from __future__ import annotations

import pytest
from clusterd.fencing.policy import backoff, next_wakeup, recovery_allowed
from clusterd.fencing.state import (
    AckResult,
    ConfigChanged,
    FenceAcked,
    FencePhase,
    FenceRequested,
    FenceResult,
    FencingState,
    PersistIntents,
    ServicesRunning,
    Tick,
)
from fencing_builders import cfg, runs, started, view


def test_lost_node_is_fenced_after_post_fail_delay_and_recovered_only_after_success():
    run = started(config=cfg(post_fail_delay=3))
    s = run.at(10.0, view("node1", "node2"))
    assert runs(s) == [] and "lost from the view" in s.reason
    assert run.op("node3").phase is FencePhase.PENDING
    assert any(isinstance(a, PersistIntents) for a in s.actions)
    assert not recovery_allowed(run.state, "node3")
    assert runs(run.at(12.9, Tick())) == []
    assert next_wakeup(run.state) == 13.0
    assert runs(run.at(13.0, Tick())) == [("node3", 1)]
    assert not recovery_allowed(run.state, "node3")
    s = run.at(13.5, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    assert "node3 fenced (node3#1, method ipmi): recovery allowed" in s.reason
    assert recovery_allowed(run.state, "node3")


def test_clean_leave_is_not_fenced():
    run = started()
    s = run.at(1.0, view("node1", "node2", left=["node3"]))
    assert runs(s) == [] and run.op("node3") is None
    assert "node3 left cleanly: not fenced" in s.reason
    assert recovery_allowed(run.state, "node3")


def test_inquorate_partition_never_fences_nor_recovers_and_quorum_return_fences():
    run = started()
    s = run.at(1.0, view("node1", quorate=False))
    assert runs(s) == [] and run.state.ops == {}
    assert "inquorate" in s.reason
    assert not any(recovery_allowed(run.state, n) for n in ("node1", "node2", "node3"))
    assert runs(run.at(100.0, Tick())) == []
    s = run.at(101.0, view("node1", "node2", inc={"node2": "node2-a"}))
    assert runs(s) == [("node3", 1)]         # the loss seen while inquorate is fenced now


def test_only_the_coordinator_executes_and_a_new_coordinator_takes_over():
    run = started(local="node2")
    s = run.at(1.0, view("node2", "node3", coord="node3"))       # node1 lost
    assert runs(s) == [] and run.op("node1").phase is FencePhase.PENDING
    s = run.at(2.0, view("node2", coord="node2", quorate=True))  # node3 lost too
    assert sorted(runs(s)) == [("node1", 1), ("node3", 1)]


def test_a_run_owned_by_a_former_coordinator_is_taken_over():
    run = started(local="node2")
    run.at(1.0, view("node1", "node2"))                            # node3 lost, node1 runs
    from dataclasses import replace
    op = replace(run.op("node3"), phase=FencePhase.RUNNING, executor="node1", attempts=1)
    run.state = replace(run.state, ops={"node3": op})
    s = run.at(2.0, view("node2", coord="node2"))                  # node1 dies mid-run
    assert ("node3", 2) in runs(s) and "taking over node3#1 from node1" in s.reason


@pytest.mark.parametrize("attempts, expected", [(0, 0), (1, 1), (2, 2), (3, 4), (5, 16),
                                                (6, 30), (50, 30), (10_000, 30)])
def test_backoff_doubles_and_caps(attempts, expected):
    assert backoff(attempts, cfg()) == expected


def test_failures_retry_with_backoff_forever_and_recovery_stays_blocked():
    run = started()
    now = 1.0
    run.at(now, view("node1", "node2"))
    attempts_seen = []
    for attempt in range(1, 16):
        (victim, n), = runs(run.steps[-1]) or runs(run.at(now, Tick()))
        attempts_seen.append((victim, n))
        s = run.at(now + 0.1, FenceResult("node3", "node3#1", ok=False, error="BMC timeout"))
        assert "recovery stays blocked" in s.reason
        assert not recovery_allowed(run.state, "node3")
        wake = next_wakeup(run.state)
        assert wake == pytest.approx(now + 0.1 + min(2 ** (attempt - 1), 30))
        now = wake
        run.at(now, Tick())
    assert attempts_seen == [("node3", n) for n in range(1, 16)]
    assert run.op("node3").last_error == "BMC timeout"


def test_manual_ack_unblocks_recovery_and_is_refused_without_pending_fence():
    run = started()
    run.at(1.0, view("node1", "node2"))
    run.at(1.5, FenceResult("node3", "node3#1", ok=False, error="no answer"))
    s = run.at(2.0, FenceAcked("node3", by="root"))
    assert AckResult("node3", True, "node3#1") in s.actions
    assert run.op("node3").phase is FencePhase.ACKED
    assert recovery_allowed(run.state, "node3")
    s = run.at(3.0, FenceAcked("node2", by="root"))
    assert AckResult("node2", False, "no pending fence operation for node2") in s.actions
    # a late result of the acked run is ignored
    s = run.at(4.0, FenceResult("node3", "node3#1", ok=False, error="late"))
    assert "stale fence result" in s.reason and run.op("node3").phase is FencePhase.ACKED


def test_requests_for_the_same_node_merge_into_one_operation():
    run = started(config=cfg(post_fail_delay=5))
    run.at(1.0, view("node1", "node2"))
    s = run.at(1.1, FenceRequested("node3", "node2", reason="stop failure of service:web"))
    assert "merged node2 request into node3#1" in s.reason
    assert runs(s) == [("node3", 1)]                   # a manual request skips the delay
    s = run.at(1.2, FenceRequested("node3", "admin"))
    assert runs(s) == [] and run.op("node3").op_id == "node3#1"
    assert run.op("node3").requesters == ("membership", "node2", "admin")
    assert runs(run.at(10.0, Tick())) == []            # still one op, running


def test_rejoin_with_new_incarnation_before_fencing_cancels_and_clears_failures():
    run = started(config=cfg(post_fail_delay=2))
    run.at(1.0, view("node1", "node2"))
    run.at(3.0, Tick())
    run.at(3.5, FenceResult("node3", "node3#1", ok=False, error="BMC dead"))
    assert run.op("node3").attempts == 1
    s = run.at(4.0, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    assert "new incarnation before being fenced: node3#1 cancelled" in s.reason
    assert run.op("node3").phase is FencePhase.CANCELLED and run.op("node3").attempts == 0
    assert recovery_allowed(run.state, "node3") and runs(run.at(60.0, Tick())) == []
    # lost again later: a fresh operation, counters start from zero
    run.at(70.0, view("node1", "node2"))
    assert run.op("node3").op_id == "node3#2"
    assert runs(run.at(72.0, Tick())) == [("node3", 1)]


def test_reappearing_with_the_same_incarnation_is_still_fenced():
    run = started(config=cfg(post_fail_delay=2))
    run.at(1.0, view("node1", "node2"))
    s = run.at(1.5, view("node1", "node2", "node3"))              # same incarnation node3-a
    assert "back with the same incarnation node3-a: still fenced" in s.reason
    assert not recovery_allowed(run.state, "node3")
    assert runs(run.at(3.0, Tick())) == [("node3", 1)]
    run.at(3.2, FenceResult("node3", "node3#1", ok=True))
    s = run.at(3.4, view("node1", "node2"))                       # it died of the fence
    assert "is gone after its fence: not fenced again" in s.reason
    assert run.op("node3").phase is FencePhase.DONE and runs(run.at(9.0, Tick())) == []


def test_victim_fenced_then_rebooted_is_not_fenced_again_but_a_later_failure_is():
    run = started()
    run.at(1.0, view("node1", "node2"))
    run.at(1.2, FenceResult("node3", "node3#1", ok=True))
    s = run.at(30.0, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    assert runs(s) == [] and run.op("node3").phase is FencePhase.DONE
    s = run.at(40.0, view("node1", "node2"))                      # the new life fails
    assert runs(s) == [("node3", 1)] and run.op("node3").op_id == "node3#2"


def test_a_running_attempt_decides_when_the_victim_rejoins_meanwhile():
    run = started()
    run.at(1.0, view("node1", "node2"))
    s = run.at(1.1, view("node1", "node2", "node3", inc={"node3": "node3-b"}))
    assert "while being fenced; the running attempt decides" in s.reason
    s = run.at(1.2, FenceResult("node3", "node3#1", ok=False, error="x"))
    assert "rejoined with a new incarnation: node3#1 cancelled" in s.reason


@pytest.mark.parametrize("config, joins_at, expect_run_at", [
    (cfg(post_join_delay=6), None, 6.0),      # never-seen node fenced after the delay
    (cfg(post_join_delay=6), 3.0, None),      # joins inside the delay: not fenced
    (cfg(post_join_delay=6, clean_start=True), None, None),
    (cfg(post_join_delay=-1), None, None),    # -1: never startup-fence
])
def test_startup_fencing(config, joins_at, expect_run_at):
    run = started(config=config, members=("node1", "node2"))
    assert runs(run.steps[0]) == []
    if joins_at is not None:
        run.at(joins_at, view("node1", "node2", "node3"))
    fired = [t for t in (5.9, 6.0, 60.0) if runs(run.at(t, Tick()))]
    assert fired[:1] == ([expect_run_at] if expect_run_at is not None else [])


def test_startup_with_post_join_delay_minus_one_blocks_recovery_until_join_or_ack():
    run = started(config=cfg(post_join_delay=-1), members=("node1", "node2"))
    assert not recovery_allowed(run.state, "node3")
    run.at(1.0, FenceAcked("node3"))
    assert recovery_allowed(run.state, "node3")


def test_no_startup_fencing_when_joining_a_running_cluster():
    from fencing_builders import Run
    run = Run(FencingState.initial("node1", cfg()))
    run.at(0.0, view("node1", "node2", joined=True))
    assert run.state.ops == {} and runs(run.at(100.0, Tick())) == []


def test_startup_waits_for_quorum():
    from fencing_builders import Run
    run = Run(FencingState.initial("node1", cfg()))
    run.at(0.0, view("node1", quorate=False))
    assert run.state.ops == {}
    run.at(50.0, view("node1", "node2"))
    assert runs(run.at(55.0, Tick())) == [] and runs(run.at(56.0, Tick())) == [("node3", 1)]


TWO = {"a": 1, "b": 2}


@pytest.mark.parametrize("local, services, expect_delay", [
    ("a", {"a": 1, "b": 0}, 0.0),     # I run the services: I shoot first
    ("b", {"a": 1, "b": 0}, 5.0),     # the peer runs them: I wait
    ("a", {"a": 0, "b": 2}, 5.0),     # services moved to b: the delay follows them
    ("b", {"a": 0, "b": 2}, 0.0),
    ("a", {}, 0.0),                   # tie: lower nodeid is undelayed
    ("b", {}, 5.0),
    ("b", {"a": 1, "b": 1}, 5.0),
])
def test_two_node_delay_follows_the_services(local, services, expect_delay):
    from fencing_builders import Run
    run = Run(FencingState.initial(local, cfg(TWO, two_node=True, two_node_delay=5.0)))
    run.at(0.0, view("a", "b", coord="a"))
    run.at(0.5, ServicesRunning(services))
    peer = "b" if local == "a" else "a"
    run.at(1.0, view(local, coord=local))
    assert run.op(peer).not_before == pytest.approx(1.0 + expect_delay)


def test_symmetric_two_node_partition_has_one_shooter_first():
    from fencing_builders import Run
    sides = {}
    for local in ("a", "b"):
        run = Run(FencingState.initial(local, cfg(TWO, two_node=True)))
        run.at(0.0, view("a", "b", coord="a"))
        run.at(0.1, ServicesRunning({"b": 3}))
        run.at(1.0, view(local, coord=local))
        sides[local] = run.op("b" if local == "a" else "a").not_before
    assert sides["b"] < sides["a"]


def test_stale_or_unknown_results_are_ignored():
    run = started()
    run.at(1.0, view("node1", "node2"))
    s = run.at(1.1, FenceResult("node3", "node3#9", ok=True))
    assert "stale" in s.reason and not recovery_allowed(run.state, "node3")


def test_unknown_node_request_is_refused():
    run = started()
    s = run.at(1.0, FenceRequested("node9", "admin"))
    assert AckResult("node9", False, "unknown node node9") in s.actions


def test_manual_fence_of_a_member_is_not_cancelled_by_its_restart():
    run = started()
    s = run.at(1.0, FenceRequested("node2", "admin", reason="stop failure"))
    assert runs(s) == [("node2", 1)]
    run.at(1.5, view("node1", "node2", "node3", inc={"node2": "node2-b"}))
    run.at(2.0, FenceResult("node2", "node2#1", ok=False, error="x"))
    assert run.op("node2").phase is FencePhase.FAILED          # ends only by success or ack


def test_config_change_applies_new_delays_to_new_intents():
    run = started()
    run.at(1.0, ConfigChanged(cfg(post_fail_delay=10)))
    run.at(2.0, view("node1", "node2"))
    assert run.op("node3").not_before == 12.0


def test_members_that_do_not_execute_follow_the_coordinators_results():
    run = started(local="node2")
    run.at(1.0, view("node1", "node2"))                  # node1 coordinates, node2 watches
    assert run.op("node3").phase is FencePhase.PENDING and not recovery_allowed(run.state, "node3")
    s = run.at(1.5, FenceResult("node3", "node3#1", ok=False, error="BMC timeout"))
    assert run.op("node3").attempts == 1 and "retry in 1s" in s.reason
    run.at(3.0, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    assert run.op("node3").phase is FencePhase.DONE and recovery_allowed(run.state, "node3")


def test_ack_is_refused_for_a_node_whose_heartbeats_are_heard():
    run = started()
    run.at(1.0, FenceRequested("node2", "admin"))
    s = run.at(1.1, FenceAcked("node2"))
    assert not s.actions[-1].ok and "node2 is a member of the current view" in s.reason


def test_view_changed_from_a_membership_view():
    from clusterd.fencing.state import ViewChanged
    from clusterd.wire.messages import View, ViewId
    v = View(ViewId(7, 1, 99), ((1, 1001), (2, 2002), (9, 9009)))
    ev = ViewChanged.from_membership(v, {1: "node1", 2: "node2", 3: "node3"}, quorate=True,
                                     left_clean=[3])
    assert dict(ev.members) == {"node1": "1001", "node2": "2002", "nodeid:9": "9009"}
    assert ev.coordinator == "node1" and ev.left_clean == frozenset({"node3"}) and ev.quorate
