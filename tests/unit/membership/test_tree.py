"""The dissemination tree (membership/tree.py): a pure function of the member set."""

from __future__ import annotations

import pytest
from clusterd.membership.tree import FANOUT, Tree


@pytest.mark.parametrize(("n", "depth"), [(1, 0), (2, 1), (9, 1), (10, 2), (73, 2),
                                          (74, 3), (300, 3), (585, 3), (586, 4)])
def test_depth_by_size(n, depth):
    assert Tree.of(range(1, n + 1)).depth == depth


def test_parent_children_and_subtree_of_300_nodes():
    ids = [3 * i + 7 for i in range(300)]            # nodeids need not be dense
    tree = Tree.of(reversed(ids))
    assert tree.root == 7 and tree.parent(7) is None
    assert tree.children(7) == tuple(ids[1:9])
    assert tree.children(ids[1]) == tuple(ids[9:17])
    assert tree.parent(ids[9]) == ids[1] and tree.parent(ids[8]) == 7
    seen = set()
    for node in ids:
        kids = tree.children(node)
        assert len(kids) <= FANOUT
        assert all(tree.parent(k) == node for k in kids)
        seen.update(kids)
        assert tree.subtree(node) == tuple(sorted(
            {node} | {m for k in kids for m in tree.subtree(k)}))
        assert tree.path(node)[0] == 7 and tree.path(node)[-1] == node
        assert len(tree.path(node)) == tree.depth_of(node) + 1
    assert seen == set(ids) - {7}
    assert tree.subtree(7) == tuple(ids)
    assert tree.height(7) == 3 and tree.height(ids[1]) == 2 and tree.height(ids[-1]) == 0


def test_the_same_members_give_the_same_tree_and_strangers_are_refused():
    assert Tree.of([5, 1, 9]) == Tree.of([9, 5, 1, 1])
    with pytest.raises(KeyError, match="node 4 is not a member"):
        Tree.of([1, 2]).parent(4)
    with pytest.raises(ValueError, match="at least one member"):
        Tree.of([])
