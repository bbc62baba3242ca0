"""What rgmanager's tree builder accepted with a warning is accepted the same way
(restree.c ``do_load_resource()``: "Warning: Max references exceeded for resource %s
(type %s)" and the reference is skipped; "Non-critical flag for %s is being cleared due
to multiple references."), and the errors it printed before dropping a resource are
refused with where and what to do."""

from __future__ import annotations

import pytest
from clusterd.cli.rg_test import run
from clusterd.errors import ConfigError
from clusterd.resources import build_tree
from clusterd.resources.tree import check_tree
from lxml import etree

SHARED_IP = ('<resources><ip address="10.0.0.1"/></resources>'
             '<service name="a"><ip ref="10.0.0.1"/></service>'
             '<service name="b"><ip ref="10.0.0.1"><script name="inner" file="/i"/></ip>'
             '<script name="s" file="/s"/></service>')


def rm(body: str) -> etree._Element:
    return etree.fromstring(f"<rm>{body}</rm>")


def shape(node) -> list:
    return [node.label, [shape(c) for c in node.children]]


def test_a_reference_past_maxinstances_is_dropped_with_rgmanagers_warning():
    checked = check_tree(rm(SHARED_IP))
    assert checked.problems == ()
    assert [shape(r) for r in checked.tree.roots] == [
        ["service:a", [["ip:10.0.0.1", []]]],
        ["service:b", [["script:s", []]]]]        # the ip and what it held are left out
    (w,) = checked.warnings
    assert w.rgmanager == "Warning: Max references exceeded for resource address (type ip)"
    assert w.where == "/rm/service[@name='b']/ip[@ref='10.0.0.1']"
    assert w.reason == (
        "ip:10.0.0.1 is referenced more often than type ip allows (maxinstances=\"1\" in its "
        "agent meta-data): this reference is ignored with the 1 resource(s) inside it, as "
        "rgmanager ignored it; /rm/service[@name='a']/ip[@ref='10.0.0.1'] keeps it. Remove "
        "this reference, or give this service its own ip")


def test_build_tree_accepts_it_and_logs_the_warning(caplog):
    tree = build_tree(rm(SHARED_IP))
    assert [r.label for r in tree.roots] == ["service:a", "service:b"]
    assert "resource tree: /rm/service[@name='b']/ip[@ref='10.0.0.1']: " in caplog.text


def test_first_in_build_order_keeps_it_typed_children_before_untyped():
    # In a service, fs (typed, start level 2) is built before script (untyped), so the ip
    # nested in the fs keeps the global ip although the other reference comes first in
    # the file: restree.c build_tree() pass 1 before pass 2.
    body = ('<resources><ip address="10.0.0.1"/></resources>'
            '<service name="a"><script name="x" file="/x"><ip ref="10.0.0.1"/></script>'
            '<fs name="f" mountpoint="/m" device="/dev/f"><ip ref="10.0.0.1"/></fs></service>')
    checked = check_tree(rm(body))
    assert [shape(r) for r in checked.tree.roots] == [
        ["service:a", [["fs:f", [["ip:10.0.0.1", []]]], ["script:x", []]]]]
    assert [w.where for w in checked.warnings] == [
        "/rm/service[@name='a']/script[@name='x']/ip[@ref='10.0.0.1']"]


@pytest.mark.parametrize(("body", "rgmanager"), [
    (('<resources><fs name="data" mountpoint="/d" device="/dev/d"/></resources>'
     '<service name="a"><fs ref="data"/></service><service name="b"><fs ref="data"/></service>'),
     "Warning: Max references exceeded for resource name (type fs)"),
    ('<resources><service name="a"/></resources><service ref="a"/><service ref="a"/>',
     "Warning: Max references exceeded for resource name (type service)"),
])
def test_every_maxinstances_type(body, rgmanager):
    checked = check_tree(rm(body))
    assert checked.problems == ()
    assert [w.rgmanager for w in checked.warnings] == [rgmanager]
    assert len(checked.tree.roots) == 2 if "fs" in body else len(checked.tree.roots) == 1


def test_types_without_maxinstances_are_shared_without_warning():
    body = ('<resources><script name="x" file="/x"/></resources>'
            '<service name="a"><script ref="x"/></service><service name="b"><script ref="x"/></service>')
    checked = check_tree(rm(body))
    assert checked.warnings == () and checked.problems == ()
    assert [c.label for r in checked.tree.roots for c in r.children] == ["script:x", "script:x"]


def test_non_critical_shared_resource_warns_as_rgmanager_did():
    body = ('<resources><script name="x" file="/x"/></resources>'
            '<service name="a"><script ref="x" __independent_subtree="2"/></service>'
            '<service name="b"><script ref="x"/></service>')
    checked = check_tree(rm(body))
    (w,) = checked.warnings
    assert w.rgmanager == ("Non-critical flag for script:x is being cleared due to multiple "
                           "references.")
    assert w.where == "/rm/service[@name='b']/script[@ref='x']"
    assert not checked.tree.roots[0].children[0].non_critical


def test_duplicate_mountpoint_is_refused_as_rgmanager_erred():
    # rgmanager: "Error: Unique attribute collision. type=fs attr=mountpoint value=/mnt/d"
    # and the second fs never reached the tree (the service ran without it): refused.
    body = ('<service name="a"><fs name="f1" mountpoint="/mnt/d" device="/dev/sdb1"/></service>'
            '<service name="b"><fs name="f2" mountpoint="/mnt/d" device="/dev/sdc1"/></service>')
    with pytest.raises(ConfigError) as exc:
        build_tree(rm(body))
    assert [str(p) for p in exc.value.problems] == [
        ("/rm/service[@name='b']/fs[@name='f2']: unique attribute collision: fs "
        "mountpoint='/mnt/d' is already used by /rm/service[@name='a']/fs[@name='f1']: give "
        "each fs its own mountpoint (rgmanager left this fs out of the tree)")]


def test_a_primary_match_beats_an_earlier_unique_required_one():
    # find_resource_by_ref(): the first unique+required match is only a fallback; a
    # later primary match wins even when it is an inline resource (then illegal).
    body = ('<resources><script name="s1" file="x"/></resources>'
            '<service name="a"><script name="x" file="/other"/></service>'
            '<service name="b"><script ref="x"/></service>')
    found = [p.reason for p in check_tree(rm(body)).problems]
    assert found == [("reference to inline-defined resource 'x' (type script) is illegal; "
                     "define it once in <rm><resources> and reference it from each place")]
    fallback = ('<resources><script name="s1" file="x"/></resources>'
                '<service name="b"><script ref="x"/></service>')
    tree = build_tree(rm(fallback))
    assert tree.roots[0].children[0].label == "script:s1"


def test_validation_mode_finds_the_same_without_building_nodes():
    for body in (SHARED_IP, ('<service name="a"><script ref="nope"/><ip address="1.2.3.4">'
                            '<nfsclient name="c" target="*"/></ip></service>')):
        full, lean = check_tree(rm(body)), check_tree(rm(body), complete=False)
        assert [(f.where, f.reason) for f in lean.problems + lean.warnings] == \
            [(f.where, f.reason) for f in full.problems + full.warnings]
        assert lean.tree.roots == ()
        assert [r.key for r in lean.tree.resources] == [r.key for r in full.tree.resources]


def test_rg_test_prints_rgmanagers_line_first_and_succeeds(tmp_path):
    conf = tmp_path / "cluster.conf"
    conf.write_text(f'<cluster name="c" config_version="1"><clusternodes><clusternode '
                    f'name="n1" nodeid="1"/></clusternodes><rm>{SHARED_IP}</rm></cluster>')
    rc, out, err = run(["test", str(conf)])
    assert rc == 0
    assert out.startswith("Warning: Max references exceeded for resource address (type ip)\n"
                          "=== Resources List ===\n")
    assert err == ("Warning: /cluster/rm/service[@name='b']/ip[@ref='10.0.0.1']: ip:10.0.0.1 "
                   "is referenced more often than type ip allows (maxinstances=\"1\" in its "
                   "agent meta-data): this reference is ignored with the 1 resource(s) inside "
                   "it, as rgmanager ignored it; /cluster/rm/service[@name='a']/ip"
                   "[@ref='10.0.0.1'] keeps it. Remove this reference, or give this service "
                   "its own ip\n")
    rc, out, _ = run(["noop", str(conf), "start", "service", "b"])
    assert rc == 0 and out.splitlines() == [
        "Warning: Max references exceeded for resource address (type ip)",
        "Starting b...", "[start] service:b", "[start] script:s", "Start of b complete"]
