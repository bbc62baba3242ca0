"""Why a view changes, as the membership lines say it: proposal reasons and the member
events of a change (pure), then a clean leave and a crash through real cores."""

from __future__ import annotations

import dataclasses

import pytest
from clusterd.events import NodeFailed, NodeJoined, NodeLeft, ViewInstalled
from clusterd.membership.views import LEFT_CLEANLY, change_events, proposal_reason
from clusterd.wire.messages import View, ViewId
from test_membership_core import Bus

CURRENT = {(1, 10), (2, 20), (3, 30)}

REASONS = [
    ({(1, 10), (2, 20)}, {3: LEFT_CLEANLY},
     "node 3 left cleanly (its services were stopped)"),
    ({(1, 10)}, {2: "silent for 1000 ms", 3: "silent for 1000 ms"},
     "nodes [2, 3] silent for 1000 ms"),
    ({(1, 10)}, {2: LEFT_CLEANLY, 3: "silent for 1000 ms"},
     "node 2 left cleanly (its services were stopped); node 3 silent for 1000 ms"),
    ({(1, 10), (2, 21), (3, 30)}, {}, "node 2 restarted (new incarnation)"),
    ({(1, 10), (2, 20), (3, 30), (4, 40)}, {}, "node 4 reachable both ways"),
    ({(1, 10), (2, 20)}, {3: "does not hear this node"}, "node 3 does not hear this node"),
    (CURRENT, {}, "taking over as coordinator"),
]


@pytest.mark.parametrize(("desired", "why", "reason"), REASONS)
def test_proposal_reason(desired, why, reason):
    assert proposal_reason(1, CURRENT, desired, why) == reason


def test_proposal_reason_at_start():
    assert proposal_reason(1, set(), {(1, 10)}, {}).startswith("starting")


def test_change_events_tell_a_leave_from_a_failure():
    old = View(ViewId(4, 1, 10), tuple(sorted(CURRENT)))
    new = View(ViewId(5, 1, 10), ((1, 10), (4, 40)))
    events = change_events(1, old, new, {2: 20}, "node 3 silent for 1000 ms")
    assert events == [
        NodeLeft(2, 20, "node 2 left cleanly (its services were stopped)"),
        NodeFailed(3, 30, "node 3 failed: not in view 5/1 (node 3 silent for 1000 ms)"),
        NodeJoined(4, 40, "node 4 joined view 5/1")]


def test_a_clean_leave_is_never_called_silence():
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    seen = {i: len(bus.events[i]) for i in (1, 2)}
    bus.pump(3, bus.cores[3].leave("clean shutdown", bus.now))
    bus.run(1.0)
    for i in (1, 2):
        new = bus.events[i][seen[i]:]
        (installed,) = [e for e in new if isinstance(e, ViewInstalled)]
        assert installed.view.nodeids == {1, 2}
        assert "silent" not in installed.reason
        assert [e.reason for e in new if isinstance(e, NodeLeft)] == [
            "node 3 left cleanly (its services were stopped)"]
        assert not [e for e in new if isinstance(e, NodeFailed)]
    # the coordinator (node 1) says why it proposed the view
    (coord,) = [e for e in bus.events[1][seen[1]:] if isinstance(e, ViewInstalled)]
    assert coord.reason.startswith("node 3 left cleanly (its services were stopped)")


def test_a_crash_is_called_silence():
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    seen = len(bus.events[1])
    bus.cut = {(3, 1), (3, 2), (1, 3), (2, 3)}
    bus.run(2.0)
    new = bus.events[1][seen:]
    (installed,) = [e for e in new if isinstance(e, ViewInstalled)]
    assert installed.reason.startswith("node 3 silent for 1000 ms")
    (failed,) = [e for e in new if isinstance(e, NodeFailed)]
    assert failed.reason.startswith("node 3 failed: not in view")


def test_one_heartbeat_read_late_without_the_view_proposes_nothing():
    """A member's heartbeat sent before it installed the view but read here more than a
    token later (either loop stalled on a busy machine) is not a member that fell out:
    the coordinator proposes again only when the member keeps advertising no view for a
    token of its own heartbeats (seed 579853886433 is that case, in tests/sim)."""
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    core1 = bus.cores[1]
    vid = core1.view.vid
    last = core1.table.peers[2].hb
    late = dataclasses.replace(last, view=None, n=last.n + 1)
    bus.pump(1, core1.on_message(2, bus.cores[2].inc, late, bus.now))
    bus.run(2.0)
    assert all(c.view.vid == vid for c in bus.cores.values())
    assert not [e for e in bus.of(1, ViewInstalled) if e.view.vid.epoch > vid.epoch]


def test_a_member_that_keeps_advertising_no_view_is_proposed_again():
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    core1, core2 = bus.cores[1], bus.cores[2]
    vid = core1.view.vid
    bus.cut = {(2, 1)}          # node 1 hears node 2 only through what the test sends
    for k in range(1, 5):
        last = core1.table.peers[2].hb
        stuck = dataclasses.replace(last, view=None, n=last.n + 1)
        bus.pump(1, core1.on_message(2, core2.inc, stuck, bus.now))
        bus.run(core1.cfg.heartbeat_interval)
    bus.cut = set()
    bus.run(2.0)
    (proposed,) = [e for e in bus.of(1, ViewInstalled) if e.view.vid.epoch > vid.epoch][:1]
    assert "still run no view" in proposed.reason
