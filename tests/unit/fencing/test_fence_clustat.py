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
