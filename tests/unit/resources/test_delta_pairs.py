"""Reconfiguration pairs each old tree node with one new node (delta.py): a resource
referenced twice under one parent is compared reference by reference, so re-applying the
same config changes nothing (rgmanager's resource_tree_delta() compared every equal pair
and stopped and restarted the children of such a resource)."""

from __future__ import annotations

from clusterd.resources import ChangeKind, build_tree, reconfiguration
from lxml import etree

TWICE = ('<resources><script name="g" file="/g"/></resources><service name="s">'
         '<script ref="g"/><script ref="g"><ip address="10.0.0.1"/></script></service>')


def changes(old: str, new: str) -> list[tuple]:
    trees = [build_tree(etree.fromstring(f"<rm>{body}</rm>")) for body in (old, new)]
    return [(c.group, c.kind, c.stop, c.start) for c in reconfiguration(*trees)]


def test_the_same_config_changes_nothing():
    assert changes(TWICE, TWICE) == [("service:s", ChangeKind.UNCHANGED, (), ())]


def test_dropping_one_reference_stops_only_what_it_held():
    fewer = TWICE.replace('<script ref="g"><ip address="10.0.0.1"/></script>', "")
    assert changes(TWICE, fewer) == [("service:s", ChangeKind.SUBTREES, ("script:g",), ())]


def test_adding_a_child_under_one_reference_starts_only_that_child():
    more = TWICE.replace('<script ref="g"/>',
                         '<script ref="g"><ip address="10.0.0.2"/></script>')
    assert changes(TWICE, more) == [("service:s", ChangeKind.SUBTREES, (), ("ip:10.0.0.2",))]
