"""Quorum arithmetic, as cman's ``calculate_quorum()`` (commands.c) does it.

``quorum = max((expected_votes + 2) // 2, (total_votes + 2) // 2)``, never lower than
the quorum computed before (cman lowers it only on an admin's ``cman_tool expected``).
With ``two_node`` and at most two members the quorum is 1.
"""

from __future__ import annotations

from dataclasses import dataclass


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
