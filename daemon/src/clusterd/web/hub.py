"""The live view: one poller per process, shared by every open page.

While at least one live stream (``GET /events``) is open, the poller reads ``status``
every ``interval`` seconds (scheduled from the previous target time, so a slow read does
not drift the rhythm) and ``svc.candidates`` when what the page shows changed; when the
view changed it notes the events and wakes the streams, which send the new fragments.
With nobody watching it stops (idle cost: nothing runs); a page load reads on demand.
An older daemon without ``svc.candidates`` answers ``unknown_op``: the page then shows no
reasons, and the op is not asked again until that daemon is replaced (another pid).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from clusterd.control import protocol as p
from clusterd.errors import ControlError
from clusterd.web import view as v
from clusterd.web.control import ActingFor, AsyncControl

logger = logging.getLogger(__name__)

MAX_EVENTS = 50
FRESH_FOR = 1.0     # seconds a polled view serves a page load without another read
MAX_CANDIDATE_PAGES = 200  # svc.candidates pages read per change (1,000 services on 300
# nodes take 35)


class Subscriber:
    """One open live stream: woken when the view changes."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.wake = asyncio.Event()
        self.version = -1


class Hub:
    def __init__(self, control: AsyncControl, *, interval: float = 0.5,
                 max_clients: int = 64, clock: Callable[[], float] = time.time,
                 render: Callable[[v.View, list[tuple[float, str]], str], Any] | None = None
                 ) -> None:
        self.control = control
        self.interval = interval
        self.max_clients = max_clients
        self.clock = clock
        self.render = render
        self.view: v.View | None = None
        self.version = 0
        self.live = False          # the poller has read since it (re)started
        self.read_at = float("-inf")
        self.events: deque[tuple[float, str]] = deque(maxlen=MAX_EVENTS)
        self.subscribers: set[Subscriber] = set()
        self.polls = 0
        self._task: asyncio.Task[None] | None = None
        self._base: v.View | None = None
        self._cands: Mapping[str, Any] | None = None
        self._cands_daemon: Any = None     # the daemon (pid, incarnation) asked
        self._no_cands_pid: Any = None     # the daemon (pid, incarnation) that lacks the op
        self._payloads: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------- subscribers
    def subscribe(self, role: str) -> Subscriber | None:
        """A new stream, or None when :attr:`max_clients` are open already."""
        if len(self.subscribers) >= self.max_clients:
            return None
        sub = Subscriber(role)
        self.subscribers.add(sub)
        if self._task is None or self._task.done():
            self.live = False
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="clusterd-web poller")
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        if not self.subscribers and self._task is not None:
            self._task.cancel()
            self._task = None
            self.live = False

    @property
    def polling(self) -> bool:
        return self._task is not None and not self._task.done()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def payload(self, role: str) -> Any:
        """The rendered view for ``role`` (cached per version)."""
        if role not in self._payloads:
            assert self.view is not None and self.render is not None
            self._payloads[role] = self.render(self.view, list(self.events), role)
        return self._payloads[role]

    # ------------------------------------------------------------- reading
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        target = loop.time()
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:      # one bad read never ends the live view
                logger.exception("live view: reading clusterd's status failed")
            if not self.live:      # the first read of this run: the streams send it
                self.live = True
                for sub in self.subscribers:
                    sub.wake.set()
            target += self.interval
            now = loop.time()
            if target < now:
                logger.debug("live view: a read took longer than %.1fs; next now",
                             self.interval)
                target = now
            await asyncio.sleep(target - now)

    async def current(self, acting: ActingFor | None = None) -> v.View:
        """The view for a page load: the poller's when fresh, else read now."""
        if self.view is not None and (self.live or
                                      self.clock() - self.read_at < FRESH_FOR):
            return self.view
        await self.refresh(acting)
        assert self.view is not None
        return self.view

    async def refresh(self, acting: ActingFor | None = None) -> None:
        async with self._lock:
            self.polls += 1
            try:
                doc = await self.control.call(p.OP_STATUS, acting=acting, timeout=10.0)
                if not isinstance(doc, Mapping):
                    raise ControlError(p.E_PROTOCOL, "clusterd's status is not an object")
                new = await self._project(doc, acting)
            except ControlError as exc:
                new = v.down(exc.message, self.view)
            self.read_at = self.clock()
            self._install(new)

    async def _project(self, doc: Mapping[str, Any], acting: ActingFor | None) -> v.View:
        past = self.view["fencing"] if self.view else ()
        base = v.project(doc, None, past)
        local = doc.get("local", {})
        daemon = (local.get("pid"), local.get("incarnation"))
        if base != self._base or self._cands is None or daemon != self._cands_daemon:
            self._base, self._cands_daemon = base, daemon
            self._cands = await self._candidates(daemon, acting)
        return v.project(doc, self._cands, past)

    async def _candidates(self, daemon: tuple[Any, Any],
                          acting: ActingFor | None) -> Mapping[str, Any] | None:
        if self._no_cands_pid == daemon:
            return {}
        merged: dict[str, Any] = {}
        start = 0
        for _ in range(MAX_CANDIDATE_PAGES):
            try:
                result = await self._candidates_page(start, acting)
            except ControlError as exc:
                if exc.code == p.E_UNKNOWN_OP:
                    self._no_cands_pid = daemon
                    logger.info("clusterd (pid %s) has no svc.candidates op: the page "
                                "shows no placement reasons", daemon[0])
                    return {}
                logger.debug("svc.candidates: %s: %s", exc.code, exc.message)
                return None
            if not isinstance(result, Mapping):
                return {}
            if result.get("ready") is False:
                return None    # the coordinator has not placed yet: ask again next read
            services = result.get("services")
            if not isinstance(services, Mapping):
                return merged
            merged.update(services)
            more, rest = result.get("more"), result.get("rest")
            rest = rest if isinstance(rest, Mapping) else {}
            for name, count in (more.items() if isinstance(more, Mapping) else ()):
                if isinstance(merged.get(name), list) and isinstance(count, int):
                    why = rest.get(name)
                    merged[name] = [*merged[name], {"more": count,
                                                    "why": why if isinstance(why, str) else ""}]
            nxt = result.get("next")    # an older daemon answers in one page, no next
            if not isinstance(nxt, int) or isinstance(nxt, bool) or nxt <= start:
                return merged
            start = nxt
        return merged

    async def _candidates_page(self, start: int, acting: ActingFor | None) -> Any:
        """One brief page of ``svc.candidates`` from service ``start``; a daemon of the
        previous release takes no arguments and answers its one page, whole."""
        args: dict[str, Any] = {"brief": True, **({"start": start} if start else {})}
        try:
            return await self.control.call("svc.candidates", args, acting=acting,
                                           timeout=10.0)
        except ControlError as exc:
            if exc.code != p.E_BAD_ARGS or start:
                raise
        return await self.control.call("svc.candidates", acting=acting, timeout=10.0)

    def _install(self, new: v.View) -> None:
        if new == self.view:
            return
        now = self.clock()
        for text in v.events(self.view, new):
            self.events.appendleft((now, text))
        self.view = new
        self.version += 1
        self._payloads = {}
        for sub in self.subscribers:
            sub.wake.set()
