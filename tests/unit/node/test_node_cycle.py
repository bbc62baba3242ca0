"""Node cycle policy (pure): events fold into state and actions; leave sequencing."""

from __future__ import annotations

import pytest
from clusterd.membership import events as ev
from clusterd.node import cycle as c
from clusterd.wire.messages import View, ViewId

VIEW = View(ViewId(4, 1, 99), ((1, 99), (2, 5), (3, 7)))


def test_view_and_quorum_events_update_state():
    state, actions = c.fold_events(c.NodeState(), [
        ev.ViewInstalled(VIEW, "all three agree"),
        ev.QuorumChanged(True, 3, 2, "3 of 3 votes")])
    assert (state.epoch, state.members, state.coordinator) == (4, frozenset({1, 2, 3}), 1)
    assert (state.quorate, state.votes, state.quorum) == (True, 3, 2)
    assert [type(a) for a in actions] == [c.Report, c.Report]
    assert state.view_label == "4"


def test_quorum_loss_stops_services():
    _, actions = c.fold_events(c.NodeState(quorate=True), [ev.QuorumChanged(False, 1, 2, "x")])
    assert c.StopServices("quorum lost: x") in actions


def test_dropped_from_view_stops_services_and_persists_incarnation():
    state = c.NodeState(epoch=4, members=frozenset({1, 2}), incarnation=5)
    state, actions = c.fold_events(state, [ev.MustStopServices("dropped from view 4"),
                                           ev.IncarnationChanged(6, "rejoining")])
    assert state.incarnation == 6 and not state.members and state.view_label == "-"
    assert actions == [c.StopServices("dropped from view 4"),
                       c.PersistIncarnation(6, "rejoining")]


def test_config_events():
    conflict = ev.ConfigConflict(3, 4, "aa", "bb", "same version, different content")
    state, actions = c.fold_events(c.NodeState(), [conflict])
    assert state.conflict == conflict and actions[0].level == "error"
    state, actions = c.fold_events(state, [ev.WriteConfig(b"<cluster/>", 5, "cc", "pulled")])
    assert state.conflict is None
    assert actions == [c.WriteConfig(b"<cluster/>", 5, "cc", "pulled")]


def snap(**kw) -> c.Snapshot:
    return c.Snapshot(**{"now": 0.0, "phase": c.Phase.RUNNING, "state": c.NodeState(), **kw})


LEAVE_STEPS = [
    ({"services_running": 2}, (c.StopServices,), "leaving: 2 service(s) still running"),
    ({"in_flight": ("stop web",)}, (), "leaving: waiting for stop web"),
    ({}, (c.AnnounceLeave,), "leaving: services stopped, announcing the leave"),
    ({"leave_announced": True}, (c.Exit,), "leaving: done"),
]


@pytest.mark.parametrize(("kw", "kinds", "reason"), LEAVE_STEPS)
def test_leave_stops_services_first_then_announces_then_exits(kw, kinds, reason):
    d = c.decide(snap(phase=c.Phase.LEAVING, **kw))
    assert tuple(type(a) for a in d.actions) == kinds and d.reason == reason


def test_running_reasons():
    assert c.decide(snap()).reason == "waiting to join a view"
    s = c.NodeState(epoch=4, members=frozenset({1, 2}), quorate=True, votes=2, quorum=2)
    assert c.decide(snap(state=s)).reason == "member of view 4 (2 members, quorate, 2/2 votes)"
