"""``<quorumd>`` (clusterd.conf.qdisk): qdisk(5)'s defaults, and every refusal, through the
real parser (``clusterd.conf.parse``: ConfigError naming the problem)."""

from __future__ import annotations

import pytest
from clusterd.conf import parse
from clusterd.conf.parse import parse_xml
from clusterd.conf.qdisk import (
    MAX_HEURISTICS,
    MAX_NODES,
    Heuristic,
    qdisk_conf,
    qdisk_problems,
    qdisk_votes,
    qdisk_warnings,
)
from clusterd.errors import ConfigError

TIE_BREAKER = '<cman two_node="0" expected_votes="3"/>'
TRUE = "/usr/bin/true"


def xml(quorumd: str = '<quorumd device="/dev/x"/>', *, nodes: int = 2, cman: str = "",
        node_attrs: str = "", first_id: int = 1) -> bytes:
    members = "".join(f'<clusternode name="n{i}" nodeid="{i}"{node_attrs}/>'
                      for i in range(first_id, first_id + nodes))
    return (f'<?xml version="1.0"?><cluster name="alpha" config_version="1">{cman}'
            f'<clusternodes>{members}</clusternodes>{quorumd}</cluster>').encode()


def heuristics(*scores: int, program: str = TRUE) -> str:
    return "".join(f'<heuristic program="{program}" score="{s}"/>' for s in scores)


def refused(data: bytes) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(data)
    return str(exc.value)


# ------------------------------------------------------------------ defaults, qdisk(5)
def test_no_quorumd_no_disk():
    root = parse_xml(xml(quorumd=""))
    assert qdisk_conf(root) is None and qdisk_problems(root) == [] and qdisk_votes(root) == 0
    assert qdisk_warnings(root) == []
    assert parse(xml(quorumd="")).qdisk is None


def test_the_two_node_tie_breaker_recipe_parses_with_qdisk5_defaults():
    """qdisk(5) 1.4: two_node="0", expected_votes="3", node votes 1, disk votes unset."""
    conf = parse(xml(cman=TIE_BREAKER))
    q = conf.qdisk
    assert q is not None
    assert (q.device, q.label, q.name) == ("/dev/x", "", "/dev/x")
    assert (q.interval, q.tko, q.tko_up, q.upgrade_wait, q.master_wait) == (1, 10, 3, 2, 5)
    assert q.votes == 1                 # nodes - 1
    assert q.min_score == 0 and q.max_score == 0 and q.heuristics == ()
    assert q.master_wins                # two nodes, no heuristics, no votes set
    assert conf.expected_votes == 3 and not conf.two_node


@pytest.mark.parametrize("nodes, votes", [(1, 1), (2, 1), (3, 2), (4, 3), (16, 15)])
def test_votes_default_to_nodes_minus_one_at_least_one(nodes, votes):
    q = parse(xml(nodes=nodes)).qdisk
    assert q.votes == votes


def test_votes_set_are_kept():
    assert parse(xml('<quorumd device="/dev/x" votes="3"/>', nodes=3)).qdisk.votes == 3


@pytest.mark.parametrize("nodes, extra, disk", [
    (2, "", 1), (3, "", 2), (4, "", 3), (3, ' votes="5"', 5),
])
def test_expected_votes_default_to_node_votes_plus_disk_votes(nodes, extra, disk):
    conf = parse(xml(f'<quorumd device="/dev/x"{extra}/>', nodes=nodes))
    assert conf.expected_votes == nodes + disk
    assert qdisk_votes(parse_xml(xml(f'<quorumd device="/dev/x"{extra}/>', nodes=nodes))) == disk


def test_expected_votes_set_by_hand_win():
    conf = parse(xml(nodes=3, cman='<cman expected_votes="6"/>'))
    assert conf.expected_votes == 6


@pytest.mark.parametrize("tko, tko_up, master_wait", [
    (2, 1, 2), (3, 1, 2), (4, 1, 2), (5, 1, 2), (6, 2, 3), (10, 3, 5), (12, 4, 6),
    (30, 10, 15),
])
def test_tko_up_and_master_wait_follow_tko(tko, tko_up, master_wait):
    """tko_up = floor(tko/3) (at least 1); master_wait = floor(tko/2), never below 2."""
    q = parse(xml(f'<quorumd device="/dev/x" tko="{tko}"/>')).qdisk
    assert (q.tko, q.tko_up, q.master_wait, q.upgrade_wait) == (tko, tko_up, master_wait, 2)
    assert q.master_wait > q.tko_up


def test_interval_scales_claim_for_and_the_heuristics_default_interval():
    q = parse(xml(f'<quorumd device="/dev/x" interval="3" tko="4" min_score="1">'
                  f'<heuristic program="{TRUE}"/></quorumd>')).qdisk
    assert q.interval == 3 and q.master_wait == 2
    assert q.heuristics == (Heuristic(TRUE, score=1, interval=6, tko=1),)


def test_heuristic_attributes_are_read():
    q = parse(xml(f'<quorumd device="/dev/x"><heuristic program="{TRUE}" score="3" '
                  'interval="7" tko="4"/></quorumd>')).qdisk
    assert q.heuristics == (Heuristic(TRUE, 3, 7, 4),)


@pytest.mark.parametrize("scores, min_score", [
    ((1,), 1), ((1, 1), 1), ((1, 1, 1), 2), ((3,), 2), ((1, 2, 4), 4), ((10, 10), 10),
])
def test_min_score_defaults_to_floor_of_half_the_total_plus_one(scores, min_score):
    q = parse(xml(f'<quorumd device="/dev/x">{heuristics(*scores)}</quorumd>')).qdisk
    assert q.max_score == sum(scores)
    assert q.min_score == min_score == (sum(scores) + 1) // 2


def test_min_score_zero_means_the_default_and_a_value_is_kept():
    q = parse(xml(f'<quorumd device="/dev/x" min_score="0">{heuristics(1, 2, 4)}'
                  '</quorumd>')).qdisk
    assert q.min_score == 4
    q = parse(xml(f'<quorumd device="/dev/x" min_score="7">{heuristics(1, 2, 4)}'
                  '</quorumd>')).qdisk
    assert q.min_score == 7


@pytest.mark.parametrize("quorumd, nodes, wins", [
    ('<quorumd device="/dev/x"/>', 2, True),
    (f'<quorumd device="/dev/x">{heuristics(1)}</quorumd>', 2, False),   # heuristics
    ('<quorumd device="/dev/x" votes="1"/>', 2, False),                  # votes set
    ('<quorumd device="/dev/x"/>', 3, False),                            # three nodes
    ('<quorumd device="/dev/x"/>', 1, False),                            # one node
    ('<quorumd device="/dev/x" master_wins="0"/>', 2, False),
    ('<quorumd device="/dev/x" master_wins="1" votes="1"/>', 2, True),   # asked for
])
def test_master_wins_defaults(quorumd, nodes, wins):
    root = parse_xml(xml(quorumd, nodes=nodes))
    assert parse(xml(quorumd, nodes=nodes)).qdisk.master_wins is wins
    assert qdisk_warnings(root) == []


def test_master_wins_asked_with_heuristics_is_switched_off_with_a_warning():
    data = xml(f'<quorumd device="/dev/x" master_wins="1">{heuristics(1)}</quorumd>')
    assert parse(data).qdisk.master_wins is False
    ((el, text),) = qdisk_warnings(parse_xml(data))
    assert el.tag == "quorumd"
    assert 'master_wins="1" is switched off because heuristics are defined' in text


def test_master_wins_asked_with_three_nodes_is_switched_off_with_a_warning():
    data = xml('<quorumd device="/dev/x" master_wins="1"/>', nodes=3)
    assert parse(data).qdisk.master_wins is False
    ((_el, text),) = qdisk_warnings(parse_xml(data))
    assert "because the cluster has more than two nodes" in text


def test_a_label_names_the_disk():
    q = parse(xml('<quorumd label="qd1"/>')).qdisk
    assert (q.device, q.label, q.name) == ("", "qd1", "LABEL=qd1")


def test_sixteen_nodes_with_ids_up_to_16_and_ten_heuristics_parse():
    parse(xml(nodes=16))
    parse(xml(f'<quorumd device="/dev/x">{heuristics(*[1] * MAX_HEURISTICS)}</quorumd>'))
    assert MAX_NODES == 16 and MAX_HEURISTICS == 10


# ------------------------------------------------------------------ refusals
def test_no_device_and_no_label_is_refused():
    text = refused(xml("<quorumd/>"))
    assert '/cluster/quorumd: a quorum disk needs device="/dev/..."' in text
    assert 'label="..."' in text
    assert "a quorum disk needs" in refused(xml('<quorumd device=" " label=""/>'))


@pytest.mark.parametrize("device", ["/tmp/qdisk", "sda1", "dev/sdb", "/devices/x"])
def test_a_device_not_under_dev_is_refused(device):
    text = refused(xml(f'<quorumd device="{device}"/>'))
    assert f"device '{device}' is not a block device path under /dev" in text


@pytest.mark.parametrize("votes", ["2", "0"])
def test_a_node_with_other_than_one_vote_is_refused(votes):
    text = refused(xml(node_attrs=f' votes="{votes}"'))
    assert "/cluster/clusternodes/clusternode[@name='n1']: with a quorum disk every node " \
           'must have votes="1"' in text


def test_a_node_id_above_16_is_refused():
    text = refused(xml(first_id=16))     # nodes 16 and 17
    assert "nodeid 17 is above 16" in text
    assert "nodeid 16 is above" not in text


def test_more_than_16_nodes_are_refused():
    text = refused(xml(nodes=17))
    assert "a quorum disk serves at most 16 nodes (qdisk(5)), this cluster has 17" in text


def test_two_node_beside_a_quorum_disk_is_refused():
    text = refused(xml(cman='<cman two_node="1" expected_votes="1"/>'))
    assert '/cluster/cman: two_node="1" beside a quorum disk' in text
    assert 'set two_node="0" and expected_votes="3"' in text


def test_min_score_above_the_heuristics_total_is_refused():
    text = refused(xml(f'<quorumd device="/dev/x" min_score="4">{heuristics(1, 2)}'
                       '</quorumd>'))
    assert "min_score 4 exceeds the heuristics' total score 3" in text


def test_min_score_equal_to_the_total_parses():
    parse(xml(f'<quorumd device="/dev/x" min_score="3">{heuristics(1, 2)}</quorumd>'))


def test_min_score_without_heuristics_is_refused():
    text = refused(xml('<quorumd device="/dev/x" min_score="1"/>'))
    assert "min_score 1 without any <heuristic>" in text


@pytest.mark.parametrize("program, reason", [
    ("ping -c1 gw", "program has arguments ('ping' followed by 2 more)"),
    ("/bin/ping -c1 gw", "program has arguments ('/bin/ping' followed by 2 more)"),
    ("[ -f /quorum ]", "program has arguments"),       # qdisk(5)'s own sh -c example
    ("/bin/sh -c 'ping -c1 gw'", "program runs inline code through '/bin/sh'"),
    ("/bin/bash", "program is a shell or interpreter (bash)"),
    ("check_gw", "program is not an absolute path"),
])
def test_a_heuristic_program_must_be_one_executable_without_a_shell(program, reason):
    quorumd = (f'<quorumd device="/dev/x"><heuristic program="{program}"/></quorumd>'
               .replace("'", "&apos;"))
    text = refused(xml(quorumd))
    assert f"/cluster/quorumd/heuristic: {reason}" in text
    assert "put it in a root-owned script" in text


def test_an_empty_heuristic_program_is_refused():
    text = refused(xml('<quorumd device="/dev/x"><heuristic program=""/></quorumd>'))
    assert 'a heuristic needs program="/path/to/check"' in text


def test_more_than_ten_heuristics_are_refused():
    text = refused(xml(f'<quorumd device="/dev/x">{heuristics(*[1] * 11)}</quorumd>'))
    assert "11 heuristics: qdisk(5) allows at most 10" in text


def test_every_problem_is_reported_at_once():
    text = refused(xml(f'<quorumd device="/tmp/x" min_score="12">{heuristics(*[1] * 11)}'
                       '</quorumd>', nodes=2, first_id=16, node_attrs=' votes="2"',
                       cman='<cman two_node="1" expected_votes="1"/>'))
    for needle in ("not a block device path", "nodeid 17 is above 16",
                   'must have votes="1"', 'two_node="1" beside a quorum disk',
                   "11 heuristics", "min_score 12 exceeds"):
        assert needle in text


def test_master_wait_must_exceed_tko_up():
    """qdisk(5): master_wait "must be greater than tko_up". The RHCS cluster.rng has no
    tko_up or master_wait, so the rule is checked on the tree itself (qdisk_problems)."""
    root = parse_xml(xml('<quorumd device="/dev/x" tko="12" tko_up="3" master_wait="3"/>'))
    q = qdisk_conf(root)
    assert (q.tko_up, q.master_wait) == (3, 3)
    (problem,) = qdisk_problems(root)
    assert problem.reason == "master_wait (3) must be greater than tko_up (3): raise master_wait"
    ok = parse_xml(xml('<quorumd device="/dev/x" tko="12" tko_up="3" master_wait="4"/>'))
    assert qdisk_problems(ok) == []


def test_master_wait_below_two_is_raised_to_two():
    q = qdisk_conf(parse_xml(xml('<quorumd device="/dev/x" master_wait="1" tko_up="1"/>')))
    assert q.master_wait == 2
