"""The clusterd daemon: one asyncio loop composing transport, cores, control socket.

The byte-level core (membership + configsync behind the packet guard) runs on
``clusterd.node.transport.ClusterEndpoint``, which feeds it datagrams at once and ticks
it when the core says a tick is due; the core's events land in a bounded queue here. Shape of a node cycle
(STYLE principle 1, Patroni ``run_cycle``): take the queued events, fold them into the
node state, build an immutable :class:`~clusterd.node.cycle.NodeSnapshot`,
:func:`~clusterd.node.cycle.decide`, execute the actions, and mark the status document
stale in a ``finally`` (it is rebuilt when the control socket asks for it). The loop wakes at fixed targets (scheduled from the previous
target, overruns logged) or early when events arrive (which leaves the schedule as it
is); once a cycle decides to exit, the loop ends at once. Failure policy sits in
:meth:`Daemon._cycle`: ``FatalError`` ends the daemon, ``CancelledError`` propagates,
anything else (including a crashed endpoint loop, which is restarted) is logged and the
next cycle runs. The decision reason is logged when it changes, not every cycle.

Startup wiring (loading, identity, incarnation, core, endpoint) is in ``wiring.py``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from clusterd.conf import ClusterConf, parse
from clusterd.conf.files import read_limited, write_atomic
from clusterd.conf.support import log_unused
from clusterd.configsync.startup import pending_path
from clusterd.control import protocol as p
from clusterd.control.server import ControlServer
from clusterd.errors import ConfigError, ControlError, FatalError
from clusterd.events import Event
from clusterd.fencing.catalog import prefetch
from clusterd.logsetup import LogRuntime
from clusterd.membership import standing
from clusterd.node import cycle as cy
from clusterd.node import sdnotify, shutdown
from clusterd.node.fencing_glue import FencingGlue, service_counts
from clusterd.node.ops import build_registry, register_key_ops
from clusterd.node.port import NodePort
from clusterd.node.proposal import (
    check_proposal,
    refuse_shared_addresses,
    refuse_unknown_fence_params,
    refuse_untrusted_programs,
)
from clusterd.node.services_glue import ServicesGlue
from clusterd.node.status import Conflict, StatusInput, build_status
from clusterd.node.tasks import TrackedTasks
from clusterd.node.wiring import Options, Runtime, save_accepted
from clusterd.wire.auth import KeyRing, activate_next, key_id, load_keyring

logger = logging.getLogger(__name__)

INBOX_LIMIT = 4096
LEAVE_TIMEOUT = 60.0
CYCLE_INTERVAL = 1.0           # node-level cycle when idle; events, control ops, signals
                               # and finished tasks wake it at once
_CORE_CODES = {"version": p.E_STALE_VERSION, "quorum": p.E_NO_QUORUM}


def _secrets(ring: KeyRing) -> tuple[bytes, tuple[bytes, ...]]:
    return ring.active.secret, tuple(k.secret for k in ring.accepted)


class ServicesPort(Protocol):
    """What the node needs from the services layer (clusterd.resources/placement)."""

    def running(self) -> int: ...

    def operations(self) -> int: ...       # service operations in flight (start, stop ...)

    async def stop_all(self, reason: str) -> None: ...


class NoServices:
    """Until the services layer is wired in, this node runs no services."""

    def running(self) -> int:
        return 0

    def operations(self) -> int:
        return 0

    async def stop_all(self, reason: str) -> None:
        return None


class Daemon:
    def __init__(self, opts: Options, rt: Runtime, log: LogRuntime | None = None, *,
                 keys: KeyRing | None = None) -> None:
        self.opts = opts
        self.rt = rt
        self.log = log
        self.keys = keys or load_keyring(opts.authkey_path)  # FatalError: refuse to start
        rt.core.set_keys(*_secrets(self.keys))
        self.name = rt.local.name
        self.phase = cy.DaemonPhase.STARTING
        self.state = cy.NodeState(incarnation=rt.incarnation)
        self.tasks = TrackedTasks(self.name, on_done=lambda: self.wake.set())
        self.events: collections.deque[Event] = collections.deque()
        self.events_dropped = 0
        self.cycle_lock = asyncio.Lock()
        self.propose_lock = asyncio.Lock()   # proposals one at a time (see propose)
        self.wake = asyncio.Event()
        self.exit_code: int | None = None
        self.leave_announced = False
        self.leave_started = 0.0
        self.last_reason = ""
        self.overruns = 0
        self.failures: dict[str, tuple[float, int]] = {}
        self._status: dict[str, Any] = {}
        # Extension points for the services and fencing layers: they register their
        # control ops on ``registry`` and plug a ServicesPort / status sections in
        # before ``run()``.
        self.registry = build_registry(self)
        register_key_ops(self.registry, self)
        self.services: ServicesPort = NoServices()
        self.sections: dict[str, Callable[[], tuple[Mapping[str, Any], ...]]] = {}
        self.port = NodePort(name=self.name, nodeid=rt.local.nodeid,
                             state_dir=opts.state_dir,
                             membership=lambda: self.rt.core.membership,
                             conf=lambda: self.rt.conf, send_app=self._send_app,
                             phase=lambda: self.phase.value, clock=self._clock,
                             registry=self.registry, sections=self.sections)
        self.fencing = FencingGlue(self.port)
        self._read_ahead: asyncio.Task | None = None
        self.services_glue = ServicesGlue(self.port, self.fencing, wake_loop=self.wake.set)
        self.services = self.services_glue
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

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._publish(loop.time())
        await self._warn_unused(self.rt.conf)
        self._read_fence_metadata(self.rt.conf)
        await self.server.start()
        try:
            await self.rt.start(self.on_events)
            await self.services_glue.start()
            on_signal = shutdown.OnSignal(self.request_leave)   # leave or restart?
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal, sig.name)
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            await self._loop()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            sdnotify.notify("STOPPING=1")
            await shutdown.close_all(self.name, (
                ("tracked tasks", self.tasks.cancel_all),
                ("fence metadata read-ahead", self._stop_read_ahead),
                ("services", self.services_glue.close),
                ("fencing", self.fencing.close), ("control socket", self.server.close),
                ("cluster transport", self.rt.close)))
        logger.info("node %s: clusterd exits with status %d", self.name, self.exit_code or 0)
        return self.exit_code or 0

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = CYCLE_INTERVAL
        target = loop.time()
        while True:
            await self._cycle(loop.time())
            # the services cycle when due (its own TICK, or woken), apart from the node
            # cycle: a node cycle that keeps failing must not keep it due (a busy loop)
            self.services_glue.cycle(self._clock())
            if self.exit_code is not None:
                return                  # at once: an exit waits for no schedule
            if self.phase is cy.DaemonPhase.STARTING:
                self.phase = cy.DaemonPhase.RUNNING
                self._publish(loop.time())
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
                    target = now
            self.wake.clear()
            if self.events:
                continue
            try:    # the services cycle's own schedule (TICK) shares this one loop
                async with asyncio.timeout_at(min(target, self.services_glue.next_due())):
                    await self.wake.wait()
            except TimeoutError:
                pass

    def on_events(self, events: tuple[Event, ...]) -> None:
        """Endpoint callback: queue the core's events (bounded) and wake the cycle."""
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
                await self._write_and_apply(action.data, action.reason, action.accepted)
            elif isinstance(action, cy.KeepAccepted):
                await asyncio.to_thread(save_accepted, self.opts.state_dir, action.data)
                logger.info("node %s: config_version %d is accepted (%s): kept as the config "
                            "to start with", self.name, action.version, action.reason)
            elif isinstance(action, cy.KeepPending):
                path = pending_path(self.opts.config_path, version=action.version)
                await asyncio.to_thread(write_atomic, path, action.data)
                logger.error("node %s: %s; the replaced file is kept as %s: to apply it, once "
                             "this node is a member, raise its config_version above the "
                             "cluster's and run: clusterd conf propose %s; or delete it",
                             self.name, action.message, path, path)
            elif isinstance(action, cy.AnnounceLeave):
                await self.rt.endpoint.leave(action.reason, action.hold)
                self.leave_announced = True
                logger.info("node %s: announced %s", self.name, "a restart keeping its "
                            "services running" if action.hold else "clean leave")
            elif isinstance(action, cy.Exit):
                self.exit_code = action.code
                self.wake.set()         # a cycle run outside the loop (a control op)

    async def _write_and_apply(self, data: bytes, reason: str, accepted: bool = True
                               ) -> ClusterConf:
        conf = await asyncio.to_thread(parse, data, source=f"cluster.conf ({reason})")
        if accepted:  # the copy first: a crash between the two leaves an older file
            await asyncio.to_thread(save_accepted, self.opts.state_dir, conf.canonical_bytes())
        await asyncio.to_thread(write_atomic, self.opts.config_path, conf.canonical_bytes())
        self.rt.apply_conf(conf)
        self.fencing.on_conf(conf)
        self.services_glue.on_conf(conf)
        logger.info("node %s: now running config_version %d (%s): %s", self.name,
                    conf.version, conf.sha256[:12], reason)
        await self._warn_unused(conf)
        self._read_fence_metadata(conf)
        return conf

    def _read_fence_metadata(self, conf: ClusterConf) -> None:
        """Read the metadata of the config's fence agents now, in the background, into
        the fencer's cache: the first fence otherwise runs ``AGENT -o metadata`` before the
        power-off (0.1 s on the lab's nodes). What fails here is only logged at debug:
        validation names an agent that cannot answer, and a fence asks again."""
        agents = sorted({d.agent for d in conf.fencedevices.values()})
        if not agents or (self._read_ahead is not None and not self._read_ahead.done()):
            return

        async def read() -> None:
            try:
                found = await prefetch(agents, self.fencing.fencer.runner)
            except Exception:
                logger.debug("node %s: reading fence agent metadata ahead failed",
                             self.name, exc_info=True)
                return
            logger.debug("node %s: fence agent metadata read ahead: %s", self.name,
                         ", ".join(sorted(found.found)))

        self._read_ahead = asyncio.get_running_loop().create_task(read(),
                                                                  name="fence-metadata")

    async def _stop_read_ahead(self) -> None:
        task = self._read_ahead
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _warn_unused(self, conf: ClusterConf) -> None:
        """One WARNING per part of the config clusterd accepts but does not use (RHCS's
        quorum disk, logging, ...: conf/support.py), in a thread (it walks the tree). The
        config is in force already: a failure here is logged, never the apply's."""
        try:
            await asyncio.to_thread(log_unused, self.name, conf)
        except Exception:
            logger.exception("node %s: listing the unused parts of config_version %s failed",
                             self.name, getattr(conf, "version", "?"))

    # ------------------------------------------------------------------ status
    def _publish(self, now: float) -> None:
        try:
            self._status = build_status(self._status_input(now))
        except Exception:
            logger.exception("node %s: building the status document failed", self.name)

    def _status_input(self, now: float) -> StatusInput:
        rt, m, sync = self.rt, self.rt.core.membership, self.rt.core.configsync
        view, q = m.view, m.quorum
        members = view.nodeids if view else frozenset()
        conflict = None
        for peer, (version, sha) in sorted(sync.conflicts.items()):
            node = rt.conf.node_by_id(peer)
            conflict = Conflict(node.name if node else str(peer), version, sha)
            break
        unaccepted = tuple(Conflict(n.name if (n := rt.conf.node_by_id(peer)) else str(peer),
                                    version, sha)
                           for peer, (version, sha) in sorted(sync.unaccepted_peers.items()))
        return StatusInput(
            cluster_name=rt.conf.name, cluster_id=rt.mcfg.cid,
            config_version=sync.running.version, config_sha256=sync.running.sha256,
            nodes=rt.status_nodes(), local_nodeid=rt.local.nodeid, incarnation=m.inc,
            epoch=view.epoch if view else 0, members=members,
            coordinator=view.coordinator if view else None,
            quorate=q.quorate, votes=q.votes, expected_votes=q.expected_votes,
            quorum=q.quorum, config_holders=sync.holders(now, members - {rt.local.nodeid}),
            conflict=conflict, config_accepted=sync.accepted, unaccepted=unaccepted,
            state=self.phase.value, pid=os.getpid(), wire=self._wire(),
            services=self._section("services"), fencing=self._section("fencing"),
            log_lost=self.log.lost if self.log else 0,
            standby=frozenset(self.services_glue.admin.standby))

    def _wire(self) -> dict[str, Any]:
        guard = self.rt.core.guard
        endpoint = self.rt.endpoint
        return {"accepted": guard.accepted, "drops": dict(guard.drops),
                "key": self.keys.active.key_id, "clear_refused": self.rt.core.clear_refused,
                "protocol": guard.version,
                "peer_protocols": {str(n): v for n, v in sorted(guard.heard_versions.items())},
                "inbox_overflow": endpoint.overflow if endpoint else 0,
                "events_dropped": self.events_dropped}

    def _section(self, name: str) -> tuple[Mapping[str, Any], ...]:
        provider = self.sections.get(name)
        return tuple(provider()) if provider is not None else ()

    # ------------------------------------------------------------------ control API
    @property
    def status(self) -> dict[str, Any]:
        """The status document, built when asked (an idle node spends no status build on
        cycles nobody reads). Always fresh: the services and fencing layers change their
        sections between cycles, and a reader must see what they did."""
        self._publish(time.monotonic())  # the loop's clock (asyncio's default)
        return self._status

    def status_document(self) -> dict[str, Any]:
        return self.status

    def running_conf(self) -> ClusterConf:
        return self.rt.conf

    async def propose(self, data: bytes, origin: str) -> dict[str, Any]:
        """Validate here (clear codes) in a worker thread, never on the loop (1 MiB takes
        up to a second; heartbeats must not wait), then hand the canonical bytes and that
        validation to configsync, which checks version and quorum and emits WriteConfig; a
        cycle run right here writes the file before the reply, and peers pull it from this
        node. Proposals run one at a time: each is checked against the config the one
        before it left running."""
        async with self.propose_lock:
            return await self._propose(data, origin)

    async def _propose(self, data: bytes, origin: str) -> dict[str, Any]:
        if self.phase in (cy.DaemonPhase.LEAVING, cy.DaemonPhase.RESTARTING):
            raise ControlError(p.E_NOT_READY, f"clusterd is {self.phase.value}")
        verdict = await asyncio.to_thread(check_proposal, self.rt.conf, data,
                                          local_name=self.name, parse=parse)
        loop = asyncio.get_running_loop()
        if verdict.changed:
            await asyncio.to_thread(refuse_untrusted_programs, verdict.conf)
            if {n.name for n in verdict.conf.nodes} != {n.name for n in self.rt.conf.nodes}:
                await asyncio.to_thread(refuse_shared_addresses, verdict.conf)   # DNS
            await refuse_unknown_fence_params(verdict.conf, self.fencing.fencer.runner)
            try:
                self.rt.endpoint.propose_config(verdict.conf.canonical_bytes(),
                                                validated=verdict.conf)
            except ControlError as exc:
                raise ControlError(_CORE_CODES.get(exc.code, exc.code), exc.message) from None
            except ConfigError as exc:
                raise ControlError(p.E_INVALID_CONFIG, str(exc)) from None
            await self._cycle(loop.time())
            logger.info("node %s: config_version %d proposed via %s", self.name,
                        verdict.conf.version, origin)
        now = loop.time()
        self._publish(now)
        view = self.rt.core.membership.view
        return {"version": self.rt.conf.version, "sha256": self.rt.conf.sha256,
                "changed": verdict.changed, "reason": verdict.reason,
                "holders": self.status["cluster"]["config_holders"],
                "members": len(view.nodeids) if view else 1}

    async def reload(self) -> dict[str, Any]:
        try:
            data = await asyncio.to_thread(read_limited, self.opts.config_path, 1024 * 1024)
        except OSError as exc:
            raise ControlError(p.E_INVALID_CONFIG, f"cannot read {self.opts.config_path}: "
                                                   f"{exc.strerror}") from None
        return await self.propose(data, origin=f"reload of {self.opts.config_path}")

    # ------------------------------------------------------------------ keys (S5)
    async def key_status(self) -> dict[str, Any]:
        guard = self.rt.core.guard
        peers = {}
        for node in self.rt.conf.nodes:
            if node.nodeid != self.rt.local.nodeid:
                secret = guard.peer_key(node.nodeid)
                peers[node.name] = key_id(secret) if secret is not None else None
        return {**self.keys.describe(), "peers": peers}

    async def reload_keys(self) -> dict[str, Any]:
        """Re-read the key files; on any refusal keep the loaded keys (ControlError)."""
        try:
            ring = await asyncio.to_thread(load_keyring, self.opts.authkey_path)
        except FatalError as exc:
            raise ControlError(p.E_INVALID_CONFIG, f"keys not reloaded: {exc}") from None
        self.keys = ring
        self.rt.core.set_keys(*_secrets(ring))
        logger.info("node %s: cluster keys loaded: sending with %s, also accepting %s",
                    self.name, ring.active.key_id,
                    ", ".join(k.key_id for k in ring.accepted) or "no other key")
        return await self.key_status()

    async def activate_key(self) -> dict[str, Any]:
        try:
            await asyncio.to_thread(activate_next, self.opts.authkey_path)
        except (FatalError, OSError) as exc:
            raise ControlError(p.E_INVALID_CONFIG, f"key not activated: {exc}") from None
        return await self.reload_keys()

    def _on_sighup(self) -> None:
        async def reload() -> None:
            try:
                await self.reload_keys()
            except ControlError as exc:
                logger.error("node %s: SIGHUP: %s", self.name, exc.message)
            try:
                result = await self.reload()
                logger.info("node %s: SIGHUP: %s", self.name, result["reason"])
            except ControlError as exc:
                logger.error("node %s: SIGHUP reload refused (%s): %s", self.name, exc.code,
                             exc.message)
        why = self.tasks.try_start("cluster.conf", "reload", reload, timeout=30)
        if why:
            logger.warning("node %s: SIGHUP ignored: %s", self.name, why)

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
