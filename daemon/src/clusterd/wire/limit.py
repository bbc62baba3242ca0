"""The application-message size limit, checked where a message is built.

``clusterd.wire.messages`` refuses an encoded application payload over
``MAX_APP_PAYLOAD`` bytes by raising; that is the last line of defence, deep inside a
send. Every builder of an application message (services reports, commands, forwarded
control requests and their replies, fence state) checks the size first with
:func:`oversize` and, when the message does not fit, does something else on purpose (sends
it in parts, trims it, answers a clear error) and says so with :class:`RefusalLog`: one
line per channel at most once a minute, naming the channel, the encoded size, the limit,
the service count when there is one, and what happens instead. Pure apart from logging:
time comes in as an argument.
"""

from __future__ import annotations

import logging
from typing import Any

from clusterd.wire.messages import MAX_APP_PAYLOAD, app_payload_size

REFUSAL_LOG_EVERY = 60.0     # seconds between two refusal lines of one channel


def oversize(payload: Any) -> int | None:
    """The encoded size of ``payload`` when it exceeds ``MAX_APP_PAYLOAD`` (None: it
    fits). Anything that cannot be encoded counts as infinitely large."""
    try:
        size = app_payload_size(payload)
    except (TypeError, ValueError, RecursionError):
        return 1 << 62
    return size if size > MAX_APP_PAYLOAD else None


class RefusalLog:
    """Rate-limited log lines for messages refused (or changed) because of their size:
    at most one per channel per ``every`` seconds; the lines left out are counted and
    the next line says how many."""

    def __init__(self, logger: logging.Logger, node: str, every: float = REFUSAL_LOG_EVERY,
                 level: int = logging.ERROR) -> None:
        self.logger = logger
        self.node = node
        self.every = every
        self.level = level
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}
        self.refused = 0             # every refusal, logged or not (tests, metrics)

    def refuse(self, now: float, channel: str, size: int, instead: str, *,
               services: int | None = None, limit: int = MAX_APP_PAYLOAD,
               what: str = "message") -> bool:
        """Record one refusal; True when it was logged (not rate-limited away)."""
        self.refused += 1
        last = self._last.get(channel)
        if last is not None and now - last < self.every:
            self._quiet[channel] = self._quiet.get(channel, 0) + 1
            return False
        self._last[channel] = now
        quiet = self._quiet.pop(channel, 0)
        count = f" for {services} services" if services is not None else ""
        more = f" ({quiet} more refused in the last {self.every:g} s)" if quiet else ""
        self.logger.log(self.level, "node %s: %s %s not sent: %d bytes encoded%s, over the "
                        "%d-byte limit; instead: %s%s", self.node, channel, what, size,
                        count, limit, instead, more)
        return True
