"""A restart of clusterd is not a leave: three real daemons on loopback, no lab.

The service is a script that starts a real process (``sleep``, its PID in
``run/NODE@app.sh``), so "keeps running" means the same PID. The daemons run with
``INVOCATION_ID`` set and a fake ``systemctl`` whose ``list-jobs`` answers the job type
written in ``ROOT/systemd-job``, as systemd does during ``systemctl restart`` (``restart``)
or ``systemctl stop`` (``stop``). Capabilities, with deadlines:

  SIGTERM under a restart job: the owner's service keeps its process, nobody is fenced,
  nothing moves while it is away, and the new daemon re-adopts it (started, same node).
  SIGTERM to two of three daemons: the third, inquorate meanwhile, keeps its service.
  SIGTERM to every daemon at once under restart jobs: the same.
  SIGTERM under a stop job: a leave, the service stops and moves (as before).
  ``clusterd leave --restart`` with a status check stuck in a worker thread (a hung stat)
  and another one ignoring SIGTERM: the daemon exits at once, kills the check, names the
  stuck thread, and the services keep running.
Needs root (the daemon requires a root-owned authkey), not the lab.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from localcluster_harness import Node, wait_until
from test_services_local import ServiceCluster, formed, web

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusterd needs root (authkey "
                                "owned by root, control socket)")

APP = r"""#!/bin/sh
# A service with a real process: start runs sleep in the background (PID in
# run/NODE@NAME), stop kills it, status checks it. ROOT/slowstatus.NAME: status ignores
# SIGTERM and sleeps (its PID in ROOT/status.pid).
ROOT=@ROOT@
NAME=$(basename "$0")
pid=$$
node=
while [ "$pid" -gt 1 ]; do
    node=$(tr '\0' '\n' < /proc/$pid/cmdline 2>/dev/null | sed -n '/^--node$/{n;p;}')
    [ -n "$node" ] && break
    pid=$(awk '{print $4}' /proc/$pid/stat)
done
[ -n "$node" ] || { echo "no clusterd ancestor" >&2; exit 1; }
RUN="$ROOT/run/$node@$NAME"
log() { echo "$(date +%s.%N) $1 $node $NAME" >> "$ROOT/app.log"; }
case "$1" in
start)
    if [ -e "$RUN" ] && kill -0 "$(cat "$RUN")" 2>/dev/null; then exit 0; fi
    sleep 100000 </dev/null >/dev/null 2>&1 &
    echo $! > "$RUN"; log start; exit 0 ;;
stop)
    [ -e "$RUN" ] && kill "$(cat "$RUN")" 2>/dev/null
    rm -f "$RUN"; log stop; exit 0 ;;
status)
    if [ -e "$ROOT/slowstatus.$NAME" ]; then
        trap '' TERM; echo $$ > "$ROOT/status.pid"; sleep 30; log checkdone
    fi
    [ -e "$RUN" ] && kill -0 "$(cat "$RUN")" 2>/dev/null && exit 0
    exit 3 ;;
*) exit 2 ;;
esac
"""

SYSTEMCTL = """#!/bin/sh
# fake systemctl: `list-jobs --no-legend --no-pager UNIT` -> the job in ROOT/systemd-job
for arg in "$@"; do unit="$arg"; done
[ -s @ROOT@/systemd-job ] && echo "4242 $unit $(cat @ROOT@/systemd-job) running"
exit 0
"""

LAUNCHER = """import os, sys, time
from clusterd.fencing import agent
d = list(agent.AgentRunner.__init__.__defaults__)
d[0] = ("@DIR@",) + tuple(d[0])
agent.AgentRunner.__init__.__defaults__ = tuple(d)
from clusterd.node import shutdown
shutdown.SYSTEMCTL = "@DIR@/systemctl"
from clusterd.resources.agents import script
real = script.untrusted_reason
def hanging(path):      # a stat on a hung NFS mount, while ROOT/hangstat exists
    if path.endswith("/app.sh") and os.path.exists("@ROOT@/hangstat"):
        open("@ROOT@/stat-entered", "w").close()
        time.sleep(3600)
    return real(path)
script.untrusted_reason = hanging
from clusterd.cli.clusterd import main
sys.exit(main(sys.argv[1:]))
"""


class RestartCluster(ServiceCluster):
    def setup_services(self, **conf_args) -> None:
        super().setup_services(**conf_args)
        bindir = self.root / "bin"
        for name in ("app.sh", "db.sh"):
            (bindir / name).write_text(APP.replace("@ROOT@", str(self.root)))
        (bindir / "systemctl").write_text(SYSTEMCTL.replace("@ROOT@", str(self.root)))
        (bindir / "systemctl").chmod(0o755)
        (self.root / "launch.py").write_text(LAUNCHER.replace("@DIR@", str(bindir))
                                             .replace("@ROOT@", str(self.root)))

    def start(self, node: Node, env: dict[str, str] | None = None) -> None:
        super().start(node, {"INVOCATION_ID": f"test-{node.nodeid}", **(env or {})})

    def systemd_job(self, job: str) -> None:
        (self.root / "systemd-job").write_text(job)

    def pid_of(self, node: Node, script: str = "app.sh") -> int | None:
        path = self.root / "run" / f"{node.addr}@{script}"
        return int(path.read_text()) if path.exists() else None

    def fences(self) -> list[dict]:
        return [f for f in self.fence_log() if f["action"] in ("off", "reboot")]

    def kill_leftovers(self) -> None:
        for path in (self.root / "run").glob("*"):
            try:
                os.kill(int(path.read_text()), signal.SIGKILL)
            except (ValueError, OSError):
                pass


def alive(pid: int | None) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError, TypeError):
        return False


@pytest.fixture
def cluster(request):
    root = Path(tempfile.mkdtemp(prefix="rhc-restart-"))
    root.chmod(0o755)
    c = RestartCluster(root, size=getattr(request, "param", 3))
    yield c
    c.stop_all()
    c.kill_leftovers()
    if getattr(request.node, "rep_failed", False):
        print(c.logs())
        print("app.log:", (root / "app.log").read_text() if (root / "app.log").exists() else "")
    shutil.rmtree(root, ignore_errors=True)


def web_everywhere_on(c: RestartCluster, owner: Node) -> None:
    for node in c.nodes:
        wait_until(f"{node.addr} shows web started on {owner.addr}",
                   lambda node=node: c.members_online(node) and c.started_on(node, owner.addr),
                   timeout=30)


def restarted(c: RestartCluster, *nodes: Node) -> None:
    """SIGTERM under a systemd restart job, the daemon exits 0, then starts again."""
    c.systemd_job("restart")
    for node in nodes:
        c.signal(node, signal.SIGTERM)
    for node in nodes:
        assert node.proc.wait(timeout=10) == 0
        assert "restarting: done" in node.log.read_text()
    for node in nodes:
        c.start(node)


def test_a_restart_keeps_the_service_and_fences_nobody_one_node_then_all(cluster):
    c = cluster
    c.setup_services(post_fail_delay=0)
    formed(c)
    n1, n2, n3 = c.nodes
    web_everywhere_on(c, n1)
    pid = c.pid_of(n1)
    assert alive(pid)

    c.systemd_job("restart")
    c.signal(n1, signal.SIGTERM)
    assert n1.proc.wait(timeout=10) == 0
    log = n1.log.read_text()
    assert "restarting, services keep running: signal SIGTERM: systemd runs a restart " \
           "job on clusterd.service" in log
    assert log.index("announced a restart keeping its services running") < \
        log.index("restarting: done, 1 service(s) left running for the next daemon") < \
        log.index("clusterd exits with status 0")
    # while it is away: its service is held where it runs, nobody is fenced
    for node in (n2, n3):
        wait_until(f"{node.addr} shows {n1.addr} offline, web still on it", lambda node=node:
                   "Offline" in next(line for line in node.clustat().stdout.splitlines()
                                     if line.split()[:1] == [n1.addr])
                   and (c.service(node) or {}).get("owner") == n1.addr)
        assert node.status()["fencing"] == []
    assert f"{n1.addr} restarts keeping its services running: not fenced" in \
        n2.log.read_text()
    assert alive(pid) and c.running_on() == [n1.addr]

    c.start(n1)
    web_everywhere_on(c, n1)
    assert "service:web is running: re-adopted without a restart" in n1.log.read_text()

    # a majority restarts: node 1 is left without quorum, and keeps its service running
    c.systemd_job("restart")
    for node in (n2, n3):
        c.signal(node, signal.SIGTERM)
    for node in (n2, n3):
        assert node.proc.wait(timeout=10) == 0
    wait_until("node 1 noticed it lost quorum while they restart", lambda: "restart(s) "
               "keeping their services: this node keeps its own running until quorum is "
               "back" in n1.log.read_text())
    assert alive(pid) and n1.clustat("-Q").returncode == 1
    for node in (n2, n3):
        c.start(node)
    web_everywhere_on(c, n1)

    restarted(c, n1, n2, n3)             # every daemon at once
    web_everywhere_on(c, n1)
    assert c.pid_of(n1) == pid and alive(pid)
    assert [e[1:] for e in c.app_log()] == [("start", n1.addr)], "stopped or started again"
    assert c.fences() == []
    for node in c.nodes:
        assert node.status()["fencing"] == []


def test_a_stop_is_still_a_leave_that_moves_the_service(cluster):
    c = cluster
    c.setup_services(post_fail_delay=0)
    formed(c)
    n1, n2, _n3 = c.nodes
    web_everywhere_on(c, n1)
    pid = c.pid_of(n1)
    c.systemd_job("stop")
    c.signal(n1, signal.SIGTERM)
    assert n1.proc.wait(timeout=30) == 0
    assert "leaving the cluster: signal SIGTERM: systemd runs a stop job on " \
           "clusterd.service: leave" in n1.log.read_text()
    wait_until(f"web moved to {n2.addr}", lambda: c.started_on(n2, n2.addr), timeout=30)
    assert not alive(pid)
    assert [e[1:] for e in c.app_log()] == [("start", n1.addr), ("stop", n1.addr),
                                            ("start", n2.addr)]
    assert c.fences() == []


@pytest.mark.parametrize("cluster", [1], indirect=True)
def test_a_restart_exits_at_once_with_status_checks_stuck_in_flight(cluster):
    c = cluster
    db = (f'<service name="db"><script name="db" file="{c.root}/bin/db.sh">'
          f'<action name="status" depth="0" interval="1"/></script></service>')
    c.setup_services(services=web(c.root) + db)
    (n1,) = c.nodes
    c.start_all()
    wait_until("web and db started", lambda: sorted(c.running_on("app.sh") +
                                                    c.running_on("db.sh")) == [n1.addr] * 2,
               timeout=30)
    pids = (c.pid_of(n1, "app.sh"), c.pid_of(n1, "db.sh"))
    (c.root / "hangstat").touch()                # web's next check hangs in a thread
    (c.root / "slowstatus.db.sh").touch()        # db's next check ignores SIGTERM
    wait_until("both checks in flight", lambda: (c.root / "stat-entered").exists()
               and (c.root / "status.pid").exists())
    check = int((c.root / "status.pid").read_text())
    out = n1.admin("leave", "--restart")
    assert (out.returncode, out.stdout) == (0, ("clusterd exits for a restart; its services "
                                               "keep running\n")), out.stderr
    assert n1.proc.wait(timeout=10) == 0         # a hang guard: it exits at once
    log = n1.log.read_text()
    assert log.index("restarting: done, 2 service(s) left running") < \
        log.index("killed agent process group(s)") < \
        log.index("clusterd exits with status 0") < log.index("not waiting for clusterd-worker")
    assert not alive(check)                      # killed, not left to finish
    assert "checkdone" not in (c.root / "app.log").read_text()
    assert all(alive(pid) for pid in pids)       # the services keep running
    assert [e[1] for e in c.app_log()] == ["start"] and \
        [e[1] for e in c.app_log("db.sh")] == ["start"]
