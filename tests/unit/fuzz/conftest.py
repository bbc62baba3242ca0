"""Shared pieces of the fuzz tests: a seed for the seeded-random tests (new each run,
printed, replayed with ``CLUSTERD_FUZZ_SEED``) and a guard that fails a test when anything
logged a traceback (a rejection is a counted drop or a one-line warning, never a stack;
asyncio's "Task exception was never retrieved" carries one too)."""

from __future__ import annotations

import logging
import os
import random

import pytest

SEED_ENV = "CLUSTERD_FUZZ_SEED"


@pytest.fixture
def fuzz_seed(request) -> int:
    """A fresh seed per run; pytest shows the printed line with a failure."""
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"{request.node.name}: fuzz seed {seed} (replay: {SEED_ENV}={seed})")
    return seed


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.stack_info:
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_tracebacks():
    """Every test here: nothing logged with a traceback (at any level from WARNING up:
    the clusterd loggers are held at WARNING, so the debug lines of thousands of drops
    cost nothing). Plain error lines are the product's business (a config conflict is
    one); a traceback means an exception got where it should not."""
    handler = _Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    clusterd = logging.getLogger("clusterd")
    level = clusterd.level
    clusterd.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        clusterd.setLevel(level)
        root.removeHandler(handler)
    shown = [f"{r.name}: {r.getMessage()}: {r.exc_info[1]!r}" if r.exc_info
             else f"{r.name}: {r.getMessage()}" for r in handler.records]
    assert not shown, "logged with a traceback:\n" + "\n".join(shown)
