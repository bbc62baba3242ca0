"""The executor's state machine as tables (``clusterd.services.transitions``, pure): each
step from a service in a given state, with exactly the fields it changes; then whole
operations as the executor chains them (start, failed start with clean or failed cleanup,
stop, failed stop, counted restart, subtree recovery, convalesce)."""

from __future__ import annotations

import ast
import inspect
from dataclasses import replace

import pytest
from clusterd.placement.model import ServiceState
from clusterd.services import transitions as to
from clusterd.services.model import MAX_RESTARTS_KEPT, MAX_WHY, LocalService

S = ServiceState
# every field set, so a row shows which ones a step changes and which it keeps
WORN = LocalService(S.STARTED, busy="1.7", done="1.6", restarts=(10.0,), status_failed=True,
                    why="b: not running", partial=True)
IDLE = LocalService(S.STARTED, done="1.6", restarts=(10.0,))
LONG = "x" * (MAX_WHY + 50)

# (name, step, args, before, the fields that change)
STEPS = [
    ("begun", to.begun, ("1.8",), IDLE, {"busy": "1.8"}),
    ("finished", to.finished, ("1.7",), WORN, {"busy": "", "done": "1.7"}),
    ("crashed", to.crashed, ("KeyError: 3",), WORN,
     {"state": S.FAILED, "why": "internal error: KeyError: 3"}),
    ("starting", to.starting, (), WORN,
     {"state": S.STARTING, "status_failed": False, "why": "", "partial": False}),
    ("started", to.started, (), replace(IDLE, state=S.STARTING), {"state": S.STARTED}),
    ("start failed, cleanup stopped cleanly", to.start_failed, ("a: start error",),
     replace(IDLE, state=S.STARTING), {"state": S.RECOVERING, "why": "a: start error"}),
    ("start failed, cleanup failed", to.start_failed, ("a: start error", ["b: stop error"]),
     replace(IDLE, state=S.STARTING), {"state": S.FAILED, "why": "a: start error"}),
    ("start failed, long reason cut", to.start_failed, (LONG, ()),
     replace(IDLE, state=S.STARTING), {"state": S.RECOVERING, "why": LONG[:MAX_WHY]}),
    ("restart counted", to.restart_counted, (20.0,), WORN, {"restarts": (10.0, 20.0)}),
    ("restart counted, history full", to.restart_counted, (99.0,),
     replace(IDLE, restarts=tuple(float(t) for t in range(MAX_RESTARTS_KEPT))),
     {"restarts": (*(float(t) for t in range(1, MAX_RESTARTS_KEPT)), 99.0)}),
    ("stopping keeps the reason", to.stopping, (), WORN, {"state": S.STOPPING}),
    ("stopped", to.stopped, (), replace(WORN, state=S.STOPPING),
     {"state": S.STOPPED, "status_failed": False, "why": "", "partial": False}),
    ("stop failed: the first failure", to.stop_failed, (["a: stop error", "b: stop error"],),
     replace(WORN, state=S.STOPPING),
     {"state": S.FAILED, "status_failed": False, "why": "stop failed: a: stop error"}),
    ("stop failed, long reason cut", to.stop_failed, ([LONG],), replace(IDLE, state=S.STOPPING),
     {"state": S.FAILED, "why": f"stop failed: {LONG}"[:MAX_WHY]}),
    ("nothing to stop keeps the reason", to.nothing_to_stop, (),
     replace(IDLE, state=S.STOPPING, why="no agent for type foo"), {"state": S.STOPPED}),
    ("changed resource did not stop", to.part_stop_failed, ("a changed resource",), WORN,
     {"state": S.FAILED, "why": "stop of a changed resource failed"}),
    ("subtree did not stop", to.part_stop_failed, ("script:b",), IDLE,
     {"state": S.FAILED, "why": "stop of script:b failed"}),
    ("status check failed", to.check_failed, ("b: not running",), IDLE,
     {"status_failed": True, "why": "b: not running"}),
    ("status check failed, long reason cut", to.check_failed, (LONG,), IDLE,
     {"status_failed": True, "why": LONG[:MAX_WHY]}),
    ("non-critical subtree left stopped", to.subtree_left_stopped, ("b failed: stopped",),
     IDLE, {"partial": True, "why": "b failed: stopped"}),
    ("convalesce failed", to.convalesce_failed, ("b: start error",),
     replace(IDLE, partial=True, why="b failed: stopped"), {"why": "convalesce: b: start error"}),
    ("convalesce failed, long reason cut", to.convalesce_failed, (LONG,), IDLE,
     {"why": f"convalesce: {LONG}"[:MAX_WHY]}),
    ("convalesced", to.convalesced, (), replace(IDLE, partial=True, why="b failed: stopped"),
     {"partial": False, "why": ""}),
]


@pytest.mark.parametrize(("step", "args", "before", "changes"),
                         [row[1:] for row in STEPS], ids=[row[0] for row in STEPS])
def test_each_step_changes_exactly_its_fields(step, args, before, changes) -> None:
    assert step(before, *args) == replace(before, **changes)


def test_every_step_is_in_the_table() -> None:
    steps = {name for name, fn in inspect.getmembers(to, inspect.isfunction)
             if fn.__module__ == to.__name__ and inspect.signature(fn).return_annotation
             == "LocalService"}
    assert steps == {row[1].__name__ for row in STEPS}


def test_remember_keeps_the_last_restarts() -> None:
    assert to.remember((), 1.0) == (1.0,)
    full = tuple(float(t) for t in range(MAX_RESTARTS_KEPT))
    assert to.remember(full, 99.0) == (*full[1:], 99.0)


# Whole operations, as the executor chains the steps (the op id is "2.1").
def _op(before: LocalService, *steps) -> LocalService:
    ls = to.begun(before, "2.1")
    for step, *args in steps:
        ls = step(ls, *args)
    return to.finished(ls, "2.1")


RECOVERING = LocalService(S.RECOVERING, done="1.6", why="a: start error")
OPERATIONS = [
    ("start", LocalService(done="1.6"), [(to.starting,), (to.started,)],
     LocalService(S.STARTED, done="2.1")),
    ("start after a failed one", RECOVERING, [(to.starting,), (to.started,)],
     LocalService(S.STARTED, done="2.1")),
    ("start fails, cleanup clean", LocalService(),
     [(to.starting,), (to.start_failed, "a: start error", [])],
     replace(RECOVERING, done="2.1")),
    ("start fails, cleanup fails", LocalService(),
     [(to.starting,), (to.start_failed, "a: start error", ["b: stop error"])],
     LocalService(S.FAILED, done="2.1", why="a: start error")),
    ("stop", WORN, [(to.stopping,), (to.stopped,)],
     LocalService(S.STOPPED, done="2.1", restarts=(10.0,))),
    ("stop fails", WORN, [(to.stopping,), (to.stop_failed, ["a: stop error"])],
     LocalService(S.FAILED, done="2.1", restarts=(10.0,), why="stop failed: a: stop error",
                  partial=True)),
    ("restart, counted", WORN,
     [(to.stopping,), (to.stopped,), (to.restart_counted, 20.0), (to.starting,),
      (to.started,)],
     LocalService(S.STARTED, done="2.1", restarts=(10.0, 20.0))),
    ("restart, its stop fails: no start, not counted", IDLE,
     [(to.stopping,), (to.stop_failed, ["a: stop error"])],
     LocalService(S.FAILED, done="2.1", restarts=(10.0,), why="stop failed: a: stop error")),
    ("subtree restarted in place", replace(IDLE, status_failed=False), [],
     replace(IDLE, done="2.1")),
    ("subtree does not start again", IDLE, [(to.check_failed, "b: start error")],
     replace(IDLE, done="2.1", status_failed=True, why="b: start error")),
    ("convalesce", replace(IDLE, partial=True, why="b failed"), [(to.convalesced,)],
     replace(IDLE, done="2.1")),
    ("a crash", IDLE, [(to.starting,), (to.crashed, "boom")],
     LocalService(S.FAILED, done="2.1", restarts=(10.0,), why="internal error: boom")),
]


@pytest.mark.parametrize(("before", "steps", "after"), [row[1:] for row in OPERATIONS],
                         ids=[row[0] for row in OPERATIONS])
def test_operations_end_not_busy_in_their_state(before, steps, after) -> None:
    assert _op(before, *steps) == after


def test_the_module_is_pure() -> None:
    """No asyncio, I/O or logging: the simulator runs the same steps without a loop."""
    tree = ast.parse(inspect.getsource(to))
    imported = {n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
                for a in n.names}
    assert imported <= {"__future__", "collections.abc", "dataclasses",
                        "clusterd.placement.model", "clusterd.services.model"}
