"""Simulator figures (issue 14): how many random whole-cluster schedules a run covers and
how fast, invariant violations, and the share of schedules that exercised each fault.

The volume mix of ``tests/sim/schedules.py`` (the one ``make test``'s
``test_random_schedules_slow`` runs 10,000 of, and ``make soak`` runs for minutes) on
every core, new seeds, for ``RHC_BENCH_SIM_SECONDS`` (default 60) of wall time; then the
services layer's random schedules (``tests/sim/test_sim_services.py``: the real services
core on every node, fake agents and fence device) for a fixed count. Runnable alone:
``.venv/bin/python tests/bench/bench_sim.py``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "sim")]

from schedules import CLOCK_STOPS, new_seeds
from volume import run

SECONDS = float(os.environ.get("RHC_BENCH_SIM_SECONDS", "60"))
SERVICE_SCHEDULES = 200


def _services(seeds: list[int]) -> tuple[int, float, float, list[str]]:
    """Run the services random test body for ``seeds``: (runs, wall s, virtual s, failures)."""
    from test_sim_services import random_run
    logging.disable(logging.CRITICAL)
    failures = []
    virtual = 0.0
    start = time.monotonic()
    for seed in seeds:
        try:
            virtual += random_run(seed).now
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0][:300])
    return len(seeds), time.monotonic() - start, virtual, failures


def main() -> str:
    workers = os.cpu_count() or 1
    tally = run(minutes=SECONDS / 60, workers=workers, test="random_schedules_slow")
    print(tally.summary().splitlines()[0], flush=True)
    lines = ["## Simulator (bench_sim.py, issue 14)", "",
             (f"The volume mix (`tests/sim/schedules.py`: clock offsets and drift, freezes "
              f"(a suspended VM: in {CLOCK_STOPS:.0%} of them its clock stops, as a KVM "
              f"guest's does, otherwise it jumps on resume; `RHC_SIM_CLOCK_STOPS`), "
              f"wall-clock jumps, receiver restarts, state-dir loss, crashes, partitions, "
              f"pauses, proposals and offline edits) with new seeds for {SECONDS:.0f} s on "
              f"{workers} worker processes; `make test` runs 10,000 of these "
              "(`test_random_schedules_slow`), `make soak MINUTES=n` more."), "",
             "| figure | value |", "|---|---|",
             f"| schedules run | {tally.schedules:,} |",
             f"| schedules per wall second | {tally.schedules / tally.wall:.1f} |",
             f"| schedules per CPU second | {tally.schedules / max(tally.cpu, 1e-9):.1f} |",
             f"| simulated seconds per wall second | {tally.virtual / tally.wall:.0f} |",
             f"| invariant violations | {len(tally.failures)} |", "",
             "Share of schedules that exercised each fault kind:", "",
             "| kind | share |", "|---|---|"]
    lines += [f"| {k} | {v:.0%} |" for k, v in tally.shares().items()]
    if tally.failures:
        lines += ["", "Violations (seed, invariant):", ""]
        lines += [f"- {f.splitlines()[0][:200]}" for f in tally.failures[:10]]
    n, wall, virtual, failures = _services(new_seeds(SERVICE_SCHEDULES))
    print(f"services: {n} schedules in {wall:.1f} s, {len(failures)} failed", flush=True)
    lines += ["", (f"The services layer in the simulator (`tests/sim/services_sim.py`: the "
                   f"real `ServicesCore` on 3-5 nodes; crashes, restarts, partitions, "
                   f"pauses and freezes, most with a stopped clock; fake agents that fail, "
                   f"hang and are slow, a fake fence device, liveness checked where "
                   f"nothing keeps a service down; one process): {n} random schedules in "
                   f"{wall:.1f} s ({n / wall:.1f} per second, "
                   f"{virtual / wall:.0f} simulated seconds per wall second), "
                   f"{len(failures)} invariant violations.")]
    lines += [f"- {f}" for f in failures[:10]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
