"""Fencing glue between members: fence.state goes out on change and is merged on receipt
(authenticated app messages from view members only); service counts reach the policy."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from clusterd.conf import parse
from clusterd.control import protocol as p
from clusterd.fencing.core import service_counts
from clusterd.fencing.exchange import CH_FENCE
from clusterd.fencing.state import FencePhase, FenceResult
from clusterd.membership.host import AppReceived
from clusterd.membership.quorum import QuorumState
from clusterd.node.fencing_glue import FencingGlue
from clusterd.node.port import NodePort
from clusterd.placement.model import ServiceState, ServiceStatus
from clusterd.wire.messages import View, ViewId
from node_testdata import conf_bytes

CONF = parse(conf_bytes(1, names=("n1", "n2", "n3")))
INCS = {1: 9, 2: 5, 3: 7}


class Wire:
    """Collects what each node's glue sends (the port's send_app)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, dict]] = []


def fake_daemon(tmp_path, name: str, me: int, wire: Wire, members=(1, 2, 3)):
    """A NodePort for node ``me`` over a stand-in membership core (``port.m``); a
    ``port.conf_now`` assignment changes the running config."""
    membership = SimpleNamespace(
        view=View(ViewId(3, 1, 9), tuple((m, INCS[m]) for m in members)),
        quorum=QuorumState(True, 2, 2, 3))
    state = tmp_path / name
    state.mkdir()
    port = NodePort(name=name, nodeid=me, state_dir=str(state),
                    membership=lambda: membership, conf=lambda: port.conf_now,
                    send_app=lambda dest, channel, payload: wire.sent.append(
                        (me, channel, payload)),
                    clock=lambda: 0.0, registry=p.OpRegistry())
    port.m, port.conf_now = membership, CONF
    return port


def deliver(wire: Wire, glue: FencingGlue, src: int, inc: int | None = None) -> int:
    got = [AppReceived(s, inc or INCS[s], ch, pl) for s, ch, pl in wire.sent if s == src]
    glue.on_events(got)
    return len(got)


def test_a_fence_result_on_the_coordinator_shows_on_every_member(tmp_path):
    async def scenario():
        wire = Wire()
        d1 = fake_daemon(tmp_path, "n1", 1, wire)
        d2 = fake_daemon(tmp_path, "n2", 2, wire)
        g1, g2 = FencingGlue(d1), FencingGlue(d2)
        g1.on_events([])
        g2.on_events([])
        assert wire.sent == []                       # nothing to share yet
        for d in (d1, d2):
            d.m.view = View(ViewId(4, 1, 9), ((1, 9), (2, 5)))
        g1.on_events([])
        g2.on_events([])
        op_id = g1.fencer.state.ops["n3"].op_id
        g1.fencer.handle(FenceResult("n3", op_id, ok=False, error="BMC timeout"))
        assert deliver(wire, g2, 1) >= 1
        failed = d2.sections["fencing"]()[0]
        g1.fencer.handle(FenceResult("n3", op_id, ok=True, method="ipmi"))
        wire.sent.clear()
        g1.fencer.handle(FenceResult("n3", op_id, ok=True, method="ipmi"))   # stale: no send
        assert wire.sent == []
        g1.fencer.core._sent_digest = None     # as if that broadcast was lost: sent again
        g1.fencer.handle(FenceResult("n3", "n3#9", ok=True))
        deliver(wire, g2, 1)
        done = d2.sections["fencing"]()[0]
        await g1.close()
        await g2.close()
        return failed, done, g2

    failed, done, g2 = asyncio.run(scenario())
    assert failed["state"] == "failed" and failed["last_error"] == "BMC timeout"
    assert failed["attempts"] == 1 and "next_attempt" in failed
    assert done["state"] == "done" and done["method"] == "ipmi" and done["finished"]
    assert g2.recovery_allowed("n3")


def test_messages_from_outside_the_view_or_malformed_are_dropped(tmp_path):
    async def scenario():
        wire = Wire()
        d2 = fake_daemon(tmp_path, "n2", 2, wire, members=(1, 2))
        g2 = FencingGlue(d2)
        g2.on_events([])
        bad = [AppReceived(3, 7, CH_FENCE, {"v": 1}),                 # n3 not in the view
               AppReceived(1, 8, CH_FENCE, {"v": 1}),                 # old incarnation of n1
               AppReceived(1, 9, CH_FENCE, {"v": 1, "epoch": "x"})]   # malformed
        g2.on_events(bad)
        await g2.close()
        return g2

    g2 = asyncio.run(scenario())
    assert g2.peer_drops == 3
    assert g2.fencer.state.ops["n3"].phase is FencePhase.PENDING       # its own intent stays


def test_service_counts_follow_owners_of_held_services():
    rows = {"a": SimpleNamespace(status=ServiceStatus("a", ServiceState.STARTED, "n1")),
            "b": SimpleNamespace(status=ServiceStatus("b", ServiceState.FAILED, "n2")),
            "c": SimpleNamespace(status=ServiceStatus("c", ServiceState.STOPPED, None)),
            "d": SimpleNamespace(status=ServiceStatus("d", ServiceState.STARTED, "n1"))}
    assert service_counts(rows) == {"n1": 2, "n2": 1}
    assert service_counts(None) == {}


@pytest.mark.parametrize("owner, runs_at_once", [("n2", True), ("n1", False), (None, False)])
def test_the_two_node_delay_follows_the_services(tmp_path, owner, runs_at_once):
    async def scenario():
        conf = parse(conf_bytes(1, names=("n1", "n2"), extra='<cman two_node="1" '
                                                             'expected_votes="1"/>'))
        wire = Wire()
        d2 = fake_daemon(tmp_path, "n2", 2, wire, members=(1, 2))
        d2.conf_now = conf
        counts = service_counts({"web": SimpleNamespace(
            status=ServiceStatus("web", ServiceState.STARTED, owner))})
        g2 = FencingGlue(d2)
        g2.on_events([], counts)
        d2.m.view = View(ViewId(4, 2, 5), ((2, 5),))
        g2.on_events([], counts)
        await g2.close()
        return g2

    g2 = asyncio.run(scenario())
    op = g2.fencer.state.ops["n1"]
    # n2 (higher nodeid, delayed on a tie) fences at once only when it runs more services;
    # otherwise it waits two_node_delay (5 s), far longer than this scenario
    assert (op.attempts == 1) is runs_at_once


def test_fencing_quorum_needs_the_flag_and_the_exact_lease_check():
    """The reported flag lags a loss by LOSS_GRACE; a minority must not fence meanwhile."""
    from clusterd.fencing.core import quorate_now

    def membership(flag: bool, exact: bool):
        return SimpleNamespace(quorum=SimpleNamespace(quorate=flag),
                               is_quorate=lambda now: exact)

    assert quorate_now(membership(True, True), 1.0)
    assert not quorate_now(membership(True, False), 1.0)      # stale flag after a split
    assert not quorate_now(membership(False, True), 1.0)
