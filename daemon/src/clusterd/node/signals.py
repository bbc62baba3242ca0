"""The daemon's signals, installed for the life of its loop.

SIGTERM and SIGINT end the daemon: :class:`~clusterd.node.shutdown.OnSignal` asks
systemd whether this is a restart and requests a leave or a restart. SIGHUP re-reads the
cluster keys, then cluster.conf (proposed as ``clusterd reload`` does), in a tracked
task: a SIGHUP while one runs is logged and ignored. :class:`Signals` is handed what it
needs (the daemon's ``request_leave``, the key and config reloads, ``try_start`` of its
tracked tasks), never the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from clusterd.errors import ControlError
from clusterd.node import shutdown

# the daemon's log lines, under the daemon's logger name as before this module existed
logger = logging.getLogger("clusterd.node.daemon")

TryStart = Callable[[str, str, Callable[[], Awaitable[object]], float], "str | None"]


class Signals:
    def __init__(self, *, name: str, request_leave: Callable[[str, shutdown.Mode], object],
                 reload_keys: Callable[[], Awaitable[Any]],
                 reload_conf: Callable[[], Awaitable[dict[str, Any]]],
                 try_start: TryStart) -> None:
        self.name = name
        self._request_leave = request_leave
        self._reload_keys = reload_keys
        self._reload_conf = reload_conf
        self._try_start = try_start

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        on_signal = shutdown.OnSignal(self._request_leave)   # leave or restart?
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig.name)
        loop.add_signal_handler(signal.SIGHUP, self.on_sighup)

    @staticmethod
    def remove(loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    def on_sighup(self) -> None:
        async def reload() -> None:
            try:
                await self._reload_keys()
            except ControlError as exc:
                logger.error("node %s: SIGHUP: %s", self.name, exc.message)
            try:
                result = await self._reload_conf()
                logger.info("node %s: SIGHUP: %s", self.name, result["reason"])
            except ControlError as exc:
                logger.error("node %s: SIGHUP reload refused (%s): %s", self.name, exc.code,
                             exc.message)
        why = self._try_start("cluster.conf", "reload", reload, 30)
        if why:
            logger.warning("node %s: SIGHUP ignored: %s", self.name, why)
