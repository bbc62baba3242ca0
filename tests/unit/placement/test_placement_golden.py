"""Placement golden table, in the style of Pacemaker's cts-scheduler: each file in
cases/ is a snapshot in and the expected actions (in order) out, plus fragments the
decision's reason sentence must contain."""

from __future__ import annotations

from pathlib import Path

import pytest
from clusterd.placement import decide
from placement_builder import load_cases, render, snapshot_from

CASES = load_cases(Path(__file__).parent / "cases")


def test_table_size():
    assert len(CASES) >= 40


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_case(name, case):
    decision = decide(snapshot_from(case))
    assert [render(a) for a in decision.actions] == case["expect"]["actions"], decision.reason
    for fragment in case["expect"].get("reason", []):
        assert fragment in decision.reason, decision.reason
    assert decision.reason  # every decision says why
    assert all(getattr(a, "reason", "") for a in decision.actions)


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_decide_is_deterministic(name, case):
    snap = snapshot_from(case)
    assert decide(snap) == decide(snap)
