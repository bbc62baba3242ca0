"""Time ratio of a parser at sizes n and factor*n: a slow algorithm fails a test here,
not a production node.

Robust on a busy, shared 2-core machine: each size runs in a batch of calls long enough
(``MIN_BATCH``) that timer and call overhead vanish, small and big are timed alternately
(a burst of load hits both), the best of several rounds counts, and a ratio over the
bound is measured again (up to ``ATTEMPTS`` times) before it fails: noise makes a ratio
worse once, a quadratic algorithm makes it worse every time (64 for 8x input). Python's
cyclic GC is paused while a ratio is measured: a big input allocates enough containers to
set off a full collection, whose cost is that of the whole test process's heap (the full
suite's, in make test), not the parser's (the nested wire shape failed once in make test).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIN_BATCH = 0.004      # seconds a batch of the small input takes at least
ROUNDS = 5
ATTEMPTS = 3
FACTOR = 8
BOUND = 24.0           # linear is 8, n log n about 10; quadratic would be 64


@dataclass(frozen=True)
class Ratio:
    small: float       # seconds per call
    big: float
    ratio: float

    def __str__(self) -> str:
        return (f"{self.small * 1e3:.3f} ms -> {self.big * 1e3:.3f} ms per call, ratio "
                f"{self.ratio:.1f} for {FACTOR}x input (quadratic: {FACTOR ** 2})")


def _batch(fn: Callable[[Any], Any], arg: Any, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn(arg)
    return (time.perf_counter() - start) / loops


def measure(fn: Callable[[Any], Any], small: Any, big: Any) -> Ratio:
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _measure(fn, small, big)
    finally:
        if enabled:
            gc.enable()


def _measure(fn: Callable[[Any], Any], small: Any, big: Any) -> Ratio:
    fn(small)
    fn(big)                                        # warm caches and lazy imports
    once = _batch(fn, small, 1)
    loops = max(1, min(200, int(MIN_BATCH / max(once, 1e-7))))
    best_small = best_big = float("inf")
    for _ in range(ROUNDS):
        best_small = min(best_small, _batch(fn, small, loops))
        best_big = min(best_big, _batch(fn, big, max(1, loops // FACTOR)))
    return Ratio(best_small, best_big, best_big / best_small)


def assert_scales(name: str, fn: Callable[[Any], Any], make: Callable[[int], Any],
                  n: int, bound: float = BOUND) -> Ratio:
    """Fail when ``fn`` on ``make(FACTOR * n)`` takes ``bound`` times ``make(n)``'s."""
    small, big = make(n), make(FACTOR * n)
    for _ in range(ATTEMPTS):
        result = measure(fn, small, big)
        if result.ratio < bound:
            return result
    raise AssertionError(f"{name}: n={n}: {result}")
