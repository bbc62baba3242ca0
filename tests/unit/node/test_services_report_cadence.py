"""The services glue sends its report when the content or the view changes, else only
every REPORT_REFRESH seconds (against a lost datagram), and a peer's unchanged periodic
copy does not ask for a services cycle."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from clusterd.conf import parse
from clusterd.control import protocol as p
from clusterd.membership.host import AppReceived
from clusterd.membership.quorum import QuorumState
from clusterd.node import services_glue as sg
from clusterd.node.port import NodePort
from clusterd.services.model import CH_REPORT, NodeReport
from clusterd.wire.messages import View, ViewId
from node_testdata import conf_bytes

CONF = parse(conf_bytes(1, names=("n1", "n2", "n3")))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def glue(tmp_path, monkeypatch) -> tuple[sg.ServicesGlue, list, Clock]:
    clock = Clock()
    sent: list = []
    membership = SimpleNamespace(view=View(ViewId(3, 1, 9), ((1, 9), (2, 5), (3, 7))),
                                 quorum=QuorumState(True, 3, 3, 2),
                                 is_quorate=lambda now: True)
    port = NodePort(name="n2", nodeid=2, state_dir=str(tmp_path),
                    membership=lambda: membership, conf=lambda: CONF,
                    send_app=lambda dest, channel, payload: sent.append((channel, payload)),
                    clock=clock, registry=p.OpRegistry())
    port.m = membership
    fencing = SimpleNamespace(recovery_allowed=lambda node: False,
                              recovery_blocked=lambda node: True,
                              fence_open=lambda node: False)
    return sg.ServicesGlue(port, fencing), sent, clock


def reports(sent: list) -> list:
    return [payload for channel, payload in sent if channel == CH_REPORT]


def test_report_on_change_and_on_refresh_only(tmp_path, monkeypatch):
    g, sent, clock = glue(tmp_path, monkeypatch)
    g.run_cycle(clock.now)
    assert len(reports(sent)) == 1                    # the first one
    for _ in range(10):                               # nothing changed for most of a refresh
        clock.now += sg.REPORT_REFRESH / 20
        g.run_cycle(clock.now)
    assert len(reports(sent)) == 1
    g.ready = True                                    # the content changes: sent at once
    g.run_cycle(clock.now)
    assert len(reports(sent)) == 2 and reports(sent)[-1]["r"] is True
    clock.now += sg.REPORT_REFRESH
    g.run_cycle(clock.now)                                        # the periodic copy
    assert len(reports(sent)) == 3 and reports(sent)[-1] == reports(sent)[-2]


def test_a_new_view_sends_at_once(tmp_path, monkeypatch):
    g, sent, clock = glue(tmp_path, monkeypatch)
    g.run_cycle(clock.now)
    g.port.m.view = View(ViewId(4, 1, 9), ((1, 9), (2, 5)))
    g.on_events([])
    clock.now += 0.01
    g.run_cycle(clock.now)
    assert len(reports(sent)) == 2


@pytest.mark.parametrize("same", [True, False])
def test_an_unchanged_peer_copy_does_not_wake_the_loop(tmp_path, monkeypatch, same):
    g, _sent, _clock = glue(tmp_path, monkeypatch)
    first = NodeReport(ready=True).to_wire()
    g.on_events([AppReceived(1, 9, CH_REPORT, first)])
    g.wake.due = False
    again = first if same else NodeReport(ready=False).to_wire()
    g.on_events([AppReceived(1, 9, CH_REPORT, again)])
    assert g.wake.due is not same
