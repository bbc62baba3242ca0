"""The ``<heuristic>`` programs (clusterd.qdisk.heuristics): run without a shell, each in
its own process group, killed on timeout; the score counts the heuristics not failed (tko
consecutive failures, a missing or untrusted program, never passed yet)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from clusterd.conf.qdisk import Heuristic
from clusterd.qdisk.heuristics import Heuristics

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="trust.program_problem needs root-owned programs")


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    """A root-owned 0755 directory (tmp_path's parents are root-owned or sticky)."""
    directory = tmp_path / "bin"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    return directory


def program(directory: Path, name: str, body: str, mode: int = 0o755) -> str:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    os.chmod(path, mode)
    os.chown(path, 0, 0)
    return str(path)


def run(coro):
    return asyncio.run(coro)


def test_score_sums_the_heuristics_that_pass(bindir):
    ok = program(bindir, "ok", "exit 0")
    fail = program(bindir, "fail", "exit 1")
    h = Heuristics((Heuristic(ok, score=3), Heuristic(fail, score=5),
                    Heuristic(str(bindir / "missing"), score=7)), "n1")
    assert h.score() == 0                      # nothing run yet: nothing counts
    run(h.run_once())
    assert h.score() == 3
    status = {s["program"]: s for s in h.status()}
    assert status[ok]["failed"] is False and status[ok]["last"] == "exit 0"
    assert status[fail]["failed"] is True and status[fail]["last"] == "exit 1"
    missing = status[str(bindir / "missing")]
    assert missing["failed"] is True
    assert missing["last"].startswith(f"not run: {bindir / 'missing'} ")
    assert "does not exist" in missing["last"]


def test_untrusted_programs_are_not_run(bindir, tmp_path):
    marker = tmp_path / "ran"
    writable = program(bindir, "writable", f"touch {marker}\nexit 0", mode=0o777)
    h = Heuristics((Heuristic(writable, score=1),), "n1")
    run(h.run_once())
    assert h.score() == 0 and not marker.exists()
    (state,) = h.status()
    assert state["last"].startswith("not run:") and "writable by group or others" in \
        state["last"]


def test_a_hung_program_is_killed_with_its_process_group(bindir, tmp_path):
    pidfile = tmp_path / "child.pid"
    hang = program(bindir, "hang", f"sleep 300 &\necho $! > {pidfile}\nwait")
    h = Heuristics((Heuristic(hang, score=2, interval=1),), "n1")
    t0 = time.monotonic()
    run(h.run_once())
    took = time.monotonic() - t0
    assert 0.9 <= took < 5
    assert h.score() == 0
    (state,) = h.status()
    assert state["last"] == "timed out after 1s (process group killed)"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break                       # killed, not yet reaped by init
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the hung heuristic's child {child} survived the timeout")


def test_a_program_killed_by_a_signal_fails(bindir):
    killed = program(bindir, "killed", "kill -9 $$")
    h = Heuristics((Heuristic(killed, score=1),), "n1")
    run(h.run_once())
    assert h.score() == 0 and h.status()[0]["last"] == "killed by signal 9"


def test_tko_consecutive_failures_fail_a_heuristic_one_success_clears_them(bindir, tmp_path):
    flag = tmp_path / "fail"
    flaky = program(bindir, "flaky", f"test ! -e {flag}")
    h = Heuristics((Heuristic(flaky, score=4, tko=3),), "n1")

    async def once() -> int:
        await h.run_once()
        return h.score()

    async def body() -> list[int]:
        scores = [await once()]              # passes
        flag.touch()
        scores += [await once(), await once(), await once(), await once()]
        flag.unlink()
        scores.append(await once())          # one success: counts again
        flag.touch()
        scores.append(await once())          # one failure: below tko
        return scores

    assert run(body()) == [4, 4, 4, 0, 0, 4, 4]
    assert h.status()[0]["failures"] == 1


def test_a_heuristic_that_never_passed_does_not_count(bindir, tmp_path):
    """tko counts failures after a success: a heuristic failing from the start is failed
    at once, whatever its tko (qdiskd: DOWN until its first success)."""
    fail = program(bindir, "fail", "exit 1")
    h = Heuristics((Heuristic(fail, score=2, tko=3),), "n1")
    run(h.run_once())
    assert h.score() == 0
    run(h.run_once())
    assert h.score() == 0


def test_tko_one_fails_at_the_first_failure(bindir, tmp_path):
    flag = tmp_path / "fail"
    flaky = program(bindir, "flaky", f"test ! -e {flag}")
    h = Heuristics((Heuristic(flaky, score=1, tko=1),), "n1")
    run(h.run_once())
    assert h.score() == 1
    flag.touch()
    run(h.run_once())
    assert h.score() == 0


def test_heuristics_run_on_their_own_schedule_and_stop(bindir, tmp_path):
    counter = tmp_path / "count"
    counting = program(bindir, "count", f"echo x >> {counter}")

    async def body() -> None:
        h = Heuristics((Heuristic(counting, score=1, interval=1),), "n1")
        h.start()
        await asyncio.sleep(1.5)
        assert h.score() == 1
        await h.stop()
        runs = len(counter.read_text().splitlines())
        assert runs == 2                     # at 0 s and 1 s
        await asyncio.sleep(1.2)
        assert len(counter.read_text().splitlines()) == runs   # stopped

    run(body())


def test_a_hung_program_does_not_block_the_event_loop(bindir):
    hang = program(bindir, "hang", "sleep 300")

    async def body() -> int:
        h = Heuristics((Heuristic(hang, score=1, interval=1),), "n1")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        t = asyncio.get_running_loop().create_task(ticker())
        await h.run_once()
        t.cancel()
        return ticks

    assert run(body()) >= 10


def test_no_heuristics_score_zero():
    h = Heuristics((), "n1")
    run(h.run_once())
    assert h.score() == 0 and h.status() == []
