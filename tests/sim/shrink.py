"""Shrinking a failing schedule to the fewest faults that still break the same invariant.

``ddmin`` is Zeller's delta debugging over the indices of the plan's faults: it tries
subsets and their complements at finer and finer granularity, and returns a 1-minimal
subset (removing any single fault makes the failure go away). Each try re-runs the
schedule with the same seed and only the kept faults; a try counts as failing only if it
breaks the same invariant (a different failure is a different bug).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from schedules import Invariant, Schedule, violation_of

MAX_RUNS = 400  # a bound on re-runs (ddmin is quadratic at worst)


def ddmin(items: Sequence[int], fails: Callable[[list[int]], bool],
          max_runs: int = MAX_RUNS) -> tuple[list[int], int]:
    """A 1-minimal failing subset of ``items`` (which fail as a whole) and the number of
    tests run. Stops early, still failing, after ``max_runs``."""
    items, n, runs = list(items), 2, 0
    cache: dict[tuple[int, ...], bool] = {}

    def test(subset: list[int]) -> bool:
        nonlocal runs
        key = tuple(subset)
        if key not in cache:
            runs += 1
            cache[key] = fails(subset)
        return cache[key]

    if items and test([]):
        return [], runs
    while len(items) >= 2 and runs < max_runs:
        size = -(-len(items) // n)
        chunks = [items[k:k + size] for k in range(0, len(items), size)]
        for chunk in chunks:
            if test(chunk):
                items, n = chunk, 2
                break
        else:
            for chunk in chunks:
                rest = [x for x in items if x not in chunk]
                if test(rest):
                    items, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(items):
                    break
                n = min(len(items), 2 * n)
    return items, runs


@dataclass(frozen=True)
class Shrunk:
    keep: list[int]     # indices into the plan
    trace: list[str]    # the shrunk run's trace, up to the violation
    runs: int


def shrink_schedule(sched: Schedule, name: str, start: Iterable[int],
                    invariants: Iterable[Invariant] = ()) -> Shrunk:
    """The fewest faults of ``start`` (plan indices) with which ``sched`` still breaks
    invariant ``name``."""
    invariants = list(invariants)
    keep, runs = ddmin(sorted(start),
                       lambda sub: violation_of(sched, sub, invariants)[0] == name)
    got, trace = violation_of(sched, keep, invariants)
    return Shrunk(keep, trace + ([f"-> invariant {got!r} broken"] if got else []), runs + 1)
