"""Slow actions as tracked tasks: at most one in flight per subject (STYLE principle 6).

``try_start`` answers "busy" as a return value (``patroni/async_executor.py``
``try_run_async``); the cycle sees ``in_flight()`` in its snapshot. Every task has a
timeout; exceptions are logged, never lost, and CancelledError propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningTask:
    subject: str
    what: str
    started: float


class TrackedTasks:
    def __init__(self, node: str = "-", on_done: Callable[[], None] | None = None) -> None:
        self.node = node
        self.on_done = on_done  # called when a task ends (the daemon wakes its cycle)
        self._tasks: dict[str, tuple[asyncio.Task, RunningTask]] = {}

    def try_start(self, subject: str, what: str, factory: Callable[[], Awaitable[object]],
                  timeout: float) -> str | None:
        """Start ``factory()`` for ``subject``; returns None, or why it did not start."""
        current = self._tasks.get(subject)
        if current is not None:
            return f"busy: {current[1].what} {subject}"
        loop = asyncio.get_running_loop()
        info = RunningTask(subject, what, loop.time())
        task = loop.create_task(self._run(info, factory, timeout), name=f"{what}:{subject}")
        self._tasks[subject] = (task, info)
        return None

    async def _run(self, info: RunningTask, factory: Callable[[], Awaitable[object]],
                   timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await factory()
        except TimeoutError:
            logger.error("node %s: %s %s timed out after %gs", self.node, info.what,
                         info.subject, timeout)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("node %s: %s %s failed", self.node, info.what, info.subject)
        finally:
            self._tasks.pop(info.subject, None)
            if self.on_done is not None:
                self.on_done()

    def in_flight(self) -> tuple[RunningTask, ...]:
        return tuple(info for _, info in self._tasks.values())

    async def cancel_all(self) -> None:
        tasks = [t for t, _ in self._tasks.values()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
