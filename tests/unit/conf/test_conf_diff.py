"""diff(old, new): changes by name, services follow their global resources, masked text."""

from __future__ import annotations

import pytest
from clusterd.conf import diff, edit, parse
from confbuild import small_cluster, to_bytes


@pytest.fixture
def conf():
    return parse(to_bytes(small_cluster(3)))


def test_identical_configs_have_an_empty_diff(conf):
    d = diff(conf, parse(conf.canonical_bytes()))
    assert not d.changed and d.text == ""
    assert d.nodes_changed == d.services_changed == d.cluster_changed == ()


def test_changes_are_named(conf):
    new = edit.set_cluster(conf, token=2000, nodes=[
        {"name": "node1"}, {"name": "node2"}, {"name": "node3", "votes": 2}, {"name": "node4"}])
    new = edit.set_service(new, "api", {"domain": "prefer1"}, [])
    new = edit.set_failover_domain(new, "prefer1", ordered=False)
    d = diff(conf, new)
    assert (d.old_version, d.new_version) == (3, 6)
    assert d.cluster_changed == ("totem",)
    assert d.nodes_added == ("node4",) and d.nodes_changed == ("node3",)
    assert d.services_added == ("api",) and d.services_changed == ()
    assert d.failover_domains_changed == ("prefer1",)
    assert "-  <totem token=\"1000\"/>" in d.text and "+  <totem token=\"2000\"/>" in d.text


def test_a_changed_global_resource_changes_the_services_using_it(conf):
    new = edit.set_resource(conf, "script", {"name": "web", "file": "/usr/bin/true"})
    d = diff(conf, new)
    assert d.resources_changed == ("script:web",)
    assert d.services_changed == ("web",)


def test_removals(conf):
    new = edit.set_service(conf, "web", state="absent")
    d = diff(conf, new)
    assert d.services_removed == ("web",) and d.services_added == ()


def test_secrets_are_masked_in_the_text_diff(conf):
    new = edit.set_fence_device(conf, "bmc2", params={"ipaddr": "198.18.0.12", "login": "admin",
                                                      "passwd": "brand-new-pw", "lanplus": "1"})
    d = diff(conf, new)
    assert d.fencedevices_changed == ("bmc2",)
    assert "brand-new-pw" not in d.text and "pw-secret-2" not in d.text
    assert d.text.endswith("# /cluster/fencedevices/fencedevice[@name='bmc2'] passwd: secret "
                           "value changed (not shown)\n")
    assert "brand-new-pw" not in repr(d)
