"""The lab proves itself: real SSH, own /etc per node, fencing with the real fence_ipmilan
through the emulated BMCs, partitions that hold both ways or one way, and heal."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pytest
from clusterlab import Lab, LabError

pytestmark = pytest.mark.lab


def ssh(lab: Lab, name: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(lab.ssh_argv(name, *command), capture_output=True, text=True,
                          timeout=timeout, check=False)


def fence(lab: Lab, from_node: str, victim: str, action: str) -> subprocess.CompletedProcess:
    """Run the real fence_ipmilan on from_node with its options on stdin."""
    stdin = lab.bmc(victim).fence_stdin(action, power_wait="0")
    return lab.exec(from_node, ["fence_ipmilan"], input=stdin, check=False, timeout=60)


def pings(lab: Lab, src: str, address: str) -> bool:
    return lab.exec(src, ["ping", "-c", "1", "-W", "1", address], check=False).returncode == 0


_PORTS = itertools.count(40100)


def udp_delivered(lab: Lab, src: str, dst: str) -> bool:
    """Send datagrams src -> dst and report whether dst received one (one-way check).
    A fresh port each time: a receiver outlives a killed nsenter for up to 2 s."""
    port = next(_PORTS)
    receiver = subprocess.Popen(
        lab.argv_in(dst, ["python3", "-c",
                          ("import socket,sys\n"
                          "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                          f"s.bind(('0.0.0.0',{port}))\n"
                          "print('ready',flush=True)\n"
                          "s.settimeout(2.0)\n"
                          "try:\n print(s.recv(64).decode(),flush=True)\n"
                          "except TimeoutError:\n print('timeout',flush=True)\n")]),
        stdout=subprocess.PIPE, text=True, env=lab.node_env)
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "ready"
        address = lab.node(dst).address
        sender = "\n".join([  # an output drop answers sendto with EPERM: ignore it
            "import socket,time",
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)",
            "for i in range(5):",
            " try:",
            f"  s.sendto(b'hello',('{address}',{port}))",
            " except OSError:",
            "  pass",
            " time.sleep(0.1)",
        ])
        lab.exec(src, ["python3", "-c", sender])
        out, _ = receiver.communicate(timeout=10)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    return out.strip() == "hello"


def sshd_answers_from_client(lab: Lab, address: str) -> bool:
    """Connect to address:22 from the client namespace (the auditors' place)."""
    probe = (f"import socket; c=socket.create_connection(({address!r}, 22), timeout=2); "
             "print(c.recv(4).decode())")
    proc = subprocess.run(["nsenter", f"--net=/run/netns/{lab.spec.client_netns}",
                           sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=30, check=False)
    return proc.stdout.strip() == "SSH-"


def test_ssh_reaches_every_node_with_distinct_hostnames(lab: Lab) -> None:
    names = []
    for node in lab.nodes:
        proc = ssh(lab, node.name, "hostname")
        assert proc.returncode == 0, proc.stderr
        names.append(proc.stdout.strip())
    assert names == [n.name for n in lab.nodes]


def test_every_node_resolves_its_own_name_and_its_peers(lab: Lab) -> None:
    for node in lab.nodes:
        out = lab.exec(node.name, ["getent", "hosts", node.name, "node1"]).stdout
        assert node.address in out and lab.node("node1").address in out


def test_each_node_has_its_own_etc(lab: Lab) -> None:
    marker = f"/etc/rhc-lab-test-{time.monotonic_ns()}"
    lab.exec("node1", ["sh", "-c", f"echo mine > {marker}"])
    try:
        assert lab.exec("node1", ["cat", marker]).stdout == "mine\n"
        for other in ("node2", "node3"):
            assert lab.exec(other, ["test", "-e", marker], check=False).returncode == 1
    finally:
        lab.exec("node1", ["rm", "-f", marker])


def test_nodes_run_systemd_cleanly_and_nginx_is_left_to_the_cluster(lab: Lab) -> None:
    for node in lab.nodes:
        failed = lab.exec(node.name, ["systemctl", "--failed", "--plain", "--no-legend"])
        assert failed.stdout.strip() == "", f"{node.name}: {failed.stdout}"
        state = lab.exec(node.name, ["systemctl", "is-system-running"], check=False).stdout
        assert state.strip() == "running"
        enabled = lab.exec(node.name, ["systemctl", "is-enabled", "nginx"], check=False)
        assert enabled.stdout.strip() == "disabled"


def test_node_packages_match_the_pinned_list(lab: Lab) -> None:
    from clusterlab.image import read_packages

    pins = read_packages()
    out = lab.exec("node2", ["dpkg-query", "-W", "-f", "${Package}=${Version}\\n",
                             *(name for name, _ in pins)]).stdout
    assert sorted(out.split()) == sorted(f"{n}={v}" for n, v in pins)


def test_fence_ipmilan_powers_a_node_off_and_on_and_reports_status(lab_clean: Lab) -> None:
    lab = lab_clean
    victim = lab.node("node2")
    assert fence(lab, "node1", "node2", "status").returncode == 0  # 0 = on

    off = fence(lab, "node1", "node2", "off")
    assert off.returncode == 0, off.stdout + off.stderr
    assert "password" not in off.stdout + off.stderr
    # It stops answering: ssh, ping from a peer, and its address has left the bridge.
    lab.wait_for(lambda: not lab.ssh_ok("node2"), 10, "node2's sshd to stop answering")
    assert not pings(lab, "node1", victim.address)
    assert ssh(lab, "node2", "true", timeout=20).returncode != 0
    fdb = subprocess.run(["bridge", "fdb", "show", "br", lab.spec.bridge],
                         capture_output=True, text=True, check=True).stdout
    assert victim.mac not in fdb
    assert subprocess.run(["ip", "link", "show", victim.veth], capture_output=True,
                          check=False).returncode != 0
    status = fence(lab, "node3", "node2", "status")
    assert status.returncode == 2, status.stdout  # 2 = off
    assert lab.power("node2", "status") == "off"

    on = fence(lab, "node1", "node2", "on")
    assert on.returncode == 0, on.stdout + on.stderr
    lab.wait_for(lambda: lab.ssh_ok("node2"), 90, "node2's sshd to answer after power on")
    assert fence(lab, "node1", "node2", "status").returncode == 0
    assert ssh(lab, "node2", "hostname").stdout.strip() == "node2"
    assert pings(lab, "node1", victim.address)


def test_cli_power_goes_through_the_bmc(lab_clean: Lab) -> None:
    lab = lab_clean
    assert lab.power("node3", "off") == "off"
    assert not lab.is_on("node3") and not lab.ssh_ok("node3")
    assert lab.power("node3", "status") == "off"
    assert lab.power("node3", "on") == "on"  # waits for sshd
    assert lab.ssh_ok("node3") and lab.power("node3", "status") == "on"


def test_a_dead_node_stays_off_and_its_replacement_is_a_bare_server(lab_clean: Lab) -> None:
    lab = lab_clean
    lab.exec("node3", ["touch", "/root/old-server"])
    old_id = lab.exec("node3", ["cat", "/etc/machine-id"]).stdout
    lab.die("node3")
    assert not lab.is_on("node3") and not lab.ssh_ok("node3")
    assert next(n["power"] for n in lab.status()["nodes"] if n["name"] == "node3") == "dead"
    # the BMC answers and confirms off (a fence succeeds) but cannot power it on
    assert fence(lab, "node1", "node3", "off").returncode == 0
    stdin = lab.bmc("node3").fence_stdin("on", power_wait="0", power_timeout="3")
    on = lab.exec("node1", ["fence_ipmilan"], input=stdin, check=False, timeout=60)
    assert on.returncode != 0 and lab.power("node3", "status") == "off"
    with pytest.raises(LabError, match="died for good"):
        lab.power("node3", "on")
    assert lab.replace("node3") > 0   # waits for sshd
    assert ssh(lab, "node3", "hostname").stdout.strip() == "node3"
    assert ssh(lab, "node3", "test", "-e", "/root/old-server").returncode == 1
    assert lab.exec("node3", ["cat", "/etc/machine-id"]).stdout != old_id
    assert lab.power("node3", "status") == "on" and pings(lab, "node1", lab.node("node3").address)
    assert fence(lab, "node1", "node3", "status").returncode == 0   # the same BMC, on


def test_partition_blocks_both_ways_and_keeps_management_reachable(lab_clean: Lab) -> None:
    lab = lab_clean
    n1, n2 = lab.node("node1"), lab.node("node2")
    assert pings(lab, "node1", n2.address)
    lab.partition("node1")
    assert not pings(lab, "node1", n2.address)
    assert not pings(lab, "node2", n1.address)
    assert not pings(lab, "node3", n1.address)
    assert not udp_delivered(lab, "node1", "node2")
    assert not udp_delivered(lab, "node2", "node1")
    # Management and fencing network stay up: host, client, BMCs.
    assert lab.ssh_ok("node1")  # from the host
    assert ssh(lab, "node1", "true").returncode == 0
    assert sshd_answers_from_client(lab, n1.address)
    assert fence(lab, "node1", "node2", "status").returncode == 0
    # Traffic among the others is untouched.
    assert pings(lab, "node2", lab.node("node3").address)

    assert lab.heal("node1")
    assert pings(lab, "node1", n2.address) and pings(lab, "node2", n1.address)
    assert udp_delivered(lab, "node1", "node2")


@pytest.mark.parametrize(("direction", "out_ok", "in_ok"), [("in", True, False),
                                                            ("out", False, True)])
def test_one_way_partition(lab_clean: Lab, direction: str, out_ok: bool, in_ok: bool) -> None:
    lab = lab_clean
    lab.partition("node1", direction)
    assert udp_delivered(lab, "node1", "node2") is out_ok
    assert udp_delivered(lab, "node2", "node1") is in_ok
    lab.heal("node1")
    assert udp_delivered(lab, "node1", "node2") and udp_delivered(lab, "node2", "node1")


def test_partition_from_chosen_peers_only(lab_clean: Lab) -> None:
    lab = lab_clean
    lab.partition("node1", peers=["node2"])
    assert not pings(lab, "node1", lab.node("node2").address)
    assert pings(lab, "node1", lab.node("node3").address)


def test_nodes_have_no_route_off_the_lab_subnet(lab: Lab) -> None:
    for node in lab.nodes:
        routes = lab.exec(node.name, ["ip", "-4", "route", "show"]).stdout
        assert "default" not in routes
        addrs = lab.exec(node.name, ["ip", "-4", "-o", "addr", "show"]).stdout
        for line in addrs.splitlines():
            addr = line.split()[3]
            assert addr.startswith(("127.", "198.18.")), addr
