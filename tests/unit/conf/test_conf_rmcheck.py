"""Validation covers ``<rm>`` as the daemon builds it (conf/rmcheck.py): a config that
validates builds a complete resource tree and every service definition; what rgmanager
accepted with a warning validates with the same warning; the rest is refused with the
XPath and what to do, never loaded as an empty tree."""

from __future__ import annotations

import json

import pytest
from clusterd.cli import ccs_config_validate
from clusterd.conf import parse, validate_bytes
from clusterd.conf.parse import parse_xml, warnings_of
from clusterd.errors import ConfigError

HEAD = ('<cluster name="c" config_version="1"><clusternodes><clusternode name="n1" '
        'nodeid="1"/><clusternode name="n2" nodeid="2"/></clusternodes>')
SHARED_IP = ('<rm><resources><ip address="10.0.0.1"/></resources>'
             '<service name="a"><ip ref="10.0.0.1"/></service>'
             '<service name="b"><ip ref="10.0.0.1"/><script name="s" file="/bin/true"/>'
             '</service></rm>')
DUP_FS = ('<rm><service name="a"><fs name="f1" mountpoint="/mnt/d" device="/dev/sdb1"/>'
          '</service><service name="b"><fs name="f2" mountpoint="/mnt/d" device="/dev/sdc1"/>'
          '</service></rm>')
SHARED_IP_WARNING = (
    "/cluster/rm/service[@name='b']/ip[@ref='10.0.0.1']",
    ("ip:10.0.0.1 is referenced more often than type ip allows (maxinstances=\"1\" in its "
    "agent meta-data): this reference is ignored, as rgmanager ignored it; "
    "/cluster/rm/service[@name='a']/ip[@ref='10.0.0.1'] keeps it. Remove this reference, "
    "or give this service its own ip"))
DUP_FS_PROBLEM = (
    "/cluster/rm/service[@name='b']/fs[@name='f2']",
    ("unique attribute collision: fs mountpoint='/mnt/d' is already used by "
    "/cluster/rm/service[@name='a']/fs[@name='f1']: give each fs its own mountpoint "
    "(rgmanager left this fs out of the tree)"))


def conf(rm: str) -> bytes:
    return f"{HEAD}{rm}</cluster>".encode()


def test_shared_ip_validates_with_rgmanagers_warning_and_keeps_every_service():
    data = conf(SHARED_IP)
    assert validate_bytes(data) == ()
    assert [(w.where, w.reason) for w in warnings_of(parse_xml(data))] == [SHARED_IP_WARNING]
    tree = parse(data).resource_tree
    assert [r.label for r in tree.roots] == ["service:a", "service:b"]
    assert [c.label for c in tree.group("b").children] == ["script:s"]


def test_duplicate_mountpoint_is_refused_with_where_and_what_to_do():
    data = conf(DUP_FS)
    assert [(p.where, p.reason) for p in validate_bytes(data)] == [DUP_FS_PROBLEM]
    with pytest.raises(ConfigError):
        parse(data)


# Each problem the tree builder or the placement builder raises is a validation problem,
# on the element concerned (one message per element: none repeated by two checkers).
REFUSED = [
    ('<rm><service name="a"><script name="x"/></service></rm>',
     "/cluster/rm/service[@name='a']/script[@name='x']",
     "script is missing required attribute(s) file: set them"),
    ('<rm><resources><script name="x" file="/a"/><script name="y" file="/a"/></resources></rm>',
     "/cluster/rm/resources/script[@name='y']",
     ("unique attribute collision: script file='/a' is already used by "
     "/cluster/rm/resources/script[@name='x']")),
    (('<rm><service name="a"><script name="x" file="/a"/></service><service name="b">'
     '<script ref="x"/></service></rm>'),
     "/cluster/rm/service[@name='b']/script[@ref='x']", "names no global <script>"),
    (('<rm><service name="a"><ip address="10.0.0.1"><nfsclient name="c" target="*"/></ip>'
     '</service></rm>'),
     "/cluster/rm/service[@name='a']/ip[@address='10.0.0.1']/nfsclient[@name='c']",
     "a ip may not contain a nfsclient (forbid in the ip agent meta-data): move it out"),
    ('<rm><vm name="v" depend_mode="x"/></rm>', "/cluster/rm/vm[@name='v']",
     "depend_mode='x' is not hard or soft; fix it: clusterd's service placement reads"),
    ('<rm><vm name="v" depend="service:zz"/></rm>', "/cluster/rm/vm[@name='v']",
     "depend='service:zz' names no service; fix it"),
]


@pytest.mark.parametrize(("rm", "where", "fragment"), REFUSED)
def test_tree_and_placement_problems_are_validation_problems(rm, where, fragment):
    found = validate_bytes(conf(rm))
    assert [p.where for p in found] == [where]
    assert fragment in found[0].reason


def test_the_example_in_the_issue_fails_nowhere_else():
    """A config that validates carries every service, and the tree it is accepted with."""
    config = parse(conf(SHARED_IP))
    assert [s.name for s in config.services] == ["service:a", "service:b"]
    assert [(w.where, w.reason) for w in config.tree_warnings] == [SHARED_IP_WARNING]


def test_no_rm_no_warnings_and_a_clean_rm_has_none():
    assert warnings_of(parse_xml(conf(""))) == ()
    assert warnings_of(parse_xml(conf(DUP_FS.replace("/mnt/d\" device=\"/dev/sdc1",
                                                     "/mnt/e\" device=\"/dev/sdc1")))) == ()


def test_ccs_config_validate_prints_the_warning_and_succeeds(tmp_path, capsys):
    path = tmp_path / "cluster.conf"
    path.write_bytes(conf(SHARED_IP))
    assert ccs_config_validate.main(["-f", str(path), "--skip-fence-agents"]) == 0
    out, err = capsys.readouterr()
    assert out == "Configuration validates\n"
    assert err == f"{path}: warning: {SHARED_IP_WARNING[0]}: {SHARED_IP_WARNING[1]}\n"
    assert ccs_config_validate.main(["-f", str(path), "--skip-fence-agents",
                                     "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert report["warnings"] == [{"where": SHARED_IP_WARNING[0],
                                   "reason": SHARED_IP_WARNING[1]}]


def test_ccs_config_validate_refuses_the_duplicate_mountpoint(tmp_path, capsys):
    path = tmp_path / "cluster.conf"
    path.write_bytes(conf(DUP_FS))
    assert ccs_config_validate.main(["-f", str(path), "--skip-fence-agents"]) == 1
    _, err = capsys.readouterr()
    assert err.splitlines() == [f"{path}: {DUP_FS_PROBLEM[0]}: {DUP_FS_PROBLEM[1]}",
                                "Configuration fails to validate"]


def test_a_refused_service_is_not_built_and_causes_no_second_finding():
    """A service validation refused already (an unknown attribute) is left out of the
    tree and placement: what depends on it, or shares a global resource with it, is not
    reported again because of it (a 1 MiB file with 20,000 such services is not built
    20,000 times over)."""
    rm = ('<rm><resources><ip address="10.0.0.1"/></resources>'
          '<service name="a" bogus="1"><ip ref="10.0.0.1"/><fs name="f" mountpoint="/m" '
          'device="/dev/sdb1"/></service>'
          '<service name="b" depend="service:a"><ip ref="10.0.0.1"/></service></rm>')
    found = validate_bytes(conf(rm))
    assert [p.where for p in found] == ["/cluster/rm/service[@name='a']"], found
    assert warnings_of(parse_xml(conf(rm)))   # the warnings still walk the whole tree
    fixed = parse(conf(rm.replace(' bogus="1"', "")))
    assert {s.name for s in fixed.services} == {"service:a", "service:b"}
