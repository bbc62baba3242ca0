"""What clusterd refuses although cluster.rng allows it (conf/refusals.py): control
characters in names, two nodes at one address, an expected_votes that lets a minority be
quorate. Each refusal names the element (XPath), the value and what to do."""

from __future__ import annotations

import pytest
from clusterd.cli import ccs_config_validate
from clusterd.conf import parse, validate_bytes
from clusterd.conf.parse import parse_xml
from clusterd.conf.refusals import address_problems, literal_address, refusal_problems
from clusterd.conf.validate import ENUMS
from clusterd.errors import ConfigError
from clusterd.truth import NUMERIC_BOOLS, NUMERIC_VALUES

NODE = "/cluster/clusternodes/clusternode[@name='{}']"


def conf(nodes: int | list[str] = 2, top: str = "", rm: str = "", votes: dict | None = None,
         name: str = "c") -> bytes:
    names = [f"n{i}" for i in range(1, nodes + 1)] if isinstance(nodes, int) else nodes
    votes = votes or {}
    body = "".join(f'<clusternode name="{n}" nodeid="{i}"'
                   + (f' votes="{votes[n]}"' if n in votes else "") + "/>"
                   for i, n in enumerate(names, 1))
    rm_part = f"<rm>{rm}</rm>" if rm else ""
    return (f'<cluster name="{name}" config_version="1">{top}<clusternodes>{body}'
            f"</clusternodes>{rm_part}</cluster>").encode()


def reasons(data: bytes, word: str) -> list[tuple[str, str]]:
    return [(p.where, p.reason) for p in validate_bytes(data) if word in p.reason]


# --- control characters in names ------------------------------------------------------

CONTROL_CASES = [
    # (nodes, rm, where, the value as shown)
    (["n1", "n&#9;2"], "", NODE.format("n\t2"), 'name="n\\t2"'),
    (["n1", "n&#x7f;2"], "", NODE.format("n\x7f2"), 'name="n\\x7f2"'),
    (2, '<service name="web&#x85;"/>', "/cluster/rm/service[@name='web\x85']",
     'name="web\\x85"'),
    (2, '<failoverdomains><failoverdomain name="d&#10;x"/></failoverdomains>',
     "/cluster/rm/failoverdomains/failoverdomain[@name='d\nx']", 'name="d\\nx"'),
    (2, '<service name="web" domain="d&#x9b;"/>', "/cluster/rm/service[@name='web']",
     'domain="d\\x9b"'),
]


@pytest.mark.parametrize(("nodes", "rm", "where", "shown"), CONTROL_CASES)
def test_a_name_with_a_control_character_is_refused(nodes, rm, where, shown) -> None:
    found = reasons(conf(nodes, rm=rm), "control character")
    assert [w for w, _ in found] == [where]
    reason = found[0][1]
    assert reason.startswith(f"{shown} holds the control character U+")
    assert reason.endswith("rename it with letters, digits, '_', '.' and '-'")


def test_the_cluster_name_with_a_control_character_is_refused_visibly() -> None:
    found = reasons(conf(name="c&#x85;x"), "control character")
    assert found == [("/cluster", ('name="c\\x85x" holds the control character U+0085 '
                                  "(a control character): names end up in paths, logs and "
                                  "command lines, where it would hide or forge text; rename "
                                  "it with letters, digits, '_', '.' and '-'"))]


@pytest.mark.parametrize("data", [
    b'<cluster name="a\x00b" config_version="1"/>',
    b'<cluster name="a\x01b" config_version="1"/>',
    b'<cluster name="a&#0;b" config_version="1"/>',
    b'<cluster name="a&#1;b" config_version="1"/>',
])
def test_xml_input_with_nul_or_control_characters_is_refused_with_its_position(data) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(data)
    (problem,) = exc.value.problems
    assert problem.where.startswith("line 1, column ")
    assert "not well-formed XML" in problem.reason and "fix the XML syntax" in problem.reason


# --- two nodes at one address ---------------------------------------------------------


def test_ip_literals_naming_one_address_are_refused_by_plain_validation() -> None:
    data = conf(["2001:db8::1", "n2", "2001:db8:0:0::1"])
    assert reasons(data, "resolves to") == [(
        NODE.format("2001:db8:0:0::1"),
        ('node "2001:db8:0:0::1" resolves to 2001:db8::1, the address of node "2001:db8::1": '
        "clusterd tells nodes apart by address and could not tell which one sent a heartbeat; "
        "give each node its own address (fix DNS or /etc/hosts, or name the node by its own "
        "cluster interface address)"))]


def test_host_names_are_compared_with_the_resolver_given_and_resolved_once() -> None:
    table = {"alpha": "198.51.100.1", "beta": "198.51.100.2", "alias": "198.51.100.1"}
    asked: list[str] = []

    def resolve(name: str) -> str | None:
        asked.append(name)
        return table.get(name)      # "ghost" does not resolve: not this rule's business

    root = parse_xml(conf(["alpha", "beta", "ghost", "alias", "ALPHA"]))
    found = address_problems(root, resolve)
    assert [(raw.element.get("name"), raw.reason.split(":")[0]) for raw in found] == [
        ("alias", 'node "alias" resolves to 198.51.100.1, the address of node "alpha"')]
    assert asked == ["alpha", "beta", "ghost", "alias"]   # ALPHA is a duplicate name


def test_without_a_resolver_host_names_are_not_compared() -> None:
    assert literal_address("node1") is None and literal_address("10.0.0.1") == "10.0.0.1"
    assert address_problems(parse_xml(conf(["a", "b"])), literal_address) == []


def test_ccs_config_validate_resolves_names_as_the_daemon_does(tmp_path, capsys) -> None:
    path = tmp_path / "cluster.conf"
    path.write_bytes(conf(["alpha", "alias"]))
    same = {"alpha": "198.51.100.1", "alias": "198.51.100.1"}.get
    argv = ["-f", str(path), "--skip-fence-agents"]
    assert ccs_config_validate.main(argv, resolve=same) == 1
    err = capsys.readouterr().err
    assert (f"{path}: {NODE.format('alias')}: node \"alias\" resolves to 198.51.100.1, the "
            "address of node \"alpha\"") in err
    assert ccs_config_validate.main(argv, resolve=lambda name: None) == 0


# --- expected_votes that lets a minority be quorate -----------------------------------

QDISK = '<quorumd label="q" interval="1" tko="10"{}/>'
QUORUM_CASES = [
    # (nodes, votes, top, refused: (value, quorum, total, minimum) or None)
    (3, {}, '<cman expected_votes="3"/>', None),
    (3, {}, '<cman expected_votes="2"/>', None),          # quorum 2 of 3: no two halves
    (4, {}, '<cman expected_votes="2"/>', ("2", 2, 4, 4)),
    (4, {}, '<cman expected_votes="3"/>', ("3", 2, 4, 4)),
    (5, {}, '<cman expected_votes="3"/>', ("3", 2, 5, 4)),
    (3, {"n1": "3"}, '<cman expected_votes="4"/>', None),       # quorum 3 of 5
    (3, {"n1": "3"}, '<cman expected_votes="3"/>', ("3", 2, 5, 4)),
    (2, {}, '<cman expected_votes="1"/>', ("1", 1, 2, 2)),
    (2, {}, '<cman two_node="1" expected_votes="1"/>', None),   # cman(5)'s exception
    (4, {}, "", None),                                   # no explicit value: the total
    # qdisk(5): all-but-one with 3 nodes, qdisk votes 3, expected 6; two-node tie-breaker
    (3, {}, '<cman expected_votes="6"/>' + QDISK.format(' votes="3"'), None),
    (2, {}, '<cman two_node="0" expected_votes="3"/>' + QDISK.format(""), None),
    (3, {}, '<cman expected_votes="3"/>' + QDISK.format(""), ("3", 2, 5, 4)),
]


@pytest.mark.parametrize(("nodes", "votes", "top", "refused"), QUORUM_CASES)
def test_expected_votes_that_lets_a_minority_be_quorate_is_refused(nodes, votes, top,
                                                                  refused) -> None:
    found = reasons(conf(nodes, top=top, votes=votes), "minority")
    if refused is None:
        assert found == []
        return
    value, quorum, total, minimum = refused
    [(where, reason)] = found
    assert where == "/cluster/cman"
    assert reason.startswith(f'expected_votes="{value}" lets a minority be quorate: quorum '
                             f"is {quorum} (expected_votes/2 + 1) while ")
    assert f"hold {total} votes" in reason
    assert f"set expected_votes to at least {minimum}" in reason


def test_the_minority_message_in_full_with_and_without_a_quorum_disk() -> None:
    assert reasons(conf(2, top='<cman expected_votes="1"/>'), "minority") == [(
        "/cluster/cman",
        ('expected_votes="1" lets a minority be quorate: quorum is 1 (expected_votes/2 + 1) '
        "while the nodes hold 2 votes, so two groups that cannot see each other could each "
        "reach quorum (1) and both run services; set expected_votes to at least 2 or remove it "
        '(the cluster then expects all 2) (two nodes of one vote each may instead set '
        'two_node="1" with expected_votes="1", where fencing breaks the tie)'))]
    top = '<cman expected_votes="3"/>' + QDISK.format("")
    [(_, reason)] = reasons(conf(3, top=top), "minority")
    assert "while the nodes (3) and the quorum disk (2) hold 5 votes" in reason
    assert reason.endswith("set expected_votes to at least 4")


# --- the boolean rgmanager reads for itself ---------------------------------------------


@pytest.mark.parametrize(("value", "refused"), [
    ("1", False), ("yes", False), ("0", False), ("off", False), ("2", True), ("sure", True)])
def test_enforce_timeouts_must_be_a_boolean(value, refused) -> None:
    rm = f'<service name="s"><script name="x" file="/etc/init.d/x" __enforce_timeouts="{value}"/></service>'
    found = reasons(conf(rm=rm), "__enforce_timeouts")
    assert found == ([("/cluster/rm/service[@name='s']/script[@name='x']",
                       (f'__enforce_timeouts="{value}" is not a boolean: use 1/0, yes/no, '
                       "true/false or on/off"))] if refused else [])


def test_the_validator_reads_as_numbers_exactly_the_attributes_rhcs_read_with_atoi() -> None:
    assert {key for key, allowed in ENUMS.items() if allowed == NUMERIC_VALUES} == NUMERIC_BOOLS


def test_refusals_are_empty_for_a_good_config() -> None:
    assert refusal_problems(parse_xml(conf(3, top='<cman expected_votes="3"/>'))) == []
