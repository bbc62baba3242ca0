"""Canonical serialization properties (hypothesis): style never changes the bytes, the
canonical form is a fixed point, it validates with xmllint, and export round-trips."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from clusterd.conf import edit, parse
from clusterd.conf.parse import parse_xml
from clusterd.conf.render import canonical_bytes
from clusterd.errors import ConfigError
from confbuild import REFERENCE, element, to_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conf_edit import replay_export

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).map(
    lambda s: "x" + s)


@st.composite
def resource_tree(draw, depth: int = 0) -> tuple:
    kind = draw(st.sampled_from(["ip", "script", "fs"]))
    if kind == "ip":
        attrs = {"address": f"198.18.{draw(st.integers(0, 255))}.{draw(st.integers(1, 254))}"}
        if draw(st.booleans()):
            attrs["monitor_link"] = draw(st.sampled_from(["0", "1"]))
    elif kind == "script":
        attrs = {"name": draw(NAME), "file": "/etc/init.d/" + draw(NAME)}
    else:
        attrs = {"name": draw(NAME), "mountpoint": "/mnt/" + draw(NAME),
                 "device": "/dev/" + draw(NAME), "fstype": "ext4"}
    children = draw(st.lists(resource_tree(depth + 1), max_size=2)) if depth < 2 else []
    return element(kind, attrs, children)


def _distinct(trees: list[tuple], counter: list[int] | None = None) -> None:
    """Number every resource's primary and unique values: two resources sharing one are
    a config the resource tree refuses (conf/rmcheck.py), not a style variant."""
    counter = [0] if counter is None else counter
    for tag, attrs, children in trees:
        counter[0] += 1
        n = counter[0]
        if tag == "ip":
            attrs["address"] = f"198.18.{n // 254}.{n % 254 + 1}"
        for key in ("name", "file", "mountpoint", "device"):
            if key in attrs and tag != "service":
                attrs[key] += f"-{n}"
        _distinct(children, counter)


@st.composite
def cluster(draw) -> tuple:
    count = draw(st.integers(1, 6))
    ids = draw(st.lists(st.integers(1, 500), min_size=count, max_size=count, unique=True))
    two_node = count == 2 and draw(st.booleans())
    devices, nodes = [], []
    for i, nodeid in enumerate(ids):
        params = {"ipaddr": f"198.18.0.{i + 1}", "login": draw(NAME), "passwd": draw(NAME)}
        if draw(st.booleans()):
            params["lanplus"] = "1"
        devices.append(element("fencedevice", {"name": f"bmc{i}", "agent": "fence_ipmilan",
                                               **params}))
        attrs = {"name": f"node{i}", "nodeid": str(nodeid)}
        if not two_node and draw(st.booleans()):
            attrs["votes"] = str(draw(st.integers(1, 3)))
        fence = [element("fence", {}, [element("method", {"name": "ipmi"}, [
            element("device", {"name": f"bmc{i}"})])])] if draw(st.booleans()) else []
        nodes.append(element("clusternode", attrs, fence))
    top = []
    if two_node:
        top.append(element("cman", {"two_node": "1", "expected_votes": "1"}))
    elif draw(st.booleans()):
        # at least the smallest value that keeps a minority from being quorate (refusals.py)
        total = sum(int(attrs.get("votes", "1")) for _tag, attrs, _children in nodes)
        safe = max(2 * (total // 2), 1)
        top.append(element("cman", {"expected_votes": str(draw(st.integers(safe, 20)))}))
    if draw(st.booleans()):
        top.append(element("totem", {"token": str(draw(st.integers(100, 60000)))}))
    if draw(st.booleans()):
        top.append(element("fence_daemon", {"post_join_delay": str(draw(st.integers(-1, 60))),
                                            "clean_start": draw(st.sampled_from(["0", "1"]))}))
    members = draw(st.lists(st.sampled_from(range(count)), unique=True, max_size=count))
    domain = element("failoverdomain", {"name": "dom", "ordered": "1"}, [
        element("failoverdomainnode", {"name": f"node{m}", "priority": str(p + 1)})
        for p, m in enumerate(members)])
    services = []
    for s in range(draw(st.integers(0, 3))):
        attrs = {"name": f"svc{s}", "recovery": draw(st.sampled_from(
            ["restart", "relocate", "disable", "restart-disable"]))}
        if draw(st.booleans()):
            attrs["domain"] = "dom"
        services.append(element("service", attrs, draw(st.lists(resource_tree(), max_size=3))))
    _distinct(services)
    rm = element("rm", {}, [element("failoverdomains", {}, [domain]), *services])
    return element("cluster", {"name": "c" + draw(NAME)[:10], "config_version":
                               str(draw(st.integers(1, 10**6)))},
                   [*top, element("clusternodes", {}, nodes),
                    element("fencedevices", {}, devices), rm])


@SETTINGS
@given(cluster(), st.randoms(use_true_random=False), st.randoms(use_true_random=False))
def test_style_never_changes_bytes_or_hash(tree, rnd1, rnd2):
    plain = parse(to_bytes(tree))
    a = parse(to_bytes(tree, random.Random(rnd1.random())))
    b = parse(to_bytes(tree, random.Random(rnd2.random())))
    assert a.canonical_bytes() == b.canonical_bytes() == plain.canonical_bytes()
    assert a.sha256 == b.sha256


@SETTINGS
@given(cluster())
def test_canonical_is_a_fixed_point(tree):
    once = parse(to_bytes(tree)).canonical_bytes()
    assert parse(once).canonical_bytes() == once
    assert once.startswith(b'<?xml version="1.0"?>\n<cluster name=') and once.endswith(b">\n")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster())
def test_export_feeds_back_without_change(tree):
    assert replay_export(parse(to_bytes(tree))) == []


XML_TEXT = st.text(st.sampled_from(list("ab Z09-_./:&<>\"'\u00e9\u4e2d\n\t")), max_size=10)


@st.composite
def any_tree(draw, depth: int = 0) -> tuple:
    tag = draw(st.sampled_from(["a", "b", "service", "ip", "event"]))
    attrs = draw(st.dictionaries(st.sampled_from(["name", "ref", "zeta", "alpha", "nodeid",
                                                  "agent", "m"]), XML_TEXT, max_size=4))
    kids = draw(st.lists(any_tree(depth + 1), max_size=3)) if depth < 2 else []
    return element(tag, attrs, kids)


@SETTINGS
@given(any_tree(), st.randoms(use_true_random=False))
def test_canonicalization_of_arbitrary_trees(tree, rnd):
    data = to_bytes(element("cluster", {}, [tree]), random.Random(rnd.random()))
    once = canonical_bytes(parse_xml(data))
    assert canonical_bytes(parse_xml(once)) == once
    assert once == canonical_bytes(parse_xml(to_bytes(element("cluster", {}, [tree]))))


def test_significant_text_is_kept():
    data = (b'<cluster><rm><events><event name="e">\n  notice("x");\n</event>'
            b"<!-- c --></events></rm></cluster>")
    out = canonical_bytes(parse_xml(data))
    assert b'<event name="e">\n  notice("x");\n</event>' in out and b"<!--" not in out


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="libxml2-utils not installed")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(cluster())
def test_generated_canonical_output_validates_with_xmllint(tmp_path, tree):
    out = tmp_path / "cluster.conf"
    out.write_bytes(parse(to_bytes(tree)).canonical_bytes())
    run = subprocess.run(["xmllint", "--noout", "--relaxng", str(REFERENCE / "cluster.rng"),
                          str(out)], check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


CLUSTER_ARGS = st.fixed_dictionaries({}, optional={
    "token": st.integers(100, 20000), "post_join_delay": st.integers(-1, 30),
    "post_fail_delay": st.integers(0, 30), "clean_start": st.booleans(),
    "expected_votes": st.integers(0, 9), "two_node": st.booleans()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster(), CLUSTER_ARGS)
def test_set_cluster_is_idempotent_and_bumps_once(tree, kwargs):
    conf = parse(to_bytes(tree))
    try:
        new = edit.set_cluster(conf, **kwargs)
    except ConfigError as exc:  # e.g. two_node without expected_votes=1: refused, explained
        assert exc.problems and all("two_node" in p.reason or
                                    "lets a minority be quorate" in p.reason
                                    for p in exc.problems)
        return
    assert new is conf or new.version == conf.version + 1
    assert edit.set_cluster(new, **kwargs) is new
    for key in ("token", "post_join_delay", "post_fail_delay", "clean_start"):
        if key in kwargs:
            value = new.token_ms if key == "token" else getattr(new.fence_daemon, key)
            assert value == kwargs[key]
