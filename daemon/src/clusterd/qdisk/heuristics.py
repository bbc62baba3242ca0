"""The quorum disk's ``<heuristic>`` programs, each on its own schedule (qdisk(5) 3.2).

Each heuristic runs every ``interval`` seconds, without a shell, in its own process group,
with a timeout of ``interval`` (the group is killed when it runs over). It counts as
failed after ``tko`` consecutive failures (a non-zero exit, a timeout, a program that is
missing or that root must not run: ``clusterd.trust.program_problem``, checked before
every run). The score is the sum of the scores of the heuristics not failed. Runs never
block the event loop, and a hung or missing program only lowers the score.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

from clusterd import trust
from clusterd.conf.qdisk import Heuristic

logger = logging.getLogger(__name__)


@dataclass
class HeuristicState:
    heuristic: Heuristic
    failures: int = 0
    runs: int = 0
    last: str = "not run yet"

    @property
    def failed(self) -> bool:
        # never passed yet counts as failed (qdiskd: a heuristic is DOWN until its first
        # success; only then do tko misses take it down)
        return self.failures == self.runs or self.failures >= self.heuristic.tko


class Heuristics:
    def __init__(self, heuristics: tuple[Heuristic, ...], node: str) -> None:
        self.node = node
        self.states = [HeuristicState(h) for h in heuristics]
        self._tasks: list[asyncio.Task] = []

    def score(self) -> int:
        return sum(s.heuristic.score for s in self.states if not s.failed)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop(s), name=f"qdisk heuristic {i}")
                       for i, s in enumerate(self.states)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def run_once(self) -> None:
        """Run every heuristic once (the runner's first score, and tests)."""
        await asyncio.gather(*(self._run(s) for s in self.states))

    def status(self) -> list[dict[str, object]]:
        return [{"program": s.heuristic.program, "score": s.heuristic.score,
                 "interval": s.heuristic.interval, "tko": s.heuristic.tko,
                 "failed": s.failed, "failures": s.failures, "last": s.last}
                for s in self.states]

    async def _loop(self, state: HeuristicState) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self._run(state)
            await asyncio.sleep(max(state.heuristic.interval - (loop.time() - started), 0.05))

    async def _run(self, state: HeuristicState) -> None:
        h = state.heuristic
        was_failed = state.failed and state.runs > 0
        problem = await asyncio.to_thread(trust.program_problem, h.program)
        if problem is not None:
            ok, state.last = False, f"not run: {h.program} {problem}"
        else:
            ok, state.last = await _execute(h.program, float(h.interval))
        state.runs += 1
        state.failures = 0 if ok else state.failures + 1
        if state.failed != was_failed or (state.runs == 1 and state.failed):
            if state.failed:
                logger.warning("node %s: quorum disk heuristic %s failed (%s): score now %d",
                               self.node, h.program, state.last, self.score())
            else:
                logger.info("node %s: quorum disk heuristic %s passes again: score now %d",
                            self.node, h.program, self.score())


async def _execute(program: str, timeout: float) -> tuple[bool, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            program, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return False, f"cannot run: {exc.strerror or exc}"
    try:
        async with asyncio.timeout(timeout):
            code = await proc.wait()
    except TimeoutError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()
        return False, f"timed out after {timeout:g}s (process group killed)"
    except asyncio.CancelledError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise
    if code == 0:
        return True, "exit 0"
    return False, f"exit {code}" if code > 0 else f"killed by signal {-code}"
