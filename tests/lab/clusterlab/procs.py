"""Processes: running commands, identifying a process by (pid, start time) so a reused PID
is never signalled, scanning /proc, and the deadline poller every wait goes through."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .errors import LabError

logger = logging.getLogger(__name__)
T = TypeVar("T")


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float = 60.0, what: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; on failure raise LabError with its stderr tail."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed (run make setup)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what or argv[0]} did not finish within {timeout:g} s") from None
    if check and proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
        raise LabError(f"{what or ' '.join(argv[:3])} failed (rc {proc.returncode}): {tail[0]}")
    return proc


def wait_for(predicate: Callable[[], T], timeout: float, what: str,
             interval: float = 0.05, hint: str = "") -> T:
    """Poll predicate until it returns a truthy value; raise LabError naming `what` after
    `timeout` seconds. Exceptions from the predicate count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = f" (last error: {exc})"
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}{last_error}"
                           + (f"; {hint}" if hint else ""))
        time.sleep(interval)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            data = f.read()
    except OSError:
        return None
    return int(data.rpartition(")")[2].split()[19])


def _state_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[0]
    except OSError:
        return None


@dataclass(frozen=True)
class ProcRef:
    """A process identity that survives PID reuse: pid plus its start time."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcRef:
        start = start_time(pid)
        if start is None:
            raise LabError(f"process {pid} vanished before it could be recorded")
        return cls(pid, start)

    @classmethod
    def from_json(cls, data: dict) -> ProcRef:
        return cls(int(data["pid"]), int(data["start"]))

    def to_json(self) -> dict:
        return {"pid": self.pid, "start": self.start}

    def alive(self) -> bool:
        """True if this very process still runs (a zombie counts as dead)."""
        return start_time(self.pid) == self.start and _state_of(self.pid) not in ("Z", "X")

    def signal(self, sig: int) -> bool:
        """Send sig if this very process still runs; return whether it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        logger.debug("sent signal %d to pid %d", sig, self.pid)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait, then SIGKILL; return when the process is gone."""
        if not self.signal(signal.SIGTERM):
            return
        try:
            wait_for(lambda: not self.alive(), timeout, f"pid {self.pid} to exit")
        except LabError:
            self.signal(signal.SIGKILL)
            wait_for(lambda: not self.alive(), timeout, f"pid {self.pid} to die")


def all_pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return int(f.read().rpartition(")")[2].split()[1])
    except OSError:
        return None


def ns_pid_is_one(pid: int) -> bool:
    """True if pid is PID 1 of a child PID namespace (NSpid: <host pid> 1)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    fields = line.split()[1:]
                    return len(fields) > 1 and fields[-1] == "1"
    except OSError:
        return False
    return False


def container_leader(nspawn_pid: int) -> int | None:
    """The container's init: the descendant of nspawn that is PID 1 in its namespace."""
    for pid in all_pids():
        p: int | None = pid
        for _ in range(4):
            p = parent_of(p) if p else None
            if p == nspawn_pid:
                if ns_pid_is_one(pid):
                    return pid
                break
            if not p or p <= 1:
                break
    return None


def ns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_pidns(leader: int) -> list[int]:
    """Every process sharing the PID namespace of leader (the whole container)."""
    target = ns_inode(f"/proc/{leader}/ns/pid")
    if target is None:
        return []
    return [p for p in all_pids() if ns_inode(f"/proc/{p}/ns/pid") == target]


def rss_kib(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total
