"""Services end to end on the lab: the real daemon on three emulated nodes, ``web`` = a
floating address + nginx (ocf:heartbeat:nginx, a page naming its node), fencing with the
real fence_ipmilan against the emulated BMCs, and a client in the lab's client namespace
polling the floating address every 20 ms.

  When the cluster forms, web runs on node1 (ordered domain) and the client sees node1.
  clusvcadm -r -m node2 moves it; the client's answers go node1 ... node2, never back.
  nginx killed on the owner: a status check fails and it restarts in place (restarts 1).
  The owner powered off: it is fenced (fence_ipmilan) BEFORE the service answers from
  another node (journal timestamps vs the client's first answer).
At no time do answers from two nodes interleave (the client sees one owner after another).

The daemon's code is copied to /opt/rhc-services-test on every node and runs in a
transient unit (``rhcsvc-clusterd``) with its own port, config, key and state, so that a
clusterd installed by the roles is never touched. The floating address is the first of
the lab's floating range unless RHC_SVC_FLOAT names another one; nginx listens on 8098.
RHC_SVC_SRC deploys another copy of daemon/src/clusterd (default: this checkout).
The module's helpers (``SvcLab``) are reused by tests/bench/bench_failover.py.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

SRC = Path(__file__).resolve().parents[2] / "daemon" / "src" / "clusterd"
REMOTE = "/opt/rhc-services-test"
UNIT = "rhcsvc-clusterd"
PORT = 5507
HTTP_PORT = 8098
NGINX_CONF = f"""pid {REMOTE}/nginx.pid;
error_log /var/log/nginx/error.log;
events {{}}
http {{
    access_log off;
    server {{ listen {HTTP_PORT}; location / {{ return 200 "$hostname\\n"; }} }}
}}
"""
NGINX_UNIT = "rhcsvc-nginx.service"
# nginx as a systemd resource (the operator's alternative to ocf:heartbeat:nginx, whose
# stop loop sleeps 1 s): forking, so "active" means the listening socket exists; systemd's
# stop sends SIGTERM (nginx's fast shutdown) and returns when the master has exited
NGINX_UNIT_TEXT = f"""[Unit]
Description=nginx of the services lab test
[Service]
Type=forking
PIDFile={REMOTE}/nginx.pid
ExecStart=/usr/sbin/nginx -c {REMOTE}/nginx.conf
"""
POLLER = r"""
import sys, time, urllib.request
url, period = sys.argv[1], float(sys.argv[2])
out = open(sys.argv[3], "w", buffering=1)
while True:
    t = time.time()
    try:
        with urllib.request.urlopen(url, timeout=0.1) as r:
            body = r.read().decode().strip()
    except Exception:
        body = "-"
    out.write(f"{t:.3f} {body}\n")
    time.sleep(max(0.0, period - (time.time() - t)))
"""

QUIET = 3.5   # s without a gratuitous ARP: the ip agent's repeats (2 more, 1 s apart) ended
# gratuitous ARPs for one address (sender IP = target IP), as "time opcode sender-mac"
ARP_CAPTURE = r"""
import socket, struct, sys, time
ip = socket.inet_aton(sys.argv[1])
out = open(sys.argv[2], "w", buffering=1)
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
out.write("ready\n")
while True:
    frame = sock.recv(2048)
    arp = frame[14:42]
    if len(arp) == 28 and arp[14:18] == ip and arp[24:28] == ip:
        op = struct.unpack("!H", arp[6:8])[0]
        out.write(f"{time.time():.3f} {op} {arp[8:14].hex(':')}\n")
"""


def _tarball() -> str:
    buf = io.BytesIO()
    src = Path(os.environ.get("RHC_SVC_SRC") or SRC)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src, arcname="clusterd",
                filter=lambda ti: None if "__pycache__" in ti.name else ti)
    return base64.b64encode(buf.getvalue()).decode()


class SvcLab:
    """The services deployment on a lab (install, start/stop daemons, observe)."""

    SERVICE = "service:web"   # the one service owner()/service() look at

    def __init__(self, lab, float_ip: str | None = None, *, max_restarts: int = 2,
                 web: str = "ocf", post_fail_delay: int = 0) -> None:
        """``web`` is how nginx is managed: ``ocf`` (ocf:heartbeat:nginx) or ``systemd``
        (the ``rhcsvc-nginx.service`` unit, status checked every second);
        ``post_fail_delay`` (seconds) delays fencing a node that left the view."""
        if web not in ("ocf", "systemd"):
            raise ValueError(f"web must be 'ocf' or 'systemd', not {web!r}")
        self.web = web
        self.post_fail_delay = post_fail_delay
        self.lab = lab
        self.names = [n.name for n in lab.nodes]
        self.float_ip = float_ip or os.environ.get("RHC_SVC_FLOAT") or \
            lab.spec.floating_range[0]
        prefix = ipaddress.ip_network(lab.spec.subnet).prefixlen
        self.max_restarts = max_restarts
        self.conf = self._conf(prefix)

    def _conf(self, prefix: int) -> str:
        nodes, devices, members = [], [], []
        for i, name in enumerate(self.names, 1):
            bmc = self.lab.bmc(name)
            nodes.append(f'<clusternode name="{name}" nodeid="{i}"><fence><method name="ipmi">'
                         f'<device name="ipmi_{name}"/></method></fence></clusternode>')
            devices.append(f'<fencedevice name="ipmi_{name}" agent="fence_ipmilan" '
                           f'ipaddr="{bmc.address}" login="{bmc.user}" '
                           f'passwd="{bmc.password}" lanplus="1" cipher="{bmc.cipher}" '
                           f'power_wait="0"/>')  # the roles' setting (operator guide)
            members.append(f'<failoverdomainnode name="{name}" priority="{i}"/>')
        return (f'<?xml version="1.0"?>\n<cluster name="svclab" config_version="1">'
                f'<clusternodes>{"".join(nodes)}</clusternodes><cman port="{PORT}"/>'
                f'<fence_daemon post_fail_delay="{self.post_fail_delay}"/>'
                f'<fencedevices>{"".join(devices)}</fencedevices><rm><failoverdomains>'
                f'<failoverdomain name="web_nodes" ordered="1" nofailback="1">'
                f'{"".join(members)}</failoverdomain></failoverdomains>'
                f'<service name="web" domain="web_nodes" recovery="restart" '
                f'max_restarts="{self.max_restarts}" restart_expire_time="600">'
                f'<ip address="{self.float_ip}/{prefix}" monitor_link="1">'
                f'{self._nginx()}</ip></service></rm></cluster>\n')

    def _nginx(self) -> str:
        if self.web == "systemd":
            return (f'<systemd name="nginx" unit="{NGINX_UNIT}">'
                    f'<action name="status" depth="0" interval="1"/></systemd>')
        return (f'<ocf name="nginx" agent="heartbeat:nginx" configfile="{REMOTE}/nginx.conf" '
                f'port="{HTTP_PORT}"><action name="monitor" depth="0" interval="1"/></ocf>')

    # -- deployment ------------------------------------------------------------------
    def install(self) -> None:
        tar, key = _tarball(), base64.b64encode(os.urandom(256)).decode()
        for name in self.names:
            self.stop(name)
            # leftovers of an earlier deployment (services survive a daemon stop)
            self.lab.exec(name, ["sh", "-c", (
                f"systemctl stop {NGINX_UNIT} 2>/dev/null; p={REMOTE}/nginx.pid; "
                f"[ -s $p ] && kill -9 $(cat $p) 2>/dev/null; "
                f"ip -o addr | awk '$4 ~ /^{self.float_ip}\\//{{print $2, $4}}' | "
                "while read d a; do ip addr del $a dev $d; done; true")], check=False)
            self.lab.exec(name, ["sh", "-c", (f"rm -rf {REMOTE} && mkdir -p {REMOTE}/state && "
                                 f"base64 -d | tar -xz -C {REMOTE}")], input=tar, timeout=120)
            self.lab.exec(name, ["sh", "-c", (f"umask 077 && base64 -d > {REMOTE}/authkey && "
                                 f"chmod 0400 {REMOTE}/authkey")], input=key)
            self.lab.exec(name, ["sh", "-c", f"umask 027 && cat > {REMOTE}/cluster.conf"],
                          input=self.conf)
            self.lab.exec(name, ["sh", "-c", f"cat > {REMOTE}/nginx.conf"], input=NGINX_CONF)
            if self.web == "systemd":
                self.lab.exec(name, ["sh", "-c", (f"cat > /etc/systemd/system/{NGINX_UNIT} && "
                                     "systemctl daemon-reload")], input=NGINX_UNIT_TEXT)

    def start(self, name: str) -> None:
        # KillMode=process as in the shipped unit: stopping the daemon must not signal the
        # resource agents it is running (a SIGTERMed agent stop is a failed stop -> fence)
        self.lab.exec(name, ["systemd-run", f"--unit={UNIT}", "--collect",
                             "--property=KillMode=process",
                             f"--setenv=PYTHONPATH={REMOTE}", "python3", "-m",
                             "clusterd.cli.clusterd", "--foreground", "--config",
                             f"{REMOTE}/cluster.conf", "--authkey", f"{REMOTE}/authkey",
                             "--node", name, "--control-socket", f"{REMOTE}/ctl.sock",
                             "--state-dir", f"{REMOTE}/state"])

    def stop(self, name: str) -> None:
        if self.lab.is_on(name):
            self.lab.exec(name, ["sh", "-c", (f"systemctl stop {UNIT} 2>/dev/null; "
                                 f"systemctl reset-failed {UNIT} 2>/dev/null; true")],
                          check=False, timeout=90)

    def cli(self, name: str, module: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.lab.exec(name, ["env", f"PYTHONPATH={REMOTE}", "python3", "-m",
                                    f"clusterd.cli.{module}", "--control-socket",
                                    f"{REMOTE}/ctl.sock", *args], check=False, timeout=120)

    def quorate(self, name: str) -> bool:
        """``clustat -Q``: 0 when this node is in a quorate view."""
        return self.cli(name, "clustat", "-Q").returncode == 0

    def clusterd_pid(self, name: str) -> int:
        out = self.lab.exec(name, ["systemctl", "show", "-p", "MainPID", "--value", UNIT])
        return int(out.stdout.strip())

    def service(self, name: str) -> dict | None:
        out = self.cli(name, "clustat", "--format", "json")
        if out.returncode:
            return None
        return next((s for s in json.loads(out.stdout)["services"]
                     if s["name"] == self.SERVICE), None)

    def owner(self, via: str) -> str | None:
        s = self.service(via)
        return s["owner"] if s and s["state"] == "started" else None

    def answer(self) -> str:
        out = subprocess.run(["ip", "netns", "exec", self.lab.spec.client_netns, "curl", "-s",
                              "--max-time", "1", f"http://{self.float_ip}:{HTTP_PORT}/"],
                             capture_output=True, text=True, check=False, timeout=10)
        return out.stdout.strip()

    def holders(self) -> list[str]:
        """Nodes that hold the floating address right now (the auditor's view)."""
        out = []
        for n in self.names:
            if not self.lab.is_on(n):
                continue
            words = self.lab.exec(n, ["ip", "-o", "addr"], check=False).stdout.split()
            if self.float_ip in (w.split("/")[0] for w in words):
                out.append(n)
        return out

    def kill_nginx(self, name: str) -> None:
        """SIGKILL our nginx master and its workers (by pid file and parent pid)."""
        self.lab.exec(name, ["sh", "-c", (f"p=$(cat {REMOTE}/nginx.pid); "
                                         "kill -9 $p $(pgrep -P $p)")])

    def journal_unix(self, name: str, needle: str) -> list[float]:
        out = self.lab.exec(name, ["journalctl", "-u", UNIT, "-o", "short-unix",
                                   "--no-pager"], check=False, timeout=60).stdout
        return [float(line.split()[0]) for line in out.splitlines() if needle in line]

    def poller(self, path: Path, period: float = 0.02) -> subprocess.Popen:
        script = path.with_suffix(".py")
        script.write_text(POLLER)
        return subprocess.Popen(["ip", "netns", "exec", self.lab.spec.client_netns,
                                 sys.executable, str(script),
                                 f"http://{self.float_ip}:{HTTP_PORT}/", str(period),
                                 str(path)])

    def members(self, via: str, quorate: bool = False) -> list[int]:
        """The members of ``via``'s view ([] if clustat fails, or with ``quorate`` if
        ``via`` does not say it is quorate)."""
        out = self.cli(via, "clustat", "--format", "json")
        if out.returncode != 0:
            return []
        doc = json.loads(out.stdout)
        return [] if quorate and not doc["quorum"]["quorate"] else doc["view"]["members"]

    def float_mac(self, name: str) -> str:
        """The MAC of the interface that holds the floating address on ``name``."""
        iface = self.lab.exec(name, ["sh", "-c", (
            f"ip -o addr | awk '$4 ~ /^{self.float_ip}\\//{{print $2}}'")]).stdout.strip()
        words = self.lab.exec(name, ["ip", "-o", "link", "show", "dev", iface]).stdout.split()
        return words[words.index("link/ether") + 1]

    def client_neighbour(self) -> str:
        """The client's neighbour entry (lladdr) for the floating address, or ''."""
        words = subprocess.run(["ip", "netns", "exec", self.lab.spec.client_netns, "ip",
                                "neigh", "show", self.float_ip], capture_output=True,
                               text=True, check=False, timeout=10).stdout.split()
        return words[words.index("lladdr") + 1] if "lladdr" in words else ""

    def arp_capture(self, path: Path) -> subprocess.Popen:
        """Capture gratuitous ARPs for the floating address in the client namespace."""
        script = path.with_suffix(".py")
        script.write_text(ARP_CAPTURE)
        proc = subprocess.Popen(["ip", "netns", "exec", self.lab.spec.client_netns,
                                 sys.executable, str(script), self.float_ip, str(path)])
        self.wait("the ARP capture running", lambda: path.exists()
                  and path.read_text().startswith("ready"), timeout=20)
        return proc

    def wait(self, what: str, probe, timeout: float = 60.0):
        return self.lab.wait_for(probe, timeout, what)


def samples(path: Path) -> list[tuple[float, str]]:
    out = []
    for line in path.read_text().splitlines():
        t, _, body = line.partition(" ")
        out.append((float(t), body))
    return out


def owners_in_order(seen: list[tuple[float, str]]) -> list[str]:
    """Distinct answering nodes in order of appearance, merging repeats; '-' = no answer."""
    order: list[str] = []
    for _t, body in seen:
        if body != "-" and (not order or order[-1] != body):
            order.append(body)
    return order


@contextmanager
def deployed(lab, *, reset: Callable[[], None] = lambda: None,
             web_on_node1: bool = False) -> Iterator[SvcLab]:
    """The default deployment on a healthy lab (every node on, no partition; ``reset`` runs
    first and again at the end): installed and started on every node, optionally until web
    runs on node1; afterwards the lab is restored and every daemon stopped."""
    from lab_restore import restore
    reset()
    restore(lab)                  # every node on, no partition left by an earlier test
    s = SvcLab(lab)
    s.install()
    for name in s.names:
        s.start(name)
    try:
        if web_on_node1:
            s.wait("web started on node1", lambda: s.owner(s.names[1]) == s.names[0],
                   timeout=120)
        yield s
    finally:
        reset()
        restore(lab)
        for name in s.names:
            s.stop(name)


@pytest.fixture(scope="module")
def svc(lab) -> Iterator[SvcLab]:
    with deployed(lab) as s:
        yield s


def test_web_moves_on_relocate_nginx_kill_and_power_off(svc: SvcLab, tmp_path: Path):
    s = svc
    n1, n2, n3 = s.names
    s.wait("web started on node1 and answering", lambda: s.owner(n2) == n1
           and s.answer() == n1, timeout=120)
    log = tmp_path / "client.log"
    poll = s.poller(log)
    try:
        out = s.cli(n3, "clusvcadm", "-r", "web", "-m", n2)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.endswith(f"service:web is now running on {n2}\n")
        s.wait("the client follows to node2", lambda: s.answer() == n2)
        assert s.holders() == [n2]

        s.kill_nginx(n2)
        s.wait("nginx restarted in place on node2", lambda: (s.service(n1) or {}).get(
            "restarts") == 1 and s.owner(n1) == n2 and s.answer() == n2)

        off_at = time.time()
        s.lab.power(n2, "off")
        s.wait("web answers from node1 after node2 was fenced",
               lambda: s.answer() == n1, timeout=90)
        fenced = [t for t in s.journal_unix(n1, f"{n2} fenced") if t >= off_at - 1]
        assert fenced, "no 'node2 fenced' line in the coordinator's journal"
    finally:
        poll.terminate()
        poll.wait(timeout=10)
    seen = samples(log)
    assert owners_in_order(seen) == [n1, n2, n1], owners_in_order(seen)
    first_new = next(t for t, body in seen if t > off_at and body == n1)
    assert fenced[0] < first_new, (fenced, first_new)
    assert s.holders() == [n1]


def test_owner_reannounces_the_floating_address_after_a_partition_heals(lab, tmp_path):
    """keepalived #166 / RELIABILITY T27: after a partition heals, the owner of the
    floating address announces it again (gratuitous ARP), so a neighbour whose cache went
    stale during the split finds it. A non-owner (node3) is cut off for longer than the
    token, so the view changes twice (drop, rejoin); post_fail_delay=60 keeps it from
    being fenced before the heal (our semantics: a node back in the view with a new
    incarnation is not fenced), and web stays on node1 throughout."""
    from lab_restore import restore
    restore(lab)
    s = SvcLab(lab, post_fail_delay=60)
    n1, n2, n3 = s.names
    s.install()
    for name in s.names:
        s.start(name)
    cap = None
    try:
        s.wait("web started on node1 and answering", lambda: s.owner(n2) == n1
               and s.answer() == n1, timeout=120)
        mac = s.float_mac(n1)
        cap = s.arp_capture(tmp_path / "garp.log")
        s.lab.partition(n3)
        s.wait("node3 out of the view", lambda: s.members(n1) == [1, 2], timeout=30)

        def garps() -> list[list[str]]:
            return [line.split() for line in
                    (tmp_path / "garp.log").read_text().splitlines()[1:]]
        # the owner announced the new view; let that announcement and its repeats end,
        # so that whatever comes after the heal was caused by the heal
        s.wait("the owner's announcements over", lambda: garps() and
               time.time() - float(garps()[-1][0]) > QUIET, timeout=30)
        healed = time.time()
        s.lab.heal(n3)
        s.wait("node3 back in the view", lambda: s.members(n1) == [1, 2, 3], timeout=60)

        def announced() -> list[str]:
            return [w[2] for w in garps() if float(w[0]) >= healed]
        try:
            s.wait("a gratuitous ARP from the owner after the heal",
                   lambda: mac in announced(), timeout=20)
        except Exception as exc:
            raise AssertionError(f"owner {mac}, healed at {healed:.3f}: "
                                 f"{(tmp_path / 'garp.log').read_text()}") from exc
        assert set(announced()) == {mac}, announced()      # only the owner announces
        assert s.client_neighbour() in ("", mac)
        assert s.lab.is_on(n3), "node3 was fenced although it came back in time"
        assert s.owner(n2) == n1 and s.answer() == n1 and s.holders() == [n1]
    finally:
        if cap is not None:
            cap.terminate()
            cap.wait(timeout=10)
        restore(lab)
        for name in s.names:
            s.stop(name)


def test_clustat_shows_the_service_lock_on_every_member(svc: SvcLab):
    """Issue 17 item 5: ``clusvcadm -l`` on one node; clustat on each member says services
    are locked, and stops saying so after ``clusvcadm -u``."""
    s = svc
    n1 = s.names[0]
    for name in s.names:        # an earlier test of this module may have stopped them
        if not s.lab.is_on(name):
            s.lab.power(name, "on")
        s.lab.heal(name)
        s.lab.wait_ready(name, timeout=120)
        if s.lab.exec(name, ["systemctl", "is-active", "--quiet", UNIT],
                      check=False).returncode != 0:
            s.stop(name)
            s.start(name)
    # quorate too: a node that just joined shows the view at once and says quorate a
    # round of leases later, and clusvcadm -l refuses until then (CI 2026-12-07)
    s.wait("every node in one quorate view",
           lambda: all(s.members(n, quorate=True) == [1, 2, 3] for n in s.names),
           timeout=120)

    def shown(name: str) -> bool:
        return "Services locked: nothing starts or moves" in s.cli(name, "clustat").stdout
    assert not any(shown(n) for n in s.names)
    out = s.cli(n1, "clusvcadm", "-l")
    assert out.returncode == 0, out.stdout + out.stderr
    try:
        s.wait("the lock shown on every member", lambda: all(shown(n) for n in s.names),
               timeout=30)
    finally:
        out = s.cli(n1, "clusvcadm", "-u")
    assert out.returncode == 0, out.stdout + out.stderr
    s.wait("the lock gone on every member", lambda: not any(shown(n) for n in s.names),
           timeout=30)
