"""Node cycle policy (pure): events fold into state and actions; leave sequencing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from clusterd import events as ev
from clusterd.membership.standing import Standing, ViewQuorum
from clusterd.node import cycle as c
from clusterd.wire.messages import View, ViewId

VIEW = View(ViewId(4, 1, 99), ((1, 99), (2, 5), (3, 7)))


def test_view_and_quorum_events_update_state():
    state, actions = c.fold_events(c.NodeState(), [
        ev.ViewInstalled(VIEW, "all three agree"),
        ev.QuorumChanged(True, 3, 2, "3 of 3 votes")])
    assert state.quorate
    assert [type(a) for a in actions] == [c.Report, c.Report]
    assert "installed view 4/1" in actions[0].message


def test_quorum_loss_stops_services():
    _, actions = c.fold_events(c.NodeState(quorate=True), [ev.QuorumChanged(False, 1, 2, "x")])
    assert actions == [c.Report("warning", "quorum lost: x"), c.StopServices("quorum lost: x")]


def test_the_quorum_a_node_gives_up_by_leaving_is_no_loss():
    gone = ev.QuorumChanged(False, 0, 2, "left the cluster: clean shutdown")
    _, actions = c.fold_events(c.NodeState(quorate=True), [gone], left=True)
    assert actions == [c.Report("debug", "quorum given up: left the cluster: clean shutdown")]


NAMES = {1: "node1", 2: "node2", 3: "node3"}
MEMBER_LINES = [
    (ev.NodeLeft(3, 7, "node 3 left cleanly (its services were stopped)"),
     c.Report("info", "node3 left cleanly (its services were stopped)")),
    (ev.NodeFailed(2, 5, "node 2 failed: not in view 5/1 (node 2 silent for 1000 ms)"),
     c.Report("warning", "node2 failed: not in view 5/1 (node 2 silent for 1000 ms)")),
    (ev.NodeFailed(2, 5, "no heartbeat"), c.Report("warning", "node2 failed: no heartbeat")),
    (ev.NodeJoined(9, 1, "node 9 joined view 6/1"),
     c.Report("info", "node 9 joined view 6/1")),          # not in the config: its id
]


@pytest.mark.parametrize(("event", "report"), MEMBER_LINES)
def test_member_lines_name_the_node(event, report):
    assert c.fold_events(c.NodeState(), [event], names=NAMES)[1] == [report]


def test_dropped_from_view_stops_services_and_keeps_the_incarnation():
    state = c.NodeState(quorate=True, incarnation=5)
    state, actions = c.fold_events(state, [ev.MustStopServices("dropped from view 4")])
    assert state.incarnation == 5
    assert actions == [c.StopServices("dropped from view 4")]


def test_config_events():
    conflict = ev.ConfigConflict(3, 4, "aa", "bb", "same version, different content")
    state, actions = c.fold_events(c.NodeState(), [conflict])
    assert state.conflict == conflict and actions[0].level == "error"
    state, actions = c.fold_events(state, [ev.WriteConfig(b"<cluster/>", 5, "cc", "pulled")])
    assert state.conflict is None
    assert actions == [c.ApplyConfig(b"<cluster/>", 5, "cc", "pulled")]


def snap(**kw) -> c.NodeSnapshot:
    return c.NodeSnapshot(**{"now": 0.0, "phase": c.DaemonPhase.RUNNING, "state": c.NodeState(),
                             **kw})


LEAVE_STEPS = [
    ({"services_running": 2}, (c.StopServices,), "leaving: 2 service(s) still running"),
    ({"in_flight": ("stop web",)}, (), "leaving: waiting for stop web"),
    ({}, (c.AnnounceLeave,), "leaving: services stopped, announcing the leave"),
    ({"leave_announced": True}, (c.Exit,), "leaving: done"),
]


@pytest.mark.parametrize(("kw", "kinds", "reason"), LEAVE_STEPS)
def test_leave_stops_services_first_then_announces_then_exits(kw, kinds, reason):
    d = c.decide(snap(phase=c.DaemonPhase.LEAVING, **kw))
    assert tuple(type(a) for a in d.actions) == kinds and d.reason == reason


def test_running_reasons_state_the_view_standing():
    assert c.decide(snap()).reason == "waiting to join a view"
    q = ViewQuorum(4, ("node1", "node2"), 2, 3, 2, Standing.QUORATE)
    d = c.decide(snap(quorum=q))
    assert (d.reason, d.settled) == (
        "view 4: 2 members (node1, node2), 2 of 3 expected votes, quorum 2: quorate", True)
    d = c.decide(snap(quorum=replace(q, standing=Standing.WAITING)))
    assert not d.settled and d.reason.endswith("quorum 2: waiting for its members' quorum "
                                               "leases")


RESTART_STEPS = [
    ({"services_running": 2, "services_busy": 1}, (),
     "restarting: waiting for 1 service operation(s) in flight"),
    ({"services_running": 2, "in_flight": ("stop services services",)}, (),
     "restarting: waiting for stop services services"),
    ({"services_running": 2}, (c.AnnounceLeave("restart", hold=True),),
     "restarting: announcing a restart that keeps 2 service(s) running"),
    ({"services_running": 2, "leave_announced": True}, (c.Exit(0, "restarting"),),
     "restarting: done, 2 service(s) left running for the next daemon"),
]


@pytest.mark.parametrize(("kw", "actions", "reason"), RESTART_STEPS)
def test_a_restart_never_stops_services_and_announces_a_hold(kw, actions, reason):
    d = c.decide(snap(phase=c.DaemonPhase.RESTARTING, **kw))
    assert (d.actions, d.reason) == (actions, reason)


LOST = ev.QuorumChanged(False, 1, 2, "1 vote, quorum 2")
RESTARTS = ev.NodeLeft(2, 5, "node 2 restarts keeping its services running", hold=True)


def test_quorum_lost_while_peers_restart_keeps_services_until_back_or_grace_ends():
    state, _ = c.fold_events(c.NodeState(quorate=True), [RESTARTS], now=100.0, grace=60.0)
    assert state.restarting == ((2, 160.0),)
    state, actions = c.fold_events(state, [LOST], names=NAMES, now=101.0, grace=60.0)
    assert not any(isinstance(a, c.StopServices) for a in actions)
    assert actions[0].message == ("quorum lost: 1 vote, quorum 2; node2 restart(s) keeping "
                                  "their services: this node keeps its own running until "
                                  "quorum is back, at most 59s more")
    assert state.stop_due == 160.0
    # nothing happens before the grace ends ...
    assert c.fold_events(state, [], now=159.0)[1] == []
    # ... then the services stop, once
    state, actions = c.fold_events(state, [], now=160.0)
    assert [type(a) for a in actions] == [c.Report, c.StopServices]
    assert state.stop_due is None and state.restarting == ()
    assert c.fold_events(state, [], now=161.0)[1] == []


def test_the_restarted_peer_back_and_quorum_regained_cancel_the_pending_stop():
    state, _ = c.fold_events(c.NodeState(quorate=True), [RESTARTS, LOST], now=10.0)
    assert state.stop_due is not None
    state, _ = c.fold_events(state, [ev.NodeJoined(2, 6), ev.QuorumChanged(True, 2, 2, "ok")],
                             now=12.0)
    assert (state.stop_due, state.restarting) == (None, ())
    assert c.fold_events(state, [], now=500.0)[1] == []


def test_quorum_lost_after_the_grace_or_after_plain_leaves_stops_at_once():
    state, _ = c.fold_events(c.NodeState(quorate=True), [RESTARTS], now=0.0, grace=60.0)
    _, actions = c.fold_events(state, [LOST], now=61.0)
    assert [type(a) for a in actions] == [c.Report, c.StopServices]
    left = ev.NodeLeft(2, 5, "node 2 left cleanly (its services were stopped)")
    _, actions = c.fold_events(c.NodeState(quorate=True), [left, LOST], now=0.0)
    assert actions[-1] == c.StopServices("quorum lost: 1 vote, quorum 2")
