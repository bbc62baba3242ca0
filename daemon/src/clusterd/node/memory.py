"""An idle daemon gives back what it holds only for a config change (issue 18 item 4).

The compiled cluster.rng, its linear twin and the rules read from it are about 3 MB of
libxml2 and Python structures, used only while a config is validated (at start, on a
proposal, a pull or a reload): minutes or months apart. Once no validation has run for
:data:`QUIET_S`, the node's cycle drops them (:func:`clusterd.conf.rng.release`; the
next validation builds them again in about 30 ms, in its worker thread) and asks glibc
to return the freed pages (``malloc_trim``: freeing alone leaves them in the process,
scattered among live allocations). Measured on 3 loopback daemons: about 2 MB of RSS
per daemon. Nothing the daemon decides depends on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from clusterd.conf import gcpause, rng

logger = logging.getLogger(__name__)

QUIET_S = 30.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, None elsewhere (musl has none: the pages stay)."""
    import ctypes  # here: 0.2 MB, worth it only once there is something to give back

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


class MemoryKeeper:
    """Called from the node's cycle; releases the schema after a quiet while."""

    def __init__(self, quiet_s: float = QUIET_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s = quiet_s
        self.clock = clock
        self.releases = 0

    def tick(self) -> bool:
        """True when the schema was released now."""
        quiet = gcpause.quiet_for(self.clock())
        if quiet is None or quiet < self.quiet_s or not rng.release():
            return False
        self.releases += 1
        trim = _malloc_trim()
        if trim is not None:
            trim(0)
        logger.debug("no config validated for %.0f s: compiled schema released", quiet)
        return True
