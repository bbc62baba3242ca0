"""A services ``TICK`` that nothing woke runs no ``ServicesCore.step`` when the step
would do nothing (the last one only reported, it would read the same facts, the report
copy is not due): the status checks still run, and every input the step reads either
wakes the glue or is read afresh at the tick (issue 18: idle CPU)."""

from __future__ import annotations

from types import SimpleNamespace

from clusterd.conf import parse
from clusterd.control import protocol as p
from clusterd.membership.quorum import QuorumState
from clusterd.node import services_glue as sg
from clusterd.node.port import NodePort
from clusterd.services import core as sc
from clusterd.services.coordinator import CoordState, Pending
from clusterd.services.model import CH_REPORT, CommandKind
from clusterd.wire.messages import View, ViewId
from node_testdata import conf_bytes

CONF = parse(conf_bytes(1, names=("n1", "n2", "n3")))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def glue(tmp_path, token: bool = True):
    """A ready glue for n2 (not the coordinator: node 1 is), its steps counted."""
    clock = Clock()
    sent: list = []
    membership = SimpleNamespace(view=View(ViewId(3, 1, 9), ((1, 9), (2, 5), (3, 7))),
                                 quorum=QuorumState(True, 3, 3, 2),
                                 is_quorate=lambda now: True)
    port = NodePort(name="n2", nodeid=2, state_dir=str(tmp_path),
                    membership=lambda: membership, conf=lambda: CONF,
                    send_app=lambda dest, channel, payload: sent.append((channel, payload)),
                    clock=clock, registry=p.OpRegistry())
    fencing = SimpleNamespace(recovery_allowed=lambda node: False,
                              recovery_blocked=lambda node: True,
                              fence_open=lambda node: False, state="fencing state 1")
    if token:
        fencing.state_token = lambda: fencing.state
    g = sg.ServicesGlue(port, fencing)
    g.ready = True
    steps = []
    step = g.core.step
    g.core.step = lambda *a: steps.append(a[0]) or step(*a)
    checks = []
    check_due = g.executor.check_due
    g.executor.check_due = lambda: checks.append(clock.now) or check_due()
    return SimpleNamespace(g=g, sent=sent, clock=clock, m=membership, fencing=fencing,
                           steps=steps, checks=checks)


def tick(t, seconds: float) -> None:
    """Run the node loop's services part at every TICK for ``seconds``."""
    end = t.clock.now + seconds
    while t.clock.now < end:
        t.g.cycle(t.clock.now)
        t.clock.now = max(t.g.next_due(), t.clock.now)


def settle(t) -> None:
    t.g.cycle(t.clock.now)            # woken at start: reports; quiet from here
    t.clock.now = t.g.next_due()


def test_idle_ticks_skip_the_step_but_not_the_status_checks(tmp_path):
    t = glue(tmp_path)
    settle(t)
    steps, checks = len(t.steps), len(t.checks)
    tick(t, 1.4)                      # ticks before the next periodic copy (102.0)
    assert len(t.steps) == steps       # before: a step at every TICK
    assert len(t.checks) > checks      # the status checks keep their schedule


def test_the_periodic_report_copy_keeps_its_cadence(tmp_path):
    t = glue(tmp_path)
    settle(t)
    before = len([1 for ch, _ in t.sent if ch == CH_REPORT])
    tick(t, 10 * sg.REPORT_REFRESH)
    copies = len([1 for ch, _ in t.sent if ch == CH_REPORT]) - before
    assert copies == 10                # one each REPORT_REFRESH, as when every TICK ran
    assert len(t.steps) < 3 * copies   # and not a step at every TICK between them


def test_a_woken_tick_runs_the_step(tmp_path):
    t = glue(tmp_path)
    settle(t)
    steps = len(t.steps)
    t.g.wake.set()
    t.g.cycle(t.clock.now)
    assert len(t.steps) == steps + 1


def test_facts_that_change_silently_run_the_step_at_the_next_tick(tmp_path):
    t = glue(tmp_path)
    settle(t)
    for change in (lambda: setattr(t.fencing, "state", "fencing state 2"),   # fence done
                   lambda: setattr(t.m, "is_quorate", lambda now: False),   # lease lapsed
                   lambda: setattr(t.m, "view", View(ViewId(4, 1, 9), ((1, 9), (2, 5)))),
                   lambda: t.g.executor.local.update(x=sc.LocalService())):
        steps = len(t.steps)
        change()
        t.clock.now = t.g.next_due()
        t.g.cycle(t.clock.now)
        assert len(t.steps) == steps + 1, change
        tick(t, 1.0)                   # quiet again: the tick after reads the same


def test_a_phase_change_runs_the_step_at_the_next_tick(tmp_path):
    t = glue(tmp_path)
    settle(t)
    steps = len(t.steps)
    t.g.port.phase = lambda: "leaving"
    t.clock.now = t.g.next_due()
    t.g.cycle(t.clock.now)
    assert len(t.steps) == steps + 1
    assert t.sent[-1][1]["l"] is True  # the report says it leaves, no later than before


def test_commands_awaiting_an_ack_keep_every_tick(tmp_path):
    t = glue(tmp_path)
    settle(t)
    t.g.core.coord = CoordState(3, 1, {"web": Pending("3.1", "n3", CommandKind.START, 0.0)})
    steps = len(t.steps)
    tick(t, 1.9)
    assert len(t.steps) >= steps + 3   # the ack timeout reads the clock


def test_a_step_that_did_more_than_report_is_followed_by_one(tmp_path):
    t = glue(tmp_path)
    settle(t)
    step = t.g.core.step
    t.g.core.step = lambda *a: [*step(*a), sc.Send(3, "svc.command", {})]
    t.g.wake.set()
    t.g.cycle(t.clock.now)
    t.g.core.step = step
    steps = len(t.steps)
    t.clock.now = t.g.next_due()
    t.g.cycle(t.clock.now)
    assert len(t.steps) == steps + 1


def test_manual_coordinator_state_wakes_the_glue(tmp_path):
    t = glue(tmp_path)
    settle(t)
    t.g.coord = t.g.coord             # ops.py records a manual operation
    assert t.g.wake.due


def test_without_a_fencing_token_every_tick_steps(tmp_path):
    t = glue(tmp_path, token=False)
    settle(t)
    steps = len(t.steps)
    tick(t, 1.9)
    assert len(t.steps) >= steps + 3
