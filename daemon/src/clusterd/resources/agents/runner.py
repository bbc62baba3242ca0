"""One hygienic subprocess helper for resource agents (script, systemd, ocf).

Every agent program runs with:
- argv as data (never a shell), stdin from /dev/null unless ``input`` is given;
- a clean environment: a fixed ``PATH``, ``LANG=C``, plus only what the caller passes;
- its own session and process group (``start_new_session``), cwd ``/``;
- a deadline: on expiry the whole process group gets SIGTERM, then SIGKILL after a short
  grace, and the result says ``timed_out``;
- captured stdout/stderr bounded to ``max_output`` bytes each (the rest is drained and
  counted, so a chatty agent cannot fill memory or block on a full pipe);
- a redaction hook applied to the captured text before anyone sees it.

A program that exits while a background child still holds its stdout (``daemon &`` in an
init script) does not make the caller wait for that child: once the main process has
exited, output collection stops after ``drain_grace`` seconds.

The process groups of the programs running now are known (``running_groups``), so that a
daemon that exits can kill what no longer matters at once (``kill_running``) instead of
granting each its SIGTERM grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MAX_OUTPUT = 64 * 1024
REDACTED = "***"

Redactor = Callable[[str], str]
_RUNNING: set[int] = set()       # process groups of agent programs running now


def running_groups() -> frozenset[int]:
    return frozenset(_RUNNING)


def kill_running(sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to every agent process group still running (groups this process
    started, never anything else); returns the groups signalled."""
    hit = []
    for pgid in sorted(_RUNNING):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
            hit.append(pgid)
    return hit


def no_redaction(text: str) -> str:
    return text


def redact_values(secrets: Sequence[str]) -> Redactor:
    """A redactor that replaces every occurrence of each non-empty secret value."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _redact(text: str) -> str:
        for value in values:
            text = text.replace(value, REDACTED)
        return text

    return _redact


@dataclass(frozen=True)
class RunResult:
    """What a finished (or killed) agent program did. ``rc`` is None when it never ran;
    negative when it died by a signal (``-9`` = SIGKILL), as in asyncio."""

    argv: tuple[str, ...]
    rc: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    error: str = ""
    truncated: bool = False

    @property
    def ran(self) -> bool:
        return self.rc is not None


@dataclass(frozen=True)
class Runner:
    """Runs agent programs. Inject one into agents (tests give a different ``path`` or
    ``env``); the default is the production setting."""

    path: str = DEFAULT_PATH
    env: Mapping[str, str] = field(default_factory=dict)
    max_output: int = DEFAULT_MAX_OUTPUT
    kill_grace: float = 2.0
    drain_grace: float = 0.5

    @property
    def cleanup_budget(self) -> float:
        """Upper bound on what ``run`` may take beyond its timeout (TERM, KILL, reaping,
        draining): callers' outer deadlines add it so the runner's own kill finishes."""
        return 3 * self.kill_grace + self.drain_grace + 0.5

    def base_env(self) -> dict[str, str]:
        env = {"PATH": self.path, "LANG": "C", "LC_ALL": "C", "HOME": "/root"}
        env.update(self.env)
        return env

    def which(self, program: str) -> str | None:
        """Resolve a program name on this runner's PATH (absolute names are kept)."""
        if os.path.isabs(program):
            return program if os.access(program, os.X_OK) else None
        for directory in self.path.split(":"):
            candidate = os.path.join(directory, program)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        return None

    async def run(self, argv: Sequence[str], *, timeout: float,
                  env: Mapping[str, str] | None = None, input: bytes | None = None,
                  redact: Redactor = no_redaction) -> RunResult:
        """Run ``argv`` to completion or until ``timeout`` seconds; never raises for a
        failing or missing program (see ``RunResult.error``). Cancellation kills the
        process group and propagates."""
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        argv = tuple(argv)
        full_env = self.base_env()
        if env:
            full_env.update(env)
        exe = self.which(argv[0])
        started = time.monotonic()
        if exe is None:
            return RunResult(argv, None, "", "", 0.0,
                             error=f"{argv[0]}: not found or not executable (PATH={self.path})")
        loop = asyncio.get_running_loop()
        # Shielded: a cancellation while asyncio connects the pipes must still reach the
        # process group (asyncio alone would SIGKILL the leader only, then wait for the
        # pipes its children hold).
        create = asyncio.ensure_future(loop.subprocess_exec(
            lambda: _Collector(loop, self.max_output), exe, *argv[1:], env=full_env,
            cwd="/", start_new_session=True,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE))
        try:
            transport, proto = await asyncio.shield(create)
        except OSError as exc:
            return RunResult(argv, None, "", "", time.monotonic() - started,
                             error=f"{argv[0]}: cannot execute: {exc.strerror or exc}")
        except asyncio.CancelledError:
            with contextlib.suppress(OSError):
                transport, proto = await create
                # known to kill_running() while it is being stopped: a daemon exiting in
                # this window kills it at once instead of waiting out the TERM grace
                _RUNNING.add(transport.get_pid())
                try:
                    await self._kill_group(transport.get_pid(), proto)
                finally:
                    _RUNNING.discard(transport.get_pid())
                    transport.close()
            raise
        timed_out = False
        _RUNNING.add(transport.get_pid())
        try:
            if input is not None:
                stdin = transport.get_pipe_transport(0)
                if stdin is not None:
                    stdin.write(input)
                    stdin.write_eof()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(proto.exited)
            except TimeoutError:
                timed_out = True
                logger.warning("%s: timed out after %.1fs, killing process group %d",
                               argv[0], timeout, transport.get_pid())
                await self._kill_group(transport.get_pid(), proto)
            # The main process is gone; grandchildren holding the pipes get drain_grace.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.drain_grace):
                    await asyncio.shield(proto.pipes_closed)
        except asyncio.CancelledError:
            await self._kill_group(transport.get_pid(), proto)
            raise
        finally:
            _RUNNING.discard(transport.get_pid())
            transport.close()
        return RunResult(argv, transport.get_returncode(), redact(proto.out.text()),
                         redact(proto.err.text()), time.monotonic() - started,
                         timed_out=timed_out, truncated=proto.out.dropped + proto.err.dropped > 0)

    async def _kill_group(self, pgid: int, proto: _Collector) -> None:
        """SIGTERM the process group, then SIGKILL after ``kill_grace`` (the group is the
        session we created, so this never reaches clusterd itself); then wait, bounded,
        until no live member is left, so a following start cannot meet a dying instance."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                async with asyncio.timeout(self.kill_grace):
                    await asyncio.shield(proto.exited)
            except TimeoutError:
                continue
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)   # stragglers of the group
        deadline = time.monotonic() + self.kill_grace
        while await asyncio.to_thread(live_members, pgid):
            if time.monotonic() >= deadline:
                logger.warning("process group %d still has live members after SIGKILL", pgid)
                return
            await asyncio.sleep(0.01)


def live_members(pgid: int, proc: str = "/proc") -> list[int]:
    """PIDs in process group ``pgid`` that are not zombies (a /proc scan)."""
    found = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat"), encoding="ascii",
                      errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] not in ("Z", "X") and fields[2] == str(pgid):
            found.append(int(name))
    return found


class _Capture:
    """Keeps at most ``limit`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int):
        self.limit = limit
        self.chunks: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = max(self.limit - self.kept, 0)
        if room:
            self.chunks.append(chunk[:room])
            self.kept += min(room, len(chunk))
        self.dropped += max(len(chunk) - room, 0)

    def text(self) -> str:
        text = b"".join(self.chunks).decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[... {self.dropped} more bytes dropped]"
        return text


class _Collector(asyncio.SubprocessProtocol):
    """Collects bounded output and reports the exit of the main process as soon as it
    happens (``Process.wait()`` would also wait for every pipe to close)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int):
        self.out = _Capture(limit)
        self.err = _Capture(limit)
        self.exited: asyncio.Future[None] = loop.create_future()
        self.pipes_closed: asyncio.Future[None] = loop.create_future()
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        (self.out if fd == 1 else self.err).add(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open and not self.pipes_closed.done():
            self.pipes_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
