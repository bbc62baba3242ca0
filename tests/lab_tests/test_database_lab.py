"""A database on shared storage keeps every write it acknowledged through every kind of
failover (Jepsen-style), on the lab: the real daemon on three emulated nodes, the lab's
shared disk (one loop device bound into every node as a SAN LUN would be), fencing with
the real fence_ipmilan against the emulated BMCs, MariaDB from Debian run by the RHCS
``mysql`` type (translated onto ocf:heartbeat:mysql), and an unchanged RHCS service:

    <service name="db" domain="db_nodes" recovery="relocate">
      <fs device="/dev/cluster-lun0" mountpoint="/srv/db" fstype="ext4" force_unmount="1"/>
      <ip address="FLOAT/24" monitor_link="1"/>
      <mysql config_file="/etc/mysql/cluster-db.cnf" listen_address="FLOAT"/>
    </service>

A client in the lab's client namespace inserts rows through the floating address, one at
a time, each committed and acknowledged before the next, and records every acknowledged
id (an id is used once, so a row seen twice would be a replayed write). The faults, each
twice, always on the service's owner: powered off through its BMC; its link gone (the
host end of its veth down: it keeps running, its BMC still answers); its clusterd paused
(SIGSTOP) past the token; partitioned from its peers (clients still reach it); and
``clusvcadm -r``. After each fault, once the client is acknowledged again: every
acknowledged id is in the table exactly once, no id twice, and ``CHECK TABLE`` is clean.
Throughout, an auditor reads every node's mount table (from the host's /proc, every
20 ms): the shared filesystem is never mounted on two nodes at once.

The outage per fault (the client's longest wait for an acknowledgement around it) is
measured by ``make bench`` (tests/bench/bench_database.py, the same scenario through
:func:`run_scenario`); no timing is asserted here.
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest
from clusterlab.disk import DEVICE
from test_services_lab import UNIT, SvcLab

pytestmark = pytest.mark.lab

MOUNTPOINT = "/srv/db"
MY_CNF = "/etc/mysql/cluster-db.cnf"
DB_PORT = 3306
FAULTS = ("power_off", "link_down", "clusterd_paused", "partition", "relocate")
ROUNDS = 2

CLIENT = r"""
import os, sys, time
import pymysql
host, out_path, stop_path = sys.argv[1], sys.argv[2], sys.argv[3]
password = os.environ["DB_PASSWORD"]
out = open(out_path, "w", buffering=1)
conn, i = None, 0
while not os.path.exists(stop_path):
    i += 1
    t = time.time()
    try:
        if conn is None:
            conn = pymysql.connect(host=host, port=3306, user="jepsen", password=password,
                                   database="jepsen", connect_timeout=1, read_timeout=2,
                                   write_timeout=2, autocommit=False)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO acks (client_id) VALUES (%s)", (i,))
        conn.commit()
        out.write(f"{t:.3f} ok {i}\n")
        time.sleep(0.01)   # about 100 writes a second: enough to see a gap, light on the host
    except Exception as exc:
        out.write(f"{t:.3f} err {i} {type(exc).__name__}\n")
        try:
            conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.05)
"""


class SharedDiskLab(SvcLab):
    """A service on the shared disk: what a node may have left of it is the server's
    processes (``PID_FILES``, shell globs), the mount at ``MOUNTPOINT`` and the floating
    address (services survive a daemon stop)."""

    PID_FILES = ""
    MOUNTPOINT = ""

    def clear(self, name: str, address: bool = False) -> None:
        script = (f"for p in {self.PID_FILES}; do [ -s $p ] && kill -9 $(cat $p); "
                  f"done 2>/dev/null; umount {self.MOUNTPOINT} 2>/dev/null; ")
        if address:
            script += (f"ip -o addr | awk '$4 ~ /^{self.float_ip}\\//{{print $2, $4}}' | "
                       "while read i a; do ip addr del $a dev $i; done; ")
        self.lab.exec(name, ["sh", "-c", script + "true"], check=False)


def deployed(lab, kind: type[SharedDiskLab]) -> Iterator[SharedDiskLab]:
    """A module fixture's body: the lab restored, ``kind`` installed and started on every
    node; afterwards the daemons stopped and what they left cleared."""
    from lab_restore import restore
    restore(lab)
    d = kind(lab)
    d.install()
    for name in d.names:
        d.start(name)
    try:
        yield d
    finally:
        restore(lab)
        for name in d.names:
            d.stop(name)
        for name in d.names:
            d.clear(name, address=True)


class DbLab(SharedDiskLab):
    """SvcLab's deployment (daemon copy, transient unit) with the ``db`` service."""

    SERVICE = "service:db"
    PID_FILES = "/run/cluster-db/mysqld.pid"
    MOUNTPOINT = MOUNTPOINT

    def __init__(self, lab) -> None:
        self.password = secrets.token_hex(12)
        super().__init__(lab, float_ip=lab.spec.floating_range[0])

    def _conf(self, prefix: int) -> str:
        conf = super()._conf(prefix)
        rm_start = conf.index("<rm>")
        members = "".join(f'<failoverdomainnode name="{n}" priority="{i}"/>'
                          for i, n in enumerate(self.names, 1))
        rm = (f'<rm><failoverdomains><failoverdomain name="db_nodes" ordered="1" '
              f'nofailback="1">{members}</failoverdomain></failoverdomains>'
              f'<service name="db" domain="db_nodes" recovery="relocate">'
              f'<fs name="dbfs" device="{DEVICE}" mountpoint="{MOUNTPOINT}" fstype="ext4" '
              f'force_unmount="1"/>'
              f'<ip address="{self.float_ip}/{prefix}" monitor_link="1"/>'
              f'<mysql name="mariadb" config_file="{MY_CNF}" '
              f'listen_address="{self.float_ip}" startup_wait="60" shutdown_wait="30"/>'
              f'</service></rm></cluster>\n')
        return conf[:rm_start] + rm

    def my_cnf(self) -> str:
        return (f"# the cluster service db (RHCS <mysql config_file=...>): data on the shared "
                f"disk\n[mysqld]\ndatadir = {MOUNTPOINT}/mysql\n"
                "socket = /run/cluster-db/mysqld.sock\npid-file = /run/cluster-db/mysqld.pid\n"
                "log-error = /var/log/cluster-db.err\nuser = mysql\n"
                f"port = {DB_PORT}\nskip-name-resolve\ninnodb_flush_log_at_trx_commit = 1\n"
                "innodb_buffer_pool_size = 32M\nperformance_schema = OFF\n")

    def install(self) -> None:
        for name in self.names:
            self.clear(name)
        super().install()
        for name in self.names:
            self.lab.exec(name, ["sh", "-c", f"mkdir -p /etc/mysql && cat > {MY_CNF}"],
                          input=self.my_cnf())
        # a fresh filesystem with a new, empty database: what an operator does once when
        # moving a database onto shared storage (the cluster only ever starts it)
        self.lab.exec(self.names[0], ["sh", "-ec", (
            f"mkfs.ext4 -q -F {DEVICE}; mkdir -p {MOUNTPOINT}; mount {DEVICE} {MOUNTPOINT}; "
            f"trap 'umount {MOUNTPOINT}' EXIT; mariadb-install-db --defaults-file={MY_CNF} "
            "--auth-root-authentication-method=socket --skip-test-db > /dev/null")],
            timeout=180)

    def sql(self, query: str, *args) -> list[tuple]:
        """Run one statement through the floating address (from the host, on the bridge),
        committed before it returns."""
        conn = pymysql.connect(host=self.float_ip, port=DB_PORT, user="jepsen",
                               password=self.password, database="jepsen",
                               connect_timeout=2, read_timeout=30, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def setup_schema(self, owner: str) -> None:
        """The client's account and table, created once through the server's socket."""
        pw = self.password
        statements = (
            "CREATE DATABASE IF NOT EXISTS jepsen; "
            f"CREATE USER IF NOT EXISTS 'jepsen'@'%' IDENTIFIED BY '{pw}'; "
            "GRANT ALL ON jepsen.* TO 'jepsen'@'%'; "
            "CREATE TABLE IF NOT EXISTS jepsen.acks (seq BIGINT AUTO_INCREMENT PRIMARY KEY, "
            "client_id BIGINT NOT NULL, KEY (client_id)) ENGINE=InnoDB;")
        self.lab.exec(owner, ["mariadb", "--socket=/run/cluster-db/mysqld.sock", "-e",
                              statements])


class Auditor(threading.Thread):
    """Reads every node's mount table every 20 ms; keeps every sample where the shared
    device was mounted on more than one node."""

    def __init__(self, lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.halt = threading.Event()
        self.samples = 0
        self.double: list[tuple[float, dict[str, list[str]]]] = []
        self.owners_seen: set[str] = set()

    def run(self) -> None:
        while not self.halt.is_set():
            mounts = {n: m for n, m in self.lab.shared_disk_mounts().items() if m}
            self.samples += 1
            self.owners_seen.update(mounts)
            if len(mounts) > 1:
                self.double.append((time.time(), mounts))
            self.halt.wait(0.02)


def acked(log: Path) -> list[int]:
    return [int(line.split()[2]) for line in log.read_text().splitlines()
            if line.split()[1:2] == ["ok"]]


def ack_times(log: Path) -> list[float]:
    return [float(line.split()[0]) for line in log.read_text().splitlines()
            if line.split()[1:2] == ["ok"]]


def outage(log: Path, t0: float) -> float | None:
    """The client's longest wait for an acknowledgement around the fault at ``t0``: the
    largest gap between two consecutive acknowledged writes, the later one after t0
    (None until one came after t0). Resolution: the client's pace (about 10 ms)."""
    times = ack_times(log)
    gaps = [b - a for a, b in itertools.pairwise(times) if b > t0]
    return max(gaps) if gaps else None


@pytest.fixture(scope="module")
def db(lab) -> Iterator[DbLab]:
    yield from deployed(lab, DbLab)


def _fault(d: SvcLab, kind: str, owner: str) -> None:
    lab = d.lab
    others = [n for n in d.names if n != owner]
    if kind == "power_off":
        lab.power(owner, "off")
    elif kind == "link_down":
        subprocess.run(["ip", "link", "set", lab.node(owner).veth, "down"], check=True)
    elif kind == "clusterd_paused":
        lab.exec(owner, ["kill", "-STOP", str(d.clusterd_pid(owner))])
    elif kind == "partition":
        lab.partition(owner)
    elif kind == "relocate":
        def accepted() -> bool:
            out = d.cli(others[0], "clusvcadm", "-r", d.SERVICE.removeprefix("service:"),
                        "-m", others[0])
            # a node that joined moments ago is not a target until its first services
            # report arrives (rgmanager's words: "not in membership list"); anything else
            # is a failure
            assert out.returncode == 0 or "not in membership list" in out.stderr, \
                out.stdout + out.stderr
            return out.returncode == 0
        d.wait(f"clusvcadm -r to {others[0]} accepted", accepted, timeout=60)
    else:
        raise AssertionError(kind)


def _recover_node(d: SvcLab, name: str) -> None:
    """The faulted node back in the cluster: fenced ones were powered off (or rebooted:
    fence_ipmilan's default action), and the test's daemon does not start at boot."""
    lab = d.lab
    if lab.is_on(name):
        lab.heal(name)
    else:
        lab.power(name, "on")   # a new boot has a new network: no partition left
    lab.wait_ready(name, timeout=120)
    active = lab.exec(name, ["systemctl", "is-active", "--quiet", UNIT], check=False)
    if active.returncode != 0:
        d.start(name)
    d.wait(f"{name} a member of a quorate view of every node again",
           lambda: len(d.members(name)) == len(d.names) and d.quorate(name), timeout=120)


@dataclass
class Outcome:
    """What one run of the scenario saw."""

    outages: list[dict] = field(default_factory=list)  # per fault: kind, round, from, to, s
    acknowledged: int = 0
    audit_samples: int = 0
    double_mounts: list[tuple[float, dict[str, list[str]]]] = field(default_factory=list)
    mounted_on: set[str] = field(default_factory=set)


def _check_table(d: DbLab, log: Path, kind: str, rnd: int) -> None:
    want = acked(log)   # before the read: the client keeps writing
    ids = [row[0] for row in d.sql("SELECT client_id FROM acks")]
    missing = sorted(set(want) - set(ids))
    assert not missing, (f"after {kind} (round {rnd}): acknowledged ids missing from the "
                         f"table: {missing[:20]}")
    twice = sorted(i for i, n in Counter(ids).items() if n > 1)
    assert not twice, f"after {kind} (round {rnd}): ids in the table twice: {twice[:20]}"
    check = d.sql("CHECK TABLE acks")
    assert check[-1][2:] == ("status", "OK"), f"after {kind}: CHECK TABLE says {check}"


def _moved(d: SvcLab, owner: str) -> str | None:
    """The node running the service now if it is not ``owner`` (asked of a node other than it)."""
    now = d.owner(next(n for n in d.names if n != owner))
    return now if now not in (None, owner) else None


def run_scenario(d: DbLab, rounds: int, workdir: Path, faults: tuple[str, ...] = FAULTS,
                 observe: Callable[[dict, Path], None] | None = None) -> Outcome:
    """The client writing through every fault of ``faults``, ``rounds`` times, the table
    checked after each (AssertionError naming the fault on a lost or doubled write or a
    damaged table); the auditor's findings are returned for the caller to judge.
    ``observe(record, client_log)`` runs after each fault's checks, before the faulted
    node is brought back (the benchmark reads the journals there); ``record`` has the
    fault, round, from, to, outage_s and t0 (the fault's wall-clock time)."""
    n1 = d.names[0]
    d.wait("db started on node1", lambda: d.owner(d.names[1]) == n1, timeout=180)
    d.setup_schema(n1)
    auditor = Auditor(d.lab)
    auditor.start()
    log, stop = workdir / "client.log", workdir / "stop"
    script = workdir / "client.py"
    script.write_text(CLIENT)
    client = subprocess.Popen(["ip", "netns", "exec", d.lab.spec.client_netns,
                               sys.executable, str(script), d.float_ip, str(log), str(stop)],
                              env={**os.environ, "DB_PASSWORD": d.password})
    out = Outcome()
    try:
        d.wait("the client's first acknowledged write", lambda: log.exists() and acked(log),
               timeout=60)
        for rnd in range(1, rounds + 1):
            for kind in faults:
                owner = d.owner(next(n for n in d.names if d.lab.is_on(n)))
                assert owner, f"db is not started before {kind} (round {rnd})"
                before, t0 = len(acked(log)), time.time()
                _fault(d, kind, owner)
                d.wait(f"db started on another node than {owner} after {kind}",
                       functools.partial(_moved, d, owner), timeout=180)
                d.wait(f"the client acknowledged again after {kind}",
                       functools.partial(lambda t, n: outage(log, t) is not None
                                         and len(acked(log)) > n + 3, t0, before),
                       timeout=120)
                out.outages.append({"fault": kind, "round": rnd, "from": owner,
                                    "to": _moved(d, owner),
                                    "outage_s": round(outage(log, t0) or 0.0, 3), "t0": t0})
                _check_table(d, log, kind, rnd)
                if observe is not None:
                    observe(out.outages[-1], log)
                if kind != "relocate":
                    _recover_node(d, owner)
    finally:
        stop.touch()
        try:
            client.wait(timeout=10)
        except subprocess.TimeoutExpired:
            client.send_signal(signal.SIGKILL)
            client.wait()
        auditor.halt.set()
        auditor.join()
        out.acknowledged = len(acked(log)) if log.exists() else 0
        out.audit_samples, out.double_mounts = auditor.samples, auditor.double
        out.mounted_on = auditor.owners_seen
    return out


def test_acknowledged_writes_survive_every_failover(db: DbLab, tmp_path: Path):
    out = run_scenario(db, ROUNDS, tmp_path)
    assert len(out.outages) == ROUNDS * len(FAULTS)
    assert out.audit_samples > 100 and out.acknowledged > 100
    assert not out.double_mounts, ("the shared filesystem was mounted on two nodes at "
                                   f"once: {out.double_mounts[:5]}")
    assert len(out.mounted_on) >= 2   # it did move: the auditor saw it mounted on each owner


def test_a_node_where_the_database_cannot_start_is_skipped_and_nothing_mounts_twice(db: DbLab):
    """Bad input on one node: its option file names an option mysqld does not know. When
    the owner is powered off, the domain's next node mounts the disk and fails to start
    MariaDB, says why in its log, cleans up (unmounts), and the node after it takes the
    database, with every row written before. The disk is never mounted on two nodes."""
    d = db
    owner = d.wait("db started", lambda: d.owner(next(n for n in d.names if d.lab.is_on(n))),
                   timeout=180)
    broken, spare = [n for n in d.names if n != owner]   # domain order: broken first
    d.setup_schema(owner)
    d.sql("CREATE TABLE IF NOT EXISTS marks (id INT NOT NULL) ENGINE=InnoDB")
    d.sql("INSERT INTO marks (id) VALUES (1), (2), (3)")
    bad = d.my_cnf() + "no-such-option-in-mysqld = 1\n"
    d.lab.exec(broken, ["sh", "-c", f"cat > {MY_CNF}"], input=bad)
    auditor = Auditor(d.lab)
    auditor.start()
    try:
        t0 = time.time()
        d.lab.power(owner, "off")
        d.wait(f"db started on {spare}", lambda: d.owner(spare) == spare, timeout=240)
        assert sorted(r[0] for r in d.sql("SELECT id FROM marks")) == [1, 2, 3]
        log = d.lab.exec(broken, ["journalctl", "-u", UNIT, "-o", "cat", "--no-pager",
                                  "--since", f"@{int(t0)}"]).stdout
        assert "start of service:db failed at mysql:mariadb" in log, log[-3000:]
        assert "service:db: stop fs:dbfs: ok" in log
        assert d.lab.shared_disk_mounts()[broken] == []
    finally:
        auditor.halt.set()
        auditor.join()
        d.lab.exec(broken, ["sh", "-c", f"cat > {MY_CNF}"], input=d.my_cnf())
        _recover_node(d, owner)
    assert not auditor.double, f"mounted on two nodes at once: {auditor.double[:5]}"
    assert auditor.samples > 20 and broken in auditor.owners_seen   # it did mount there
