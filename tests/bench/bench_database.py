"""Database failover figures on a private lab: MariaDB on the lab's shared disk as an
unchanged RHCS service (``fs`` + ``ip`` + ``mysql``), a client inserting rows through the
floating address, each committed and acknowledged before the next (about 100 a second),
and the faults of tests/lab_tests/test_database_lab.py (the same scenario, through its
``run_scenario``): the owner powered off, its link gone, its clusterd paused past the
token, partitioned from its peers, and ``clusvcadm -r``, ROUNDS times each.

Per fault: the outage the client saw (its longest wait for an acknowledgement around the
fault; resolution about 10 ms), median with min/max, and where the time went, from the
daemons' journals (read after each fault, before the faulted node comes back): detection
(fault -> a survivor logs the owner failed), fencing (-> fence confirmed), the old
owner's stop (relocation), the mount on the new owner, and the database answering (->
the client's next acknowledged write: MariaDB's start, its crash recovery included). The
run with
the median outage of each fault is drawn as a timeline (docs/bench/database-<fault>.png).
For the whole run: writes acknowledged, acknowledged writes missing afterwards (the
scenario fails on any), and samples of the mount auditor with the shared filesystem
mounted on two nodes at once. The lab (prefix ``rhcd``, 198.18.7.0/24) is brought up for
the run and removed afterwards.
"""

from __future__ import annotations

import math
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_failover import DOCS, Run, _first, _journal, plot
from clusterlab import Lab
from clusterlab.spec import LabSpec
from clusterlab.teardown import teardown

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab_tests"))
from test_database_lab import FAULTS, DbLab, run_scenario  # the lab test's scenario

PREFIX, SUBNET, NODES = "rhcd", "198.18.7.0/24", 3
ROUNDS = 5
WHAT = {"power_off": "owner powered off (BMC)",
        "link_down": "owner's link gone, BMC answering",
        "clusterd_paused": "owner's clusterd paused (SIGSTOP)",
        "partition": "owner partitioned from its peers",
        "relocate": "`clusvcadm -r` to another member"}
_OP = re.compile(r"node (\S+): service:db: (start|stop) (\S+): (\S+) in ([0-9.]+)s")
_FENCED = "fencing: {} fenced ("
NAN = float("nan")


def _op(lines: list[tuple[float, str]], node: str, action: str,
        resource: str) -> tuple[float, float]:
    """(when it ended, how long it took) of the first such operation, or NaNs."""
    for t, text in lines:
        m = _OP.search(text)
        if m and m.group(1) == node and m.group(2) == action and \
                m.group(3).startswith(resource) and m.group(4) == "ok":
            return t, float(m.group(5))
    return NAN, NAN


class Recorder:
    """Reads the journals after each fault and keeps the timeline and the split."""

    def __init__(self, d: DbLab) -> None:
        self.d = d
        self.runs: dict[str, list[Run]] = {k: [] for k in FAULTS}
        self.split: dict[str, dict[str, list[float]]] = {k: {} for k in FAULTS}

    def __call__(self, rec: dict, log: Path) -> None:
        t0, owner, new = rec["t0"], rec["from"], rec["to"]
        survivors = [n for n in self.d.names if n != owner and self.d.lab.is_on(n)]
        lines = _journal(self.d, survivors, t0 - 1)
        if rec["fault"] == "relocate":   # the old owner is up: its stop is in its journal
            lines = sorted(lines + _journal(self.d, [owner], t0 - 1))
        mounted, mount_s = _op(lines, new, "start", "fs:")
        started, _agent_s = _op(lines, new, "start", "mysql:")
        acks = [float(line.split()[0]) for line in log.read_text().splitlines()
                if line.split()[1:2] == ["ok"]]
        first = next((t for t in acks if t > mounted), NAN)
        # heartbeat:mysql's start returns seconds after the server answers (it polls):
        # what the client waits for is the first commit after the mount
        parts = {"mount": mount_s, "database answering": first - mounted,
                 "agent's start returned": started - mounted}
        if rec["fault"] == "relocate":
            stopped, _ = _op(lines, owner, "stop", "fs:")
            parts = {"stop on the old owner": stopped - t0, **parts}
        else:
            detect = _first(lines, "clusterd.node.daemon", f": {owner} failed")
            fenced = _first(lines, _FENCED.format(owner))
            parts = {"detection": detect - t0, "fencing": fenced - detect, **parts}
        for name, value in parts.items():
            self.split[rec["fault"]].setdefault(name, []).append(value)
        samples = []
        for line in log.read_text().splitlines():
            t, kind = float(line.split()[0]), line.split()[1]
            if t0 - 1 <= t <= (t0 + 10 if math.isnan(started) else started) + 1:
                samples.append((t, "-" if kind != "ok" else owner if t < mounted else new))
        self.runs[rec["fault"]].append(Run(rec["outage_s"], t0, samples, lines,
                                           WHAT[rec["fault"]]))
        print(f"{rec['fault']} {rec['round']}: {owner} -> {new}, outage {rec['outage_s']:.3f} s,"
              + "".join(f" {k} {v:.3f}" for k, v in parts.items()), flush=True)


def _stats(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> str:
    teardown(LabSpec.create(PREFIX, NODES, SUBNET))   # leftovers of an interrupted run
    lab = Lab.up(nodes=NODES, prefix=PREFIX, subnet=SUBNET)
    started = time.monotonic()
    try:
        d = DbLab(lab)
        d.install()
        for name in d.names:
            d.start(name)
        rec = Recorder(d)
        with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
            out = run_scenario(d, ROUNDS, Path(tmp), observe=rec)
    finally:
        lab.down()
    minutes = (time.monotonic() - started) / 60
    rows, splits, pictures = [], [], []
    for kind in FAULTS:
        vals = [o["outage_s"] for o in out.outages if o["fault"] == kind]
        med = statistics.median(vals)
        print(f"{kind}: outage median {med:.2f} s (min {min(vals):.2f}, max {max(vals):.2f})"
              f" over {len(vals)} runs", flush=True)
        rows.append(f"| {WHAT[kind]} | {len(vals)} | {med:.2f} s | {min(vals):.2f} s | "
                    f"{max(vals):.2f} s |")
        splits.append(f"| {WHAT[kind]} | " + "; ".join(
            f"{name} {_stats(v)}" for name, v in rec.split[kind].items()) + " |")
        runs = sorted(rec.runs[kind], key=lambda r: r.outage)
        median_run = runs[len(runs) // 2]
        path = DOCS / f"database-{kind.replace('_', '-')}.png"
        plot(median_run, list(d.names), f"db: {WHAT[kind]} (median of {len(runs)} runs)",
             path, op=_OP, answered="client's write acknowledged (by node)")
        pictures.append(f"![{WHAT[kind]}](bench/{path.name})")
    print(f"acknowledged {out.acknowledged}, double mounts {len(out.double_mounts)} in "
          f"{out.audit_samples} audit samples", flush=True)
    return "\n".join([
        "## Database failover: acknowledged writes (bench_database.py)",
        "",
        ("MariaDB 10.11 on the lab's shared disk, run by an unchanged RHCS service "
         "(`<fs>` ext4 + `<ip>` + `<mysql config_file=...>`, translated onto "
         "ocf:heartbeat:mysql), fencing with fence_ipmilan. A client in the client "
         "namespace inserts one row at a time through the floating address, each "
         "committed and acknowledged before the next. Outage: the client's longest wait "
         "for an acknowledgement around the fault (resolution about 10 ms). "
         f"{ROUNDS} runs of each fault, in turn, always on the current owner."),
        "",
        "| fault | runs | outage median | min | max |",
        "|---|---|---|---|---|",
        *rows,
        "",
        ("Where the time goes, seconds, median (min-max), from the daemons' journals and "
         "the client: detection = fault to a survivor logging the owner failed; fencing = "
         "to the fence confirmed; stop = `clusvcadm -r` to the old owner's unmount; mount "
         "= the new owner's `fs` start; database answering = mounted to the client's next "
         "acknowledged write (the address, mysqld's start with InnoDB recovery, the "
         "client's reconnect); the agent's start returned = mounted to heartbeat:mysql's "
         "start returning, which polls and ends seconds after the server answers (so the "
         "parts overlap and do not add up to the outage)."),
        "",
        "| fault | split |",
        "|---|---|",
        *splits,
        "",
        (f"Writes acknowledged: {out.acknowledged}; acknowledged writes missing after a "
         "fault: 0 (checked after every fault; the run fails on any, and on a write seen "
         "twice or a table that CHECK TABLE finds damaged). Mount auditor: "
         f"{out.audit_samples} samples of every node's mount table, "
         f"{len(out.double_mounts)} with the shared filesystem mounted on two nodes. "
         f"Whole run {minutes:.1f} min including the lab's bring-up."),
        "",
        ("A paused clusterd and a partition leave the old owner serving (its writes are on "
         "the shared disk) until it is fenced, so the client's gap is only fence to "
         "restart; a power-off or a dead link costs the detection as well. "
         "`clusvcadm -r` stops MariaDB cleanly (InnoDB shutdown) before the other node "
         "starts it. The timelines show the run with the median outage."),
        "",
        *pictures,
    ]) + "\n"


if __name__ == "__main__":
    print(main())
