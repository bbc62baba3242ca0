"""Edit operations: version +1 only on change, the same object when nothing changes,
ConfigError (and nothing returned) for bad input or an invalid result; export round trip."""

from __future__ import annotations

import pytest
from clusterd.conf import edit, export, load, new_cluster, parse
from clusterd.errors import ConfigError
from confbuild import REFERENCE, small_cluster, to_bytes


@pytest.fixture
def conf():
    return parse(to_bytes(small_cluster(3)))


def replay_export(conf):
    """Feed every exported item back to its edit function; return those that changed."""
    ex = export(conf)
    changed = []
    calls = [(edit.set_cluster, ex["cluster"])]
    calls += [(edit.set_fence_device, d) for d in ex["fence_devices"]]
    calls += [(edit.set_node_fence, d) for d in ex["node_fence"]]
    calls += [(edit.set_failover_domain, d) for d in ex["failover_domains"]]
    calls += [(edit.set_resource, d) for d in ex["resources"]]
    calls += [(edit.set_service, d) for d in ex["services"]]
    for fn, args in calls:
        if fn(conf, **args) is not conf:
            changed.append((fn.__name__, args))
    return changed


@pytest.mark.parametrize("name", ["test1.conf", "test2.conf", "test3.conf"])
def test_export_round_trip_on_reference_files(name):
    assert replay_export(load(REFERENCE / "clufter-tests" / name)) == []


def test_export_round_trip_on_builder_configs():
    for nodes in (1, 2, 5):
        assert replay_export(parse(to_bytes(small_cluster(nodes)))) == []
    two = parse(to_bytes(small_cluster(2, two_node="1", expected_votes="1")))
    assert replay_export(two) == []


def test_export_shape(conf):
    ex = export(conf)
    assert ex["cluster"] == {"name": "alpha", "nodes": [
        {"name": "node1", "nodeid": 1, "votes": 1}, {"name": "node2", "nodeid": 2, "votes": 1},
        {"name": "node3", "nodeid": 3, "votes": 1}], "two_node": False, "expected_votes": None,
        "token": 1000, "post_join_delay": 6, "post_fail_delay": 0, "clean_start": False,
        "quorum_disk": None}
    assert ex["services"] == [{"name": "web", "attrs": {"domain": "prefer1",
                                                        "recovery": "relocate"},
                               "resources": [
                                   {"type": "ip", "ref": "198.18.1.10", "attrs": {},
                                    "children": []},
                                   {"type": "script", "ref": "web", "attrs": {}, "children": []}],
                               "state": "present"}]
    assert ex["node_fence"][0] == {"node": "node1", "methods": [
        {"name": "ipmi", "devices": [{"name": "bmc1", "params": {"action": "off"}}]}],
        "unfence": []}


def test_set_cluster_changes_bump_the_version_once(conf):
    new = edit.set_cluster(conf, token=3000, post_join_delay=20)
    assert new is not conf and new.version == conf.version + 1
    assert new.token_ms == 3000 and new.fence_daemon.post_join_delay == 20
    assert edit.set_cluster(new, token=3000, post_join_delay=20) is new


def test_sections_are_created_in_outline_order_only_when_needed():
    conf = new_cluster("a", [{"name": "n1"}, {"name": "n2"}])
    assert edit.set_cluster(conf, token=1000, clean_start=False, post_join_delay=6) is conf
    new = edit.set_cluster(conf, expected_votes=3, clean_start=True)
    assert new.canonical_bytes() == (
        b'<?xml version="1.0"?>\n<cluster name="a" config_version="2">\n'
        b'  <cman expected_votes="3"/>\n  <fence_daemon clean_start="1"/>\n  <clusternodes>\n'
        b'    <clusternode name="n1" nodeid="1"/>\n    <clusternode name="n2" nodeid="2"/>\n'
        b"  </clusternodes>\n</cluster>\n")
    assert edit.set_cluster(new, expected_votes=0).expected_votes == 2


def test_defaults_are_not_written_when_absent(conf):
    assert edit.set_cluster(conf, post_fail_delay=0, clean_start=False, two_node=False) is conf


def test_nodes_keep_order_and_fencing_new_ones_get_free_ids(conf):
    nodes = [{"name": "node3"}, {"name": "node1"}, {"name": "node5", "votes": 2},
             {"name": "node2", "votes": 1}, {"name": "node4"}]
    new = edit.set_cluster(conf, nodes=nodes)
    assert [(n.name, n.nodeid, n.votes) for n in new.nodes] == [
        ("node1", 1, 1), ("node2", 2, 1), ("node3", 3, 1), ("node5", 4, 2), ("node4", 5, 1)]
    assert new.node_by_name("node1").fence_methods == conf.node_by_name("node1").fence_methods
    assert new.expected_votes == 6 and new.version == conf.version + 1
    assert edit.set_cluster(new, nodes=list(reversed(nodes))) is new


def test_removing_a_domain_member_node_is_refused_with_the_reason(conf):
    with pytest.raises(ConfigError) as exc:
        edit.set_cluster(conf, nodes=[{"name": "node1"}, {"name": "node2"}])
    assert [p.reason for p in exc.value.problems] == [
        ("failover domain member 'node3' is not a cluster node: add it to <clusternodes> or "
        "remove it from the domain")]


def test_two_node_cluster_from_scratch():
    conf = new_cluster("beta", [{"name": "a"}, {"name": "b"}], two_node=True, expected_votes=1)
    assert conf.version == 1 and conf.two_node and conf.expected_votes == 1
    with pytest.raises(ConfigError, match='two_node="1" needs expected_votes="1"'):
        edit.set_cluster(conf, expected_votes=0)
    with pytest.raises(ConfigError, match="needs exactly 2 nodes"):
        edit.set_cluster(conf, nodes=[{"name": "a"}, {"name": "b"}, {"name": "c"}])


def test_new_cluster_validates():
    with pytest.raises(ConfigError, match="cluster name"):
        new_cluster("bad name!", [{"name": "a"}])
    with pytest.raises(ConfigError, match="listed twice"):
        new_cluster("c", [{"name": "a"}, {"name": "a"}])


def test_fence_device_lifecycle(conf):
    new = edit.set_fence_device(conf, "bmc1", params={"ipaddr": "198.18.0.99", "login": "root",
                                                      "passwd": "new-secret", "lanplus": 1})
    assert new.version == conf.version + 1 and new.fencedevices["bmc1"].agent == "fence_ipmilan"
    assert new.fencedevices["bmc1"].params["ipaddr"] == "198.18.0.99"
    with pytest.raises(ConfigError, match="fence device 'bmc1' is not defined"):
        edit.set_fence_device(new, "bmc1", state="absent")
    with pytest.raises(ConfigError, match="agent is required"):
        edit.set_fence_device(conf, "new1", params={})
    with pytest.raises(ConfigError, match="program name only"):
        edit.set_fence_device(conf, "new1", agent="/bin/sh", params={})


def test_node_fence_methods(conf):
    new = edit.set_node_fence(conf, "node1", methods=[
        {"name": "ipmi", "devices": [{"name": "bmc1"}]},
        {"name": "backup", "devices": [{"name": "bmc2", "params": {"port": "1"}}]}])
    assert [m.name for m in new.node_by_name("node1").fence_methods] == ["ipmi", "backup"]
    cleared = edit.set_node_fence(new, "node1", methods=[])
    assert cleared.node_by_name("node1").fence_methods == ()
    assert edit.set_node_fence(cleared, "node1", methods=[]) is cleared
    with pytest.raises(ConfigError, match="not a cluster node"):
        edit.set_node_fence(conf, "node9", methods=[])
    with pytest.raises(ConfigError, match="fence device 'nope' is not defined"):
        edit.set_node_fence(conf, "node1", methods=[{"name": "m", "devices": [{"name": "nope"}]}])


def test_failover_domain_and_service(conf):
    new = edit.set_failover_domain(conf, "pair", members=[{"name": "node2", "priority": 1},
                                                          {"name": "node1"}],
                                   ordered=True, restricted=True)
    assert new.version == conf.version + 1
    svc = edit.set_service(new, "db", {"domain": "pair", "autostart": True,
                                       "recovery": "restart"},
                           [{"type": "fs", "attrs": {"name": "data", "mountpoint": "/srv",
                                                     "device": "/dev/vdb", "fstype": "ext4"},
                             "children": [{"type": "script", "ref": "web"}]}])
    assert svc.version == new.version + 1
    assert b'<service name="db" autostart="1" domain="pair" recovery="restart">' in \
        svc.canonical_bytes()
    assert edit.set_service(svc, "db", {"domain": "pair", "autostart": "1",
                                        "recovery": "restart"}) is svc
    with pytest.raises(ConfigError, match="failover domain 'pair' does not exist"):
        edit.set_failover_domain(svc, "pair", state="absent")
    gone = edit.set_service(svc, "db", state="absent")
    assert edit.set_failover_domain(gone, "pair", state="absent").version == gone.version + 1
    assert edit.set_service(gone, "db", state="absent") is gone


def test_invalid_service_values_are_refused(conf):
    with pytest.raises(ConfigError, match='recovery="sometimes" is not valid'):
        edit.set_service(conf, "web", {"recovery": "sometimes"})
    with pytest.raises(ConfigError, match="names no global <ip>"):
        edit.set_service(conf, "web", resources=[{"type": "ip", "ref": "203.0.113.9"}])


def test_global_resources(conf):
    new = edit.set_resource(conf, "ip", {"address": "198.18.1.11", "monitor_link": "1"})
    assert b'<ip address="198.18.1.11" monitor_link="1"/>' in new.canonical_bytes()
    assert edit.set_resource(new, "ip", {"address": "198.18.1.11", "monitor_link": 1}) is new
    with pytest.raises(ConfigError, match="names no global <ip>"):
        edit.set_resource(conf, "ip", {"address": "198.18.1.10"}, state="absent")


@pytest.mark.parametrize("call, message", [
    (lambda c: edit.set_cluster(c, nodes="node1"), "expected a list"),
    (lambda c: edit.set_cluster(c, nodes=[{"name": "a", "ip": "x"}]), "unknown key(s) ['ip']"),
    (lambda c: edit.set_cluster(c, nodes=[{"nodeid": 4}]), "missing required key(s) ['name']"),
    (lambda c: edit.set_cluster(c, token=1.5), "expected a string, integer or boolean"),
    (lambda c: edit.set_failover_domain(c, "d", state="gone"), "use 'present' or 'absent'"),
    (lambda c: edit.set_service(c, "s", resources=[{"type": "i p"}]), "not a resource type"),
    (lambda c: edit.set_service(c, "s", attrs={"bad key": 1}), "attribute name 'bad key'"),
    (lambda c: edit.set_fence_device(c, "bmc1", params={"agent": "x"}), "must not contain"),
    (lambda c: edit.set_resource(c, "script", {"file": "/bin/true"}), "primary key 'name'"),
])
def test_bad_fragments_get_clear_errors(conf, call, message):
    with pytest.raises(ConfigError) as exc:
        call(conf)
    assert message in str(exc.value)


RHCS_STYLE = b"""<cluster name="r" config_version="7">
  <clusternodes><clusternode name="a" nodeid="1"/><clusternode name="b" nodeid="2"/></clusternodes>
  <rm central_processing="1">
    <events><event name="e" class="node">notice("up");</event></events>
    <resources><service name="test1" autostart="0"/><script name="init" file="/bin/true"/>
      <ip address="198.18.1.3" monitor_link="yes"/></resources>
    <service ref="test1"><ip ref="198.18.1.3"><script ref="init" __enforce_timeouts="1"/></ip>
    </service>
    <vm name="guest" path="/etc/xen"/>
  </rm>
</cluster>"""


def test_export_round_trip_with_ref_services_vms_and_events():
    conf = parse(RHCS_STYLE)
    assert replay_export(conf) == []
    ex = export(conf)
    assert ex["services"] == [{"name": "test1", "attrs": {"ref": "test1"}, "resources": [
        {"type": "ip", "ref": "198.18.1.3", "attrs": {}, "children": [
            {"type": "script", "ref": "init", "attrs": {"__enforce_timeouts": "1"},
             "children": []}]}], "state": "present"}]
    changed = edit.set_service(conf, "test1", resources=[])
    assert b'<service ref="test1"/>' in changed.canonical_bytes()
    assert b'<vm name="guest" path="/etc/xen"/>' in changed.canonical_bytes()
    assert b'notice("up");' in changed.canonical_bytes()


def test_resource_trees_have_a_depth_limit(conf):
    item: dict = {"type": "script", "attrs": {"name": "x", "file": "/bin/true"}}
    for _ in range(100):
        item = {"type": "script", "ref": "web", "children": [item]}
    with pytest.raises(ConfigError, match="deeper than 64 levels"):
        edit.set_service(conf, "deep", {}, [item])
