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
    assert cfg.expected == 4 and cfg.token == 2.0 and cfg.heartbeat_interval == 2.0 / 3
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


# ---------------------------------------------------------------- leases back a view
def _table_with(view_vid, leases: dict[int, float], grants: dict[int, tuple] | None = None):
    from clusterd.membership.peers import Lease, PeerInfo, PeerTable
    from clusterd.wire.messages import Heartbeat

    table = PeerTable(1.0)
    table.support = {p: Lease(view_vid, exp) for p, exp in leases.items()}
    for p, (vid, exp, advertised) in (grants or {}).items():
        table.grants[p] = Lease(vid, exp)
        table.peers[p] = PeerInfo(1, 0.0, Heartbeat(advertised, 0, "", (), n=1), 1)
    return table


def test_backed_quorum_counts_only_live_leases_for_this_view() -> None:
    from clusterd.membership.quorum import backed_quorum
    from clusterd.wire.messages import View, ViewId

    cfg = MembershipConfig("q", nodes(1, 1, 1, 1, 1))
    vid = ViewId(4, 1, 1)
    view = View(vid, tuple((i, 1) for i in range(1, 6)))
    table = _table_with(vid, {2: 10.0, 3: 5.0, 4: 0.5})
    quorate, votes, quorum, until = backed_quorum(cfg, 1, view, table, 0.0, True, 0, 1.0)
    assert (quorate, votes, quorum, until) == (True, 3, 3, 5.0)  # 4's lease expired
    assert not backed_quorum(cfg, 1, view, table, 0.0, True, 0, 5.0)[0]


def test_own_vote_waits_while_lent_to_an_older_view_or_just_started() -> None:
    from clusterd.membership.quorum import backed_quorum
    from clusterd.wire.messages import View, ViewId

    cfg = MembershipConfig("q", nodes(1, 1, 1))
    old, new = ViewId(3, 1, 1), ViewId(4, 2, 1)
    view = View(new, ((1, 1), (2, 1)))
    lent = _table_with(new, {2: 10.0}, grants={3: (old, 2.0, old)})
    assert backed_quorum(cfg, 1, view, lent, 0.0, True, 0, 1.0)[:2] == (False, 1)
    assert backed_quorum(cfg, 1, view, lent, 0.0, True, 0, 2.5)[:2] == (True, 2)
    moved_on = _table_with(new, {2: 10.0}, grants={3: (old, 2.0, ViewId(5, 3, 1))})
    assert backed_quorum(cfg, 1, view, moved_on, 0.0, True, 0, 1.0)[0]
    assert not backed_quorum(cfg, 1, view, moved_on, 1.5, True, 0, 1.0)[0], "just started"


def test_wait_for_all_blocks_two_node_until_the_peer_was_seen() -> None:
    from clusterd.membership.peers import PeerTable
    from clusterd.membership.quorum import backed_quorum
    from clusterd.wire.messages import View, ViewId

    cfg = MembershipConfig("q", nodes(1, 1), two_node=True, expected_votes=1)
    view = View(ViewId(1, 1, 1), ((1, 1),))
    assert backed_quorum(cfg, 1, view, PeerTable(1.0), 0.0, False, 0, 1.0)[:3] == \
        (False, 1, 1)
    assert backed_quorum(cfg, 1, view, PeerTable(1.0), 0.0, True, 0, 1.0)[0]
