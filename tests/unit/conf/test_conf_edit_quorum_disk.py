"""set_cluster's quorum_disk (``<quorumd>`` and its ``<heuristic>`` children): set, changed,
left alone, removed; placed where the outline puts it; refused as a whole (nothing changed,
every problem listed) when the result is not a valid disk; exported and fed back unchanged."""

from __future__ import annotations

import pytest
from clusterd.conf import edit, export, new_cluster, parse
from clusterd.errors import ConfigError
from confbuild import small_cluster, to_bytes
from test_conf_edit import replay_export

TRUE = "/usr/bin/true"
DISK = {"device": "/dev/cluster-qdisk0", "label": "pair", "votes": 1, "interval": 1, "tko": 4,
        "heuristics": [{"program": TRUE, "score": 1, "interval": 2, "tko": 3}]}


@pytest.fixture
def pair():
    """Two nodes as the role writes them: two_node mode, expected_votes 1."""
    return parse(to_bytes(small_cluster(2, two_node="1", expected_votes="1")))


def with_disk(conf, **disk):
    return edit.set_cluster(conf, two_node=False, expected_votes=3,
                            quorum_disk={**DISK, **disk})


def test_the_tie_breaker_recipe_in_one_edit(pair):
    new = with_disk(pair)
    assert new.version == pair.version + 1
    assert not new.two_node and new.expected_votes == 3
    q = new.qdisk
    assert (q.device, q.label, q.votes, q.interval, q.tko) == ("/dev/cluster-qdisk0", "pair",
                                                                 1, 1, 4)
    assert [(h.program, h.score, h.interval, h.tko) for h in q.heuristics] == [(TRUE, 1, 2, 3)]
    # the same again changes nothing: the very same object
    assert with_disk(new) is new
    assert edit.set_cluster(new, quorum_disk={"device": "/dev/cluster-qdisk0"}) is new


def test_quorumd_takes_its_place_in_the_outline(pair):
    text = with_disk(pair).canonical_bytes().decode()
    order = [text.index(f"<{tag}") for tag in ("cman", "totem", "quorumd", "clusternodes")]
    assert order == sorted(order)
    assert ('<quorumd votes="1" device="/dev/cluster-qdisk0" interval="1" label="pair" '
            'tko="4">\n    <heuristic interval="2" program="/usr/bin/true" score="1" '
            'tko="3"/>\n  </quorumd>') in text


def test_none_leaves_the_disk_alone_and_keys_left_out_keep_their_value(pair):
    new = with_disk(pair)
    assert edit.set_cluster(new, token=1000, quorum_disk=None) is new
    changed = edit.set_cluster(new, quorum_disk={"tko": 6, "master_wins": False})
    q = changed.qdisk
    assert (q.device, q.label, q.tko, q.interval, len(q.heuristics)) == (
        "/dev/cluster-qdisk0", "pair", 6, 1, 1)
    assert 'master_wins="0"' in changed.canonical_bytes().decode()


def test_heuristics_given_are_the_complete_list_in_order(pair):
    new = with_disk(pair)
    two = edit.set_cluster(new, quorum_disk={"heuristics": [
        {"program": "/usr/bin/false", "score": 2}, {"program": TRUE}]})
    assert [(h.program, h.score) for h in two.qdisk.heuristics] == [("/usr/bin/false", 2),
                                                                      (TRUE, 1)]
    assert edit.set_cluster(two, quorum_disk={"heuristics": [
        {"program": "/usr/bin/false", "score": 2}, {"program": TRUE}]}) is two
    none = edit.set_cluster(two, quorum_disk={"heuristics": []})
    assert none.qdisk.heuristics == () and "<heuristic" not in none.canonical_bytes().decode()


def test_state_absent_removes_the_disk_and_is_idempotent(pair):
    new = with_disk(pair)
    back = edit.set_cluster(new, two_node=True, expected_votes=1,
                            quorum_disk={"state": "absent"})
    assert back.qdisk is None and back.two_node and back.version == new.version + 1
    assert back.canonical_bytes().replace(b'config_version="5"', b'config_version="3"') \
        == pair.canonical_bytes()
    assert edit.set_cluster(back, quorum_disk={"state": "absent"}) is back
    assert edit.set_cluster(pair, quorum_disk={"state": "absent"}) is pair


def test_a_disk_beside_two_node_is_refused_and_changes_nothing(pair):
    before = pair.canonical_bytes()
    with pytest.raises(ConfigError) as exc:
        edit.set_cluster(pair, quorum_disk=DISK)
    assert "two_node" in str(exc.value)
    assert pair.canonical_bytes() == before and pair.qdisk is None


def test_every_problem_of_a_refused_disk_is_listed(pair):
    with pytest.raises(ConfigError) as exc:
        edit.set_cluster(pair, quorum_disk={"votes": 1, "min_score": 5, "heuristics": [
            {"program": "/bin/sh -c true"}]})
    text = str(exc.value)
    assert len(exc.value.problems) >= 3, text
    for part in ("two_node", "device", "min_score", "program"):
        assert part in text, (part, text)


@pytest.mark.parametrize("disk, message", [
    ("/dev/x", "expected a mapping"),
    ({"device": "/dev/x", "size": 1}, "unknown key(s) ['size']"),
    ({"device": "/dev/x", "state": "gone"}, "use 'present' or 'absent'"),
    ({"device": "/dev/x", "heuristics": {"program": TRUE}}, "expected a list"),
    ({"device": "/dev/x", "heuristics": [{"score": 1}]}, "missing required key(s) ['program']"),
    ({"device": "/dev/x", "heuristics": [{"program": TRUE, "shell": 1}]},
     "unknown key(s) ['shell']"),
    ({"device": "/dev/x", "tko": 1.5}, "expected a string, integer or boolean"),
])
def test_bad_fragments_get_clear_errors(pair, disk, message):
    with pytest.raises(ConfigError) as exc:
        edit.set_cluster(pair, two_node=False, expected_votes=3, quorum_disk=disk)
    assert message in str(exc.value)


def test_control_characters_are_refused_naming_the_argument(pair):
    with pytest.raises(ConfigError) as exc:
        edit.set_cluster(pair, quorum_disk={"device": "/dev/x\x00"})
    assert "set_cluster: quorum_disk" in str(exc.value)


def test_new_cluster_with_a_disk():
    conf = new_cluster("pair", [{"name": "a"}, {"name": "b"}], expected_votes=3,
                       quorum_disk={"label": "pair"})
    assert conf.qdisk.label == "pair" and conf.expected_votes == 3


def test_export_round_trip_and_shape(pair):
    new = edit.set_cluster(with_disk(pair), quorum_disk={"master_wins": False})
    assert replay_export(new) == []
    assert export(new)["cluster"]["quorum_disk"] == {
        "state": "present", "device": "/dev/cluster-qdisk0", "label": "pair", "votes": 1,
        "interval": 1, "tko": 4, "master_wins": False,
        "heuristics": [{"program": TRUE, "score": 1, "interval": 2, "tko": 3}]}
    assert export(pair)["cluster"]["quorum_disk"] is None
