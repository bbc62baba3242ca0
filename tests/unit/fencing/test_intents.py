"""Persisted fence intents: they survive a fencer restart and a coordinator change."""

from __future__ import annotations

import json
import os
import stat

import pytest
from clusterd.fencing.intents import IntentsError, restore, to_record
from clusterd.fencing.policy import recovery_allowed
from clusterd.fencing.state import (
    FenceAcked,
    FencePhase,
    FenceResult,
    FencingState,
    IntentsLearned,
    Tick,
)
from clusterd.fencing.store import read_intents, write_intents
from fencing_builders import Run, cfg, runs, started, view

WALL = 1_764_100_000.0


def failing_run() -> Run:
    run = started(config=cfg(post_fail_delay=2))
    run.at(10.0, view("node1", "node2"))
    run.at(12.0, Tick())
    run.at(12.5, FenceResult("node3", "node3#1", ok=False, error="BMC timeout"))
    return run


def test_record_round_trips_through_json_and_restart_resumes_fencing(tmp_path):
    run = failing_run()
    record = to_record(run.state, now=13.0, wall_now=WALL)
    path = tmp_path / "lib" / "fence-intents.json"
    write_intents(record, str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["ops"][0]["last_error"] == "BMC timeout"
    # the fencer restarts: monotonic clock starts over, wall clock moved on 60 s
    loaded = read_intents(str(path))
    state = restore("node1", cfg(post_fail_delay=2), loaded, now=5.0, wall_now=WALL + 60)
    op = state.ops["node3"]
    assert op.phase is FencePhase.PENDING and op.attempts == 1 and op.op_id == "node3#1"
    assert op.since == pytest.approx(5.0 - 60 - (13.0 - 10.0))
    fresh = Run(state)
    assert runs(fresh.at(6.0, view("node1", "node2", joined=True))) == []
    assert not recovery_allowed(fresh.state, "node3")
    assert runs(fresh.at(7.0, Tick())) == [("node3", 2)]      # retried after the restart


def test_completed_fence_is_remembered_so_the_victim_is_not_fenced_again():
    run = failing_run()
    assert runs(run.at(13.5, Tick())) == [("node3", 2)]           # backoff 1 s after 12.5
    run.at(13.6, FenceResult("node3", "node3#1", ok=True, method="ipmi"))
    assert run.state.ops["node3"].phase is FencePhase.DONE
    state = restore("node1", cfg(), to_record(run.state, 14.0, WALL), 1.0, WALL + 5)
    again = Run(state)
    again.at(2.0, view("node1", "node2", "node3", inc={"node3": "node3-b"}, joined=True))
    assert again.state.ops["node3"].phase is FencePhase.DONE and runs(again.at(3.0, Tick())) == []


def test_missing_file_is_none_and_a_corrupt_file_is_an_error(tmp_path):
    assert read_intents(str(tmp_path / "nope.json")) is None
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(IntentsError, match="is not valid JSON"):
        read_intents(str(bad))
    with pytest.raises(IntentsError, match="no supported version"):
        restore("node1", cfg(), {"version": 99, "ops": []}, 0.0, WALL)
    with pytest.raises(IntentsError, match="entry .* is invalid"):
        restore("node1", cfg(), {"version": 1, "ops": [{"node": "x"}]}, 0.0, WALL)


def test_a_new_coordinator_learns_open_intents_from_the_old_one():
    old = failing_run()                                        # node1 coordinates
    record = to_record(old.state, 13.0, WALL)
    peer = Run(FencingState.initial("node2", cfg(post_fail_delay=2)))
    peer.at(0.0, view("node1", "node2", joined=True))          # never saw node3's loss
    s = peer.at(1.0, IntentsLearned(record, source="node1"))
    assert "learned fence intent node3#1 from node1" in s.reason
    s = peer.at(2.0, view("node2", coord="node2"))             # node1 is gone too
    assert ("node3", 2) in runs(s)                             # node2 takes over node3's fence
    assert not recovery_allowed(peer.state, "node3")


def test_a_peer_record_closes_our_intent_when_it_fenced_or_acked():
    mine = failing_run()
    theirs = failing_run()
    theirs.at(14.0, FenceAcked("node3", by="root"))
    s = mine.at(15.0, IntentsLearned(to_record(theirs.state, 15.0, WALL), source="node2"))
    assert "node3 acked per node2" in s.reason
    assert recovery_allowed(mine.state, "node3")


def test_learned_intent_for_a_node_that_rejoined_with_a_new_life_is_ignored():
    record = to_record(failing_run().state, 13.0, WALL)
    peer = Run(FencingState.initial("node2", cfg()))
    peer.at(0.0, view("node1", "node2", "node3", inc={"node3": "node3-z"}, joined=True))
    peer.at(1.0, IntentsLearned(record))
    assert "node3" not in peer.state.ops
