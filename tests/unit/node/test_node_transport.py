"""ClusterEndpoint ticks its core at the deadlines the core names, on a real event loop."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise
from types import SimpleNamespace

from clusterd.membership.host import HostOutput
from clusterd.node.transport import ClusterEndpoint


class DeadlineCore:
    """A core with fixed deadlines: ``next_deadline`` names the first one still in the
    future (as the real core does), so at the very instant a deadline comes due it
    already names the next one."""

    def __init__(self, deadlines: list[float]) -> None:
        self.deadlines = deadlines
        self.cfg = SimpleNamespace(token=1.0)
        self.me = 1
        self.ticks: list[float] = []

    def next_deadline(self, now: float) -> float:
        return min((t for t in self.deadlines if t > now), default=float("inf"))

    def tick(self, now: float) -> HostOutput:
        self.ticks.append(now)
        return HostOutput()


def test_every_deadline_gets_a_tick_on_time() -> None:
    async def scenario() -> DeadlineCore:
        start = time.monotonic()
        core = DeadlineCore([start + 0.05, start + 0.10, start + 0.15])
        endpoint = ClusterEndpoint(core, on_events=lambda events: None)  # type: ignore[arg-type]
        runner = asyncio.create_task(endpoint.run())
        async with asyncio.timeout(5):
            while len(core.ticks) < 3:
                await asyncio.sleep(0.01)
        runner.cancel()
        return core

    core = asyncio.run(scenario())
    due = core.deadlines
    # each deadline is ticked at or after it and before the next one comes due
    assert [sum(1 for t in core.ticks if a <= t < b) for a, b in pairwise(due)] == [1, 1]
    assert core.ticks[2] >= due[2]
