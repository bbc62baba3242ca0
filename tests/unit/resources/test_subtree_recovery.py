"""Independent-subtree recovery: which part of a service a failed status check restarts."""

from __future__ import annotations

import pytest
from clusterd.resources import build_tree
from clusterd.resources.recovery import Verdict, subtree_recovery
from lxml import etree

CONF = """<rm><service name="s">
  <fs name="data" mountpoint="/d" device="/dev/a" __independent_subtree="1"
      __max_restarts="2" __restart_expire_time="60">
    <script name="inner" file="/i"/>
  </fs>
  <ip address="10.0.0.1"/>
  <script name="opt" file="/o" __independent_subtree="non-critical"/>
  <script name="lim" file="/l" __independent_subtree="2" __max_restarts="1"
          __restart_expire_time="60"/>
  <script name="free" file="/f" __independent_subtree="1"/>
</service></rm>"""


@pytest.fixture(scope="module")
def tree():
    return build_tree(etree.fromstring(CONF))


def node(tree, label):
    return next(n for n in tree.group("s").walk() if n.label == label)


def steps(seq):
    return [str(s) for s in seq]


def test_child_failure_restarts_nearest_independent_parent_only(tree):
    r = subtree_recovery(tree.group("s"), node(tree, "script:inner"), {}, 100.0)
    assert r.verdict is Verdict.RESTART_SUBTREE and r.node.label == "fs:data"
    assert steps(r.stop) == ["[stop] script:inner", "[stop] fs:data"]
    assert steps(r.start) == ["[start] fs:data", "[start] script:inner"]
    assert "(1 of 2" not in r.reason and "0 of 2 restarts within 60s" in r.reason


def test_budget_used_escalates_to_service(tree):
    fs = node(tree, "fs:data")
    r = subtree_recovery(tree.group("s"), fs, {fs.index: (50.0, 90.0)}, 100.0)
    assert r.verdict is Verdict.RECOVER_SERVICE and r.node.label == "service:s"
    old = subtree_recovery(tree.group("s"), fs, {fs.index: (10.0, 20.0)}, 100.0)  # expired
    assert old.verdict is Verdict.RESTART_SUBTREE


def test_non_independent_resource_escalates(tree):
    r = subtree_recovery(tree.group("s"), node(tree, "ip:10.0.0.1"), {}, 0.0)
    assert r.verdict is Verdict.RECOVER_SERVICE
    assert "no enclosing resource is an independent subtree" in r.reason


def test_non_critical(tree):
    opt = node(tree, "script:opt")
    r = subtree_recovery(tree.group("s"), opt, {}, 0.0)
    assert r.verdict is Verdict.STOP_SUBTREE and steps(r.stop) == ["[stop] script:opt"] and r.start == ()
    lim = node(tree, "script:lim")
    assert subtree_recovery(tree.group("s"), lim, {}, 100.0).verdict is Verdict.RESTART_SUBTREE
    assert subtree_recovery(tree.group("s"), lim, {lim.index: (90.0,)}, 100.0).verdict is Verdict.STOP_SUBTREE


def test_independent_without_limits_always_restarts(tree):
    free = node(tree, "script:free")
    many = {free.index: tuple(float(t) for t in range(50))}
    assert subtree_recovery(tree.group("s"), free, many, 60.0).verdict is Verdict.RESTART_SUBTREE


def test_foreign_node_rejected(tree):
    other = build_tree(etree.fromstring('<rm><service name="x"><ip address="10.9.9.9"/></service></rm>'))
    with pytest.raises(ValueError, match="is not in the tree of service:s"):
        subtree_recovery(tree.group("s"), other.group("x").children[0], {}, 0.0)
