"""Asyncio edge for the cluster core: one UDP socket, a bounded inbox, one timer.

``ClusterEndpoint`` binds the node's address:port, feeds every datagram (bytes, source
address) to ``ClusterCore.on_datagram`` and ticks the core when it is due
(``ClusterCore.next_deadline``: no fixed tick, so an idle node sleeps), sending the
datagrams the core returns and handing its events to ``on_events``. Config transfer uses
the same authenticated UDP channel (chunks of 16 KiB before base64, so datagrams stay
under 24 KiB); no stream is needed. The inbox is bounded: when the loop falls behind,
extra datagrams are dropped and counted (``overflow``), and a warning is logged at most
once per 10 s. Only this module touches sockets and the clock.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from clusterd.membership.events import Event
from clusterd.membership.host import ClusterCore, HostOutput

logger = logging.getLogger(__name__)

INBOX_MAX = 1024
MIN_TICK_GAP = 0.01   # tokens: never tick again sooner than this after a tick
MAX_TICK_GAP = 0.5    # tokens: tick at least this often, whatever the core says
OVERFLOW_LOG_INTERVAL = 10.0


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: ClusterEndpoint):
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.endpoint._enqueue(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        logger.warning("node %d: UDP error: %s", self.endpoint.core.me, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            logger.warning("node %d: UDP socket closed: %s", self.endpoint.core.me, exc)


class ClusterEndpoint:
    """Callbacks, not a polling task: a datagram is queued by the protocol and the inbox
    drained in one loop callback per batch; one timer handle sits at the core's next
    deadline and is moved only when that deadline moves. ``run()`` arms them and waits;
    it ends with the exception of a failed callback, so the runtime's supervisor sees a
    crashed endpoint (and calls ``run()`` again) as it did with the old polling loop."""

    def __init__(self, core: ClusterCore, *, on_events: Callable[[tuple[Event, ...]], None],
                 clock: Callable[[], float] = time.monotonic, inbox_max: int = INBOX_MAX,
                 tick_interval: float | None = None):
        self.core = core
        self.on_events = on_events
        self.clock = clock
        self.tick_interval = tick_interval  # unused: the core says when ticks are due
        self.ticks = 0
        self.inbox_max = inbox_max
        self.inbox: collections.deque[tuple[bytes, tuple[str, int]]] = collections.deque()
        self.overflow = 0
        self._overflow_logged = float("-inf")
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: asyncio.Future[None] | None = None
        self._drain_pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._last_tick = float("-inf")

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.core.addr)
        self._transport = transport  # type: ignore[assignment]
        logger.info("node %d: cluster transport on %s:%d", self.core.me, *self.core.addr)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def run(self) -> None:
        """Tick the core when it is due and feed it every datagram, until cancelled or a
        callback fails (its exception ends ``run``). The core says when it next has work
        (``next_deadline``: a heartbeat to send, a peer about to fall silent, a lease or
        proposal timing out), so an idle node wakes for its own heartbeats and its
        peers' packets only; ``MAX_TICK_GAP`` is a safety net."""
        loop = asyncio.get_running_loop()
        self._loop, self._failure = loop, loop.create_future()
        try:
            self._guarded(self._drain)
            await self._failure
        finally:
            self._failure = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def leave(self, reason: str) -> None:
        self._apply(self.core.leave(reason, self.clock()))
        self._rearm()
        await asyncio.sleep(0)  # let the transport flush the LEAVE datagrams

    def propose_config(self, data: bytes) -> None:
        """Raises ConfigError / ControlError if refused."""
        self._apply(self.core.propose_config(data, self.clock()))
        self._rearm()

    def reconfigure(self, cfg: Any) -> None:
        """Use a new membership config (node list, votes, token). Raises KeyError if this
        node is no longer in it, ValueError if its own address changed."""
        self._apply(self.core.reconfigure(cfg, self.clock()))
        self._rearm()

    def send(self, out: HostOutput) -> None:
        """Send what a core call made outside the endpoint loop produced (e.g. send_app)."""
        self._apply(out)

    def status(self) -> dict[str, Any]:
        doc = self.core.status(self.clock())
        doc["wire"]["inbox_overflow"] = self.overflow
        return doc

    # ------------------------------------------------------------------ internals
    def _enqueue(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(self.inbox) >= self.inbox_max:
            self.overflow += 1
            now = self.clock()
            if now - self._overflow_logged >= OVERFLOW_LOG_INTERVAL:
                self._overflow_logged = now
                logger.warning("node %d: inbox full, %d datagrams dropped so far",
                               self.core.me, self.overflow)
            return
        self.inbox.append((data, addr))
        if self._failure is not None and not self._drain_pending:
            self._drain_pending = True
            self._loop.call_soon(self._guarded, self._drain)  # type: ignore[union-attr]

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - ends run() for the runtime's supervisor
            if self._failure is not None and not self._failure.done():
                self._failure.set_exception(exc)

    def _drain(self) -> None:
        self._drain_pending = False
        while self.inbox:
            data, addr = self.inbox.popleft()
            self._apply(self.core.on_datagram(data, addr, self.clock()))
        self._rearm()

    def _on_timer(self) -> None:
        # Tick whenever the timer fires: it was set at a deadline, and asking the core
        # again would not do (at that instant the deadline is no longer in the future,
        # so next_deadline already names the one after it). An early tick is harmless.
        self._timer = None
        now = self.clock()
        self._last_tick = now
        self.ticks += 1
        self._apply(self.core.tick(now))
        self._rearm()

    def _rearm(self) -> None:
        """Put the timer at the core's next deadline (not sooner than ``MIN_TICK_GAP``
        after the last tick, not later than ``MAX_TICK_GAP`` from now)."""
        if self._failure is None or self._loop is None:
            return
        token = self.core.cfg.token
        now = self.clock()
        due = max(self.core.next_deadline(now), self._last_tick + MIN_TICK_GAP * token)
        due = min(due, now + MAX_TICK_GAP * token)
        if self._timer is not None:
            if abs(due - self._timer_due) < 1e-4 or now + MAX_TICK_GAP * token == due \
                    and self._timer_due <= due:
                return
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._loop.call_later(max(0.0, due - now), self._guarded,
                                            self._on_timer)

    def _apply(self, out: HostOutput) -> None:
        if self._transport is not None:
            for gram in out.datagrams:
                with contextlib.suppress(OSError):
                    self._transport.sendto(gram.data, gram.addr)
        if out.events:
            self.on_events(out.events)
