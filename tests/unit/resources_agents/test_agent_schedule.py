"""Status-check scheduling: the highest due depth, overrides, record keeping (pure)."""

from __future__ import annotations

import pytest
from clusterd.resources.agents.metadata import AgentMeta
from clusterd.resources.agents.registry import status_schedule
from clusterd.resources.agents.schedule import (
    StatusCheck,
    StatusSchedule,
    due_checks,
    record_run,
    validate_overrides,
)
from clusterd.resources.rules import ActionSpec

IP = status_schedule("ip")          # depth 0 every 20 s, depth 10 every 60 s
FS = status_schedule("fs")          # depth 0 every 60 s, 10 every 30 s, 20 every 60 s


def test_builtin_schedules_follow_rgmanager():
    assert [(c.depth, c.interval) for c in IP.checks] == [(0, 20.0), (10, 60.0)]
    assert [(c.depth, c.interval) for c in FS.checks] == [(0, 60.0), (10, 30.0), (20, 60.0)]
    assert [(c.depth, c.interval) for c in status_schedule("script").checks] == [(0, 30.0)]


@pytest.mark.parametrize("last_runs, now, expected", [
    ({}, 100.0, 10),                       # never ran: the deepest check first
    ({0: 100.0, 10: 100.0}, 110.0, None),  # nothing elapsed
    ({0: 100.0, 10: 100.0}, 120.0, 0),     # 20 s: shallow only
    ({0: 140.0, 10: 100.0}, 160.0, 10),    # 60 s: deep (and it covers shallow)
    ({0: 100.0, 10: 100.0}, 500.0, 10),    # both overdue: the highest depth wins
    ({0: 100.0}, 101.0, 10),               # depth 10 never ran
])
def test_due_checks_runs_the_highest_elapsed_depth(last_runs, now, expected):
    assert due_checks(last_runs, now, IP) == expected


def test_record_run_marks_that_depth_and_shallower():
    runs = record_run({0: 1.0, 10: 1.0, 20: 1.0}, 10, 50.0, FS)
    assert runs == {0: 50.0, 10: 50.0, 20: 1.0}


def test_a_simulated_hour_of_ip_checks():
    last = {0: 0.0, 10: 0.0}
    ran = []
    for now in range(1, 3601):
        depth = due_checks(last, float(now), IP)
        if depth is not None:
            ran.append(depth)
            last = record_run(last, depth, float(now), IP)
    assert ran.count(10) == 60 and ran.count(0) == 120   # 180 checks, two shallow per deep


def test_instance_override_changes_interval_and_timeout():
    schedule = status_schedule("ip", overrides=[
        {"name": "status", "depth": "0", "interval": "5s", "timeout": "3"},
        {"name": "start", "timeout": "99"}])
    assert schedule.check(0) == StatusCheck(0, 5.0, 3.0)
    assert schedule.check(10) == StatusCheck(10, 60.0, 20.0)


def test_override_depth_star_applies_to_every_depth_and_zero_disables():
    schedule = status_schedule("fs", overrides=[{"name": "status", "depth": "*",
                                                 "interval": "0"}])
    assert all(c.interval == 0 for c in schedule.checks)
    assert due_checks({}, 1000.0, schedule) is None


def test_override_can_add_a_depth_and_ocf_monitor_actions_count():
    meta = AgentMeta("dummy", actions=(ActionSpec("monitor", timeout=5, interval=10, depth=0),))
    schedule = StatusSchedule.from_meta(meta, [{"name": "monitor", "depth": "20",
                                                "interval": "2m"}])
    assert [(c.depth, c.interval) for c in schedule.checks] == [(0, 10.0), (20, 120.0)]


def test_unknown_agent_without_status_actions_never_checks():
    assert due_checks({}, 10.0, status_schedule("mystery")) is None


def test_validate_overrides_reports_each_bad_value():
    reasons = [p.reason for p in validate_overrides([
        {"name": "status", "depth": "deep", "interval": "often", "timeout": "0"},
        {"depth": "0"}], "service[web]/ip[198.18.0.9]")]
    assert reasons == [
        "<action name='status'> depth 'deep' is not a non-negative integer or '*'",
        "<action name='status'> interval: 'often' is not a time (examples: 20, 20s, 1m, 500ms)",
        "<action name='status'> timeout must be > 0",
        "<action> needs a name (start, stop, status)",
    ]
