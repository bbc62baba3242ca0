"""Random fault schedules: a fast default run and a slow run of thousands.

Each schedule is replayable: ``RHC_SIM_SEED=<n> .venv/bin/pytest tests/sim -k random``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
from concurrent.futures import ProcessPoolExecutor

import pytest
from schedules import random_schedule, seeds

FAST = range(150)
SLOW = range(1000, 3000)


@pytest.fixture(autouse=True)
def _quiet():
    """Thousands of schedules log a lot of expected drops; keep the output readable."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_random_schedules_fast() -> None:
    for seed in seeds(FAST):
        random_schedule(seed, faults=4, horizon=10.0, test="random_schedules_fast")


def test_config_edit_schedules_new_seeds() -> None:
    """Random schedules where stopped nodes' files are edited (higher versions, same version
    with other content, invalid), with the other faults: nothing edited offline is ever
    installed or accepted, no accepted config is lost, and a quorate cluster converges on
    one accepted config. New seeds every run (printed on failure with the replay command)."""
    base = random.SystemRandom().randrange(1 << 40)
    for seed in seeds(range(base, base + 60)):
        random_schedule(seed, faults=6, horizon=12.0, test="config_edit_schedules",
                        edits=0.35)


def _one(seed: int) -> str | None:
    logging.disable(logging.WARNING)
    try:
        random_schedule(seed, faults=8, horizon=20.0, test="random_schedules_slow")
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.mark.slow
def test_random_schedules_slow() -> None:
    """Thousands of longer schedules on every core (a dead worker fails the test with
    BrokenProcessPool instead of hanging)."""
    todo = seeds(SLOW)
    workers = min(len(todo), os.cpu_count() or 1)
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        failures = [f for f in pool.map(_one, todo, chunksize=16) if f]
    assert not failures, f"{len(failures)} schedules failed; first:\n{failures[0]}"
