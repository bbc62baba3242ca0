"""Fencing glue: the fencer hears views by node name and incarnation, clean leaves, and
registers its control ops and status section on the node."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from clusterd.conf import parse
from clusterd.control import protocol as p
from clusterd.membership import events as ev
from clusterd.membership.quorum import QuorumState
from clusterd.node.fencing_glue import FencingGlue
from clusterd.wire.messages import View, ViewId
from node_testdata import conf_bytes

CONF = parse(conf_bytes(1, names=("n1", "n2", "n3")))


def fake_daemon(tmp_path, view: View | None, quorate: bool):
    membership = SimpleNamespace(view=view, quorum=QuorumState(quorate, 2, 2, 3))
    rt = SimpleNamespace(local=SimpleNamespace(name="n1"), conf=CONF,
                         core=SimpleNamespace(membership=membership))
    return SimpleNamespace(rt=rt, opts=SimpleNamespace(state_dir=str(tmp_path)),
                           registry=p.OpRegistry(), sections={})


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
        d.rt.core.membership.view = View(ViewId(4, 1, 9), ((1, 9),))
        glue.on_events([ev.NodeLeft(2, 5), ev.NodeFailed(3, 7, "node 3 failed")])
        await glue.close()
        return glue.fencer.state

    state = asyncio.run(scenario())
    assert set(state.ops) == {"n3"}


def test_unchanged_view_is_not_reported_twice(tmp_path):
    async def scenario():
        d = fake_daemon(tmp_path, View(ViewId(3, 1, 9), ((1, 9), (2, 5))), True)
        glue = FencingGlue(d)
        seen = []
        real = glue.fencer.handle
        glue.fencer.handle = lambda e: seen.append(e) or real(e)
        glue.on_events([])
        glue.on_events([])
        d.rt.core.membership.quorum = QuorumState(False, 1, 2, 3)
        glue.on_events([])
        await glue.close()
        return seen

    seen = asyncio.run(scenario())
    assert [e.quorate for e in seen] == [True, False]
