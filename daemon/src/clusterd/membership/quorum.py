"""Quorum arithmetic, as cman's ``calculate_quorum()`` (commands.c) does it.

``quorum = max((expected_votes + 2) // 2, (total_votes + 2) // 2)``, never lower than
the quorum computed before (cman lowers it only on an admin's ``cman_tool expected``).
With ``two_node`` and at most two members the quorum is 1.
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
                  now: float) -> tuple[bool, int, int, float]:
    """Quorum of ``view`` counting only votes that back it now: live leases of members,
    plus this node's own vote unless it is still lent to an older view elsewhere or the
    node started less than a token ago (``self_vote_from``). Returns (quorate, votes,
    quorum, time until which the answer cannot change)."""
    vid, members = view.vid, view.nodeids
    backing, until = table.supporters(vid, members, now)
    blocked_until = table.blocked_until(vid, now)
    if self_vote_from is None or self_vote_from > now:
        blocked_until = max(blocked_until, self_vote_from or float("inf"))
    if blocked_until <= now:
        backing.add(me)
    else:
        until = min(until, blocked_until)
    votes = cfg.votes(backing)
    quorum = calculate_quorum(cfg.expected, cfg.votes(members), two_node=cfg.two_node,
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
