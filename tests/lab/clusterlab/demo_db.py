"""`make demo-db`: MariaDB on the lab's shared disk keeps every write it acknowledged when
its node is powered off. A 3-node lab (reused when up), bootstrap.yml, the database created
once on the shared disk (playbooks/examples/mariadb_init.yml), then services.yml with the
example `db` service (playbooks/examples/mariadb_shared_disk.yml: fs + ip + mysql, as an
RHCS cluster.conf has it). A client in the client namespace inserts rows through the
floating address, each committed before the next, and counts the acknowledgements; the
node running `db` is powered off through its BMC; fencing and the database coming back on
another node are shown as they happen; then every acknowledged row is looked up: the
count of acknowledged writes lost is printed (it must be 0). The lab is left up.
"""

from __future__ import annotations

import itertools
import secrets
import subprocess
import sys
import threading
import time

import pymysql

from .demo import (
    cluster_status,
    demo_lab,
    run_playbooks,
    say,
    service_owner,
    show_clustat,
)
from .errors import LabError
from .lab import Lab

SERVICE = "db"
ADDRESS = "198.18.0.51"   # playbooks/examples/mariadb_shared_disk.yml
SOCKET = "/run/cluster-db/mysqld.sock"
EXAMPLE = "@playbooks/examples/mariadb_shared_disk.yml"

# Runs in the client namespace with the venv's python (PyMySQL): one INSERT at a time,
# committed before the next; prints "ok ID" once MariaDB acknowledged the commit.
CLIENT = r"""
import os, sys, time
import pymysql
conn, i = None, 0
while True:
    i += 1
    try:
        if conn is None:
            conn = pymysql.connect(host=sys.argv[1], user="demo", password=os.environ["PW"],
                                   database="demo", connect_timeout=1, read_timeout=2,
                                   write_timeout=2)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO writes (id) VALUES (%s)", (i,))
        conn.commit()
        print(f"{time.monotonic():.3f} ok {i}", flush=True)
    except Exception as exc:
        print(f"{time.monotonic():.3f} err {i} {type(exc).__name__}", flush=True)
        conn = None
        time.sleep(0.05)
    time.sleep(0.01)
"""


def create_account(lab: Lab, node: str, name: str) -> str:
    """Database ``name``, a user ``name`` who may connect from anywhere with a new random
    password (returned) and an empty table ``writes (id)``, made through the server's
    socket on ``node`` (MariaDB's root logs in by socket only)."""
    password = secrets.token_hex(12)
    lab.exec(node, ["mariadb", f"--socket={SOCKET}", "-e", (
        f"CREATE DATABASE IF NOT EXISTS {name}; "
        f"CREATE OR REPLACE USER '{name}'@'%' IDENTIFIED BY '{password}'; "
        f"GRANT ALL ON {name}.* TO '{name}'@'%'; "
        f"CREATE OR REPLACE TABLE {name}.writes (id INT NOT NULL) ENGINE=InnoDB;")])
    return password


class Writer:
    """The client process and what it was told: acknowledged ids, and when."""

    def __init__(self, lab: Lab, password: str) -> None:
        self.acked: list[tuple[float, int]] = []
        self.errors = 0
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.spec.client_netns, sys.executable, "-c", CLIENT,
             ADDRESS], stdout=subprocess.PIPE, text=True,
            env={"PW": password, "PATH": "/usr/bin:/bin"})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            t, kind, ident = line.split()[:3]
            with self._lock:
                if kind == "ok":
                    self.acked.append((float(t), int(ident)))
                else:
                    self.errors += 1

    def ids(self) -> list[int]:
        with self._lock:
            return [i for _t, i in self.acked]

    def resumed_after(self, t0: float) -> float:
        """When the client was first acknowledged after its longest wait since ``t0``
        (its clock is CLOCK_MONOTONIC, the same as this process's)."""
        with self._lock:
            times = [t for t, _i in self.acked]
        gaps = [(b - a, b) for a, b in itertools.pairwise(times) if b > t0]
        return max(gaps)[1] if gaps else float("nan")

    def longest_wait(self) -> float:
        with self._lock:
            times = [t for t, _i in self.acked]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=5)


def demo(lab: Lab) -> int:
    first = lab.nodes[0].name
    owner = lab.wait_for(lambda: service_owner(cluster_status(lab, first), SERVICE), 120,
                         f"{SERVICE} started")
    password = create_account(lab, owner, "demo")
    survivor = next(n.name for n in lab.nodes if n.name != owner)
    writer = Writer(lab, password)
    try:
        lab.wait_for(lambda: len(writer.ids()) >= 200, 60, "200 acknowledged writes")
        say(f"{SERVICE} runs on {owner}; the client has {len(writer.ids())} writes "
            f"acknowledged through {ADDRESS}")
        say(f"powering off {owner} through its BMC while the client keeps writing")
        t0 = time.monotonic()
        before = len(writer.ids())
        lab.power(owner, "off", wait=False)
        print(f"  power   +{time.monotonic() - t0:7.3f} s  {owner} off", flush=True)
        seen: set[str] = set()

        def back() -> bool:
            st = cluster_status(lab, survivor)
            for op in (st or {}).get("fencing", []):
                key = f"{op['node']}:{op['state']}"
                if op["node"] == owner and key not in seen:
                    seen.add(key)
                    print(f"  fence   +{time.monotonic() - t0:7.3f} s  {owner} {op['state']}",
                          flush=True)
            now = service_owner(st, SERVICE)
            return bool(now and now != owner and len(writer.ids()) > before + 10)

        lab.wait_for(back, 120, f"{SERVICE} back on another node", interval=0.2)
        new_owner = service_owner(cluster_status(lab, survivor), SERVICE)
        resumed = writer.resumed_after(t0)
        print(f"  db      +{resumed - t0:7.3f} s  the client's first write acknowledged by "
              f"MariaDB on {new_owner} (the same monotonic clock)", flush=True)
    finally:
        writer.stop()
    acked = writer.ids()
    conn = pymysql.connect(host=ADDRESS, user="demo", password=password, database="demo",
                           connect_timeout=2)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM writes")
        stored = {row[0] for row in cur.fetchall()}
    conn.close()
    lost = sorted(set(acked) - stored)
    show_clustat(lab, survivor)
    say(f"writes acknowledged: {len(acked)}; longest wait for an acknowledgement: "
        f"{writer.longest_wait():.2f} s; failed attempts (never acknowledged): "
        f"{writer.errors}")
    say(f"acknowledged writes lost: {len(lost)}" + (f" {lost[:10]}" if lost else ""))
    say(f"powering {owner} back on (the fence's reboot may have done it)")
    lab.power(owner, "on")
    return 0 if not lost else 1


def main() -> int:
    try:
        lab = demo_lab()
        took = run_playbooks("bootstrap.yml", "examples/mariadb_init.yml")
        took += run_playbooks("services.yml", extra=("-e", EXAMPLE))
        say(f"bootstrap, database creation and services took {took:.1f} s")
        show_clustat(lab, lab.nodes[0].name)
        rc = demo(lab)
        print(f"""
Explore (the lab stays up):
  .venv/bin/cluster-lab exec node1 -- clustat
  .venv/bin/cluster-lab exec node1 -- clusvcadm -r {SERVICE} -m node2
  .venv/bin/cluster-lab exec node1 -- cat /proc/mounts | grep cluster-lun0
Tear down:
  make lab-down   (or .venv/bin/cluster-lab down)
More: docs/operator-guide.md (a database on shared storage), docs/benchmarks.md""")
        return rc
    except LabError as exc:
        print(f"demo-db: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
