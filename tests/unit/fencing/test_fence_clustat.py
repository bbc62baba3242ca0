"""clustat's Fencing section as every member shows it: failed with last error and next
attempt, completed with time and method (for an hour), acknowledged by hand."""

from __future__ import annotations

from clusterd.cli.clustat import render_text

NOW = 1_764_100_000


def ctime(t: float) -> str:
    return f"T{int(t) - NOW:+d}"


def doc(fencing: list[dict]) -> dict:
    return {"cluster": {"name": "alpha"}, "quorum": {"quorate": True},
            "nodes": [{"name": "node1", "nodeid": 1, "state": "online", "local": True}],
            "services": [], "fencing": fencing}


def fence_lines(fencing: list[dict], long: bool = True) -> list[str]:
    text, rc = render_text(doc(fencing), now=NOW, ctime=ctime, long=long)
    assert rc == 0
    return [line.split(None, 3) for line in text.splitlines()
            if line.startswith(" node") and ("failed" in line or "done" in line
                                             or "pending" in line or "running" in line)]


def test_failed_shows_error_and_next_attempt_done_shows_time_and_method_with_l():
    rows = fence_lines([
        {"node": "node2", "state": "failed", "attempts": 2, "since": NOW - 30,
         "last_error": "fence_ipmilan status: timed out", "method": "",
         "next_attempt": NOW + 4},
        {"node": "node3", "state": "done", "attempts": 1, "since": NOW - 100,
         "finished": NOW - 90, "method": "ipmi", "last_error": "", "acked": False},
        {"node": "node4", "state": "done", "attempts": 3, "since": NOW - 200,
         "finished": NOW - 60, "method": "manual ack", "acked": True},
        {"node": "node5", "state": "done", "attempts": 1, "since": NOW - 9000,
         "finished": NOW - 7200, "method": "ipmi", "acked": False},
        {"node": "node6", "state": "pending", "attempts": 0, "since": NOW - 1}])
    assert rows == [
        ["node2", "failed", "2", ("since T-30; last error: fence_ipmilan status: timed out; "
                                 "next attempt T+4")],
        ["node3", "done", "1", "fenced T-90 (method ipmi)"],
        ["node4", "done", "3", "fenced T-60 (acknowledged by hand)"],
        ["node6", "pending", "0", "since T-1"]]          # node5 finished 2 h ago: hidden


def test_without_l_completed_fences_are_not_listed():
    done = {"node": "node3", "state": "done", "attempts": 1, "since": NOW - 100,
            "finished": NOW - 90, "method": "ipmi"}
    assert fence_lines([done], long=False) == []
    assert fence_lines([done], long=True) == [["node3", "done", "1", "fenced T-90 (method ipmi)"]]


def test_running_shows_what_the_attempt_does_or_who_runs_it():
    current = {"method": "ipmi", "device": "bmc2", "agent": "fence_ipmilan", "action": "off",
               "since": NOW - 12, "timeout": 60, "running": True,
               "errors": ["method apc device pdu (fence_apc) action off: rc=1: no route"]}
    rows = fence_lines([
        {"node": "node2", "state": "running", "attempts": 1, "since": NOW - 15,
         "executor": "node1", "current": current, "last_error": ""},
        {"node": "node3", "state": "running", "attempts": 2, "since": NOW - 40,
         "executor": "node1", "last_error": "fence_ipmilan off: timed out"}])
    assert rows == [
        ["node2", "running", "1", ("since T-15; now method ipmi device bmc2 (fence_ipmilan) "
                                   "action off since T-12, agent timeout 60s; failed: method "
                                   "apc device pdu (fence_apc) action off: rc=1: no route")],
        ["node3", "running", "2", ("since T-40; run by node1; last error: fence_ipmilan off: "
                                   "timed out")]]
