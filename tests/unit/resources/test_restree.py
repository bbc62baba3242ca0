"""Resource tree rules beyond rgmanager's fixtures: errors, inheritance, special
attributes, ordering of untyped/nested children, meta-data rules, reconfiguration."""

from __future__ import annotations

import pytest
from clusterd.errors import ConfigError
from clusterd.resources import (
    ChangeKind,
    Op,
    build_tree,
    plan,
    reconfiguration,
    rule_from_metadata,
)
from clusterd.resources.rules import DEFAULT_RULES
from lxml import etree


def rm(body: str) -> etree._Element:
    return etree.fromstring(f"<rm>{body}</rm>")


def problems(body: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        build_tree(rm(body))
    return [str(p) for p in exc.value.problems]


def labels(body: str, op: Op, group: str = "service:s") -> list[str]:
    tree = build_tree(rm(body))
    return [s.node.label for s in plan(tree.group(group), op)]


# --- invalid trees: (config body, expected fragment of the one problem) ------------------
# (a reference past maxinstances is accepted with a warning: test_tree_warnings.py)
INVALID = [
    ('<service name="a"/><service name="a"/>',
     "primary attribute collision: service name='a' is already used by /rm/service[@name='a']"),
    ('<resources><script name="x" file="/a"/><script name="y" file="/a"/></resources>',
     "unique attribute collision: script file='/a'"),
    ('<service name="a"><script ref="nope"/></service>',
     "reference to nonexistent resource 'nope' (type script)"),
    ('<service name="a"><script name="x" file="/a"/></service><service name="b"><script ref="x"/></service>',
     "reference to inline-defined resource 'x' (type script) is illegal"),
    ('<service name="a"><ip address="10.0.0.1"><nfsclient name="c" target="*"/></ip></service>',
     "a ip may not contain a nfsclient (forbid in the ip agent meta-data)"),
    ('<service name="a"><script name="x"/></service>',
     "script is missing required attribute(s) file"),
    ('<service name="a"><frobnicator name="x"/></service>',
     "unknown resource type <frobnicator>"),
    ('<ip address="10.0.0.1"/>', "<ip> must be inside a <service>"),
    ('<service name="a"><service name="b"/></service>', "<service> cannot be nested inside <service>"),
    ('<resources><bogus name="q"/></resources>', "/rm/resources/bogus: unknown resource type"),
]


@pytest.mark.parametrize(("body", "fragment"), INVALID)
def test_invalid_tree_is_refused_with_where_and_why(body, fragment):
    found = problems(body)
    assert any(fragment in p for p in found), found


def test_every_problem_reported_at_once():
    found = problems('<service name="a"><script ref="x"/><script ref="y"/></service>')
    assert len(found) == 2


def test_no_rm_means_empty_tree():
    assert build_tree(None).roots == ()


# --- ordering ------------------------------------------------------------------------------
NESTED = ('<service name="s"><script name="app" file="/x"/>'
          '<apache name="web"/><fs name="data" mountpoint="/d" device="/dev/a">'
          '<fs name="inner" mountpoint="/d/i" device="/dev/b"/><script name="sub" file="/y"/>'
          '<nfsexport name="e"/></fs><mysql name="db"/><ip address="10.0.0.9"/></service>')


def test_start_typed_by_level_then_untyped_in_file_order_nested_after_parent():
    assert labels(NESTED, Op.START) == [
        "service:s", "fs:data", "fs:inner", "nfsexport:e", "script:sub", "ip:10.0.0.9",
        "script:app", "apache:web", "mysql:db"]


def test_stop_untyped_reverse_first_then_typed_by_stop_level_children_before_parent():
    assert labels(NESTED, Op.STOP) == [
        "mysql:db", "apache:web", "script:app", "ip:10.0.0.9", "script:sub", "nfsexport:e",
        "fs:inner", "fs:data", "service:s"]


def test_parent_without_child_table_starts_in_order_and_stops_in_reverse():
    body = ('<service name="s"><script name="p" file="/p"><script name="a" file="/a"/>'
            '<script name="b" file="/b"/></script></service>')
    assert labels(body, Op.START) == ["service:s", "script:p", "script:a", "script:b"]
    assert labels(body, Op.STOP) == ["script:b", "script:a", "script:p", "service:s"]


# --- attributes -----------------------------------------------------------------------------
def test_inheritance_typed_and_parent_and_explicit_override():
    tree = build_tree(rm(
        '<service name="s" nfslock="1"><fs name="f" mountpoint="/m" device="/dev/x" fsid="7">'
        '<nfsexport name="e"><nfsclient name="c" target="*" path="/own"/></nfsexport></fs>'
        '<script name="k" file="/k"/><ip address="10.0.0.1"/></service>'))
    svc = tree.group("s")
    fs, ip, script = svc.children
    export = fs.children[0]
    client = export.children[0]
    assert fs.attr("nfslock") == "1"  # inherit="nfslock": the parent's attribute
    assert (export.attr("device"), export.attr("path"), export.attr("fsid")) == ("/dev/x", "/m", "7")
    assert client.attr("path") == "/own" and client.attr("fsid") == "7"
    assert script.attr("service_name") == "s"  # inherit="service%name"
    assert ip.attr("monitor_link") == "1"  # meta-data default


def test_special_attributes():
    tree = build_tree(rm(
        '<service name="s" __independent_subtree="1" __enforce_timeouts="1">'
        '<script name="a" file="/a" __independent_subtree="1" __max_restarts="3" '
        '__restart_expire_time="5m"><action name="status" interval="10s"/></script>'
        '<script name="b" file="/b" __independent_subtree="non-critical" __max_failures="2" '
        '__failure_expire_time="30"/></service>'))
    svc = tree.group("service:s")
    a, b = svc.children
    assert not svc.independent and svc.enforce_timeouts  # independent is meaningless at the top
    assert a.independent and not a.non_critical
    assert (a.max_restarts, a.restart_expire_time) == (3, 300)
    assert [x.interval for x in a.actions if x.name == "status"] == [10]
    assert b.independent and b.non_critical and (b.max_failures, b.failure_expire_time) == (2, 30)


def test_non_critical_cleared_when_shared():
    tree = build_tree(rm(
        '<resources><script name="x" file="/x"/></resources>'
        '<service name="a"><script ref="x" __independent_subtree="2"/></service>'
        '<service name="b"><script ref="x"/></service>'))
    assert not tree.group("a").children[0].non_critical


def test_rule_from_metadata_ocf_agent_and_bad_metadata():
    rule = rule_from_metadata(b"""<?xml version="1.0"?><resource-agent name="nginx">
      <parameters><parameter name="configfile" required="1"><content type="string"
      default="/etc/nginx/nginx.conf"/></parameter><parameter name="name"/></parameters>
      <actions><action name="monitor" timeout="20s" interval="10s"/></actions></resource-agent>""",
                              agent="ocf:heartbeat:nginx")
    assert rule.primary.name == "name" and rule.param("configfile").required
    assert rule.actions[0].interval == 10
    tree = build_tree(rm('<service name="s"><nginx name="n" configfile="/c"/></service>'),
                      DEFAULT_RULES.with_rules([rule]))
    assert tree.group("s").children[0].label == "nginx:n"
    with pytest.raises(ConfigError, match="not valid XML"):
        rule_from_metadata(b"<resource-agent", agent="broken")
    with pytest.raises(ConfigError, match="multiple primary"):
        rule_from_metadata(b'<resource-agent name="x"><parameters><parameter name="a" primary="1"/>'
                           b'<parameter name="b" primary="1"/></parameters></resource-agent>')


# --- reconfiguration by diff ----------------------------------------------------------------
BASE = ('<resources><ip address="10.0.0.1"/></resources>'
        '<service name="web" domain="d1" recovery="restart"><ip ref="10.0.0.1"/>'
        '<script name="app" file="/app"/></service>'
        '<service name="db"><script name="dbs" file="/db"/></service>')


def changes(old: str, new: str) -> dict[str, tuple]:
    return {c.group: (c.kind, c.stop, c.start, c.reconfig)
            for c in reconfiguration(build_tree(rm(old)), build_tree(rm(new)))}


def test_reconfig_only_service_attributes_restart_nothing():
    new = BASE.replace('domain="d1" recovery="restart"', 'domain="d2" recovery="relocate" autostart="0"')
    got = changes(BASE, new)
    assert got["service:web"] == (ChangeKind.RECONFIG, (), (), ("service:web",))
    assert got["service:db"][0] is ChangeKind.UNCHANGED


def test_changed_resource_restarts_only_its_subtree():
    got = changes(BASE, BASE.replace('file="/app"', 'file="/app2"'))
    assert got["service:web"] == (ChangeKind.SUBTREES, ("script:app",), ("script:app",), ())
    assert got["service:db"][0] is ChangeKind.UNCHANGED


def test_added_and_removed_services():
    got = changes(BASE, BASE.replace('<service name="db"><script name="dbs" file="/db"/></service>',
                                     '<service name="new"/>'))
    assert got["service:db"][0] is ChangeKind.REMOVED
    assert got["service:new"][0] is ChangeKind.ADDED
    assert got["service:web"][0] is ChangeKind.UNCHANGED


def test_non_reconfig_service_attribute_restarts_the_service():
    got = changes(BASE, BASE.replace('<service name="db">', '<service name="db" depend="service:web">'))
    assert got["service:db"][0] is ChangeKind.RESTART


def test_extension_types_systemd_and_ocf():
    body = ('<service name="s"><ocf name="web" agent="heartbeat:nginx" configfile="/etc/n.conf"/>'
            '<systemd name="app" unit="app.service"/><ip address="198.18.0.10"/></service>')
    tree = build_tree(rm(body))
    ocf = tree.group("s").children[1]
    assert ocf.attrs == (("name", "web"), ("agent", "heartbeat:nginx"), ("configfile", "/etc/n.conf"))
    assert labels(body, Op.START) == ["service:s", "ip:198.18.0.10", "ocf:web", "systemd:app"]
    assert any("missing required attribute(s) unit" in p
               for p in problems('<service name="s"><systemd name="x"/></service>'))
    changed = body.replace("/etc/n.conf", "/etc/other.conf")
    got = changes(body, changed)
    assert got["service:s"] == (ChangeKind.SUBTREES, ("ocf:web",), ("ocf:web",), ())
