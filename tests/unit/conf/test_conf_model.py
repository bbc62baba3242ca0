"""The model read out of a config: values, defaults, immutability, secret-safe repr."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from clusterd.conf import FenceDaemonConf, FenceDeviceRef, FenceMethod, Params, parse
from clusterd.conf.model import cman_cluster_id
from clusterd.conf.secrets import MASK, is_secret_param
from confbuild import small_cluster, to_bytes


@pytest.fixture
def conf():
    return parse(to_bytes(small_cluster(3)))


def test_identity_and_nodes(conf):
    assert (conf.name, conf.version) == ("alpha", 3)
    assert [(n.name, n.nodeid, n.votes) for n in conf.nodes] == [
        ("node1", 1, 1), ("node2", 2, 1), ("node3", 3, 1)]
    assert conf.node_by_name("node2").nodeid == 2
    assert conf.node_by_id(3).name == "node3"
    assert conf.node_by_name("nodeX") is None and conf.node_by_id(9) is None


def test_fencing_model(conf):
    node = conf.node_by_name("node1")
    assert node.fence_methods == (
        FenceMethod("ipmi", (FenceDeviceRef("bmc1", Params({"action": "off"})),)),)
    assert node.unfence == ()
    dev = conf.fencedevices["bmc1"]
    assert (dev.name, dev.agent) == ("bmc1", "fence_ipmilan")
    assert dev.params == {"ipaddr": "198.18.0.11", "login": "admin",
                          "passwd": "pw-secret-1", "lanplus": "1"}
    assert isinstance(conf.fencedevices, MappingProxyType)


def test_defaults(conf):
    assert conf.expected_votes == 3 and conf.two_node is False
    assert conf.port == 5405
    assert conf.token_ms == 1000
    assert conf.fence_daemon == FenceDaemonConf(post_join_delay=6, post_fail_delay=0,
                                                clean_start=False)
    assert conf.cluster_id == cman_cluster_id("alpha")


def test_explicit_values():
    conf = parse(to_bytes(small_cluster(2, two_node="1", expected_votes="1", port="6000",
                                        cluster_id="4242")))
    assert conf.two_node and conf.expected_votes == 1
    assert conf.port == 6000 and conf.cluster_id == 4242


def test_unfence_and_fence_daemon():
    data = (b'<cluster name="s" config_version="2"><fence_daemon post_join_delay="-1" '
            b'post_fail_delay="5" clean_start="1"/><totem token="3000"/><clusternodes>'
            b'<clusternode name="a" nodeid="7" votes="2"><unfence><device name="scsi" '
            b'action="on"/></unfence></clusternode></clusternodes><fencedevices>'
            b'<fencedevice name="scsi" agent="fence_scsi"/></fencedevices></cluster>')
    conf = parse(data)
    assert conf.fence_daemon == FenceDaemonConf(-1, 5, True)
    assert conf.token_ms == 3000 and conf.expected_votes == 2
    assert conf.node_by_id(7).unfence == (FenceDeviceRef("scsi", Params({"action": "on"})),)
    assert conf.services == () and conf.domains == () and conf.resource_tree.roots == ()
    assert conf.tree_warnings == ()


@pytest.mark.parametrize("name, expected", [
    # cman-preconfig.c generate_cluster_id(): value = (value << 1) + c, low 16 bits
    ("a", 97), ("ab", 97 * 2 + 98), ("alpha", ((((97 * 2 + 108) * 2 + 112) * 2 + 104) * 2 + 97)), ("", 0),
])
def test_cman_cluster_id(name, expected):
    assert cman_cluster_id(name) == expected


def test_everything_is_immutable(conf):
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.name = "beta"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.nodes[0].votes = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        conf.fencedevices["x"] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        conf.fencedevices["bmc1"].params["passwd"] = "x"  # type: ignore[index]


def test_root_is_a_copy(conf):
    root = conf.root
    root.set("name", "changed")
    root.find("rm").clear()
    assert conf.root.get("name") == "alpha"
    assert conf.root.find("rm/service") is not None


def test_equality_and_hash_follow_the_canonical_bytes(conf):
    again = parse(conf.canonical_bytes(), source="elsewhere")
    assert again == conf and hash(again) == hash(conf)
    assert len(conf.sha256) == 64 and conf.sha256 == again.sha256


def test_reprs_never_show_secrets(conf):
    text = repr(conf) + repr(conf.fencedevices) + repr(conf.nodes) + repr(conf.fencedevices["bmc1"])
    assert "pw-secret" not in text
    assert MASK in repr(conf.fencedevices["bmc1"].params)


def test_params_are_hashable_and_compare_as_mappings():
    a = Params({"b": "2", "a": "1"})
    assert a == Params((("a", "1"), ("b", "2"))) and hash(a) == hash(Params({"a": "1", "b": "2"}))
    assert a == {"a": "1", "b": "2"} and list(a) == ["a", "b"] and len(a) == 2


@pytest.mark.parametrize("name, secret", [
    ("passwd", True), ("password", True), ("snmp_priv_passwd", True), ("secret", True),
    ("api_token", True), ("ssh_key", True), ("community", True), ("hexadecimal_kg", True),
    ("passwd_script", False), ("snmp_priv_passwd_script", False), ("keyfile", False),
    ("identity_file", False), ("login", False), ("ipaddr", False), ("port", False),
])
def test_secret_parameter_rule(name, secret):
    assert is_secret_param(name) is secret


def test_a_section_is_a_copy_of_that_section_alone() -> None:
    from clusterd.conf import parse
    conf = parse(b'<?xml version="1.0"?><cluster name="c" config_version="3">'
                 b'<clusternodes><clusternode name="n1" nodeid="1"/>'
                 b'<clusternode name="n2" nodeid="2"/></clusternodes>'
                 b'<quorumd label="qd" votes="1"/>'
                 b'<rm><service name="web"/></rm>'
                 b'<clusterd><alert name="a" program="/bin/true"/></clusterd></cluster>')
    part = conf.section("clusterd")
    assert part.tag == "cluster" and part.get("config_version") == "3"
    assert [el.tag for el in part] == ["clusterd"]
    assert part.find("clusterd/alert").get("program") == "/bin/true"
    part.find("clusterd/alert").set("program", "/bin/false")       # a copy
    assert conf.section("clusterd").find("clusterd/alert").get("program") == "/bin/true"
    assert [el.tag for el in conf.section("quorumd")] == ["quorumd"]
    assert len(conf.section("fence_daemon")) == 0
