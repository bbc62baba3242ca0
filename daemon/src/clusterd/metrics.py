"""The status document as Prometheus metrics (text exposition format 0.0.4). Pure.

``clustat --format prometheus`` prints them; ``clustat --textfile PATH`` writes them
atomically for node_exporter's textfile collector (a temporary file in PATH's directory,
then a rename, so the collector never reads half a file). Everything comes from one
status document (what ``clustat --format json`` prints) plus, when given, the daemon's
process figures read from /proc (:func:`process_figures`), so the numbers agree with
clustat's.

Metric names follow Prometheus' conventions (``_total`` counters, ``_seconds``,
``_bytes``); one-hot state gauges carry the state as a label. Label values are escaped
(backslash, double quote, newline).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

SERVICE_STATES = ("started", "starting", "stopping", "stopped", "disabled", "failed",
                  "recovering", "recoverable", "uninitialized")
FENCE_STATES = ("pending", "running", "failed", "done")


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(labels: Mapping[str, Any]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, Any], float]]) -> None:
        samples = list(samples)
        if not samples:
            return
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            number = int(value) if float(value).is_integer() else value
            self.lines.append(f"{name}{_labels(labels)} {number}")

    def one(self, name: str, kind: str, help_text: str, value: float,
            labels: Mapping[str, Any] | None = None) -> None:
        self.metric(name, kind, help_text, [(labels or {}, value)])


def process_figures(pid: int) -> dict[str, float]:
    """RSS (bytes), CPU time (seconds) and start time (seconds since boot) of ``pid`` from
    /proc; {} when it cannot be read (another mount namespace, the process gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime = int(fields[11]), int(fields[12])
    return {"rss_bytes": pages * os.sysconf("SC_PAGE_SIZE"),
            "cpu_seconds": (utime + stime) / ticks}


def render(doc: Mapping[str, Any], process: Mapping[str, float] | None = None) -> str:
    out = _Out()
    cluster = doc.get("cluster", {})
    local = doc.get("local", {})
    quorum = doc.get("quorum", {})
    view = doc.get("view") or {}
    out.one("clusterd_info", "gauge", "clusterd on this node (the labels say which).", 1,
            {"cluster": cluster.get("name", ""), "node": local.get("name", ""),
             "version": local.get("version", ""), "incarnation": local.get("incarnation", 0)})
    out.one("clusterd_quorate", "gauge", "1 if this node is in a quorate view.",
            1 if quorum.get("quorate") else 0)
    out.one("clusterd_votes", "gauge", "Votes backing this node's view (with the quorum "
            "disk's while they count).", quorum.get("votes", 0))
    out.one("clusterd_expected_votes", "gauge", "Expected votes in force.",
            quorum.get("expected_votes", 0))
    out.one("clusterd_quorum_votes", "gauge", "Votes needed for quorum.", quorum.get("quorum", 0))
    out.one("clusterd_view_epoch", "gauge", "Epoch of the installed view.", view.get("epoch", 0))
    out.one("clusterd_view_members", "gauge", "Members of the installed view.",
            len(view.get("members", ())))
    nodes = doc.get("nodes", ())
    out.metric("clusterd_node_online", "gauge", "1 if the node is a member of this node's view.",
               (({"node": n["name"]}, 1 if n.get("state") == "online" else 0) for n in nodes))
    out.metric("clusterd_node_votes", "gauge", "The node's configured votes.",
               (({"node": n["name"]}, n.get("votes", 1)) for n in nodes))
    out.metric("clusterd_node_standby", "gauge", "1 if the node is in standby.",
               (({"node": n["name"]}, 1 if n.get("standby") else 0) for n in nodes))
    qdisk = doc.get("qdisk")
    if qdisk:
        out.one("clusterd_qdisk_votes_counted", "gauge", "1 while the quorum disk's votes "
                "count on this node.", 1 if qdisk.get("granted") else 0)
        out.one("clusterd_qdisk_score", "gauge", "This node's heuristic score.",
                qdisk.get("score", 0))
        out.one("clusterd_qdisk_master_info", "gauge", "The quorum disk's master as this "
                "node reads it.", 1, {"master": qdisk.get("master") or ""})
    services = doc.get("services", ())
    out.metric("clusterd_service_state", "gauge", "1 for the service's current state.",
               (({"service": s["name"], "state": st}, 1 if s.get("state") == st else 0)
                for s in services for st in SERVICE_STATES))
    out.metric("clusterd_service_owner_info", "gauge", "The node the service runs on ('' "
               "for none).", (({"service": s["name"], "owner": s.get("owner") or ""}, 1)
                              for s in services))
    out.metric("clusterd_service_restarts", "gauge", "Restarts counted against the "
               "service's max_restarts.", (({"service": s["name"]}, s.get("restarts", 0))
                                            for s in services))
    out.one("clusterd_services_locked", "gauge", "1 while clusvcadm -l is in force.",
            1 if doc.get("services_locked") else 0)
    fencing = doc.get("fencing", ())
    out.metric("clusterd_fence_operation_state", "gauge", "1 for the state of the last "
               "fence operation on the node.", (({"node": f["node"], "state": st},
                                                  1 if f.get("state") == st else 0)
                                                 for f in fencing for st in FENCE_STATES))
    out.metric("clusterd_fence_attempts", "gauge", "Agent runs of the node's last fence "
               "operation.", (({"node": f["node"]}, f.get("attempts", 0)) for f in fencing))
    wire = doc.get("wire", {})
    out.metric("clusterd_heartbeat_lease_rtt_seconds", "gauge", "From one of this node's "
               "heartbeats to the peer's lease ack of it.",
               (({"peer": p}, v) for p, v in sorted(wire.get("lease_rtt", {}).items())))
    out.one("clusterd_packets_accepted_total", "counter", "Authenticated packets accepted.",
            wire.get("accepted", 0))
    out.metric("clusterd_packets_dropped_total", "counter", "Packets dropped, by reason.",
               (({"reason": r}, n) for r, n in sorted(wire.get("drops", {}).items())))
    out.one("clusterd_inbox_overflow_total", "counter", "Datagrams the kernel dropped "
            "before clusterd read them.", wire.get("inbox_overflow", 0))
    out.one("clusterd_config_version", "gauge", "config_version of the running cluster.conf.",
            cluster.get("config_version", 0))
    out.one("clusterd_config_info", "gauge", "The running cluster.conf's hash.", 1,
            {"sha256": cluster.get("config_sha256", "")})
    if process:
        if "rss_bytes" in process:
            out.one("clusterd_process_resident_memory_bytes", "gauge", "clusterd's RSS.",
                    process["rss_bytes"])
        if "cpu_seconds" in process:
            out.one("clusterd_process_cpu_seconds_total", "counter", "clusterd's CPU time.",
                    round(process["cpu_seconds"], 3))
    return "\n".join(out.lines) + "\n"


def write_textfile(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file beside it, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
