"""Alert programs run on cluster events (issue 17 item 3; ``pcs alert`` and keepalived's
notify scripts in spirit).

Configured in cluster.conf inside clusterd's own element::

    <clusterd>
      <alert name="journal" program="/usr/libexec/clusterd/alerts/alert_journal"/>
      <alert name="hook" program="/usr/libexec/clusterd/alerts/alert_webhook"
             recipient="https://alerts.example.com/hook" timeout="10"
             events="node fence service"/>
    </clusterd>

``program`` is a program parameter (``clusterd.trust``: one root-owned executable, no
shell; checked again before every run). ``events`` (default all) names the kinds it gets:
``node`` (a member joined, failed or left, seen by every node), ``quorum`` (this node's
view became quorate or inquorate, every node), ``fence`` (a fence operation finished or
failed: the node that ran it), ``service`` (a service started, stopped, failed or moved:
the node it ran or runs on). ``timeout`` (default 30 s): the program's process group is
killed after it.

The program gets the event in its environment, never on its command line (nothing a shell
could misread): ``CLUSTER_ALERT_KIND``, ``CLUSTER_ALERT_NODE`` (the node the event is
about), ``CLUSTER_ALERT_SERVICE``, ``CLUSTER_ALERT_STATE`` (``joined|failed|left``,
``quorate|inquorate``, ``fenced|failed``, ``started|stopped|failed|recovering|...``),
``CLUSTER_ALERT_DESC`` (a sentence for people), ``CLUSTER_ALERT_RECIPIENT``,
``CLUSTER_ALERT_CLUSTER``, ``CLUSTER_ALERT_LOCAL_NODE`` (the node running it),
``CLUSTER_ALERT_TIMESTAMP`` (ISO 8601, UTC), ``CLUSTER_ALERT_TIMESTAMP_EPOCH``,
``CLUSTER_ALERT_SEQUENCE`` (per node, increasing), ``CLUSTER_ALERT_NAME`` and a minimal
``PATH``.

Never in the daemon's way: ``emit`` only queues (bounded per alert: when full the event is
dropped, counted and logged); each alert has one worker that runs its events in order. A
failing, hanging or missing program is logged (exit status, timeout, or why it was not
run) and never delays anything else.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from clusterd import trust

logger = logging.getLogger(__name__)

KINDS = ("node", "quorum", "fence", "service")
DEFAULT_TIMEOUT = 30
QUEUE_LIMIT = 256
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def iso_utc_ms(at: float) -> str:
    """``at`` (seconds since the epoch) as ISO 8601 UTC with milliseconds, exactly what
    ``datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")`` gives
    (microseconds rounded half to even, then cut to milliseconds), without importing
    :mod:`datetime` into every daemon for its whole life (0.4 MB, issue 18)."""
    frac, whole = math.modf(at)
    micros = round(frac * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{micros // 1000:03d}+00:00"


@dataclass(frozen=True)
class AlertConf:
    name: str
    program: str
    recipient: str = ""
    timeout: int = DEFAULT_TIMEOUT
    events: frozenset[str] = frozenset(KINDS)


@dataclass(frozen=True)
class AlertEvent:
    kind: str
    state: str
    desc: str
    node: str = ""
    service: str = ""
    at: float = field(default_factory=time.time)


def alerts_of(root: etree._Element) -> tuple[AlertConf, ...]:
    """The ``<clusterd><alert .../></clusterd>`` entries of a validated tree."""
    out = []
    for el in root.iterfind("clusterd/alert"):
        events = frozenset((el.get("events") or " ".join(KINDS)).split())
        timeout = (el.get("timeout") or "").strip()
        out.append(AlertConf(el.get("name", ""), el.get("program", ""),
                             el.get("recipient", ""),
                             int(timeout) if timeout.isdigit() else DEFAULT_TIMEOUT, events))
    return tuple(out)


class Alerts:
    """The node's alert runner: one queue and one worker per configured alert."""

    def __init__(self, node: str, cluster: str) -> None:
        self.node = node
        self.cluster = cluster
        self.sequence = 0
        self.dropped = 0
        self.runs = 0
        self.failures = 0
        self._workers: dict[AlertConf, tuple[asyncio.Queue, asyncio.Task]] = {}

    def configure(self, alerts: Iterable[AlertConf], cluster: str) -> None:
        """Use these alerts from now on (a new cluster.conf): workers of alerts that went
        or changed are stopped after the event they run; new ones start."""
        self.cluster = cluster
        wanted = set(alerts)
        for conf in list(self._workers):
            if conf not in wanted:
                _queue, task = self._workers.pop(conf)
                task.cancel()
        loop = asyncio.get_running_loop()
        for conf in wanted - set(self._workers):
            queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
            task = loop.create_task(self._worker(conf, queue), name=f"alert {conf.name}")
            self._workers[conf] = (queue, task)

    def emit(self, event: AlertEvent) -> None:
        """Queue ``event`` for every alert that takes its kind (never blocks)."""
        self.sequence += 1
        seq = self.sequence
        for conf, (queue, _task) in self._workers.items():
            if event.kind not in conf.events:
                continue
            try:
                queue.put_nowait((seq, event))
            except asyncio.QueueFull:
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    logger.error("node %s: alert %s is %d events behind: %s %s dropped (%d "
                                 "dropped so far); is %s hanging?", self.node, conf.name,
                                 QUEUE_LIMIT, event.kind, event.state, self.dropped,
                                 conf.program)

    async def close(self) -> None:
        tasks = [t for _q, t in self._workers.values()]
        self._workers.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        return {"configured": sorted(c.name for c in self._workers), "runs": self.runs,
                "failures": self.failures, "dropped": self.dropped}

    # ------------------------------------------------------------------ running
    async def _worker(self, conf: AlertConf, queue: asyncio.Queue) -> None:
        while True:
            seq, event = await queue.get()
            try:
                await self._run(conf, seq, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("node %s: alert %s failed unexpectedly", self.node, conf.name)

    def environment(self, conf: AlertConf, seq: int, event: AlertEvent) -> dict[str, str]:
        stamp = iso_utc_ms(event.at)
        return {"PATH": PATH, "LANG": "C.UTF-8",
                "CLUSTER_ALERT_NAME": conf.name, "CLUSTER_ALERT_KIND": event.kind,
                "CLUSTER_ALERT_STATE": event.state, "CLUSTER_ALERT_DESC": event.desc,
                "CLUSTER_ALERT_NODE": event.node, "CLUSTER_ALERT_SERVICE": event.service,
                "CLUSTER_ALERT_RECIPIENT": conf.recipient,
                "CLUSTER_ALERT_CLUSTER": self.cluster, "CLUSTER_ALERT_LOCAL_NODE": self.node,
                "CLUSTER_ALERT_TIMESTAMP": stamp.replace("+00:00", "Z"),
                "CLUSTER_ALERT_TIMESTAMP_EPOCH": f"{event.at:.3f}",
                "CLUSTER_ALERT_SEQUENCE": str(seq)}

    async def _run(self, conf: AlertConf, seq: int, event: AlertEvent) -> None:
        what = f"alert {conf.name} ({event.kind} {event.state}" + \
            (f" {event.service}" if event.service else "") + \
            (f" {event.node}" if event.node else "") + ")"
        self.runs += 1
        problem = await asyncio.to_thread(trust.program_problem, conf.program)
        if problem is not None:
            self.failures += 1
            logger.error("node %s: %s not run: %s %s", self.node, what, conf.program, problem)
            return
        try:
            proc = await asyncio.create_subprocess_exec(
                conf.program, env=self.environment(conf, seq, event),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self.failures += 1
            logger.error("node %s: %s: cannot run %s: %s", self.node, what, conf.program,
                         exc.strerror or exc)
            return
        try:
            async with asyncio.timeout(conf.timeout):
                _out, err = await proc.communicate()
        except TimeoutError:
            _killpg(proc.pid)
            await proc.wait()
            self.failures += 1
            logger.error("node %s: %s: %s ran over its %ds timeout: its process group was "
                         "killed", self.node, what, conf.program, conf.timeout)
            return
        except asyncio.CancelledError:
            _killpg(proc.pid)
            raise
        if proc.returncode != 0:
            self.failures += 1
            tail = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or [""]
            logger.warning("node %s: %s: %s exited %s%s", self.node, what, conf.program,
                           proc.returncode, f": {tail[0][:300]}" if tail[0] else "")
        else:
            logger.debug("node %s: %s: delivered", self.node, what)


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- events from the node
def service_events(me: str, before: Mapping[str, Mapping[str, Any]],
                   after: Mapping[str, Mapping[str, Any]]) -> list[AlertEvent]:
    """Service alerts this node reports, from two snapshots of the status document's
    services (name -> row): a changed state or owner, reported by the node it concerns
    (the new owner, or the old one for a stop or a move away)."""
    out = []
    for name, row in after.items():
        old = before.get(name)
        if old is None:
            continue
        state, owner = row.get("state"), row.get("owner")
        old_state, old_owner = old.get("state"), old.get("owner")
        if (state, owner) == (old_state, old_owner):
            continue
        if me not in (owner, old_owner):
            continue
        if owner != me and state not in ("stopped", "disabled", "failed", "recoverable"):
            continue   # moving away: the new owner reports where it runs now
        short = name.split(":", 1)[-1]
        where = owner or old_owner or ""
        moved = f" (was on {old_owner})" if old_owner and owner and old_owner != owner else ""
        out.append(AlertEvent("service", str(state), f"service {short} {state} on "
                              f"{where}{moved}", node=where, service=short))
    return out


def fence_events(me: str, coordinator: bool, before: Mapping[str, Mapping[str, Any]],
                 after: Mapping[str, Mapping[str, Any]]) -> list[AlertEvent]:
    """Fence alerts: an operation that became done or failed, reported by the quorate
    coordinator (the node that runs fence operations). ``before``/``after``: the status
    document's fencing entries by node."""
    if not coordinator:
        return []
    out = []
    for node, op in after.items():
        old = before.get(node, {})
        state = op.get("state")
        if state == old.get("state") and op.get("op_id") == old.get("op_id"):
            continue
        if state == "done":
            how = "acknowledged by hand" if op.get("acked") else f"with method {op.get('method')}"
            out.append(AlertEvent("fence", "fenced", f"{node} fenced {how}", node=node))
        elif state == "failed":
            out.append(AlertEvent("fence", "failed", f"fencing {node} failed: "
                                  f"{op.get('last_error') or 'no reason given'}", node=node))
    return out
