"""The config edits refuse, naming the argument, what cluster.conf cannot hold (NUL and
other control characters XML refuses) and names holding control characters, before any
element is built (lxml would raise a bare ValueError); nothing is returned."""

from __future__ import annotations

import pytest
from clusterd.conf import edit, new_cluster
from clusterd.conf.refusals import unwritable_problems
from clusterd.errors import ConfigError

NODES = [{"name": "node1"}, {"name": "node2"}]


@pytest.fixture(scope="module")
def conf():
    return new_cluster("alpha", NODES)


CASES = [
    # (edit, args, where, reason)
    ("set_cluster", {"name": "al\x00pha"}, "set_cluster: name",
     '"al\\x00pha" holds U+0000 (NUL): cluster.conf (XML 1.0) cannot hold it; remove it'),
    ("set_cluster", {"nodes": [{"name": "node1"}, {"name": "node\t2"}]},
     "set_cluster: nodes[1].name",
     '"node\\t2" holds U+0009 (TAB): a name cannot hold control characters; remove it'),
    ("set_failover_domain", {"name": "d", "members": [{"name": "node1\x1b"}]},
     "set_failover_domain: members[0].name",
     '"node1\\x1b" holds U+001B (ESCAPE): cluster.conf (XML 1.0) cannot hold it; remove it'),
    ("set_service", {"name": "web", "attrs": {"domain": "d\x85"}},
     "set_service: attrs.domain",
     ('"d\\x85" holds U+0085 (a control character): a name cannot hold control characters; '
     "remove it")),
    ("set_service", {"name": "web", "resources": [{"type": "ip", "attrs": {
        "address": "10.0.0.1", "sleeptime": "1\x00"}}]},
     "set_service: resources[0].attrs.sleeptime",
     '"1\\x00" holds U+0000 (NUL): cluster.conf (XML 1.0) cannot hold it; remove it'),
    ("set_resource", {"type": "script", "attrs": {"name": "x\x00", "file": "/bin/true"}},
     "set_resource: attrs.name",
     '"x\\x00" holds U+0000 (NUL): cluster.conf (XML 1.0) cannot hold it; remove it'),
    ("set_fence_device", {"name": "apc", "agent": "fence_apc", "params": {"passwd": "p\x00"}},
     "set_fence_device: params.passwd",
     ("(value not shown: a secret) holds U+0000 (NUL): cluster.conf (XML 1.0) cannot hold "
     "it; remove it")),
    ("set_node_fence", {"node": "node\x001", "methods": []}, "set_node_fence: node",
     '"node\\x001" holds U+0000 (NUL): cluster.conf (XML 1.0) cannot hold it; remove it'),
    ("set_node_fence", {"node": "node1", "methods": [{"name": "m", "devices": [
        {"name": "apc", "params": {"port\ud800": "1"}}]}]},
     "set_node_fence: methods[0].devices[0].params.port\\ud800",
     ('"port\\ud800" holds U+D800 (an unpaired surrogate): cluster.conf (XML 1.0) cannot '
     "hold it; remove it")),
    ("set_fence_device", {"name": "apc", "agent": "fence_apc", "params": {"ipaddr": "\uffff"}},
     "set_fence_device: params.ipaddr",
     ('"\\uffff" holds U+FFFF (a non-character): cluster.conf (XML 1.0) cannot hold it; '
     "remove it")),
]


@pytest.mark.parametrize(("name", "args", "where", "reason"), CASES)
def test_unwritable_arguments_are_refused_naming_the_argument(conf, name, args, where,
                                                              reason) -> None:
    with pytest.raises(ConfigError) as exc:
        getattr(edit, name)(conf, **args)
    assert [(p.where, p.reason) for p in exc.value.problems] == [(where, reason)]
    assert exc.value.source == "desired state"


def test_a_new_cluster_is_checked_before_anything_is_built() -> None:
    with pytest.raises(ConfigError) as exc:
        new_cluster("al\x00pha", [{"name": "n\x01"}, {"name": "ok"}], token=3000)
    assert [p.where for p in exc.value.problems] == ["new_cluster: name",
                                                     "new_cluster: nodes[0].name"]


def test_tabs_and_newlines_outside_names_are_kept() -> None:
    assert unwritable_problems("set_resource", {"attrs": {"name": "s", "options": "-a\t-b\n"}
                                                 }) == []
