"""Fencing glue: the fencer hears views by node name and incarnation, clean leaves, and
registers its control ops and status section on the node."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from clusterd import events as ev
from clusterd.conf import parse
from clusterd.control import protocol as p
from clusterd.fencing.policy import recovery_allowed
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.quorum import QuorumState
from clusterd.node.fencing_glue import FencingGlue
from clusterd.node.port import NodePort
from clusterd.wire.messages import View, ViewId
from node_testdata import conf_bytes

CONF = parse(conf_bytes(1, names=("n1", "n2", "n3")))


MCFG = MembershipConfig("alpha", tuple(NodeSpec(n.name, n.nodeid) for n in CONF.nodes))


def fake_daemon(tmp_path, view: View | None, quorate: bool):
    """A NodePort over a stand-in membership core (``d.m``) for node n1."""
    membership = SimpleNamespace(view=view, quorum=QuorumState(quorate, 2, 2, 3), cfg=MCFG,
                                 me=1, seen_all=True, leaving=False, backed=quorate,
                                 was_backed=True, qdisk=None)
    membership.is_quorate = lambda now: membership.backed
    port = NodePort(name="n1", nodeid=1, state_dir=str(tmp_path),
                    membership=lambda: membership, conf=lambda: CONF,
                    send_app=lambda dest, channel, payload: None, registry=p.OpRegistry())
    port.m = membership
    return port


def test_views_reach_the_fencer_by_name_with_clean_leaves(tmp_path):
    async def scenario():
        d = fake_daemon(tmp_path, View(ViewId(3, 1, 9), ((1, 9), (2, 5), (3, 7))), True)
        glue = FencingGlue(d)
        assert {"fence.node", "fence.ack", "fence.status"} <= set(d.registry.names())
        assert d.sections["fencing"]() == ()
        glue.on_events([])
        state = glue.fencer.state
        assert dict(state.members) == {"n1": "9", "n2": "5", "n3": "7"}
        assert state.coordinator == "n1" and state.quorate
        # n2 leaves cleanly, n3 fails: only n3 gets a fence operation
        d.m.view = View(ViewId(4, 1, 9), ((1, 9),))
        glue.on_events([ev.NodeLeft(2, 5), ev.NodeFailed(3, 7, "node 3 failed")])
        await glue.close()
        return glue.fencer.state

    state = asyncio.run(scenario())
    assert set(state.ops) == {"n3"}


def test_a_restart_announcement_reaches_the_fencer_as_restarting(tmp_path):
    async def scenario():
        d = fake_daemon(tmp_path, View(ViewId(3, 1, 9), ((1, 9), (2, 5), (3, 7))), True)
        glue = FencingGlue(d)
        glue.on_events([])
        seen = []
        glue.fencer.listeners.append(seen.append)
        d.m.view = View(ViewId(4, 1, 9), ((1, 9), (2, 5)))
        glue.on_events([ev.NodeLeft(3, 7, "node 3 restarts keeping its services running",
                                    hold=True)])
        await glue.close()
        return glue.fencer.state, seen

    state, seen = asyncio.run(scenario())
    assert state.ops == {} and state.nodes["n3"].restart_until is not None
    assert "n3 restarts keeping its services running: not fenced" in seen[-1].reason
    assert not recovery_allowed(state, "n3")


def test_unchanged_view_is_not_reported_twice(tmp_path):
    async def scenario():
        d = fake_daemon(tmp_path, View(ViewId(3, 1, 9), ((1, 9), (2, 5))), True)
        glue = FencingGlue(d)
        seen = []
        glue.fencer.listeners.append(seen.append)
        glue.on_events([])
        glue.on_events([])
        d.m.quorum = QuorumState(False, 1, 2, 3)
        glue.on_events([])
        await glue.close()
        return seen

    seen = asyncio.run(scenario())
    assert [step.state.quorate for step in seen] == [True, False]


NOTES = [
    # (members, reported flag, backed now, backed before, leaving) -> the policy's note
    ((1, 2), True, False, False, False, None),       # new view, leases not in yet: silent
    ((1, 2), False, False, False, False, None),      # joining, leases not in yet: silent
    ((1,), True, False, False, False,
     "view 4 (n1) is inquorate (1 of 3 expected votes, quorum 2): no fencing, no recovery"),
    ((1, 2), False, False, True, False,
     ("view 4 (n1, n2) is inquorate (its leases lapsed: 2 votes backed, quorum 2): no "
     "fencing, no recovery")),
    ((1, 2), False, False, True, True, "this node left the cluster: no fencing, no recovery"),
]


@pytest.mark.parametrize(("members", "flag", "backed", "was_backed", "leaving", "note"),
                         NOTES)
def test_the_fencer_is_told_why_a_view_is_not_quorate(tmp_path, members, flag, backed,
                                                      was_backed, leaving, note):
    async def scenario():
        d = fake_daemon(tmp_path, View(ViewId(3, 1, 9), ((1, 9), (2, 5), (3, 7))), True)
        glue = FencingGlue(d)
        glue.on_events([])
        m = d.m
        m.view = View(ViewId(4, 1, 9), tuple((i, {1: 9, 2: 5, 3: 7}[i]) for i in members))
        m.quorum, m.backed, m.leaving = QuorumState(flag, 2, 2, 3), backed, leaving
        m.was_backed = was_backed
        glue.on_events([])
        await glue.close()
        return glue.fencer.last_reason

    reason = asyncio.run(scenario())
    assert "inquorate: no fencing" not in reason
    if note is None:
        assert "no fencing" not in reason
    else:
        assert note in reason
