"""A services cycle that took ``REST_MIN`` or more is followed by a rest as long as it
took, woken or not, so that the node's loop spends at most half its time in services
cycles (8,000 services: cycles woken back to back held it for seconds); a short cycle
leaves a woken one due at once, as always."""

from __future__ import annotations

import itertools

from clusterd.node import services_glue as sg
from test_services_idle_tick import glue


def _took(monkeypatch, seconds: float) -> None:
    """time.perf_counter as the glue reads it: each cycle seems to take ``seconds``."""
    ticks = itertools.count()
    monkeypatch.setattr(sg.time, "perf_counter", lambda: next(ticks) % 2 * seconds)


def test_a_long_cycle_rests_as_long_as_it_took_even_when_woken(tmp_path, monkeypatch):
    t = glue(tmp_path)
    _took(monkeypatch, 0.3)
    t.g.run_cycle(t.clock.now)
    t.g.wake.set()
    assert t.g.next_due() == t.clock.now + 0.3
    steps = len(t.steps)
    t.g.cycle(t.clock.now + 0.29)          # woken, but resting
    assert len(t.steps) == steps
    t.g.cycle(t.clock.now + 0.3)
    assert len(t.steps) == steps + 1


def test_a_short_cycle_leaves_a_woken_one_due_at_once(tmp_path, monkeypatch):
    t = glue(tmp_path)
    _took(monkeypatch, sg.REST_MIN / 2)
    t.g.run_cycle(t.clock.now)
    t.g.wake.set()
    assert t.g.next_due() == float("-inf")
    steps = len(t.steps)
    t.g.cycle(t.clock.now)
    assert len(t.steps) == steps + 1


def test_the_rest_never_moves_the_next_tick_earlier(tmp_path, monkeypatch):
    t = glue(tmp_path)
    _took(monkeypatch, sg.REST_MIN)
    t.g.run_cycle(t.clock.now)
    assert t.g.next_due() == max(t.clock.now + sg.REST_MIN, t.g._next_tick)
