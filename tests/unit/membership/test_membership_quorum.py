"""cman calculate_quorum() arithmetic and MembershipConfig, as tables."""

from __future__ import annotations

import pytest
from clusterd.conf import parse
from clusterd.errors import ConfigError
from clusterd.membership.config import MembershipConfig, NodeSpec, cman_cluster_id
from clusterd.membership.quorum import calculate_quorum


@pytest.mark.parametrize("expected,total,two_node,members,previous,quorum", [
    (3, 3, False, 3, 0, 2),
    (3, 2, False, 2, 2, 2),   # a node left: quorum stays
    (5, 5, False, 5, 0, 3),
    (5, 3, False, 3, 3, 3),
    (4, 4, False, 4, 0, 3),   # even split is never quorate
    (1, 2, True, 2, 0, 1),    # two_node
    (1, 1, True, 1, 0, 1),
    (2, 6, False, 3, 0, 4),   # expected_votes set too low: total votes win
    (3, 1, False, 1, 4, 4),   # never decreases on its own
    (3, 3, True, 3, 0, 2),    # two_node does not apply above two members
])
def test_calculate_quorum(expected, total, two_node, members, previous, quorum) -> None:
    assert calculate_quorum(expected, total, two_node=two_node, member_count=members,
                            previous=previous) == quorum


def nodes(*votes: int) -> tuple[NodeSpec, ...]:
    return tuple(NodeSpec(f"n{i}", i, v, f"198.18.0.{i}") for i, v in enumerate(votes, 1))


def test_config_derived_values() -> None:
    cfg = MembershipConfig("alpha", nodes(1, 2, 1), token_ms=2000)
    assert cfg.expected == 4 and cfg.token == 2.0 and cfg.heartbeat_interval == 0.5
    assert cfg.cid == cman_cluster_id("alpha") and 0 <= cfg.cid <= 0xFFFF
    assert cfg.votes({1, 2}) == 3
    assert cfg.addresses()[2] == ("198.18.0.2", 5405)
    assert MembershipConfig("a", nodes(1, 1), two_node=True).waits_for_all


def test_config_reports_every_problem_at_once() -> None:
    bad = (NodeSpec("a", 1), NodeSpec("a", 1), NodeSpec("c", 0, -1))
    with pytest.raises(ConfigError) as exc:
        MembershipConfig("x", bad, two_node=True, token_ms=10, port=0)
    text = str(exc.value)
    for needle in ("nodeid 1 is used more than once", "name is used more than once",
                   "nodeid 0 must be", "votes -1", "two_node needs exactly two nodes",
                   "token 10 ms", "port 0"):
        assert needle in text


CONF = b"""<?xml version="1.0"?>
<cluster name="alpha" config_version="3">
  <cman expected_votes="3" port="6809"/>
  <totem token="3000"/>
  <fence_daemon post_join_delay="9"/>
  <clusternodes>
    <clusternode name="198.18.0.1" nodeid="1"/>
    <clusternode name="198.18.0.2" nodeid="2" votes="2"/>
  </clusternodes>
</cluster>
"""


def test_from_conf_uses_the_one_config_model() -> None:
    cfg = MembershipConfig.from_conf(parse(CONF))
    assert cfg.cluster_name == "alpha" and cfg.expected == 3 and cfg.token_ms == 3000
    assert cfg.port == 6809 and cfg.post_join_delay == 9.0
    assert cfg.addresses() == {1: ("198.18.0.1", 6809), 2: ("198.18.0.2", 6809)}
    assert cfg.node(2).votes == 2


def test_from_conf_refuses_names_it_cannot_resolve() -> None:
    conf = parse(CONF.replace(b"198.18.0.2", b"node2.example"))
    with pytest.raises(ConfigError, match=r"node2.example.*cannot resolve"):
        MembershipConfig.from_conf(conf)
    cfg = MembershipConfig.from_conf(conf, resolve=lambda n: "198.18.0.9" if "example" in n
                                     else n)
    assert cfg.addresses()[2] == ("198.18.0.9", 6809)
