"""The ``ip`` agent: pure interface choice, validation and frame building; then the real
thing inside a private network namespace (``rhcut-*``, a veth pair, 198.18.200.0/24,
IPv6 disabled so no other address family appears)."""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clusterd.resources.agents.garp import garp_frame, unsolicited_na
from clusterd.resources.agents.ip import IfAddr, Placement, choose_interface
from clusterd.resources.agents.registry import validate

SCENARIO = Path(__file__).with_name("ip_scenario.py")
_ns_counter = itertools.count()

ADDRS = (
    IfAddr(1, "lo", "127.0.0.1", 8),
    IfAddr(2, "eth0", "198.18.0.11", 24),
    IfAddr(3, "eth1", "198.18.4.11", 22),
    IfAddr(4, "eth2", "198.18.5.1", 24),
    IfAddr(2, "eth0", "fe80::1", 64),
    IfAddr(5, "eth3", "2001:db8::11", 64),
)


@pytest.mark.parametrize("address, prefer, expected", [
    ("198.18.0.100", None, Placement(2, "eth0", 24)),
    ("198.18.0.100/26", None, Placement(2, "eth0", 26)),
    ("198.18.5.9", None, Placement(4, "eth2", 24)),            # /24 beats the /22 around it
    ("198.18.6.9", None, Placement(3, "eth1", 22)),
    ("198.18.5.9", "eth1", Placement(3, "eth1", 22)),          # prefer_interface narrows
    ("2001:db8::99", None, Placement(5, "eth3", 64)),
])
def test_choose_interface(address, prefer, expected):
    target = ipaddress.ip_interface(address)
    assert choose_interface(target, "/" in address, ADDRS, prefer) == expected


def test_choose_interface_refuses_with_what_this_node_has():
    reason = choose_interface(ipaddress.ip_interface("198.19.1.1"), False, ADDRS)
    assert reason == ("no interface has a subnet containing 198.19.1.1 (this node has: "
                      "198.18.0.11/24 on eth0, 198.18.4.11/22 on eth1, 198.18.5.1/24 on eth2)")
    reason = choose_interface(ipaddress.ip_interface("198.18.0.7"), False, ADDRS, "eth2")
    assert reason == "prefer_interface eth2 has no subnet containing 198.18.0.7 (matching: eth0)"


def test_the_address_itself_does_not_count_as_a_subnet():
    only_vip = (IfAddr(2, "eth0", "198.18.9.9", 24),)
    assert isinstance(choose_interface(ipaddress.ip_interface("198.18.9.9"), False, only_vip),
                      str)


@pytest.mark.parametrize("attrs, reasons", [
    ({"address": "198.18.0.100"}, []),
    ({"address": "198.18.0.100/24", "monitor_link": "0"}, []),
    ({}, [("ip: required parameter 'address' is missing (IPv4 or IPv6 address, optionally "
          "ADDRESS/PREFIX)")]),
    ({"address": "198.18.0.300"}, [("ip: address '198.18.0.300' is not an IPv4/IPv6 address "
                                   "(optionally ADDRESS/PREFIX)")]),
    ({"address": "224.0.0.1"}, [("ip: address '224.0.0.1' cannot be a floating address "
                                "(multicast, unspecified or loopback)")]),
    ({"address": "198.18.0.1", "family": "inet6"},
     ["ip: address '198.18.0.1' does not match family=inet6"]),
    ({"address": "198.18.0.1", "monitor_link": "sometimes", "garp_count": "50"},
     [("ip: parameter 'monitor_link' = 'sometimes' is not a boolean (use 1/0, yes/no, "
       "true/false or on/off)"),
      ("ip: unknown parameter 'garp_count' (known: address, disable_rdisc, family, "
       "monitor_link, nfslock, prefer_interface, sleeptime)")]),
])
def test_validate(attrs, reasons):
    assert [p.reason for p in validate("ip", attrs, "service[web]/ip")] == reasons


def test_garp_frame_layout():
    frame = garp_frame("02:00:00:00:00:01", "198.18.0.100")
    assert frame.hex() == (
        "ffffffffffff" "020000000001" "0806"          # broadcast, our MAC, ARP
        "0001" "0800" "06" "04" "0001"                # Ethernet/IPv4, request
        "020000000001" "c6120064"                     # sender: our MAC, the address
        "000000000000" "c6120064")                    # target: the address itself
    reply = garp_frame("02:00:00:00:00:01", "198.18.0.100", reply=True)
    assert reply[20:22] == b"\x00\x02" and reply[32:38] == b"\xff" * 6


def test_unsolicited_na_layout():
    body = unsolicited_na("02:00:00:00:00:01", "2001:db8::5")
    assert body[0] == 136 and body[4:8] == bytes.fromhex("20000000")   # type NA, override
    assert body[8:24] == ipaddress.IPv6Address("2001:db8::5").packed
    assert body[24:] == bytes.fromhex("0201020000000001")            # target lladdr option


# --- inside a network namespace ---------------------------------------------------------

def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    # "rhcut-", not "rhc-": the lab's teardown owns every "rhc-*" namespace and kills what runs there.
    name = f"rhcut-{os.getpid()}-{next(_ns_counter)}"
    _ip("netns", "add", name)
    try:
        for key in ("all", "default"):
            _ip("netns", "exec", name, "sysctl", "-q", "-w",
                f"net.ipv6.conf.{key}.disable_ipv6=1")
        _ip("-n", name, "link", "add", "rhcv0", "type", "veth", "peer", "name", "rhcv1")
        _ip("-n", name, "addr", "add", "198.18.200.1/24", "dev", "rhcv0")
        _ip("-n", name, "link", "set", "rhcv0", "up")
        _ip("-n", name, "link", "set", "rhcv1", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True,
                       timeout=30)


def scenario(netns: str, address: str, *steps: str) -> dict:
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, str(SCENARIO), address,
                           *steps], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_start_status_stop_and_idempotence(netns):
    out = scenario(netns, "198.18.200.50", "status", "start", "show", "status", "start", "stop",
                   "show", "stop", "status")
    steps = out["results"]
    assert [s.get("rc") for s in steps] == ["NOT_RUNNING", "OK", None, "OK", "OK", "OK", None,
                                            "OK", "NOT_RUNNING"]
    assert steps[1]["message"] == "ip:198.18.200.50: added to rhcv0 as /24"
    assert steps[2]["addrs"] == ["198.18.200.1/24", "198.18.200.50/24"]   # seen by iproute2
    assert steps[4]["message"] == "ip:198.18.200.50: already on rhcv0"
    assert steps[6]["addrs"] == ["198.18.200.1/24"]
    assert steps[7]["message"] == "ip:198.18.200.50: already absent"


def test_start_announces_with_gratuitous_arp(netns):
    out = scenario(netns, "198.18.200.51", "start", "announce", "stop")
    garps = [f for f in out["arp"] if f["sender"] == f["target"] == "198.18.200.51"]
    assert len(garps) >= 4          # request + reply, on start and again on announce
    assert {f["src_mac"] for f in garps} == {out["mac"]}
    assert {f["eth_dst"] for f in garps} == {"ff:ff:ff:ff:ff:ff"}
    assert [s["rc"] for s in out["results"]] == ["OK", "OK", "OK"]


def test_address_outside_every_subnet_is_refused(netns):
    out = scenario(netns, "198.19.7.7", "start", "show")
    start, show = out["results"]
    assert start["rc"] == "INVALID_ARGS"
    assert start["message"] == ("ip:198.19.7.7: cannot start: no interface has a subnet "
                                "containing 198.19.7.7 (this node has: 198.18.200.1/24 on rhcv0)")
    assert show["addrs"] == ["198.18.200.1/24"]


def test_link_down_makes_status_failed_and_start_refuse(netns):
    out = scenario(netns, "198.18.200.52", "start", "linkdown", "status", "stop", "start",
                   "linkup", "start", "status", "stop")
    assert [s.get("rc") for s in out["results"]] == ["OK", None, "FAILED", "OK", "FAILED", None,
                                                     "OK", "OK", "OK"]
    assert out["results"][2]["message"] == "ip:198.18.200.52: link rhcv0 is down"
    assert out["results"][4]["message"] == ("ip:198.18.200.52: link rhcv0 is down "
                                            "(monitor_link=1)")


def test_explicit_prefix_is_used(netns):
    out = scenario(netns, "198.18.200.60/28", "start", "show", "stop")
    assert out["results"][1]["addrs"] == ["198.18.200.1/24", "198.18.200.60/28"]


# --- the agent's own rtnetlink (netlink.py), against iproute2 and pyroute2 ---------------

NETLINK_PROBE = """
import errno, json, socket, sys
from clusterd.resources.agents import netlink
out = {}
def run(name, call):
    try:
        call()
        out[name] = "ok"
    except OSError as exc:
        out[name] = errno.errorcode.get(exc.errno, str(exc.errno))
links, addrs = netlink.snapshot()
out["links"] = [[x.index, x.ifname, x.flags, x.mac] for x in links]
out["addrs"] = [[x.index, x.address, x.prefixlen, x.flags] for x in addrs]
try:
    from pyroute2 import IPRoute
except ImportError:
    out["pyroute2"] = None
else:
    with IPRoute() as ipr:
        out["pyroute2"] = {
            "links": [[m["index"], m.get_attr("IFLA_IFNAME"), m["flags"],
                       m.get_attr("IFLA_ADDRESS") or "00:00:00:00:00:00"]
                      for m in ipr.get_links()],
            "addrs": [[m["index"], m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS"),
                       m["prefixlen"], m.get_attr("IFA_FLAGS") or m["flags"]]
                      for m in ipr.get_addr()]}
index = socket.if_nametoindex("rhcv0")
run("add", lambda: netlink.add(index, "198.18.200.70", 24))
run("add_again", lambda: netlink.add(index, "198.18.200.70", 24))
run("add_no_link", lambda: netlink.add(99999, "198.18.200.71", 24))
out["after_add"] = [[x.address, x.prefixlen] for x in netlink.snapshot()[1] if x.index == index]
run("delete", lambda: netlink.delete(index, "198.18.200.70", 24))
run("delete_again", lambda: netlink.delete(index, "198.18.200.70", 24))
out["after_delete"] = [[x.address, x.prefixlen] for x in netlink.snapshot()[1]
                       if x.index == index]
print(json.dumps(out))
"""


def test_netlink_reads_and_changes_addresses_as_iproute2_and_pyroute2_do(netns):
    _ip("-n", netns, "addr", "add", "198.18.201.1/30", "peer", "198.18.201.2", "dev", "rhcv1")
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", NETLINK_PROBE],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    names = {name for _i, name, _f, _m in out["links"]}
    assert {"lo", "rhcv0", "rhcv1"} <= names
    rhcv0 = next(link for link in out["links"] if link[1] == "rhcv0")
    shown = subprocess.run(["ip", "-n", netns, "-o", "link", "show", "rhcv0"], check=True,
                           capture_output=True, text=True, timeout=30).stdout.split()
    assert rhcv0[3] == shown[shown.index("link/ether") + 1]
    assert [a[1:3] for a in out["addrs"] if a[0] == rhcv0[0]] == [["198.18.200.1", 24]]
    # point-to-point: our own address (IFA_LOCAL), not the peer's
    assert "198.18.201.1" in [a[1] for a in out["addrs"]]
    assert "198.18.201.2" not in [a[1] for a in out["addrs"]]
    if out["pyroute2"] is not None:                 # the library the agent used before
        assert out["pyroute2"] == {"links": out["links"], "addrs": out["addrs"]}
    assert out["add"] == "ok" and out["after_add"] == [["198.18.200.1", 24],
                                                       ["198.18.200.70", 24]]
    assert out["add_again"] == "EEXIST" and out["add_no_link"] == "ENODEV"
    assert out["delete"] == "ok" and out["after_delete"] == [["198.18.200.1", 24]]
    assert out["delete_again"] == "EADDRNOTAVAIL"
