"""The quorum disk's votes in quorum (membership.quorum.qdisk_votes, backed_quorum): they
count only in the view the master granted, for a node it granted, while the grant lasts
and while the master's own lease backs the view."""

from __future__ import annotations

from dataclasses import replace

import pytest
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.peers import Lease, PeerTable
from clusterd.membership.quorum import QdiskGrant, backed_quorum, qdisk_votes
from clusterd.wire.messages import View, ViewId

VID = ViewId(4, 1, 1)
OTHER = ViewId(4, 2, 1)


def grant(**kw) -> QdiskGrant:
    return replace(QdiskGrant(master=1, vid=VID, votes=2, mine=True, until=10.0), **kw)


def nodes(*votes: int) -> tuple[NodeSpec, ...]:
    return tuple(NodeSpec(f"n{i}", i, v, f"198.18.0.{i}") for i, v in enumerate(votes, 1))


def table(vid: ViewId, leases: dict[int, float]) -> PeerTable:
    t = PeerTable(1.0)
    t.support = {p: Lease(vid, exp) for p, exp in leases.items()}
    return t


# ------------------------------------------------------------------ qdisk_votes
def test_a_grant_counts_in_its_view_until_it_ends():
    assert qdisk_votes(grant(), VID, {1, 2}, 5.0) == (2, 10.0)


@pytest.mark.parametrize("g, vid, backing, now", [
    (None, VID, {1, 2}, 5.0),                    # no disk, or nothing read
    (grant(), OTHER, {1, 2}, 5.0),               # granted another view
    (grant(mine=False), VID, {1, 2}, 5.0),       # this node is not among the granted
    (grant(), VID, {1, 2}, 10.0),                # ended (until is exclusive)
    (grant(), VID, {1, 2}, 11.0),
    (grant(master=3), VID, {1, 2}, 5.0),         # the master does not back this view
    (grant(), VID, set(), 5.0),
])
def test_a_grant_counts_nothing_otherwise(g, vid, backing, now):
    assert qdisk_votes(g, vid, backing, now) == (0, float("inf"))


def test_a_grant_for_the_same_epoch_and_another_coordinator_is_another_view():
    assert qdisk_votes(grant(vid=ViewId(4, 1, 2)), VID, {1}, 0.0)[0] == 0


# ------------------------------------------------------------------ backed_quorum
TIE = MembershipConfig("q", nodes(1, 1), expected_votes=3)   # qdisk(5)'s tie-breaker


def test_two_nodes_and_the_disk_one_node_with_the_disk_is_quorate():
    view = View(VID, ((1, 1),))                  # node 2 is gone
    quorate, votes, quorum, until = backed_quorum(TIE, 1, view, table(VID, {}), 0.0, True,
                                                  0, 5.0, grant(votes=1))
    assert (quorate, votes, quorum) == (True, 2, 2)
    assert until == 10.0                         # the answer holds as long as the grant


def test_one_node_without_the_disk_is_not_quorate():
    view = View(VID, ((1, 1),))
    assert backed_quorum(TIE, 1, view, table(VID, {}), 0.0, True, 0, 5.0, None)[:3] == \
        (False, 1, 2)
    # ... nor with a grant that ended, or one for another view, or not for this node
    for g in (grant(votes=1, until=5.0), grant(votes=1, vid=OTHER),
              grant(votes=1, mine=False)):
        assert backed_quorum(TIE, 1, view, table(VID, {}), 0.0, True, 0, 5.0, g)[:2] == \
            (False, 1)


def test_the_other_node_alone_with_a_stale_grant_of_the_master_is_not_quorate():
    """Node 2, cut off from master 1, still holds 1's grant for the old view: in its own
    view the master does not back it, so the disk's votes do not count there."""
    mine = View(ViewId(5, 2, 1), ((2, 1),))
    g = grant(votes=1, vid=ViewId(5, 2, 1))   # even naming its view: 1 is not in backing
    assert backed_quorum(TIE, 2, mine, table(mine.vid, {}), 0.0, True, 0, 5.0, g)[:2] == \
        (False, 1)


def test_both_nodes_and_the_disk():
    view = View(VID, ((1, 1), (2, 1)))
    t = table(VID, {2: 8.0})
    quorate, votes, quorum, until = backed_quorum(TIE, 1, view, t, 0.0, True, 0, 5.0,
                                                  grant(votes=1, until=9.0))
    assert (quorate, votes, quorum, until) == (True, 3, 2, 8.0)
    # the grant ends first
    assert backed_quorum(TIE, 1, view, t, 0.0, True, 0, 5.0, grant(votes=1, until=6.0))[3] \
        == 6.0
    # both nodes are quorate without the disk
    assert backed_quorum(TIE, 1, view, t, 0.0, True, 0, 5.0, None)[:3] == (True, 2, 2)


def test_the_master_counts_only_while_its_lease_backs_the_view():
    """Node 2 counts master 1's grant only while 1's lease backs 2's view."""
    view = View(VID, ((1, 1), (2, 1)))
    g = grant(votes=1, until=20.0)
    assert backed_quorum(TIE, 2, view, table(VID, {1: 8.0}), 0.0, True, 0, 5.0, g)[:2] == \
        (True, 3)
    assert backed_quorum(TIE, 2, view, table(VID, {1: 8.0}), 0.0, True, 0, 9.0, g)[:2] == \
        (False, 1)


def test_all_but_one_with_the_disk():
    """qdisk(5) 1.4: votes = nodes - 1 lets the last node standing stay quorate."""
    cfg = MembershipConfig("q", nodes(1, 1, 1, 1), expected_votes=7)
    view = View(VID, ((1, 1),))
    assert backed_quorum(cfg, 1, view, table(VID, {}), 0.0, True, 0, 5.0,
                         grant(votes=3))[:3] == (True, 4, 4)
    assert backed_quorum(cfg, 1, view, table(VID, {}), 0.0, True, 0, 5.0, None)[:3] == \
        (False, 1, 4)


def test_the_disk_votes_raise_the_total_in_the_quorum():
    """quorum = max(expected // 2 + 1, total // 2 + 1), the disk's votes in the total."""
    cfg = MembershipConfig("q", nodes(1, 1, 1), expected_votes=1)
    view = View(VID, ((1, 1), (2, 1), (3, 1)))
    t = table(VID, {2: 9.0, 3: 9.0})
    assert backed_quorum(cfg, 1, view, t, 0.0, True, 0, 5.0, None)[2] == 2
    assert backed_quorum(cfg, 1, view, t, 0.0, True, 0, 5.0, grant(votes=3))[2] == 4


def test_the_core_takes_the_grant_and_reevaluates_at_once():
    from clusterd.membership.core import MembershipCore

    core = MembershipCore(TIE, 1, 1)
    assert core.qdisk is None
    g = grant(votes=1)
    core.set_qdisk(g, 0.0)
    assert core.qdisk == g
    core.set_qdisk(None, 0.0)
    assert core.qdisk is None
