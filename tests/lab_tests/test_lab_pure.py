"""The lab's pure parts (no root, no lab): names, addresses, renderers, mirror parsing."""

from __future__ import annotations

import ipaddress

import pytest
import yaml
from clusterlab.errors import LabError, UsageError
from clusterlab.render import (
    hosts_file,
    inventory,
    lan_conf,
    machine_id,
    mirror_from_sources,
    partition_ruleset,
    partition_targets,
)
from clusterlab.spec import LabSpec

SPEC = LabSpec.create()


def test_default_layout_follows_the_documented_plan() -> None:
    n2 = SPEC.node(2)
    assert (n2.name, n2.machine, n2.address, n2.bmc_address) == (
        "node2", "rhc-node2", "198.18.0.12", "198.18.0.102")
    assert (SPEC.bridge, SPEC.host_address, SPEC.client_address) == (
        "rhc-br0", "198.18.0.1", "198.18.0.200")
    assert SPEC.floating_range == ("198.18.0.50", "198.18.0.99")


def test_every_name_has_the_prefix_and_fits_an_interface_name() -> None:
    spec = LabSpec.create(prefix="rhcabc", node_count=39, subnet="198.19.255.0/24")
    names = [spec.bridge, spec.client_veth, spec.client_netns, spec.host_netns_alias]
    for n in spec.nodes:
        names += [n.machine, n.netns, n.veth, n.bmc_netns, n.bmc_veth]
    assert all(name.startswith("rhcabc-") and len(name) <= 15 for name in names)


def test_every_address_is_inside_198_18_0_0_15_and_distinct() -> None:
    spec = LabSpec.create(node_count=39)
    addrs = [spec.host_address, spec.client_address]
    for n in spec.nodes:
        addrs += [n.address, n.bmc_address]
    net = ipaddress.ip_network("198.18.0.0/15")
    assert all(ipaddress.ip_address(a) in net for a in addrs)
    assert len(set(addrs)) == len(addrs)
    first, last = (int(a.rsplit(".", 1)[1]) for a in spec.floating_range)
    assert not [a for a in addrs if first <= int(a.rsplit(".", 1)[1]) <= last]


def test_macs_are_fixed_and_distinct() -> None:
    macs = [n.mac for n in LabSpec.create(node_count=39).nodes]
    assert len(set(macs)) == 39
    assert LabSpec.create().node(1).mac == "02:52:48:00:00:0b"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"subnet": "10.0.0.0/24"}, "outside the allowed range"),
    ({"subnet": "198.20.0.0/24"}, "outside the allowed range"),
    ({"subnet": "198.18.0.0/16"}, "outside the allowed range"),
    ({"subnet": "banana"}, "bad subnet"),
    ({"node_count": 0}, "bad node count"),
    ({"node_count": 40}, "bad node count"),
    ({"prefix": "lab"}, "bad prefix"),
    ({"prefix": "rhc-toolong"}, "bad prefix"),
])
def test_bad_input_is_refused_with_a_message(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        LabSpec.create(**kwargs)


def test_unknown_node_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match="unknown node 'node7': this lab has node1, node2, node3"):
        SPEC.find("node7")
    assert SPEC.find("rhc-node2").index == SPEC.find("2").index == 2


def test_hosts_file_lists_every_node_so_each_resolves_its_own_name() -> None:
    text = hosts_file(SPEC)
    for n in SPEC.nodes:
        assert f"{n.address}\t{n.name}\n" in text


def test_lan_conf_has_chassis_control_and_the_admin_user() -> None:
    text = lan_conf(SPEC, SPEC.node(1), "pw", "/x/python -m clusterlab.power rhc 1")
    assert "addr 198.18.0.101 623" in text
    assert 'chassis_control "/x/python -m clusterlab.power rhc 1"' in text
    assert 'user 2 true "admin" "pw" admin' in text


def test_partition_default_cuts_peers_and_floating_range_only() -> None:
    targets = partition_targets(SPEC, SPEC.node(1), None)
    assert targets == ("198.18.0.12", "198.18.0.13", "198.18.0.50-198.18.0.99")
    rules = partition_ruleset(SPEC, targets, "both")
    assert "chain input" in rules and "chain output" in rules
    assert "198.18.0.1 " not in rules and "198.18.0.200" not in rules


@pytest.mark.parametrize(("direction", "chains"), [
    ("in", {"input"}), ("out", {"output"}), ("both", {"input", "output"})])
def test_partition_direction_selects_chains(direction: str, chains: set[str]) -> None:
    rules = partition_ruleset(SPEC, ("198.18.0.12",), direction)
    assert {c for c in ("input", "output") if f"chain {c}" in rules} == chains


def test_partition_bad_direction_and_peers() -> None:
    with pytest.raises(UsageError, match="bad direction 'sideways'"):
        partition_ruleset(SPEC, ("198.18.0.12",), "sideways")
    with pytest.raises(UsageError, match="cannot be partitioned from itself"):
        partition_targets(SPEC, SPEC.node(1), ["node1"])
    with pytest.raises(UsageError, match="unknown node 'node9'"):
        partition_targets(SPEC, SPEC.node(1), ["node9"])
    assert partition_targets(SPEC, SPEC.node(1), ["node3"]) == ("198.18.0.13",)


def test_inventory_shape() -> None:
    inv = yaml.safe_load(yaml.safe_dump(inventory(SPEC, "/k", "pw")))
    cluster = inv["all"]["children"]["cluster"]
    assert sorted(cluster["hosts"]) == ["node1", "node2", "node3"]
    assert cluster["vars"]["ansible_user"] == "root"
    assert cluster["vars"]["ansible_ssh_private_key_file"] == "/k"
    assert "StrictHostKeyChecking=no" in cluster["vars"]["ansible_ssh_common_args"]
    n3 = cluster["hosts"]["node3"]
    assert (n3["ansible_host"], n3["cluster_lab_bmc_address"], n3["cluster_lab_bmc_cipher"]) \
        == ("198.18.0.13", "198.18.0.103", 3)


DEB822 = """Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
"""


@pytest.mark.parametrize(("files", "expected"), [
    ([("/e/a.sources", DEB822)], "http://mirror.example/debian"),
    ([("/e/sources.list", "# x\ndeb [arch=amd64] http://l.example/debian bookworm main\n")],
     "http://l.example/debian"),
    ([("/e/a.sources", ("Types: deb\nURIs: http://off.example/d\nSuites: bookworm\n"
       "Enabled: no\n")), ("/e/sources.list", "deb http://on.example/d bookworm main\n")],
     "http://on.example/d"),
])
def test_mirror_comes_from_apt_sources(files: list, expected: str) -> None:
    assert mirror_from_sources(files) == expected


def test_no_mirror_is_a_clear_error() -> None:
    with pytest.raises(LabError, match="no apt source for Debian bookworm"):
        mirror_from_sources([("/e/sources.list", "deb http://x/d bullseye main\n")])


def test_a_replaced_node_gets_a_new_machine_id_and_the_first_one_is_unchanged() -> None:
    import hashlib
    first = machine_id("rhc", "node3")
    assert first == hashlib.md5(b"rhc/node3").hexdigest()   # what `up` always wrote
    later = [machine_id("rhc", "node3", g) for g in (1, 2)]
    assert len({first, *later}) == 3 and all(len(m) == 32 for m in later)
    assert machine_id("rhcz", "node3", 1) != later[0]


def test_a_process_is_described_by_pid_state_wait_channel_and_command() -> None:
    import os
    import subprocess

    from clusterlab.cgroups import _describe
    child = subprocess.Popen(["sleep", "30"])
    try:
        pid, state, wchan, comm = _describe(str(child.pid)).split(" ", 3)
        assert (pid, comm) == (str(child.pid), "sleep") and state in "SR" and wchan
    finally:
        child.kill()
        child.wait()
    assert _describe(str(child.pid)) == f"{child.pid} (gone)"
    assert _describe(str(os.getpid())).split(" ", 1)[0] == str(os.getpid())
