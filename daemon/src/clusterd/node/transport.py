"""Asyncio edge for the cluster core: one UDP socket, read in batches, one timer.

``ClusterEndpoint`` binds the node's address:port, feeds every datagram (bytes, source
address) to ``ClusterCore.on_datagram`` and ticks the core when it is due
(``ClusterCore.next_deadline``: no fixed tick, so an idle node sleeps), sending the
datagrams the core returns and handing its events to ``on_events``. Config transfer uses
the same authenticated UDP channel (chunks of 16 KiB before base64, so datagrams stay
under 24 KiB); no stream is needed. Only this module touches sockets and the clock.

The socket is the endpoint's own, not an asyncio datagram transport: that one reads a
single datagram per loop iteration and this endpoint would then need a second iteration
to process it; here one readiness callback reads and processes every datagram waiting
(up to ``READ_BATCH``), so a round of heartbeats arriving together costs one wakeup. The
kernel's socket buffer bounds what waits; what it drops when the daemon falls behind is
counted by the kernel and reported as ``overflow``. Sends go straight to the socket; the
rare datagram that finds the send buffer full waits in a bounded queue.

A pulled cluster.conf is validated in a worker thread (``ValidateConfig``: parsing and
validating 1 MiB takes up to a second, longer than a heartbeat may wait); the outcome
goes back to the core (``on_validated``) from the loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from clusterd.configsync.model import ValidateConfig
from clusterd.errors import ClusterError
from clusterd.events import Event
from clusterd.membership.host import ClusterCore, HostOutput

logger = logging.getLogger(__name__)

READ_BATCH = 64          # datagrams per readiness callback, then other callbacks run
MAX_DATAGRAM = 65535
SEND_QUEUE_MAX = 4 << 20  # bytes waiting for a full send buffer; beyond, datagrams drop
MIN_TICK_GAP = 0.01   # tokens: never tick again sooner than this after a tick
MAX_TICK_GAP = 0.5    # tokens: tick at least this often, whatever the core says


def kernel_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped for ``sock`` (receive buffer full), from
    /proc/net/udp{,6} (the last column of the socket's line); 0 if unreadable."""
    inode = str(os.fstat(sock.fileno()).st_ino)
    table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
    try:
        with open(table) as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 12 and fields[9] == inode:
                    return int(fields[-1])
    except (OSError, ValueError):
        pass
    return 0


class ClusterEndpoint:
    """Callbacks, not a polling task: the socket's readiness callback reads and processes
    every datagram waiting; one timer handle sits at the core's next deadline and is
    moved only when that deadline moves. ``run()`` arms them and waits; it ends with the
    exception of a failed callback, so the runtime's supervisor sees a crashed endpoint
    (and calls ``run()`` again)."""

    def __init__(self, core: ClusterCore, *, on_events: Callable[[tuple[Event, ...]], None],
                 clock: Callable[[], float] = time.monotonic):
        self.core = core
        self.on_events = on_events
        self.clock = clock
        self.ticks = 0
        self.send_dropped = 0
        self._sock: socket.socket | None = None
        self._queue: collections.deque[tuple[bytes, tuple[str, int]]] = collections.deque()
        self._queued = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failure: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._last_tick = float("-inf")
        self._validations: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        host, port = self.core.addr
        family = socket.AF_INET6 if ":" in str(host) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        logger.info("node %d: cluster transport on %s:%d", self.core.me, *self.core.addr)

    @property
    def overflow(self) -> int:
        """Datagrams lost because the daemon fell behind (kernel receive-buffer drops)."""
        return kernel_drops(self._sock) if self._sock is not None else 0

    def close(self) -> None:
        for task in self._validations:
            task.cancel()
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
                self._loop.remove_writer(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self._queue.clear()
        self._queued = 0

    async def run(self) -> None:
        """Tick the core when it is due and feed it every datagram, until cancelled or a
        callback fails (its exception ends ``run``). The core says when it next has work
        (``next_deadline``: a heartbeat to send, a peer about to fall silent, a lease or
        proposal timing out), so an idle node wakes for its own heartbeats and its
        peers' packets only; ``MAX_TICK_GAP`` is a safety net."""
        loop = asyncio.get_running_loop()
        self._loop, self._failure = loop, loop.create_future()
        sock = self._sock  # None: ticks only (no socket was started)
        if sock is not None:
            loop.add_reader(sock.fileno(), self._guarded, self._read)
        try:
            self._guarded(self._read)
            await self._failure
        finally:
            self._failure = None
            if sock is not None and self._sock is sock:
                loop.remove_reader(sock.fileno())
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def leave(self, reason: str, hold: bool = False) -> None:
        self._apply(self.core.leave(reason, self.clock(), hold))
        self._rearm()
        await asyncio.sleep(0)  # one loop pass: the writer may send LEAVEs that had to queue

    def propose_config(self, data: bytes, validated: Any = None) -> None:
        """Raises ConfigError / ControlError if refused. ``validated``: the caller's
        validation of ``data`` (what ``clusterd.conf.parse`` returned, done off the loop)."""
        self._apply(self.core.propose_config(data, self.clock(), validated=validated))
        self._rearm()

    def reconfigure(self, cfg: Any) -> None:
        """Use a new membership config (node list, votes, token). Raises KeyError if this
        node is no longer in it, ValueError if its own address changed."""
        self._apply(self.core.reconfigure(cfg, self.clock()))
        self._rearm()

    def set_expected(self, expected: int, origin: str) -> None:
        """``cman_tool expected -e N`` (``ClusterCore.set_expected``): ValueError when
        refused, nothing changed."""
        self._apply(self.core.set_expected(expected, origin, self.clock()))
        self._rearm()

    def set_qdisk(self, grant: Any) -> None:
        """The quorum disk's grant as just read (``ClusterCore.set_qdisk``)."""
        self._apply(self.core.set_qdisk(grant, self.clock()))
        self._rearm()

    def send(self, out: HostOutput) -> None:
        """Send what a core call made outside the endpoint loop produced (e.g. send_app)."""
        self._apply(out)

    def status(self) -> dict[str, Any]:
        doc = self.core.status(self.clock())
        doc["wire"]["inbox_overflow"] = self.overflow
        doc["wire"]["send_dropped"] = self.send_dropped
        return doc

    # ------------------------------------------------------------------ internals
    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - ends run() for the runtime's supervisor
            if self._failure is not None and not self._failure.done():
                self._failure.set_exception(exc)

    def _read(self) -> None:
        """Read and process every datagram waiting (up to ``READ_BATCH``), then move the
        timer once for the whole batch."""
        sock = self._sock
        for _ in range(READ_BATCH if sock is not None else 0):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP errors reported on the socket
                logger.debug("node %d: UDP receive error: %s", self.core.me, exc)
                continue
            self._apply(self.core.on_datagram(data, (str(addr[0]), int(addr[1])),
                                              self.clock()))
        self._rearm()

    def _on_timer(self) -> None:
        # Tick whenever the timer fires: it was set at a deadline the core named (one
        # that passed since its last tick stays named until a tick). An early tick is
        # harmless.
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
        for gram in out.datagrams:
            self._sendto(gram.data, gram.addr)
        events = out.events
        if not events:
            return
        requests = [e for e in events if isinstance(e, ValidateConfig)]
        if requests:            # the endpoint's own business, not the daemon's
            for request in requests:
                self._validate(request)
            events = tuple(e for e in events if not isinstance(e, ValidateConfig))
        if events:
            self.on_events(events)  # type: ignore[arg-type]

    def _validate(self, request: ValidateConfig) -> None:
        """Validate a pulled config in a worker thread, then hand the outcome to the
        core (on the loop). An unexpected failure is logged and not answered: the core
        gives up waiting and pulls the config again."""
        async def run() -> None:
            try:
                outcome = await asyncio.to_thread(self.core.validate, request.data)
            except ClusterError as exc:
                outcome = exc
            except Exception:  # a validator bug must not end the endpoint
                logger.exception("node %d: validating config_version %d failed",
                                 self.core.me, request.version)
                return
            self._guarded(lambda: self._answer(request.sha256, outcome))

        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(run(), name=f"validate config_version {request.version}")
        self._validations.add(task)
        task.add_done_callback(self._validations.discard)

    def _answer(self, sha256: str, outcome: Any) -> None:
        self._apply(self.core.on_validated(sha256, outcome, self.clock()))
        self._rearm()

    def _sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._sock is None:
            return
        if not self._queue and self._send_now(data, addr):
            return
        if self._queued + len(data) > SEND_QUEUE_MAX:
            self.send_dropped += 1
            return
        if not self._queue and self._loop is not None:
            self._loop.add_writer(self._sock.fileno(), self._guarded, self._flush)
        self._queue.append((data, addr))
        self._queued += len(data)

    def _send_now(self, data: bytes, addr: tuple[str, int]) -> bool:
        """Send one datagram; False only when the send buffer is full (try again later).
        Other errors (unreachable peer, no route) lose the datagram: UDP is best effort."""
        assert self._sock is not None
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            logger.debug("node %d: UDP send to %s failed: %s", self.core.me, addr[0], exc)
        return True

    def _flush(self) -> None:
        """The send buffer has room again: send what waited, in order."""
        while self._queue and self._sock is not None:
            data, addr = self._queue[0]
            if not self._send_now(data, addr):
                return
            self._queue.popleft()
            self._queued -= len(data)
        if self._sock is not None and self._loop is not None:
            self._loop.remove_writer(self._sock.fileno())
