"""Daemons known by their pid files, for built-in agents that start one (``samba``).

Edge code (``/proc`` reads, signals; no subprocess). A pid is only ever taken as a
daemon's when ``/proc/PID`` shows a live (not zombie) process of that program: its name
in ``/proc/PID/stat`` or the base name of its ``exe``. So a stale pid file whose pid now
belongs to another process is never acted on, and ``terminate`` signals nothing else:

- ``survey(directory, program)``: the ``PROGRAM*.pid`` files of a directory private to
  one instance (Samba 4 writes ``smbd.pid``, Samba 3 ``smbd-CONFIG.pid``): the live pids
  they name, and the stale files;
- ``terminate(leaders, wait)``: SIGTERM each leader, poll until it and the members of its
  process group running the same program (a daemon's children) are gone, at most
  ``wait`` seconds, then SIGKILL what is left and wait ``kill_grace`` more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from clusterd.resources.agents.runner import live_members

logger = logging.getLogger(__name__)

KILL_GRACE = 5.0
POLL_FIRST = 0.02
POLL_MAX = 0.25


def is_program(pid: int, program: str, proc: str = "/proc") -> bool:
    """``pid`` is a live (not zombie) process running ``program``."""
    try:
        with open(os.path.join(proc, str(pid), "stat"), encoding="utf-8",
                  errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return False
    comm, _sep, rest = stat.partition(" (")[2].rpartition(") ")
    if rest[:1] in ("Z", "X", ""):
        return False
    if comm == program:
        return True
    try:
        exe = os.readlink(os.path.join(proc, str(pid), "exe"))
    except OSError:
        return False
    return os.path.basename(exe.removesuffix(" (deleted)")) == program


def read_pid(path: str) -> int | None:
    """The pid a pid file names (None: unreadable, empty or not a pid)."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(32).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 1 else None


def pid_files(directory: str, program: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, n) for n in sorted(names)
            if n.startswith(program) and n.endswith(".pid")]


@dataclass(frozen=True)
class Survey:
    """One program's pid files: the live pids they name, and the others (file, pid)."""

    live: tuple[int, ...]
    stale: tuple[tuple[str, int | None], ...]

    def why_dead(self, program: str, directory: str) -> str:
        """Why ``program`` counts as not running, for messages."""
        if not self.stale:
            return f"no {program}*.pid in {directory}"
        path, pid = self.stale[0]
        named = f"pid {pid}" if pid is not None else "no pid"
        return f"{os.path.basename(path)} names {named}, which is not a running {program}"


def survey(directory: str, program: str, proc: str = "/proc") -> Survey:
    live: list[int] = []
    stale: list[tuple[str, int | None]] = []
    for path in pid_files(directory, program):
        pid = read_pid(path)
        if pid is not None and is_program(pid, program, proc):
            live.append(pid)
        else:
            stale.append((path, pid))
    return Survey(tuple(live), tuple(stale))


def processes(leaders: Mapping[int, str], proc: str = "/proc") -> dict[int, str]:
    """The live processes of these daemons (pid -> program): each leader, and the
    members of its process group running the same program."""
    alive = {}
    for leader, program in leaders.items():
        for pid in {leader, *live_members(leader, proc)}:
            if is_program(pid, program, proc):
                alive[pid] = program
    return alive


def named(procs: Mapping[int, str]) -> str:
    """``smbd (pid 12), nmbd (pid 14)``; "" for none."""
    return ", ".join(f"{program} (pid {pid})" for pid, program in sorted(procs.items()))


@dataclass(frozen=True)
class Termination:
    """What ``terminate`` met (pid -> program): the leaders it signalled, what needed
    SIGKILL, and what still ran after that."""

    stopped: Mapping[int, str] = field(default_factory=dict)
    killed: Mapping[int, str] = field(default_factory=dict)
    left: Mapping[int, str] = field(default_factory=dict)


async def wait_gone(leaders: Mapping[int, str], wait: float,
                    proc: str = "/proc") -> dict[int, str]:
    """Poll until nothing of ``leaders`` runs or ``wait`` seconds pass; what is left."""
    deadline = time.monotonic() + wait
    delay = POLL_FIRST
    while True:
        left = await asyncio.to_thread(processes, leaders, proc)
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, POLL_MAX)


async def terminate(leaders: Mapping[int, str], wait: float, *, who: str,
                    proc: str = "/proc", kill_grace: float = KILL_GRACE) -> Termination:
    """SIGTERM each leader (a verified daemon), wait up to ``wait`` seconds for it and
    its group, then SIGKILL what is left (re-verified) and wait ``kill_grace``."""
    if not leaders:
        return Termination()
    for pid, program in leaders.items():
        logger.info("%s: stopping %s (pid %d) with SIGTERM", who, program, pid)
        _signal(pid, signal.SIGTERM)
    left = await wait_gone(leaders, wait, proc)
    if not left:
        return Termination(stopped=dict(leaders))
    logger.warning("%s: %s still running %gs after SIGTERM: sending SIGKILL", who,
                   named(left), wait)
    for pid, program in left.items():
        if is_program(pid, program, proc):   # not a pid reused since the last look
            _signal(pid, signal.SIGKILL)
    return Termination(stopped=dict(leaders), killed=left,
                       left=await wait_gone(leaders, kill_grace, proc))


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
