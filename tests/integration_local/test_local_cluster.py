"""Three real clusterd processes on loopback: membership, clean leave, crash, config.

Capabilities, each with deadlines (never fixed sleeps):
  When three daemons start, Then clustat on each shows 3 members Online and Quorate.
  When one is SIGKILLed, Then the others report it Offline and stay Quorate.
  When one gets SIGTERM, Then it exits 0 after a clean leave the others log as such.
  When a new config_version is proposed on one node, Then every node holds it (same
  sha256, 0640 file on disk); an invalid one is refused with the validation message and
  the running version does not change. SIGHUP after editing the file on one node does
  the same; the daemon tells systemd READY=1 and STOPPING=1.
Needs root (the daemon requires a root-owned authkey), not the lab.
"""

from __future__ import annotations

import os
import signal
import socket
import stat

import pytest
from localcluster_harness import LocalCluster, conf_text, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusterd needs root (authkey "
                                "owned by root, control socket)")


def formed(c: LocalCluster) -> None:
    c.start_all()
    for node in c.nodes:
        wait_until(f"{node.addr}: clustat shows 3 members Online and Quorate",
                   lambda node=node: c.members_online(node))


def test_three_nodes_form_a_quorate_cluster_and_report_a_killed_node_offline(cluster):
    c = cluster
    formed(c)
    n1, n2, n3 = c.nodes
    text = n1.clustat().stdout
    assert f" {n1.addr:40} {1:4d} Online, Local, rgmanager\n" in text
    assert n2.clustat("-I").stdout == "0x00000002\n"

    c.signal(n3, signal.SIGKILL)
    for node in (n1, n2):
        wait_until(f"{node.addr}: {n3.addr} reported Offline",
                   lambda node=node: node.clustat("-m", n3.addr).returncode == 1)
        out = node.clustat()
        assert "Member Status: Quorate" in out.stdout
        assert f" {n3.addr:40} {3:4d} Offline\n" in out.stdout
        assert node.clustat("-Q").returncode == 0
    # The quorate coordinator (node 1) tries to fence node 3; it has no fence method, so
    # the operation fails and stays visible (recovery blocked) until acknowledged.
    wait_until("clustat shows the failed fence of node 3",
               lambda: f" {n3.addr:40} failed " in n1.clustat().stdout)
    assert "has no fence method" in n1.clustat().stdout
    out = n1.run("clusterd.cli.fence_ack_manual", "-y", "--control-socket", n1.sock, n3.addr)
    assert out.returncode == 0 and out.stdout.startswith(f"Done: fencing of {n3.addr} ")
    wait_until("the acknowledged fence leaves clustat",
               lambda: "Fence Target" not in n1.clustat().stdout)


def test_sigterm_is_a_clean_leave(cluster):
    c = cluster
    formed(c)
    n1, n2, n3 = c.nodes
    c.signal(n2, signal.SIGTERM)
    assert n2.proc.wait(timeout=30) == 0
    for node in (n1, n3):
        wait_until(f"{node.addr}: {n2.addr} reported Offline",
                   lambda node=node: node.clustat("-m", n2.addr).returncode == 1)
        assert node.clustat("-Q").returncode == 0
    wait_until("the survivors log a clean leave, not a failure",
               lambda: all("node 2 leaves cleanly" in n.log.read_text() for n in (n1, n3)))
    log = n2.log.read_text()
    assert "announced clean leave" in log and "clusterd exits with status 0" in log
    assert not os.path.exists(n2.sock)


def test_config_propose_reaches_every_node_and_invalid_is_refused(cluster):
    c = cluster
    formed(c)
    n1, n2, n3 = c.nodes
    v2 = c.root / "v2.conf"
    v2.write_text(conf_text(2, c.addrs, c.port, '  <totem token="1200"/>\n'))
    out = n1.admin("conf", "propose", str(v2))
    assert out.returncode == 0, out.stderr
    assert "config_version 1 -> 2 accepted" in out.stdout

    def all_hold_v2():
        docs = [n.status()["cluster"] for n in c.nodes]
        return len({(d["config_version"], d["config_sha256"]) for d in docs}) == 1 \
            and docs[0]["config_version"] == 2 and docs

    docs = wait_until("every node holds config_version 2", all_hold_v2)
    assert docs[0]["config_holders"] == 3
    status = n3.admin("conf", "status")
    assert status.stdout.startswith("config_version 2 (sha256 ")
    assert status.stdout.endswith(" is held by 3 of 3 members\n")
    files = {n.conf.read_bytes() for n in c.nodes}
    assert len(files) == 1 and b'config_version="2"' in files.pop()
    for n in c.nodes:
        assert stat.S_IMODE(n.conf.stat().st_mode) == 0o640

    bad = c.root / "bad.conf"
    bad.write_text(conf_text(3, c.addrs, c.port).replace('nodeid="3"', 'nodeid="2"'))
    out = n2.admin("conf", "propose", str(bad))
    assert out.returncode == 5
    assert "proposed cluster.conf is invalid" in out.stderr
    assert "duplicate nodeid 2" in out.stderr
    stale = c.root / "stale.conf"
    stale.write_text(conf_text(1, c.addrs, c.port))
    out = n2.admin("conf", "propose", str(stale))
    assert (out.returncode, out.stderr) == (
        5, "clusterd: config_version 1 is older than the running 2; raise config_version\n")
    for n in c.nodes:
        assert n.status()["cluster"]["config_version"] == 2
        assert b'config_version="2"' in n.conf.read_bytes()


def test_daemon_refuses_to_start_with_an_unsafe_authkey_or_unknown_node(cluster):
    c = cluster
    n1 = c.nodes[0]
    (c.root / "authkey").chmod(0o440)
    out = n1.run("clusterd.cli.clusterd", "--foreground", "--config", str(n1.conf),
                 "--authkey", str(c.root / "authkey"), "--node", n1.addr,
                 "--control-socket", n1.sock, "--state-dir", str(n1.home / "state"))
    assert out.returncode == 1
    assert "group or other may access it; chmod 0400" in out.stderr
    (c.root / "authkey").chmod(0o400)
    out = n1.run("clusterd.cli.clusterd", "--foreground", "--config", str(n1.conf),
                 "--authkey", str(c.root / "authkey"), "--node", "nosuch",
                 "--control-socket", n1.sock)
    assert (out.returncode, out.stderr) == (
        1, f"clusterd: cannot start: node 'nosuch' is not a clusternode in {n1.conf}\n")
    out = n1.clustat()
    assert out.returncode == 3
    assert out.stderr == (f"clustat: clusterd is not running on this node (no socket at "
                          f"{n1.sock})\n")


def test_sighup_reload_propagates_and_readiness_is_notified(cluster):
    c = cluster
    n1, n2, n3 = c.nodes
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(n1.home / "notify"))
    notify.settimeout(30)
    c.start(n1, env={"NOTIFY_SOCKET": str(n1.home / "notify")})
    c.start(n2)
    c.start(n3)
    assert notify.recv(64) == b"READY=1"
    for node in c.nodes:
        wait_until(f"{node.addr}: clustat shows 3 members Online and Quorate",
                   lambda node=node: c.members_online(node))
    n2.conf.write_text(conf_text(7, c.addrs, c.port, '  <totem token="1100"/>\n'))
    c.signal(n2, signal.SIGHUP)
    wait_until("every node holds config_version 7 after SIGHUP on one",
               lambda: all(n.status()["cluster"]["config_version"] == 7 for n in c.nodes))
    c.signal(n1, signal.SIGTERM)
    assert notify.recv(64) == b"STOPPING=1"
    assert n1.proc.wait(timeout=30) == 0
    notify.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_without_foreground_it_detaches_and_leave_ends_it(tmp_path):
    c = LocalCluster(tmp_path, size=1)
    n1 = c.nodes[0]
    out = n1.run("clusterd.cli.clusterd", "--config", str(n1.conf), "--authkey",
                 str(c.root / "authkey"), "--node", n1.addr, "--control-socket", n1.sock,
                 "--state-dir", str(n1.home / "state"))
    assert out.returncode == 0
    pid = wait_until("the detached daemon answers", lambda: n1.status()["local"]["pid"])
    try:
        assert pid != os.getpid() and _alive(pid)
        wait_until("quorate alone", lambda: n1.clustat("-Q").returncode == 0)
        assert n1.admin("leave").stdout == "clusterd is leaving the cluster\n"
        wait_until("the detached daemon exits", lambda: not _alive(pid))
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_vote_change_applies_to_membership_without_a_restart(cluster):
    """When a new config changes a node's votes, Then every running daemon's quorum uses
    them at once (expected_votes 3 -> 4) and the pids stay the same."""
    c = cluster
    formed(c)
    pids = [n.proc.pid for n in c.nodes]
    v2 = c.root / "v2.conf"
    v2.write_text(conf_text(2, c.addrs, c.port).replace('nodeid="3"/>', 'nodeid="3" votes="2"/>'))
    out = c.nodes[0].admin("conf", "propose", str(v2))
    assert out.returncode == 0, out.stderr

    def all_expect_four():
        quorums = [n.status()["quorum"] for n in c.nodes]
        return all(q["expected_votes"] == 4 and q["votes"] == 4 and q["quorate"]
                   for q in quorums) and quorums

    wait_until("every node counts 4 expected votes", all_expect_four)
    assert [n.proc.pid for n in c.nodes] == pids
    assert all(n.proc.poll() is None for n in c.nodes)


def test_a_file_edited_while_the_daemon_was_down_is_never_installed(cluster):
    """Issue 12 item 5. Node 3's file is rewritten to config_version 9 (another token)
    while its clusterd is stopped (as a module in file mode or an editor would). When it starts again it runs the config the cluster
    accepted (version 1), keeps the edit as cluster.conf.pending-9 and says how to propose
    it; nodes 1 and 2 never install version 9, and the cluster forms again on version 1.
    Then proposing the kept file from node 3, now a member, applies it everywhere."""
    c = cluster
    formed(c)
    n1, n2, n3 = c.nodes
    wait_until("node 3 keeps version 1 as its accepted copy",
               lambda: (n3.home / "state" / "cluster.conf.accepted").exists())
    c.signal(n3, signal.SIGTERM)
    assert n3.proc.wait(timeout=30) == 0
    edited = conf_text(9, c.addrs, c.port, '  <totem token="1500"/>\n')
    n3.conf.write_text(edited)
    c.start(n3)
    for node in c.nodes:
        wait_until(f"{node.addr}: 3 members Online on config_version 1 again",
                   lambda node=node: c.members_online(node)
                   and node.status()["cluster"]["config_version"] == 1)
    kept = n3.home / "cluster.conf.pending-9"
    assert kept.read_text() == edited
    log3 = n3.log.read_text()
    assert "which no quorate view accepted" in log3
    assert f"clusterd conf propose {kept}" in log3
    for node in (n1, n2):
        assert b'config_version="1"' in node.conf.read_bytes()
        assert "config_version 9" not in node.log.read_text()
    assert b'config_version="1"' in n3.conf.read_bytes()
    assert n3.status()["cluster"]["config_accepted"] is True

    out = n3.admin("conf", "propose", str(kept))
    assert out.returncode == 0, out.stderr
    wait_until("every node runs the kept file as config_version 9",
               lambda: all(n.status()["cluster"]["config_version"] == 9 for n in c.nodes))
