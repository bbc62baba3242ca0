"""Python's cyclic garbage collector paused while a config is parsed and validated.

A validation builds and drops objects for every element (element proxies, paths,
problems, resources: over 100,000 alive at once for 20,000 services), none in reference
cycles: reference counting frees them all. Each full collection the collector starts
meanwhile walks every object of the process again; a file of 20,000 services set off
five of them, 0.15-0.25 s of about 1 s of ``validate_bytes``. :func:`gc_paused` pauses
it for the duration (``conf.parse`` and ``conf.rmcheck`` use it); it runs as usual once
the last validation in progress (of any thread) is done, unless it was disabled before.
Nothing a validation decides depends on it.

Every validation passes through here, so this also tells how long none has run
(:func:`quiet_for`): the daemon gives the compiled schema back after a quiet while
(``node/memory.py``).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_GC_LOCK = threading.Lock()
_gc_pauses = 0              # validations running now (threads may validate at once)
_gc_resume = False          # whether the collector was enabled when the first one began
_last_end = time.monotonic()   # when the last validation ended (or this module loaded)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector paused in this block (see the module doc); blocks may nest and
    overlap in several threads."""
    global _gc_pauses, _gc_resume, _last_end
    with _GC_LOCK:
        if _gc_pauses == 0:
            _gc_resume = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pauses -= 1
            _last_end = time.monotonic()
            if _gc_pauses == 0 and _gc_resume:
                gc.enable()


def quiet_for(now: float) -> float | None:
    """Seconds (``now`` from time.monotonic) since the last validation ended; None while
    one runs."""
    with _GC_LOCK:
        return None if _gc_pauses else now - _last_end
