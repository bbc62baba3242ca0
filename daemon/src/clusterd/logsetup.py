"""Daemon logging: node and view in every line, never blocking, never a secret.

* Every record carries ``node`` and ``view`` (the current view epoch, ``-`` before the
  first view) through :class:`ContextFilter`; the daemon updates :class:`LogContext`
  when a view is installed.
* The event loop never blocks on a slow stderr/journal: records go through a bounded
  queue (``patroni/log.py``); when it is full the record is dropped and counted, and the
  next record that fits is preceded by a warning saying how many were lost.
* Output is stderr (systemd's journal when run as a unit; timestamps are left to the
  journal when ``$JOURNAL_STREAM`` says stderr is connected to it).
* :class:`RedactFilter` masks the value of every secret-named assignment
  (``passwd=...``, ``password: ...``, ``"secret": "..."``: clusterd.truth's one secret-name
  rule) as a last line of defence; code must still never log secrets (fence parameters
  are redacted where they are handled).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys
from dataclasses import dataclass
from typing import TextIO

from clusterd.truth import mask_assignments

logger = logging.getLogger(__name__)

FORMAT = "%(levelname)s [%(node)s view %(view)s] %(name)s: %(message)s"
MASK = "***"


@dataclass
class LogContext:
    """Mutable on purpose: the one place the daemon tells logging where it is."""

    node: str = "-"
    view: str = "-"


class ContextFilter(logging.Filter):
    def __init__(self, context: LogContext) -> None:
        super().__init__()
        self.context = context

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.context.node
        record.view = self.context.view
        return True


def redact(text: str) -> str:
    return mask_assignments(text, MASK)


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class BoundedQueueHandler(logging.handlers.QueueHandler):
    """Drop (and count) instead of blocking when the queue is full."""

    def __init__(self, q: queue.Queue) -> None:
        super().__init__(q)
        self.lost = 0
        self._reported = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        if self.lost > self._reported:
            note = logging.LogRecord(logger.name, logging.WARNING, __file__, 0,
                                     "%d log records lost (log queue full)",
                                     (self.lost - self._reported,), None)
            note.node, note.view = getattr(record, "node", "-"), getattr(record, "view", "-")
            try:
                self.queue.put_nowait(note)
                self._reported = self.lost
            except queue.Full:
                pass
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.lost += 1


@dataclass
class LogRuntime:
    context: LogContext
    handler: BoundedQueueHandler
    listener: logging.handlers.QueueListener

    @property
    def lost(self) -> int:
        return self.handler.lost

    def stop(self) -> None:
        """Flush what is queued and detach (idempotent)."""
        root = logging.getLogger()
        if self.handler in root.handlers:
            root.removeHandler(self.handler)
            self.listener.stop()


def setup_logging(node: str = "-", *, level: int = logging.INFO, stream: TextIO | None = None,
                  queue_size: int = 10000) -> LogRuntime:
    """Install the queue handler on the root logger; returns the runtime to stop later."""
    context = LogContext(node=node)
    fmt = FORMAT if os.environ.get("JOURNAL_STREAM") else "%(asctime)s " + FORMAT
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(logging.Formatter(fmt))
    q: queue.Queue = queue.Queue(maxsize=queue_size)
    handler = BoundedQueueHandler(q)
    handler.addFilter(ContextFilter(context))
    handler.addFilter(RedactFilter())
    listener = logging.handlers.QueueListener(q, out, respect_handler_level=False)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, BoundedQueueHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    listener.start()
    return LogRuntime(context, handler, listener)
