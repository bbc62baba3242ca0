"""The clusterd daemon: one asyncio loop composing transport, cores, control socket.

The byte-level core (membership + configsync behind the packet guard) runs on
``clusterd.node.transport.ClusterEndpoint``, which feeds it datagrams at once and ticks
it when the core says a tick is due; the core's events land in a bounded queue here.
Shape of a node cycle (STYLE principle 1, Patroni ``run_cycle``): take the queued events,
fold them into the node state, build an immutable
:class:`~clusterd.node.cycle.NodeSnapshot`, :func:`~clusterd.node.cycle.decide` and
execute the actions. The status document is not rebuilt each cycle: it is built when
the control socket asks (:attr:`Daemon.status`). The loop wakes at fixed targets (scheduled from the
previous target, overruns logged) or early when events arrive (which leaves the schedule
as it is); once a cycle decides to exit, the loop ends at once. Failure policy sits in
:meth:`Daemon._cycle`: ``FatalError`` ends the daemon, ``CancelledError`` propagates,
anything else (including a crashed endpoint loop, which is restarted) is logged and the
next cycle runs. The decision reason is logged when it changes, not every cycle.

Startup wiring (loading, identity, incarnation, core, endpoint) is in ``wiring.py``. The
parts the daemon composes are handed what they need (values and callables), never the
daemon: the cluster keys (``keys.py``), putting a config in force and keeping the config
files (``apply.py``), proposals (``proposer.py``), the status document (``statusdoc.py``),
signals (``signals.py``), fencing and services (``fencing_glue.py``,
``services_glue.py``, through the ``NodePort`` of ``port.py``). The lines the keys,
apply, proposer, statusdoc and signals modules log keep this module's logger name.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from clusterd import events as ev
from clusterd.alerts import AlertEvent, Alerts, alerts_of, fence_events, service_events
from clusterd.conf import ClusterConf
from clusterd.control.server import ControlServer
from clusterd.errors import FatalError
from clusterd.events import Event
from clusterd.fencing.core import service_counts
from clusterd.logsetup import LogRuntime
from clusterd.membership import standing
from clusterd.node import cycle as cy
from clusterd.node import sdnotify, shutdown
from clusterd.node.apply import ConfigApply
from clusterd.node.fencing_glue import FencingGlue
from clusterd.node.keys import NodeKeys
from clusterd.node.memory import MemoryKeeper
from clusterd.node.ops import build_registry, register_key_ops
from clusterd.node.port import NodePort
from clusterd.node.proposer import Proposer
from clusterd.node.qdisk_glue import QdiskGlue
from clusterd.node.services_glue import ServicesGlue
from clusterd.node.signals import Signals
from clusterd.node.statusdoc import StatusPublisher
from clusterd.node.tasks import TrackedTasks
from clusterd.node.wiring import Options, Runtime
from clusterd.wire.auth import KeyRing

logger = logging.getLogger(__name__)

INBOX_LIMIT = 4096
LEAVE_TIMEOUT = 60.0
CYCLE_INTERVAL = 1.0           # node-level cycle when idle; events, control ops, signals
                               # and finished tasks wake it at once


class ServicesPort(Protocol):
    """What the node needs from the services layer (clusterd.resources/placement)."""

    def running(self) -> int: ...

    def operations(self) -> int: ...       # service operations in flight (start, stop ...)

    async def stop_all(self, reason: str) -> None: ...


class Daemon:
    def __init__(self, opts: Options, rt: Runtime, log: LogRuntime | None = None, *,
                 keys: KeyRing | None = None) -> None:
        self.opts = opts
        self.rt = rt
        self.log = log
        self.keys = NodeKeys(name=rt.local.name, nodeid=rt.local.nodeid,  # FatalError:
                             authkey_path=opts.authkey_path,          # refuse to start
                             set_keys=rt.core.set_keys, guard=lambda: self.rt.core.guard,
                             conf=lambda: self.rt.conf, ring=keys)
        self.name = rt.local.name
        self.phase = cy.DaemonPhase.STARTING
        self.state = cy.NodeState(incarnation=rt.incarnation)
        self.tasks = TrackedTasks(self.name, on_done=lambda: self.wake.set())
        self.events: collections.deque[Event] = collections.deque()
        self.events_dropped = 0
        self.cycle_lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.exit_code: int | None = None
        self.leave_announced = False
        self.leave_started = 0.0
        self.last_reason = ""
        self.memory = MemoryKeeper()    # the schema given back after a quiet while
        self.overruns = 0
        self.failures: dict[str, tuple[float, int]] = {}
        # Extension points for the services and fencing layers: they register their
        # control ops on ``registry`` and plug a ServicesPort / status sections in
        # before ``run()``.
        self.registry = build_registry(self)
        register_key_ops(self.registry, self.keys)
        self.sections: dict[str, Callable[[], tuple[Mapping[str, Any], ...]]] = {}
        self.port = NodePort(name=self.name, nodeid=rt.local.nodeid,
                             state_dir=opts.state_dir,
                             membership=lambda: self.rt.core.membership,
                             conf=lambda: self.rt.conf, send_app=self._send_app,
                             phase=lambda: self.phase.value, clock=self._clock,
                             registry=self.registry, sections=self.sections)
        self.fencing = FencingGlue(self.port)
        self.services_glue = ServicesGlue(self.port, self.fencing, wake_loop=self.wake.set)
        self.services: ServicesPort = self.services_glue
        self.alerts = Alerts(self.name, rt.conf.name)
        self._alert_rows: dict[str, Any] | None = None     # last services/fencing seen
        self._alert_fences: dict[str, Any] | None = None
        self.qdisk = QdiskGlue(self.port, incarnation=rt.incarnation,
                               keys=lambda: (self.keys.ring.active.secret,
                                             tuple(k.secret for k in self.keys.ring.accepted)),
                               set_grant=self._set_qdisk)
        self.apply = ConfigApply(name=self.name, config_path=opts.config_path,
                                 state_dir=opts.state_dir, apply_conf=rt.apply_conf,
                                 on_conf=(self.fencing.on_conf, self.services_glue.on_conf,
                                          self.qdisk.on_conf, self._alerts_conf),
                                 fence_runner=lambda: self.fencing.fencer.runner)
        self.status_doc = StatusPublisher(
            name=self.name, rt=rt, phase=lambda: self.phase.value,
            key_id=lambda: self.keys.active_id, events_dropped=lambda: self.events_dropped,
            log_lost=lambda: self.log.lost if self.log else 0,
            standby=lambda: self.services_glue.admin.standby, sections=self.sections,
            locked=lambda: self.services_glue.admin.locked)
        self.proposer = Proposer(
            name=self.name, config_path=opts.config_path, conf=lambda: self.rt.conf,
            phase=lambda: self.phase, fence_runner=lambda: self.fencing.fencer.runner,
            propose_config=lambda data, conf: self.rt.endpoint.propose_config(
                data, validated=conf),
            run_cycle=self._cycle, publish=self.status_doc.publish,
            view=lambda: self.rt.core.membership.view, status=lambda: self.status)
        self.signals = Signals(name=self.name, request_leave=self.request_leave,
                               reload_keys=self.keys.reload_keys,
                               reload_conf=self.proposer.reload,
                               try_start=self.tasks.try_start)
        self.server = ControlServer(self.registry, opts.control_socket,
                                    policy=opts.policy, node=self.name,
                                    is_ready=lambda: self.phase is not cy.DaemonPhase.STARTING,
                                    admin_group=lambda: self.rt.conf.admin_group)

    def _clock(self) -> float:
        endpoint = self.rt.endpoint
        return endpoint.clock() if endpoint is not None else time.monotonic()

    def _send_app(self, dest: int | None, channel: str, payload: Mapping[str, Any]) -> None:
        """Seal an application message with the core and send it now (before the endpoint
        runs there is nobody to send to). A payload over the wire limit raises ValueError."""
        endpoint = self.rt.endpoint
        if endpoint is None:
            return
        endpoint.send(self.rt.core.send_app(dest, channel, dict(payload), endpoint.clock()))

    def _set_qdisk(self, grant: Any) -> None:
        """The quorum disk's grant as just read: to the membership core, and a cycle."""
        endpoint = self.rt.endpoint
        if endpoint is not None:
            endpoint.set_qdisk(grant)
            self.wake.set()

    # ------------------------------------------------------------------ alerts
    def _alerts_conf(self, conf: ClusterConf) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return                      # before the loop: run() configures them
        self.alerts.configure(alerts_of(conf.section("clusterd")), conf.name)

    def _alert(self, events: list[Event]) -> None:
        """Queue the alerts of this cycle (``clusterd.alerts``): membership and quorum
        events as this node saw them, and what changed in the services and fencing
        sections (reported by the node they concern)."""
        if not self.alerts.status()["configured"]:
            self._alert_rows = self._alert_fences = None
            return
        names = {n.nodeid: n.name for n in self.rt.conf.nodes}
        for e in events:
            if isinstance(e, ev.NodeJoined):
                name = names.get(e.nodeid, str(e.nodeid))
                self.alerts.emit(AlertEvent("node", "joined", f"{name} joined the cluster",
                                            node=name))
            elif isinstance(e, ev.NodeFailed | ev.NodeLeft):
                name = names.get(e.nodeid, str(e.nodeid))
                state = "left" if isinstance(e, ev.NodeLeft) else "failed"
                self.alerts.emit(AlertEvent("node", state, f"{name} {state}: {e.reason}",
                                            node=name))
            elif isinstance(e, ev.QuorumChanged):
                state = "quorate" if e.quorate else "inquorate"
                self.alerts.emit(AlertEvent("quorum", state, f"{self.name} is {state}: "
                                            f"{e.reason}", node=self.name))
        rows = {r["name"]: r for r in self.services_glue.status_section()}
        if self._alert_rows is not None:
            for a in service_events(self.name, self._alert_rows, rows):
                self.alerts.emit(a)
        self._alert_rows = rows
        fences = {f["node"]: f for f in self.fencing.fencer.status_section()}
        m = self.rt.core.membership
        coordinator = (m.view is not None and m.view.coordinator == self.rt.local.nodeid
                       and m.quorum.quorate)
        if self._alert_fences is not None:
            for a in fence_events(self.name, coordinator, self._alert_fences, fences):
                self.alerts.emit(a)
        self._alert_fences = fences

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.status_doc.publish(loop.time())
        await self.apply.started(self.rt.conf)
        await self.server.start()
        try:
            await self.rt.start(self.on_events)
            await self.services_glue.start()
            await self.qdisk.start()
            self._alerts_conf(self.rt.conf)
            self.signals.install(loop)
            await self._loop()
        finally:
            self.signals.remove(loop)
            sdnotify.notify("STOPPING=1")
            await shutdown.close_all(self.name, (
                ("tracked tasks", self.tasks.cancel_all), ("quorum disk", self.qdisk.close),
                ("alerts", self.alerts.close),
                ("fence metadata read-ahead", self.apply.stop_read_ahead),
                ("services", self.services_glue.close),
                ("fencing", self.fencing.close), ("control socket", self.server.close),
                ("cluster transport", self.rt.close)))
        logger.info("node %s: clusterd exits with status %d", self.name, self.exit_code or 0)
        return self.exit_code or 0

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = CYCLE_INTERVAL
        # targets on the clock's multiples of the interval, as the services cycle's TICK
        # (services_glue.py): an idle node wakes at one schedule, not at two drifting apart
        target = math.floor(loop.time() / interval) * interval
        node_due = True
        while True:
            # cleared before the cycles, not after: a wake while they run (a task done, an
            # op) is seen by the next wait, which then returns at once
            self.wake.clear()
            if node_due:
                await self._cycle(loop.time())
            # the services cycle when due (its own TICK, or woken), apart from the node
            # cycle: a node cycle that keeps failing must not keep it due (a busy loop)
            self.services_glue.cycle(self._clock())
            if self.exit_code is not None:
                return                  # at once: an exit waits for no schedule
            if self.phase is cy.DaemonPhase.STARTING:
                self.phase = cy.DaemonPhase.RUNNING
                self.status_doc.publish(loop.time())
                sdnotify.notify("READY=1")
                logger.info("node %s: clusterd ready (incarnation %d, control socket %s)",
                            self.name, self.state.incarnation, self.server.path)
            now = loop.time()
            if now >= target:   # the scheduled cycle: an early wake (events, ops) keeps the
                target += interval  # schedule, else it drifted ahead without bound
                if now > target + interval:
                    self.overruns += 1
                    logger.warning("node %s: cycle overran its schedule by %.3fs, "
                                   "rescheduling immediately", self.name, now - target)
                    target = math.floor(now / interval) * interval
            node_due = True
            if self.events:
                continue
            # the services cycle's own schedule (TICK) shares this one loop; a pass for it
            # alone (nothing woke the loop, the node's target not reached) runs no node
            # cycle: the node's runs at its targets and whenever woken, as before
            due = min(target, self.services_glue.next_due())
            try:
                async with asyncio.timeout_at(due):
                    await self.wake.wait()
            except TimeoutError:
                node_due = due >= target or self.wake.is_set()

    def on_events(self, events: tuple[Event, ...]) -> None:
        """Endpoint callback: queue the core's events (bounded) and wake the cycle. Services
        reports alone, with nothing queued before them, go to the services layer at once,
        as the cycle would hand them over (``ServicesGlue.on_events``): it wakes the loop
        when one is news, and the unchanged copy each member sends every 2 s then costs no
        node cycle (nothing in the node cycle reads reports)."""
        if not self.events and all(self.services_glue.is_report(e) for e in events):
            self.services_glue.on_events(events)
            return
        for event in events:
            if len(self.events) >= INBOX_LIMIT:
                self.events_dropped += 1
                if self.events_dropped in (1, 10, 100) or self.events_dropped % 1000 == 0:
                    logger.error("node %s: event queue full, %d events dropped so far",
                                 self.name, self.events_dropped)
                continue
            self.events.append(event)
        self._sync_view()                    # log lines carry the new view at once
        self.wake.set()

    # ------------------------------------------------------------------ the cycle
    async def _cycle(self, now: float) -> None:
        async with self.cycle_lock:          # the loop and control ops (propose) share it
            await self._cycle_locked(now)

    async def _cycle_locked(self, now: float) -> None:
        try:
            crashed = self.rt.supervise()
            if crashed is not None:
                self._cycle_failed(crashed, now, "the cluster endpoint loop crashed and was "
                                                 "restarted")
            events = list(self.events)
            self.events.clear()
            names = {n.nodeid: n.name for n in self.rt.conf.nodes}
            self.state, actions = cy.fold_events(self.state, events, names=names,
                                                 left=self.leave_announced, now=now)
            self.fencing.on_events(events, service_counts(self.services_glue.rows))
            self.services_glue.on_events(events)
            self._sync_view()
            if any(isinstance(e, ev.ViewInstalled) for e in events):
                self.qdisk.poke()
            self._alert(events)
            snap = cy.NodeSnapshot(now=now, phase=self.phase, state=self.state,
                                   services_running=self.services.running(),
                                   services_busy=self.services.operations(),
                                   in_flight=tuple(f"{i.what} {i.subject}"
                                                   for i in self.tasks.in_flight()),
                                   leave_announced=self.leave_announced,
                                   quorum=standing.of_core(self.rt.core.membership, now))
            decision = cy.decide(snap)
            if decision.reason != self.last_reason:   # transient ones at debug (cycle.py)
                logger.log(logging.INFO if decision.settled else logging.DEBUG,
                           "node %s: %s", self.name, decision.reason)
                self.last_reason = decision.reason
            await self._execute([*actions, *decision.actions], now)
            self.memory.tick()
            if (self.phase in (cy.DaemonPhase.LEAVING, cy.DaemonPhase.RESTARTING)
                    and self.exit_code is None and now - self.leave_started > LEAVE_TIMEOUT):
                logger.error("node %s: leave did not finish within %gs; exiting", self.name,
                             LEAVE_TIMEOUT)
                self.exit_code = 1
        except asyncio.CancelledError:
            raise
        except FatalError:
            raise
        except Exception as exc:  # noqa: BLE001 - STYLE 7: log it, the next cycle runs
            self._cycle_failed(exc, now)

    def _cycle_failed(self, exc: BaseException, now: float,
                      what: str = "cycle failed") -> None:
        """Traceback once per distinct failure, then at most once a minute with a count:
        a bug that fails every cycle must not flood the journal."""
        key = f"{type(exc).__name__}: {exc}"
        last, count = self.failures.get(key, (float("-inf"), 0))
        if now - last >= 60.0:
            logger.error("node %s: %s (%d similar failures not logged); the next cycle runs",
                         self.name, what, count, exc_info=exc)
            self.failures[key] = (now, 0)
        else:
            self.failures[key] = (last, count + 1)

    def _sync_view(self) -> None:
        view = self.rt.core.membership.view
        epoch = view.epoch if view is not None else 0
        if self.log is not None:
            self.log.context.view = str(epoch) if epoch else "-"

    async def _execute(self, actions: list[cy.NodeAction], now: float) -> None:
        for action in actions:
            if isinstance(action, cy.Report):
                getattr(logger, action.level)("node %s: %s", self.name, action.message)
            elif isinstance(action, cy.StopServices):
                if self.phase is cy.DaemonPhase.RESTARTING:   # the next daemon re-adopts them
                    logger.info("node %s: restarting: not stopping services (%s)", self.name,
                                action.reason)
                    continue
                if not self.services.running():
                    logger.info("node %s: no services to stop (%s)", self.name, action.reason)
                    continue
                logger.warning("node %s: stopping services: %s", self.name, action.reason)
                why = self.tasks.try_start("services", "stop services",
                                           lambda r=action.reason: self.services.stop_all(r),
                                           timeout=LEAVE_TIMEOUT)
                if why:
                    logger.info("node %s: %s", self.name, why)
            elif isinstance(action, cy.PersistIncarnation):
                await asyncio.to_thread(self.rt.save_incarnation, action.incarnation)
            elif isinstance(action, cy.PersistPeers):
                await asyncio.to_thread(self.rt.save_peers, dict(action.peers))
            elif isinstance(action, cy.ApplyConfig):
                await self.apply.write_and_apply(action.data, action.reason, action.accepted)
            elif isinstance(action, cy.KeepAccepted):
                await self.apply.keep_accepted(action.data, action.version, action.reason)
            elif isinstance(action, cy.KeepPending):
                await self.apply.keep_pending(action.data, action.version, action.message)
            elif isinstance(action, cy.AnnounceLeave):
                await self.rt.endpoint.leave(action.reason, action.hold)
                self.leave_announced = True
                logger.info("node %s: announced %s", self.name, "a restart keeping its "
                            "services running" if action.hold else "clean leave")
            elif isinstance(action, cy.Exit):
                self.exit_code = action.code
                self.wake.set()         # a cycle run outside the loop (a control op)

    # ------------------------------------------------------------------ control API
    @property
    def status(self) -> dict[str, Any]:
        """The status document, built when asked (an idle node spends no status build on
        cycles nobody reads). Always fresh: the services and fencing layers change their
        sections between cycles, and a reader must see what they did."""
        self.status_doc.publish(time.monotonic())  # the loop's clock (asyncio's default)
        return self.status_doc.document

    def status_document(self) -> dict[str, Any]:
        return self.status

    def running_conf(self) -> ClusterConf:
        return self.rt.conf

    async def propose(self, data: bytes, origin: str) -> dict[str, Any]:
        return await self.proposer.propose(data, origin)   # one at a time (proposer.py)

    async def reload(self) -> dict[str, Any]:
        return await self.proposer.reload()

    def set_expected(self, expected: int, origin: str) -> dict[str, Any]:
        """``cman_tool expected -e N`` (``membership/override.py``): ValueError when
        refused. The reply says what is in force now and which members were sent it."""
        endpoint, m = self.rt.endpoint, self.rt.core.membership
        if endpoint is None:
            raise ValueError("clusterd is starting: not in a view yet")
        before = m.quorum.expected_votes
        endpoint.set_expected(expected, f"{origin} on {self.name}")
        self.wake.set()                      # the cycle acts on the new quorum at once
        names = {n.nodeid: n.name for n in self.rt.conf.nodes}
        view = m.view.nodeids if m.view is not None else frozenset()
        return {"expected_votes": expected, "previous": before,
                "configured": m.configured.expected, "quorum": m.quorum.quorum,
                "quorate": m.is_quorate(endpoint.clock()),
                "members": [names.get(n, str(n)) for n in sorted(view)],
                "sent_to": [names.get(n, str(n)) for n in sorted(m.expected.pending)]}

    # ------------------------------------------------------------------ leave
    def request_leave(self, reason: str, mode: shutdown.Mode = shutdown.Mode.LEAVE
                      ) -> shutdown.Mode:
        """Leave (stop the services) or restart (keep them running): the first request
        decides; returns the mode in force."""
        if self.phase not in (cy.DaemonPhase.LEAVING, cy.DaemonPhase.RESTARTING):
            mode = shutdown.feasible(mode, self.rt.core, self.rt.conf, self.name)
            self.phase = (cy.DaemonPhase.RESTARTING if mode is shutdown.Mode.RESTART
                          else cy.DaemonPhase.LEAVING)
            logger.info("node %s: %s: %s", self.name, "restarting, services keep running"
                        if mode is shutdown.Mode.RESTART else "leaving the cluster", reason)
            self.leave_started = asyncio.get_running_loop().time()
            self.wake.set()
        return (shutdown.Mode.RESTART if self.phase is cy.DaemonPhase.RESTARTING
                else shutdown.Mode.LEAVE)
