"""Quorum arithmetic, as cman's ``calculate_quorum()`` (commands.c) does it.

``quorum = max((expected_votes + 2) // 2, (total_votes + 2) // 2)``, never lower than
the quorum computed before (cman lowers it only on an admin's ``cman_tool expected``).
With ``two_node`` and at most two members the quorum is 1.

A quorum disk (``clusterd.qdisk``) adds its votes to a view through a :class:`QdiskGrant`:
the disk's master names the view it grants, on the disk, and the votes count in that view
only while the master's own lease backs it (see :func:`qdisk_votes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from clusterd.membership.config import MembershipConfig
from clusterd.membership.peers import PeerTable
from clusterd.wire.messages import View, ViewId


def calculate_quorum(expected_votes: int, total_votes: int, *, two_node: bool = False,
                     member_count: int = 0, previous: int = 0) -> int:
    if two_node and member_count <= 2:
        return 1
    return max((expected_votes + 2) // 2, (total_votes + 2) // 2, previous)


@dataclass(frozen=True)
class QdiskGrant:
    """What this node last read from the quorum disk (``clusterd.qdisk.election``): the
    master ``master`` grants ``votes`` to the view ``vid``; ``mine``: this node is among
    those it grants (always, with master_wins); ``until``: local time after which the read
    no longer vouches for it (no new master can have been elected before then)."""

    master: int
    vid: ViewId
    votes: int
    mine: bool
    until: float


def qdisk_votes(grant: QdiskGrant | None, vid: ViewId, backing: set[int],
                now: float) -> tuple[int, float]:
    """The quorum disk's votes in view ``vid`` backed by ``backing``, and until when the
    answer holds. They count only where the master granted this very view, to this node,
    and its lease backs the view here: the master's lease goes to one view at a time, so
    the disk's votes never count in two views at once (the same argument as for a node's
    vote), and a grant read before the master moved on is void with the old view."""
    if (grant is None or grant.vid != vid or not grant.mine or grant.until <= now
            or grant.master not in backing):
        return 0, float("inf")
    return grant.votes, grant.until


@dataclass(frozen=True)
class QuorumState:
    quorate: bool
    votes: int  # votes of the members currently backing this node's view
    quorum: int
    expected_votes: int

    @classmethod
    def initial(cls, expected: int) -> QuorumState:
        return cls(False, 0, calculate_quorum(expected, 0), expected)


def backed_quorum(cfg: MembershipConfig, me: int, view: View, table: PeerTable,
                  self_vote_from: float | None, seen_all: bool, previous: int,
                  now: float, qdisk: QdiskGrant | None = None
                  ) -> tuple[bool, int, int, float]:
    """Quorum of ``view`` counting only votes that back it now: live leases of members,
    plus this node's own vote unless it is still lent to an older view elsewhere or the
    node started less than a token ago (``self_vote_from``). Returns (quorate, votes,
    quorum, time until which the answer cannot change). ``qdisk``: the quorum disk's grant
    as last read (:func:`qdisk_votes`)."""
    vid, members = view.vid, view.nodeids
    backing, until = table.supporters(vid, members, now)
    blocked_until = table.blocked_until(vid, now)
    if self_vote_from is None or self_vote_from > now:
        blocked_until = max(blocked_until, self_vote_from or float("inf"))
    if blocked_until <= now:
        backing.add(me)
    else:
        until = min(until, blocked_until)
    disk, disk_until = qdisk_votes(qdisk, vid, backing, now)
    until = min(until, disk_until)
    votes = cfg.votes(backing) + disk
    quorum = calculate_quorum(cfg.expected, cfg.votes(members) + disk, two_node=cfg.two_node,
                              member_count=len(members),
                              previous=0 if cfg.two_node else previous)
    quorate = votes >= quorum and (seen_all or not cfg.waits_for_all)
    return quorate, votes, quorum, until


def quorum_reason(quorate: bool, votes: int, quorum: int, vid: ViewId) -> str:
    if quorate:
        return f"{votes} votes back view {vid}, quorum {quorum}"
    if votes >= quorum:
        return "wait_for_all: every node must be seen once first"
    back = "vote backs" if votes == 1 else "votes back"
    return f"only {votes} {back} view {vid}, quorum {quorum}"
