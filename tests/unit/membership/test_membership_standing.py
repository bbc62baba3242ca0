"""A view's quorum standing, the one source of the node's view line and the fencing note:
a table of pure cases, then read off real cores as views change."""

from __future__ import annotations

import pytest
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.quorum import QuorumState
from clusterd.membership.standing import Standing, ViewQuorum, of_core, view_quorum
from clusterd.wire.messages import View, ViewId
from test_membership_core import CFG, Bus

TWO = MembershipConfig("two", (NodeSpec("a", 1), NodeSpec("b", 2)), two_node=True,
                       expected_votes=1)
HEAVY = MembershipConfig("w", (NodeSpec("n1", 1, 2), NodeSpec("n2", 2), NodeSpec("n3", 3)))


def view(*ids: int, epoch: int = 7) -> View:
    return View(ViewId(epoch, min(ids), 1), tuple((i, 1) for i in ids))


def flag(quorate: bool, votes: int = 0, quorum: int = 2) -> QuorumState:
    return QuorumState(quorate, votes, quorum, 3)


W = "view 7: 3 members (n1, n2, n3), 3 of 3 expected votes, quorum 2: "

# (cfg, members, reported, backed now, backed before, seen_all, leaving) -> standing, line
CASES = [
    (CFG, (1, 2, 3), flag(True, 3), True, True, True, False, Standing.QUORATE, W + "quorate"),
    # a new view, its leases not in yet: the flag still holds, transient
    (CFG, (1, 2), flag(True, 3), False, False, True, False, Standing.WAITING,
     ("view 7: 2 members (n1, n2), 2 of 3 expected votes, quorum 2: waiting for its "
     "members' quorum leases")),
    # both peers gone, the flag not yet dropped (LOSS_GRACE): the view cannot be quorate
    (CFG, (1,), flag(True, 2), False, True, True, False, Standing.INQUORATE,
     "view 7: 1 member (n1), 1 of 3 expected votes, quorum 2: inquorate"),
    # joining: enough members, their leases not in yet (never quorate): transient too
    (CFG, (1, 2, 3), flag(False, 0), False, False, True, False, Standing.WAITING,
     W + "waiting for its members' quorum leases"),
    # this view was backed, its leases lapsed and the core reported the loss
    (CFG, (1, 2, 3), flag(False, 1), False, True, True, False, Standing.INQUORATE,
     W + "inquorate (its leases lapsed: 1 vote backed, quorum 2)"),
    (CFG, (1, 2, 3), flag(False, 0), False, True, True, False, Standing.INQUORATE,
     W + "inquorate (its leases lapsed: 0 votes backed, quorum 2)"),
    (CFG, (1, 2, 3), flag(False, 0), False, True, True, True, Standing.LEFT,
     W + "this node left the cluster"),
    (TWO, (1,), QuorumState(False, 1, 1, 1), False, False, False, False, Standing.INQUORATE,
     ("view 7: 1 member (a), 1 of 1 expected votes, quorum 1: inquorate (wait_for_all: "
     "every node must be seen once first)")),
    (TWO, (1,), QuorumState(True, 1, 1, 1), True, True, True, False, Standing.QUORATE,
     "view 7: 1 member (a), 1 of 1 expected votes, quorum 1: quorate"),
    # votes per node, and a quorum never lowered below the one computed before
    (HEAVY, (1, 3), QuorumState(True, 4, 3, 4), True, True, True, False, Standing.QUORATE,
     "view 7: 2 members (n1, n3), 3 of 4 expected votes, quorum 3: quorate"),
    (HEAVY, (2, 3), QuorumState(True, 4, 3, 4), False, True, True, False, Standing.INQUORATE,
     "view 7: 2 members (n2, n3), 2 of 4 expected votes, quorum 3: inquorate"),
]


@pytest.mark.parametrize(("cfg", "members", "reported", "backed", "was_backed", "seen_all",
                          "leaving", "standing", "line"), CASES)
def test_standing_and_line(cfg, members, reported, backed, was_backed, seen_all, leaving,
                           standing, line):
    q = view_quorum(cfg, members[0], view(*members), reported, backed, seen_all=seen_all,
                    leaving=leaving, was_backed=was_backed)
    assert q is not None and (q.standing, q.line()) == (standing, line)
    assert q.settled == (standing is not Standing.WAITING)


def test_no_view_no_standing():
    assert view_quorum(CFG, 1, None, flag(False), False, seen_all=True, leaving=False) is None
    assert view_quorum(CFG, 1, view(2, 3), flag(True, 2), False, seen_all=True,
                       leaving=False) is None


NOTES = [
    (Standing.QUORATE, "", ""),
    (Standing.WAITING, "", ""),
    (Standing.INQUORATE, "", "view 4 (n2) is inquorate (1 of 3 expected votes, quorum 2)"),
    (Standing.INQUORATE, "wait_for_all: every node must be seen once first",
     "view 4 (n2) is inquorate (wait_for_all: every node must be seen once first)"),
    (Standing.LEFT, "", "this node left the cluster"),
]


@pytest.mark.parametrize(("standing", "why", "note"), NOTES)
def test_fencing_note(standing, why, note):
    assert ViewQuorum(4, ("n2",), 1, 3, 2, standing, why).fencing_note() == note


def test_read_off_real_cores_the_line_follows_every_view_and_never_lags():
    bus = Bus(1, 2, 3)
    bus.run(3.0)
    q = of_core(bus.cores[1], bus.now)
    assert q.line().endswith("3 members (n1, n2, n3), 3 of 3 expected votes, quorum 2: "
                             "quorate")
    bus.cut = {(3, 1), (3, 2), (1, 3), (2, 3)}
    seen = set()
    for _ in range(60):                       # 3 s in 50 ms steps
        bus.run(0.05)
        q = of_core(bus.cores[1], bus.now)
        seen.add(q.standing)
        # the line's member count is the view's, always (no lagging copy)
        assert q.members == tuple(f"n{i}" for i in sorted(bus.cores[1].view.nodeids))
        assert (q.standing is Standing.QUORATE) == bus.cores[1].is_quorate(bus.now)
    assert q.line().endswith("2 members (n1, n2), 2 of 3 expected votes, quorum 2: quorate")
    assert Standing.INQUORATE not in seen
    bus.cut |= {(2, 1), (1, 2)}
    bus.run(3.0)
    q = of_core(bus.cores[1], bus.now)
    assert q.line().endswith("1 member (n1), 1 of 3 expected votes, quorum 2: inquorate")
    bus.cores[2].leave("clean shutdown", bus.now)
    assert of_core(bus.cores[2], bus.now).standing is Standing.LEFT
