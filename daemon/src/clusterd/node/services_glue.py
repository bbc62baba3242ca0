"""Wire the services layer into the node: the asyncio adapter of
``clusterd.services.core.ServicesCore``.

The core (sans-IO) holds the protocol: reports, the coordinator's decisions and the
commands they issue. This adapter gives it the node's ``Facts`` at each input (read
through the :class:`~clusterd.node.port.NodePort`, never from the daemon), carries out
its outputs (datagrams, commands run by the ``Executor``, fence requests to the fencing
part it is handed, the admin state persisted), and runs one services cycle when the
node's loop asks (:meth:`ServicesGlue.cycle`: when woken by reports, commands, agent
results and control ops, else every ``TICK``): status checks due on local services,
then one ``ServicesCore.step``. There is no loop here: the node has one. Local safety
needs no coordinator: the daemon calls ``stop_all`` on quorum loss or when dropped from
the view (ServicesPort). Control ops: ``ops.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from clusterd import events as ev
from clusterd.conf import ClusterConf
from clusterd.conf.limits import scale_notes
from clusterd.conf.support import LOG_LIMIT
from clusterd.fencing.state import FenceRequested
from clusterd.membership.host import AppReceived
from clusterd.node.port import NodePort
from clusterd.services import core as sc
from clusterd.services.chunks import CH_REPORT_HAVE, CH_REPORT_PART, CH_REPORT_WANT
from clusterd.services.executor import Executor
from clusterd.services.merge import Row
from clusterd.services.model import (
    CH_COMMAND,
    CH_REPORT,
    CH_REQUEST,
    CH_RESPONSE,
    AdminState,
    Command,
    NodeReport,
)
from clusterd.services.ops import ServiceOps
from clusterd.services.store import load_admin, save_admin
from clusterd.wire.limit import oversize

logger = logging.getLogger(__name__)

TICK = 0.5
# A cycle that took at least this long is followed by a rest as long as it took, woken or
# not: the loop then spends at most half its time in services cycles and its heartbeats
# and timers run in between. Below it (a cycle of an idle 3-node cluster with one service
# takes about 0.2 ms) a woken cycle runs at once, as always.
REST_MIN = 0.02
REPORT_CHANNELS = frozenset({CH_REPORT, CH_REPORT_PART, CH_REPORT_HAVE, CH_REPORT_WANT})
REPORT_REFRESH = sc.REPORT_REFRESH


class Nudge:
    """Asks the node's loop for a services cycle soon (``set``, as ops.py and the
    executor call it): marks the cycle due and wakes the loop."""

    def __init__(self, wake_loop: Callable[[], None]) -> None:
        self.due = True
        self._wake_loop = wake_loop

    def set(self) -> None:
        self.due = True
        self._wake_loop()


class ServicesGlue:
    def __init__(self, port: NodePort, fencing: Any,
                 wake_loop: Callable[[], None] = lambda: None) -> None:
        """``fencing``: what the core asks about fencing (``recovery_allowed``,
        ``recovery_blocked``, ``fence_open``, ``members``) and where its fence requests
        go (``fencer.handle``); ``wake_loop``: wakes the node's loop."""
        self.port = port
        self.fencing = fencing
        self.name = port.name
        self.me = port.nodeid
        self.core = sc.ServicesCore(self.name, self.me, load_admin(port.state_dir))
        self.executor = Executor(self.name, self._changed)
        self.services_version: int | None = None   # the config the services were loaded from
        self.ready = False
        self.wake = Nudge(wake_loop)
        self.updated = asyncio.Event()
        self._probe: asyncio.Task[None] | None = None
        self._next_tick = float("-inf")   # the next scheduled cycle: a multiple of TICK
        self._rest_until = float("-inf")  # after a long cycle, none before this (REST_MIN)
        self._last_key: tuple | None = None  # what the last cycle read (``_idle_key``)
        self._quiet = False               # ... and it did nothing but report
        self.on_conf(port.conf())
        self.ops = ServiceOps(self)
        if port.registry is not None:
            self.ops.register(port.registry)
        port.sections["services"] = self.status_section

    # ------------------------------------------------------------------ the core's state
    # (read by ops.py, the fencing glue and the tests; the core owns it)
    @property
    def admin(self) -> AdminState:
        return self.core.admin

    @property
    def rows(self) -> dict[str, Row]:
        return self.core.rows

    @property
    def coord(self) -> Any:
        return self.core.coord

    @coord.setter
    def coord(self, state: Any) -> None:   # ops.py records manual operations here
        self.core.coord = state
        self.wake.set()   # the coordinator acts on it at the next cycle (idle ticks skip)

    @property
    def last_snapshot(self) -> Any:
        return self.core.last_snapshot

    @property
    def defs(self) -> tuple:
        return self.core.defs

    @property
    def domains(self) -> tuple:
        return self.core.domains

    @property
    def known(self) -> dict[int, tuple[int, NodeReport]]:
        return self.core.known

    @property
    def last_reason(self) -> str:
        return self.core.last_reason

    # ------------------------------------------------------------------ ServicesPort
    def running(self) -> int:
        return self.executor.running()

    def operations(self) -> int:
        return self.executor.in_flight()

    async def stop_all(self, reason: str) -> None:
        await self.executor.stop_all(reason)

    # ------------------------------------------------------------------ facts, outputs
    def facts(self) -> sc.Facts:
        membership = self.port.membership()
        phase = self.port.phase()
        return sc.Facts(view=membership.view, quorate=bool(membership.quorum.quorate),
                        leaving=phase == "leaving", restarting=phase == "restarting",
                        fencing=self.fencing, local=self.executor.local,
                        ready=self.ready, running=self.executor.running(),
                        backed=bool(membership.is_quorate(self.port.clock())))

    def now(self) -> float:
        return self.port.clock()

    def _apply(self, outputs: Iterable[sc.Output]) -> None:
        for out in outputs:
            if isinstance(out, sc.Send):
                self.send(out.dest, out.channel, out.payload)
            elif isinstance(out, sc.Execute):
                self.executor.execute(out.cmd)
            elif isinstance(out, sc.Fence):
                self.fencing.fencer.handle(FenceRequested(out.node, self.name, out.reason))
            elif isinstance(out, sc.SetLocal):
                self.executor.local[out.service] = out.local
            elif isinstance(out, sc.AdminChanged):
                self.executor.frozen = out.admin.frozen
                try:
                    save_admin(self.port.state_dir, out.admin)
                except OSError as exc:
                    logger.error("node %s: cannot persist the services admin state: %s",
                                 self.name, exc)
                self.wake.set()
            elif isinstance(out, sc.Wake):
                self.wake.set()
            elif isinstance(out, sc.Announce):
                asyncio.get_running_loop().create_task(self.executor.announce())

    # ------------------------------------------------------------------ inputs
    def on_conf(self, conf: ClusterConf) -> None:
        """Take in a config's services. ``conf`` carries them built and checked when it was
        parsed (off the event loop): definitions, domains and a complete resource tree
        (there is no ClusterConf with a partial one), so this only hands them over and
        never parses ``<rm>`` on the loop (8,000 services took over a token here)."""
        for warning in conf.tree_warnings[:LOG_LIMIT]:   # rgmanager logged them at each load
            logger.warning("node %s: resource tree: %s", self.name, warning)
        if len(conf.tree_warnings) > LOG_LIMIT:
            logger.warning("node %s: resource tree: %d more warnings; ccs_config_validate "
                           "lists them all", self.name, len(conf.tree_warnings) - LOG_LIMIT)
        for _where, reason in scale_notes(len(conf.nodes), len(conf.services)):
            logger.warning("node %s: config_version %d: %s", self.name, conf.version, reason)
        self._apply(self.core.load(conf))
        self.services_version = conf.version
        self.executor.load(conf.resource_tree)
        self._changed()

    def on_events(self, events: Iterable[object]) -> None:
        """The daemon's cycle hands over every core event (app messages included)."""
        for e in events:
            if isinstance(e, AppReceived):
                self._on_app(e)
            elif isinstance(e, ev.ViewInstalled | ev.QuorumChanged | ev.ViewBacked):
                self.wake.set()
        self._apply(self.core.on_facts(self.facts()))

    @staticmethod
    def is_report(e: object) -> bool:
        """A member's services report (whole, a part, have/want): the services layer's
        alone, and it asks for a cycle itself when one is news."""
        return isinstance(e, AppReceived) and e.channel in REPORT_CHANNELS

    def _on_app(self, e: AppReceived) -> None:
        try:
            if e.channel == CH_REPORT:   # the core asks for a wake when it is news
                self._apply(self.core.on_report(e.src, e.incarnation, e.payload))
                return
            if e.channel == CH_REPORT_PART:   # a wake only when it completes a report
                self._apply(self.core.on_report_part(e.src, e.incarnation, e.payload))
                return
            if e.channel == CH_REPORT_HAVE:
                self._apply(self.core.on_report_have(e.src, e.incarnation, e.payload))
                return
            if e.channel == CH_REPORT_WANT:
                self._apply(self.core.on_report_want(e.src, e.payload))
                return
            if e.channel == CH_COMMAND:
                self._apply(self.core.on_command(e.src, e.payload, self.facts()))
            elif e.channel == CH_REQUEST:
                self.ops.on_request(e.src, e.payload)
            elif e.channel == CH_RESPONSE:
                self.ops.on_response(e.payload)
        except (TypeError, ValueError, KeyError) as exc:
            logger.warning("node %s: bad %s message from node %d ignored: %s", self.name,
                           e.channel, e.src, exc)
        self.wake.set()

    def _on_command(self, cmd: Command, src: int) -> None:
        self._apply(self.core.on_command(src, cmd.to_wire(), self.facts()))

    # ------------------------------------------------------------------ state
    def _changed(self) -> None:
        self.core.dirty = True
        self.wake.set()

    def set_admin(self, admin: AdminState) -> None:
        self._apply(self.core.set_admin(admin))

    def report(self) -> NodeReport:
        return self.core.report(self.facts())

    def live(self) -> dict[str, NodeReport]:
        """Reports of live members (this node's own included), by node name."""
        return self.core.live(self.facts())

    def is_coordinator(self) -> bool:
        return self.core.is_coordinator(self.facts())

    def command(self, node: str, cmd: Command) -> None:
        self._apply(self.core.command(node, cmd, self.facts()))

    def send(self, dest: int | None, channel: str, payload: dict) -> None:
        """Send now. Every builder checks the size first (``wire.limit``); should one
        not, the wire layer's refusal is logged here (rate-limited) and never escapes
        into the services cycle."""
        try:
            self.port.send_app(dest, channel, payload)
        except ValueError as exc:
            self.core.refusals.refuse(self.now(), channel, oversize(payload) or 0,
                                      f"dropped ({exc})")

    # ------------------------------------------------------------------ the cycle
    async def start(self) -> None:
        """Re-adopt what survived a restart (probe) before the first report; the node's
        loop runs no services cycle until then."""
        self.executor.frozen = self.admin.frozen
        self._probe = asyncio.get_running_loop().create_task(self._adopt(), name="probe")

    async def _adopt(self) -> None:
        try:
            await self.executor.probe()
        except Exception:   # what runs here is unknown: never report "nothing"
            logger.exception("node %s: probing the local services failed; this node does "
                             "not report or take services until clusterd restarts", self.name)
            return
        self.ready = True
        self._changed()

    def next_due(self) -> float:
        """When the node's loop should run :meth:`cycle` next (its clock)."""
        if not self.ready:
            return float("inf")         # the probe's end wakes the loop
        return max(float("-inf") if self.wake.due else self._next_tick, self._rest_until)

    def cycle(self, now: float) -> None:
        """One services cycle if one is due (woken, or the next ``TICK`` reached): status
        checks due on local services, then one ``ServicesCore.step``; a ``TICK`` nothing
        woke runs the status checks only when the step would do nothing (``_idle``). A
        failure is logged and the next cycle runs (it never stops the node's loop)."""
        if now < self.next_due():
            return
        if not self.wake.due and self._idle(now):
            self._tick_idle(now)
        else:
            self.run_cycle(now)

    def _idle_key(self, facts: sc.Facts) -> tuple | None:
        """What a step reads that may change without a wake (None: unknown, never idle).
        The facts are read afresh at every ``TICK``: the view, quorum and lease backing
        (``backed`` is the membership's instant answer: a lease that lapses between two
        events changes it silently), the daemon's phase, the local services (a copy:
        the executor changes them in place; it also nudges, this is the second lock) and
        the fencing policy's state (frozen; it moves in the node's cycle, e.g. a fence
        confirmed, and the fencing answers the step reads are pure functions of it).
        Everything else a step reads is the core's own state, and each input that changes
        it nudges: members' reports that are news and every other app message
        (``_on_app``), a new admin state (``AdminChanged``), a config (``on_conf``), the
        executor's transitions and the probe's end (``_changed``), control ops (``coord``
        setter, ``ops.py``'s own nudge)."""
        token = getattr(self.fencing, "state_token", None)
        if token is None:
            return None
        return (facts.view, facts.quorate, facts.backed, facts.leaving, facts.restarting,
                facts.ready, facts.running, dict(facts.local), token())

    def _idle(self, now: float) -> bool:
        """Would a step now do nothing that the last one did not? True when the last
        cycle only reported (no command, fence, admin or local change; no command of
        the coordinator's awaiting its ack), read the same ``_idle_key`` as now, and the
        periodic report copy is not due. The step reads the clock for nothing else: the
        coordinator's ack timeouts only run with commands pending, and placement reads it
        for restart windows only when a service failed, which always issues a command (so
        the cycle after it is never quiet)."""
        return (self._quiet and not self.core.coord.pending
                and not self.core.report_due(now)
                and self._last_key is not None and self._idle_key(self.facts()) == self._last_key)

    def _tick_idle(self, now: float) -> None:
        """A ``TICK`` with nothing for the step: the status checks due (their own
        schedule), and the tick moves on as a cycle would move it."""
        self._next_tick = (math.floor(now / TICK) + 1) * TICK
        try:
            self.executor.check_due()
        except Exception:   # STYLE 7: log it, the next cycle runs
            logger.exception("node %s: services cycle failed; the next one runs", self.name)
            self._last_key = None
        self.updated.set()   # as after a cycle: waiters re-read what they wait for
        self.updated = asyncio.Event()

    def run_cycle(self, now: float) -> None:
        """The services cycle itself (``cycle`` when due; tests call it directly). The
        ticks fall on the clock's multiples of ``TICK`` (the node's loop wakes on
        multiples of its own interval, so an idle node has one schedule): at most
        ``TICK`` between two cycles, as when each tick was counted from the last cycle,
        and a woken cycle between two ticks leaves them where they are. A cycle that took
        ``REST_MIN`` or more is followed by a rest as long (8,000 services: cycles woken
        back to back by report parts held the loop for seconds, and peers took the node
        for dead); a woken cycle then waits at most that long."""
        started = time.perf_counter()
        self.wake.due = False
        if now >= self._next_tick:
            self._next_tick = (math.floor(now / TICK) + 1) * TICK
        self._last_key, self._quiet = None, False
        try:
            self.executor.check_due()
            facts = self.facts()
            key = self._idle_key(facts)
            outputs = self.core.step(now, self.port.wall(), facts)
            self._quiet = all(isinstance(o, sc.Send) and o.dest is None
                              and o.channel in REPORT_CHANNELS for o in outputs)
            self._apply(outputs)
            self._last_key = key
        except Exception:   # STYLE 7: log it, the next cycle runs
            logger.exception("node %s: services cycle failed; the next one runs", self.name)
        took = time.perf_counter() - started
        self._rest_until = now + took if took >= REST_MIN else float("-inf")
        self.updated.set()
        self.updated = asyncio.Event()

    # ------------------------------------------------------------------ status
    def status_section(self) -> tuple[Mapping[str, Any], ...]:
        return self.core.status_section()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self.executor.close()
