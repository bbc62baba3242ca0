"""Services on three real clusterd processes on loopback (127.0.0.11-13), no lab.

A service is one ``script`` resource: a test LSB script that records, per node, whether
it runs (a file per node) and every start/stop with a timestamp. Fencing uses a wrapper
around tests/unit/fencing/fence_fake that timestamps each call and, on ``off``, removes
the victim's "running" file (the power is cut). Capabilities, with deadlines:

  The service starts on exactly one node, the best of its ordered domain.
  clusvcadm -r moves it (and prints where it runs); -d disables it and it stays disabled
  across a restart of every daemon; -e brings it back.
  SIGKILL of the owner's clusterd: the owner is fenced (agent log) BEFORE the service
  starts elsewhere (script log).
  A failed status check restarts it in place; past max_restarts it relocates.
  A stop failure with no fencing configured leaves it failed (blocked), never doubled.
  SIGKILL + restart of clusterd on the owner re-adopts the service: no stop, no start.
A file ``deadbmc.NODE`` in the cluster root makes every fence call for NODE fail (a dead
BMC), logged with ``dead_bmc``.
Needs root (the daemon requires a root-owned authkey), not the lab.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from localcluster_harness import PY, LocalCluster, Node, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusterd needs root (authkey "
                                "owned by root, control socket)")

FENCE_FAKE = Path(__file__).parents[1] / "unit" / "fencing" / "fence_fake"

APP = r"""#!/bin/sh
# Test LSB script: state per clusterd node (found from the process ancestry).
ROOT=@ROOT@
pid=$$
node=
while [ "$pid" -gt 1 ]; do
    node=$(tr '\0' '\n' < /proc/$pid/cmdline 2>/dev/null | sed -n '/^--node$/{n;p;}')
    [ -n "$node" ] && break
    pid=$(awk '{print $4}' /proc/$pid/stat)
done
[ -n "$node" ] || { echo "no clusterd ancestor" >&2; exit 1; }
log() { echo "$(date +%s.%N) $1 $node $(basename "$0")" >> "$ROOT/app.log"; }
case "$1" in
start)
    [ -e "$ROOT/failstart.$node" ] && { log failstart; exit 1; }
    touch "$ROOT/run/$node@$(basename "$0")"; log start; exit 0 ;;
stop)
    [ -e "$ROOT/failstop.$node" ] && { log failstop; exit 1; }
    rm -f "$ROOT/run/$node@$(basename "$0")"; log stop; exit 0 ;;
status)
    if [ -e "$ROOT/failstatus.$node" ]; then rm -f "$ROOT/failstatus.$node"; log badstatus; exit 1; fi
    [ -e "$ROOT/run/$node@$(basename "$0")" ] && exit 0
    exit 3 ;;
*) exit 2 ;;
esac
"""

FENCE = r"""#!/usr/bin/python3
import json, os, subprocess, sys, time
ROOT = "@ROOT@"
if sys.argv[1:]:
    os.execv("@FAKE@", ["@FAKE@", *sys.argv[1:]])
data = sys.stdin.read()
opts = dict(line.partition("=")[::2] for line in data.splitlines() if "=" in line)
if os.path.exists(os.path.join(ROOT, "deadbmc." + opts.get("port", ""))):
    with open(os.path.join(ROOT, "fence.log"), "a") as f:
        f.write(json.dumps({"t": time.time(), "action": opts.get("action"),
                            "port": opts.get("port"), "dead_bmc": True}) + "\n")
    print("Failed: Unable to connect to the BMC (dead BMC test knob)", file=sys.stderr)
    sys.exit(1)
if opts.get("action") in ("off", "reboot"):
    for name in os.listdir(os.path.join(ROOT, "run")):
        if name.split("@")[0] == opts.get("port"):
            os.unlink(os.path.join(ROOT, "run", name))
with open(os.path.join(ROOT, "fence.log"), "a") as f:
    f.write(json.dumps({"t": time.time(), "action": opts.get("action"),
                        "port": opts.get("port")}) + "\n")
sys.exit(subprocess.run(["@FAKE@"], input=data, text=True).returncode)
"""

LAUNCHER = """import sys
from clusterd.fencing import agent
d = list(agent.AgentRunner.__init__.__defaults__)
d[0] = ("@DIR@",) + tuple(d[0])
agent.AgentRunner.__init__.__defaults__ = tuple(d)
from clusterd.cli.clusterd import main
sys.exit(main(sys.argv[1:]))
"""


def web(root: Path, service_attrs: str = "", extra: str = "") -> str:
    return (f'<service name="web" domain="prefer1" {service_attrs}>'
            f'<script name="app" file="{root}/bin/app.sh">'
            f'<action name="status" depth="0" interval="1"/></script>{extra}</service>')


def services_conf(c: LocalCluster, version: int, *, fencing: bool = True,
                  service_attrs: str = "", post_fail_delay: int = 0,
                  services: str | None = None) -> str:
    root = c.root
    nodes = []
    for i, a in enumerate(c.addrs, 1):
        fence = (f'<fence><method name="fake"><device name="fake" port="{a}"/></method>'
                 f'</fence>' if fencing else "")
        nodes.append(f'    <clusternode name="{a}" nodeid="{i}">{fence}</clusternode>')
    members = "".join(f'<failoverdomainnode name="{a}" priority="{i}"/>'
                      for i, a in enumerate(c.addrs, 1))
    devices = ('<fencedevices><fencedevice name="fake" agent="fence_rhctest"/>'
               '</fencedevices>' if fencing else "")
    node_lines = "\n".join(nodes)
    return f"""<?xml version="1.0"?>
<cluster name="loopback" config_version="{version}">
  <clusternodes>
{node_lines}
  </clusternodes>
  <cman port="{c.port}"/>
  <fence_daemon post_fail_delay="{post_fail_delay}"/>
  {devices}
  <rm>
    <failoverdomains><failoverdomain name="prefer1" ordered="1" nofailback="1">{members}</failoverdomain></failoverdomains>
    {services if services is not None else web(root, service_attrs)}
  </rm>
</cluster>
"""


class ServiceCluster(LocalCluster):
    def setup_services(self, **conf_args) -> None:
        (self.root / "run").mkdir()
        bindir = self.root / "bin"
        bindir.mkdir(mode=0o755)
        for name in ("app.sh", "db.sh", "extra.sh"):
            (bindir / name).write_text(APP.replace("@ROOT@", str(self.root)))
            (bindir / name).chmod(0o755)
        fence = bindir / "fence_rhctest"
        fence.write_text(FENCE.replace("@ROOT@", str(self.root))
                         .replace("@FAKE@", str(bindir / "fence_fake")))
        fence.chmod(0o755)
        shutil.copy(FENCE_FAKE, bindir / "fence_fake")
        (bindir / "fence_fake").chmod(0o755)
        (self.root / "launch.py").write_text(LAUNCHER.replace("@DIR@", str(bindir)))
        text = services_conf(self, 1, **conf_args)
        for node in self.nodes:
            node.conf.write_text(text)
            node.conf.chmod(0o640)

    def start(self, node: Node, env: dict[str, str] | None = None) -> None:
        log = open(node.log, "ab")              # noqa: SIM115 - handed to the child
        node.proc = subprocess.Popen(
            [PY, str(self.root / "launch.py"), "--foreground", "--config", str(node.conf),
             "--authkey", str(self.root / "authkey"), "--node", node.addr,
             "--control-socket", node.sock, "--state-dir", str(node.home / "state")],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        log.close()

    # -- observations -------------------------------------------------------------------
    def running_on(self, script: str = "app.sh") -> list[str]:
        return sorted(p.name.split("@")[0] for p in (self.root / "run").iterdir()
                      if p.name.endswith(f"@{script}"))

    def app_log(self, script: str = "app.sh") -> list[tuple[float, str, str]]:
        path = self.root / "app.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            t, what, node, name = line.split()
            if name == script:
                out.append((float(t), what, node))
        return out

    def fence_log(self) -> list[dict]:
        path = self.root / "fence.log"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def service(self, node: Node, name: str = "service:web") -> dict | None:
        status = node.status()
        return next((s for s in status.get("services", []) if s["name"] == name), None)

    def started_on(self, node: Node, where: str) -> bool:
        s = self.service(node)
        return bool(s and s["state"] == "started" and s["owner"] == where
                    and self.running_on() == [where])

    def clusvcadm(self, node: Node, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([PY, "-m", "clusterd.cli.clusvcadm", "--control-socket",
                               node.sock, *args], check=False, capture_output=True,
                              text=True, timeout=120)


@pytest.fixture
def cluster(request):
    root = Path(tempfile.mkdtemp(prefix="rhc-svc-"))
    root.chmod(0o755)
    c = ServiceCluster(root)
    yield c
    c.stop_all()
    if getattr(request.node, "rep_failed", False):
        print(c.logs())
        print("app.log:", (root / "app.log").read_text() if (root / "app.log").exists() else "")
    shutil.rmtree(root, ignore_errors=True)


def clustat_line(node: Node) -> list[str]:
    out = node.clustat().stdout
    return next((line.split() for line in out.splitlines() if "service:web" in line), [])


def formed(c: ServiceCluster) -> None:
    c.start_all()
    for node in c.nodes:
        wait_until(f"{node.addr}: 3 members Online and Quorate",
                   lambda node=node: c.members_online(node))


def test_service_runs_once_relocates_and_stays_disabled_across_restarts(cluster):
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, n3 = c.nodes
    for node in c.nodes:
        wait_until(f"{node.addr}: web started on {n1.addr} (ordered domain, priority 1)",
                   lambda node=node: c.started_on(node, n1.addr))
    assert [e[1:] for e in c.app_log() if e[1] == "start"] == [("start", n1.addr)]
    assert clustat_line(n3) == ["service:web", n1.addr, "started"]

    out = c.clusvcadm(n3, "-r", "web", "-m", n2.addr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == (f"Trying to relocate service:web to {n2.addr}...Success\n"
                          f"service:web is now running on {n2.addr}\n")
    assert c.running_on() == [n2.addr]
    wait_until("clustat shows the last owner", lambda: (c.service(n1) or {}).get(
        "last_owner") == n1.addr and c.service(n1)["owner"] == n2.addr)

    out = c.clusvcadm(n1, "-d", "web")
    assert (out.returncode, out.stdout) == (0, "Local machine disabling service:web...Success\n")
    assert c.running_on() == []
    wait_until("clustat shows web disabled, last owner node 2", lambda: clustat_line(n3) == [
        "service:web", f"({n2.addr})", "disabled"])
    for node in c.nodes:
        c.signal(node, signal.SIGTERM)
    for node in c.nodes:
        assert node.proc.wait(timeout=60) == 0
    formed(c)
    for node in c.nodes:
        wait_until("web still disabled after every daemon restarted",
                   lambda node=node: (c.service(node) or {}).get("state") == "disabled")
    assert c.running_on() == []
    out = c.clusvcadm(n2, "-e", "web")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == (f"Local machine trying to enable service:web...Success\n"
                          f"service:web is now running on {n2.addr}\n")
    out = c.clusvcadm(n2, "-e", "web")
    assert out.returncode == 0 and "Service is already running" in out.stdout
    out = c.clusvcadm(n2, "-e", "nosuch")
    assert out.returncode == 252 and "Service does not exist" in out.stdout
    out = c.clusvcadm(n3, "-Z", "web")
    assert (out.returncode, out.stdout) == (0, "Local machine freezing service:web...Success\n")
    wait_until("clustat shows the frozen flag", lambda: clustat_line(n1) == [
        "service:web", n2.addr, "started", "[Z]"])
    out = c.clusvcadm(n3, "-r", "web")
    assert (out.returncode, out.stdout) == (
        245, "Trying to relocate service:web...Service is frozen\n")
    assert c.clusvcadm(n3, "-U", "web").returncode == 0
    wait_until("unfrozen", lambda: clustat_line(n1) == ["service:web", n2.addr, "started"])


def test_owner_sigkilled_is_fenced_before_the_service_starts_elsewhere(cluster):
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    c.signal(n1, signal.SIGKILL)        # the daemon dies; the fence cuts the "power"
    wait_until(f"web started on {n2.addr} (next in the ordered domain)",
               lambda: c.started_on(n2, n2.addr), timeout=30)
    fences = [f for f in c.fence_log() if f["port"] == n1.addr and f["action"] in
              ("off", "reboot")]
    assert fences, "node 1 was never fenced"
    starts = [t for t, what, node in c.app_log() if what == "start" and node == n2.addr]
    assert len(starts) == 1
    assert fences[0]["t"] < starts[0], (fences, starts)
    assert c.running_on() == [n2.addr]
    s = c.service(n3)
    assert (s["owner"], s["last_owner"]) == (n2.addr, n1.addr)


def test_failed_status_check_restarts_in_place_then_relocates(cluster):
    c = cluster
    c.setup_services(service_attrs='recovery="restart" max_restarts="2" '
                                   'restart_expire_time="600"')
    formed(c)
    n1, n2, _n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    for restart in (1, 2):
        (c.root / f"failstatus.{n1.addr}").touch()
        wait_until(f"in-place restart {restart} on node 1", lambda restart=restart: len(
            [e for e in c.app_log() if e[1:] == ("start", n1.addr)]) == restart + 1
            and c.started_on(n2, n1.addr), timeout=30)
        assert c.service(n1)["restarts"] == restart
    (c.root / f"failstatus.{n1.addr}").touch()
    wait_until("relocated to node 2 after max_restarts", lambda: c.started_on(n1, n2.addr),
               timeout=30)
    assert [e[1:] for e in c.app_log() if e[1] == "start"] == [
        ("start", n1.addr)] * 3 + [("start", n2.addr)]


def test_stop_failure_without_fencing_blocks_the_service(cluster):
    c = cluster
    c.setup_services(fencing=False)
    formed(c)
    n1, n2, _n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    (c.root / f"failstop.{n1.addr}").touch()
    out = c.clusvcadm(n2, "-r", "web")
    assert out.returncode != 0
    wait_until("web failed on node 1", lambda: (c.service(n2) or {}).get("state") == "failed")
    seen = set()
    for _ in range(20):   # it stays blocked: placement sees it on every cycle
        s = c.service(n2)
        seen.add((s["state"], s["owner"]))
        assert c.running_on() == [n1.addr]
    assert seen == {("failed", n1.addr)}
    assert [e[1:] for e in c.app_log() if e[1] == "start"] == [("start", n1.addr)]
    # the admin checks the node, fixes the stop and disables the service
    (c.root / f"failstop.{n1.addr}").unlink()
    out = c.clusvcadm(n1, "-d", "web")
    assert out.returncode == 0, out.stdout + out.stderr
    assert c.running_on() == []


def test_clusterd_restart_on_the_owner_readopts_the_running_service(cluster):
    c = cluster
    c.setup_services(post_fail_delay=60)
    formed(c)
    n1, n2, _n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    before = c.app_log()
    c.signal(n1, signal.SIGKILL)
    n1.proc.wait(timeout=10)
    c.start(n1)
    wait_until("node 1 back with web re-adopted", lambda: c.members_online(n1)
               and c.started_on(n1, n1.addr), timeout=30)
    for node in c.nodes:
        wait_until("every node shows web on node 1",
                   lambda node=node: c.started_on(node, n1.addr))
    assert c.app_log() == before, "the service was stopped or started again"
    assert "re-adopted without a restart" in n1.log.read_text()


def test_reconfiguration_touches_only_what_changed(cluster):
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, _n3 = c.nodes
    root = c.root
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    web_log = c.app_log()
    db = (f'<service name="db"><script name="db" file="{root}/bin/db.sh">'
          f'<action name="status" depth="0" interval="1"/></script></service>')

    def propose(version: int, services: str) -> None:
        path = root / f"v{version}.conf"
        path.write_text(services_conf(c, version, services=services))
        out = n2.admin("conf", "propose", str(path))
        assert out.returncode == 0, out.stdout + out.stderr

    propose(2, web(root) + db)                       # added service: only it starts
    wait_until("db started", lambda: len(c.running_on("db.sh")) == 1
               and (c.service(n1, "service:db") or {}).get("state") == "started")
    extra = f'<script name="extra" file="{root}/bin/extra.sh"/>'
    propose(3, web(root, extra=extra) + db)          # changed service: only the new subtree
    wait_until("the extra script started beside app", lambda: c.running_on("extra.sh")
               == [n1.addr])
    propose(4, web(root, 'recovery="relocate"', extra) + db)   # attribute only: nothing
    propose(5, web(root, 'recovery="relocate"', extra))          # removed service: stopped
    wait_until("db stopped", lambda: c.running_on("db.sh") == []
               and all(s["name"] != "service:db" for s in n1.status()["services"]))
    db_log = [e[1] for e in c.app_log("db.sh")]
    assert db_log == ["start", "stop"]
    assert c.app_log() == web_log, "web's own script was stopped or started again"
    assert [e[1:] for e in c.app_log("extra.sh")] == [("start", n1.addr)]
    assert c.started_on(n1, n1.addr)


def test_node_standby_evacuates_and_active_takes_services_again(cluster):
    from clusterd.control.client import ControlClient
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    out = ControlClient(n3.sock, timeout=90).call("node.standby", {"node": n1.addr})
    assert out["code"] == 0, out
    assert c.running_on() == [n2.addr]        # evacuated before the op answered
    wait_until("every node shows web on node 2", lambda: all(
        c.started_on(node, n2.addr) for node in c.nodes))

    def standby(node) -> set[str]:           # what the collection's `node` module reads
        return {n["name"] for n in node.status()["nodes"] if n["standby"]}

    wait_until("every node's status shows node 1 in standby",
               lambda: all(standby(node) == {n1.addr} for node in c.nodes))
    out = ControlClient(n3.sock).call("node.standby", {"node": "nosuch"})
    assert out["code"] == -12 and "not a cluster node" in out["detail"]
    out = ControlClient(n2.sock).call("node.active", {"node": n1.addr})
    assert out["code"] == 0
    wait_until("every node's status shows no node in standby",
               lambda: all(standby(node) == set() for node in c.nodes))
    out = c.clusvcadm(n1, "-r", "web", "-m", n1.addr)      # it may take services again
    assert out.returncode == 0, out.stdout + out.stderr
    assert c.running_on() == [n1.addr]


def test_losing_quorum_stops_local_services_without_a_coordinator(cluster):
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    c.signal(n2, signal.SIGKILL)
    c.signal(n3, signal.SIGKILL)
    wait_until("node 1 alone stops web (quorum lost)", lambda: c.running_on() == [],
               timeout=30)
    assert n1.clustat("-Q").returncode == 1
    assert [e[1:] for e in c.app_log()] == [("start", n1.addr), ("stop", n1.addr)]
    wait_until("clustat on node 1 no longer shows web started", lambda: (
        c.service(n1) or {}).get("state") != "started")
