"""Three real clusterd processes on loopback, their traffic captured on ``lo``.

Capabilities, each with deadlines (never fixed sleeps):
  When the cluster runs, a config carrying fence passwords is proposed and a node that
  was down pulls it, Then no captured datagram holds a password, a line of cluster.conf
  or any part of the authkey (raw, hex or base64), while decrypting the captured config
  chunks with the authkey does give the password back (the capture saw them).
  When a node restarts, Then the packets its peers sent it before, replayed to it from a
  peer that is dead by now, are dropped and do not bring that peer back.
  When a node lost its state dir while its clock is behind its last incarnation, Then its
  peers refuse it and tell it, it exits to be restarted, and comes back above it.
Needs root (a root-owned authkey; a packet socket on lo), not the lab.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import pytest
from clusterd.conf import parse
from clusterd.fencing.secrets import reference
from clusterd.wire.codec import PROTOCOL_VERSION, decode_packet
from clusterd.wire.guard import NOT_FRESH
from clusterd.wire.messages import MsgType
from localcluster_harness import LocalCluster, Node, conf_text, wait_until

sys.path.insert(0, str(Path(__file__).parents[1] / "sim"))
from leaks import conf_secrets, find_leaks, key_secrets  # shared with the simulator

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusterd needs root (authkey "
                                "owned by root); capturing on lo needs CAP_NET_RAW")
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class Capture:
    """Every UDP datagram to or from ``port`` on lo, as (src ip, dst ip, payload)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.datagrams: list[tuple[str, str, bytes]] = []
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, meta = self._sock.recvfrom(1 << 17)
            except TimeoutError:
                continue
            if meta[2] != PACKET_OUTGOING:   # lo shows each frame twice: keep one copy
                continue
            got = self._udp(frame[14:])
            if got is not None:
                self.datagrams.append(got)

    def _udp(self, ip: bytes) -> tuple[str, str, bytes] | None:
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
            return None
        head = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack_from("!HH", ip, head)
        if self.port not in (sport, dport):
            return None
        return socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), ip[head + 8:]

    def stop(self) -> list[tuple[str, str, bytes]]:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
        return list(self.datagrams)


@contextlib.contextmanager
def capturing(port: int):
    cap = Capture(port)
    try:
        yield cap
    finally:
        cap.stop()


def formed(c: LocalCluster, nodes: list[Node] | None = None) -> None:
    for node in nodes or c.nodes:
        wait_until(f"{node.addr}: 3 members Online and Quorate",
                   lambda node=node: c.members_online(node), timeout=30)


def fenced_conf(c: LocalCluster, version: int, password: str) -> str:
    extra = ('  <fencedevices>\n'
             f'    <fencedevice name="bmc1" agent="fence_ipmilan" ipaddr="198.51.100.7" '
             f'login="admin" passwd="{password}"/>\n'
             f'    <fencedevice name="bmc2" agent="fence_ipmilan" ipaddr="198.51.100.8" '
             f'login="admin" passwd="{reference("bmc2", "Pw-in-a-secret-file-31e9")}"/>\n'
             '  </fencedevices>\n')
    return conf_text(version, c.addrs, c.port, extra)


def test_no_secret_crosses_the_wire(cluster):
    c = cluster
    n1, n2, n3 = c.nodes
    v1 = fenced_conf(c, 1, "Pw-inline-v1-8c2d")
    for node in c.nodes:
        node.conf.write_text(v1)
    with capturing(c.port) as cap:
        c.start_all()
        formed(c)
        c.signal(n3, signal.SIGTERM)
        assert n3.proc.wait(timeout=30) == 0
        v2 = c.root / "v2.conf"
        v2.write_text(fenced_conf(c, 2, "Pw-inline-v2-5b7e"))
        out = n1.admin("conf", "propose", str(v2))
        assert out.returncode == 0, out.stderr
        wait_until("node 2 holds config_version 2",
                   lambda: n2.status()["cluster"]["config_version"] == 2)
        c.start(n3)                           # it pulls version 2 from a peer
        wait_until("node 3 holds config_version 2",
                   lambda: n3.status()["cluster"]["config_version"] == 2, timeout=30)
        formed(c)
    grams = cap.datagrams
    assert len({src for src, _dst, _data in grams}) == 3
    chunks = [(dst, data) for _src, dst, data in grams
              if data[4] == PROTOCOL_VERSION and data[5] == MsgType.CONFIG_CHUNK]
    # nothing but this build's protocol (sealed: v3 and later)
    assert {data[4] for _s, _d, data in grams} == {PROTOCOL_VERSION}
    assert len(chunks) >= 2, "no config chunk captured: the capture proves nothing"
    key = (c.root / "authkey").read_bytes()
    secrets = {"v1 password": b"Pw-inline-v1-8c2d", "v2 password": b"Pw-inline-v2-5b7e",
               "secret file": b"Pw-in-a-secret-file-31e9", **key_secrets(key)}
    for version, text in ((1, v1), (2, v2.read_text())):   # as sent: canonical bytes
        secrets |= conf_secrets(f"cluster.conf v{version}", parse(text.encode()).canonical_bytes())
    assert find_leaks((data for _s, _d, data in grams), secrets) == []
    # control: the chunks do carry the password, readable with the authkey only
    plain = b"".join(decode_packet(data, key, receiver=c.addrs.index(dst) + 1).msg.data
                     for dst, data in chunks)
    assert b"Pw-inline-v2-5b7e" in plain


def _drops(node: Node) -> dict[str, int]:
    return node.status()["wire"]["drops"]


def test_packets_from_before_a_restart_do_not_open_after_it(cluster):
    c = cluster
    n1, n2, n3 = c.nodes
    c.start_all()
    formed(c)
    with capturing(c.port) as cap:
        wait_until("a few heartbeats of node 2 to node 1",
                   lambda: sum(1 for s, d, _ in cap.datagrams if (s, d) == (n2.addr, n1.addr))
                   >= 10)
    old = [data for src, dst, data in cap.datagrams if (src, dst) == (n2.addr, n1.addr)]
    for node in (n2, n1):
        c.signal(node, signal.SIGKILL)
        node.proc.wait(timeout=10)
    c.start(n1)
    wait_until("node 1 and 3 quorate without node 2",
               lambda: n1.clustat("-Q").returncode == 0 and n1.clustat("-m", n2.addr)
               .returncode == 1, timeout=30)
    seen = json.loads((n1.home / "state" / "peers.json").read_text())["peers"]
    assert set(seen) == {"2", "3"}
    before = _drops(n1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoof:
        spoof.bind((n2.addr, c.port))         # node 2's own address: it is dead
        for data in old:
            spoof.sendto(data, (n1.addr, c.port))
    wait_until("every replay dropped", lambda: sum(_drops(n1).values())
               - sum(before.values()) >= len(old))
    after = _drops(n1)
    assert set(after) - set(before) <= {NOT_FRESH, "replay", "stale incarnation"}
    assert after.get("bad mac", 0) == before.get("bad mac", 0)
    assert n1.clustat("-m", n2.addr).returncode == 1, "replays revived node 2"
    assert n3.proc.poll() is None


def test_lost_state_with_the_clock_behind_restarts_above_the_past(cluster):
    c = cluster
    n1, _n2, n3 = c.nodes
    ahead = time.time_ns() // 1000 + 10**12            # 11.6 days ahead of the clock
    (n3.home / "state").mkdir()
    (n3.home / "state" / "incarnation").write_text(f"{ahead}\n")
    c.start_all()
    formed(c)
    past = n3.status()["local"]["incarnation"]
    assert past == ahead + 1
    c.signal(n3, signal.SIGKILL)
    n3.proc.wait(timeout=10)
    shutil.rmtree(n3.home / "state")                  # the state dir is lost
    c.start(n3)
    assert n3.proc.wait(timeout=30) == 75             # told by its peers: exit to restart
    log = n3.log.read_text()
    assert f"has seen incarnation {past} of this node" in log
    assert int((n3.home / "state" / "incarnation").read_text()) == past
    c.start(n3)                                       # what systemd does
    formed(c)
    assert n3.status()["local"]["incarnation"] > past
    assert _drops(n1).get("stale incarnation", 0) > 0
