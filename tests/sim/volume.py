"""Running many random schedules on every core: the slow test, ``make soak`` and the
``sim`` benchmark share this.

``run(seeds=..., minutes=...)`` runs schedules of the volume mix (``schedules.MIX``) in a
pool of forked workers (a dead worker fails with BrokenProcessPool instead of hanging) and
returns a ``Tally``: how many ran, virtual and wall seconds, how many schedules exercised
each fault kind, and every failure (seed, invariant, shrunk trace).

``python tests/sim/volume.py MINUTES`` is ``make soak MINUTES=n``: new seeds until the
time is up, the counts printed; exit status 1 if any schedule failed.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from schedules import KINDS, SETUP_KINDS, new_seeds, random_schedule

BATCH = 16  # seeds per task


@dataclass
class Tally:
    schedules: int = 0
    virtual: float = 0.0      # simulated seconds
    cpu: float = 0.0          # worker CPU seconds
    wall: float = 0.0
    kinds: Counter = field(default_factory=Counter)  # schedules that exercised each kind
    failures: list[str] = field(default_factory=list)
    failed_seeds: list[int] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.schedules += other.schedules
        self.virtual += other.virtual
        self.cpu += other.cpu
        self.kinds.update(other.kinds)
        self.failures += other.failures
        self.failed_seeds += other.failed_seeds

    def shares(self) -> dict[str, float]:
        """The share of schedules that exercised each fault kind (setup kinds first)."""
        n = max(1, self.schedules)
        return {k: self.kinds[k] / n for k in SETUP_KINDS + KINDS + ("clock_stop", "edit")}

    def summary(self) -> str:
        rate = self.schedules / self.wall if self.wall else 0.0
        lines = [(f"{self.schedules} schedules in {self.wall:.0f} s wall ({rate:.1f}/s, "
                  f"{self.schedules / max(self.cpu, 1e-9):.1f} per CPU second), "
                  f"{self.virtual:.0f} simulated seconds "
                  f"({self.virtual / max(self.wall, 1e-9):.0f} per wall second), "
                  f"{len(self.failures)} failed")]
        lines.append("schedules that exercised each fault kind: " + ", ".join(
            f"{k} {v:.0%}" for k, v in self.shares().items()))
        for seed, failure in zip(self.failed_seeds, self.failures):
            lines.append(f"--- seed {seed}\n{failure}")
        return "\n".join(lines)


def run_seeds(seeds: list[int], test: str = "random_schedules_slow") -> Tally:
    """Run the volume mix for ``seeds`` in this process."""
    logging.disable(logging.CRITICAL)  # thousands of schedules log many expected drops
    tally = Tally()
    start = time.process_time()
    for seed in seeds:
        tally.schedules += 1
        try:
            sim = random_schedule(seed, faults=None, horizon=None, test=test)
        except AssertionError as exc:
            tally.failures.append(str(exc))
            tally.failed_seeds.append(seed)
            continue
        tally.virtual += sim.now
        tally.kinds.update(sim.kinds)
    tally.cpu = time.process_time() - start
    return tally


def run(seeds: list[int] | None = None, minutes: float | None = None,
        workers: int | None = None, test: str = "random_schedules_slow") -> Tally:
    """Run ``seeds`` (or new seeds for ``minutes``) on ``workers`` processes."""
    workers = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("fork")
    tally = Tally()
    begin = time.monotonic()
    deadline = begin + minutes * 60 if minutes is not None else float("inf")
    todo = list(seeds) if seeds is not None else None
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending = set()

        def submit() -> bool:
            if todo is None:
                if time.monotonic() >= deadline:
                    return False
                batch = new_seeds(BATCH)
            else:
                if not todo:
                    return False
                batch, todo[:BATCH] = todo[:BATCH], []
            pending.add(pool.submit(run_seeds, batch, test))
            return True

        for _ in range(workers * 2):
            submit()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                tally.add(fut.result())
                submit()
    tally.wall = time.monotonic() - begin
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description="random simulator schedules, new seeds")
    parser.add_argument("minutes", type=float)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    tally = run(minutes=args.minutes, workers=args.workers, test="random_schedules_slow")
    print(tally.summary())
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
