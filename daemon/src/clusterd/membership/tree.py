"""The fixed dissemination tree over a view's members (pure).

docs/architecture.md, "Planned: membership at 300 nodes": proposals, commits and quorum
certificates go down one tree, acks and lease grants come up it, so no member handles
more than ``FANOUT + 1`` messages a round whatever the size of the view. The tree is a
function of the member set alone, so every member of a view computes the same one and
it changes only with the view:

* the members in nodeid order, the lowest (the coordinator) at index 0, the root;
* the member at index ``i > 0`` hangs under index ``(i - 1) // FANOUT``; the children of
  index ``i`` are indices ``FANOUT * i + 1 .. FANOUT * i + FANOUT``;
* so levels hold 1, 8, 64, 512 ... members: depth 2 up to 73 members, 3 up to 585.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

FANOUT = 8


@dataclass(frozen=True)
class Tree:
    """The tree of one member set. ``order``: the members, sorted."""

    order: tuple[int, ...]
    fanout: int = FANOUT

    @classmethod
    def of(cls, members: Iterable[int], fanout: int = FANOUT) -> Tree:
        order = tuple(sorted(set(members)))
        if not order:
            raise ValueError("a tree needs at least one member")
        if fanout < 1:
            raise ValueError(f"fan-out must be at least 1, not {fanout}")
        return cls(order, fanout)

    @cached_property
    def _index(self) -> dict[int, int]:
        return {n: i for i, n in enumerate(self.order)}

    @property
    def root(self) -> int:
        return self.order[0]

    def index(self, node: int) -> int:
        try:
            return self._index[node]
        except KeyError:
            raise KeyError(f"node {node} is not a member of this tree") from None

    def parent(self, node: int) -> int | None:
        i = self.index(node)
        return None if i == 0 else self.order[(i - 1) // self.fanout]

    def children(self, node: int) -> tuple[int, ...]:
        first = self.fanout * self.index(node) + 1
        return self.order[first:first + self.fanout]

    def depth_of(self, node: int) -> int:
        """Hops from the root to ``node``."""
        i, d = self.index(node), 0
        while i:
            i, d = (i - 1) // self.fanout, d + 1
        return d

    @cached_property
    def depth(self) -> int:
        """Hops from the root to the deepest member."""
        return self.depth_of(self.order[-1])

    def height(self, node: int) -> int:
        """Hops from ``node`` down to the deepest member of its subtree (0: a leaf)."""
        h, level = 0, [self.index(node)]
        n = len(self.order)
        while True:
            first = self.fanout * level[0] + 1
            if first >= n:
                return h
            level = [first]
            h += 1

    def subtree(self, node: int) -> tuple[int, ...]:
        """``node`` and every member under it, in nodeid order."""
        out, level, n = [], [self.index(node)], len(self.order)
        while level:
            out += level
            level = [c for i in level
                     for c in range(self.fanout * i + 1, min(self.fanout * i + self.fanout + 1, n))]
        return tuple(sorted(self.order[i] for i in out))

    def path(self, node: int) -> tuple[int, ...]:
        """The members from the root down to ``node``, both included."""
        out = [node]
        while (p := self.parent(out[-1])) is not None:
            out.append(p)
        return tuple(reversed(out))
