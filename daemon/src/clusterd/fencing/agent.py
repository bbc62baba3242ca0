"""Fence-agent runner (edge: asyncio subprocesses).

Every standard ``fence_*`` agent is run the same way (DESIGN 5, RELIABILITY S8/S13):
options on **stdin** as ``key=value`` lines (never argv, never the environment), a clean
environment (fixed PATH, LANG=C), a new session so that a timeout kills the whole process
group, and a path check (root-owned, not group/world-writable, parents likewise).
``passwd_script`` is run by clusterd itself the same way and its first stdout line is given
to the agent as the password; it and the other program options (``ssh_path`` ...) are
checked again before each run (``clusterd.trust``). Output is redacted of secrets before it
is logged or returned. Agent behaviour (rc, output, signal, hang) never raises from
:meth:`run`; the interpreting helpers raise :class:`AgentError` with a sentence saying what
went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import re
import signal
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clusterd import trust
from clusterd.errors import AgentError
from clusterd.fencing import secrets
from clusterd.fencing.metadata import AgentMetadata, parse_metadata
from clusterd.fencing.redact import Redactor, normalize_key

logger = logging.getLogger(__name__)

AGENT_NAME = re.compile(r"^fence_[A-Za-z0-9_.-]+$")
_OPTION_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
DEFAULT_DIRS: tuple[str, ...] = ("/usr/sbin", "/sbin", "/usr/bin")
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}
MAX_OUTPUT = 256 * 1024
KILL_GRACE = 5.0
_RC_MEANING = {1: "the agent reported failure", 2: "the agent refused its arguments"}


class PowerState(enum.Enum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FenceAgentResult:
    """One agent run; ``stdout``/``stderr`` are already redacted."""

    agent: str
    action: str
    rc: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    truncated: bool = False
    garbage: bool = False

    @property
    def signal(self) -> int | None:
        return -self.rc if self.rc is not None and self.rc < 0 else None

    def last_line(self) -> str:
        for text in (self.stderr, self.stdout):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1][:200]
        return ""

    def failure(self, timeout: float | None = None) -> str | None:
        """Why this run cannot be trusted as a success, or None if rc 0 and readable."""
        if self.timed_out:
            limit = f" after {timeout:g}s" if timeout else ""
            return f"timed out{limit}; its process group was killed"
        if self.signal is not None:
            return f"crashed: killed by signal {_signame(self.signal)}"
        if self.garbage:
            return f"printed unreadable output (binary garbage), rc={self.rc}; not trusted"
        if self.rc == 0:
            return None
        meaning = _RC_MEANING.get(self.rc or 0, f"unknown exit code {self.rc}")
        detail = self.last_line()
        return f"{meaning} (rc={self.rc})" + (f": {detail}" if detail else "")

    def error(self, reason: str) -> AgentError:
        return AgentError(self.agent, self.action, self.rc, self.stdout, self.stderr, reason)


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


def _is_garbage(data: bytes) -> bool:
    if b"\x00" in data:
        return True
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    bad = sum(1 for ch in text if not ch.isprintable() and ch not in "\n\r\t")
    return bad > max(2, len(text) // 20)


def check_trusted(path: str, what: str = "agent") -> str:
    """Resolve ``path`` and refuse it unless it and every parent directory are owned by
    root and not group/world-writable (root-owned sticky directories such as /tmp are
    accepted as parents). Returns the resolved path."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError as exc:
        raise AgentError(os.path.basename(path), "exec", None,
                         reason=f"{what} {path} cannot be used: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode) or not os.access(real, os.X_OK):
        raise AgentError(os.path.basename(path), "exec", None,
                         reason=f"{what} {real} is not an executable file")
    _check_owner(real, st, what, is_dir=False)
    parent = os.path.dirname(real)
    while True:
        _check_owner(parent, os.stat(parent), f"directory of {what}", is_dir=True)
        if parent == "/":
            break
        parent = os.path.dirname(parent)
    return real


def _check_owner(path: str, st: os.stat_result, what: str, is_dir: bool) -> None:
    name = os.path.basename(path) or path
    if st.st_uid != 0:
        raise AgentError(name, "exec", None,
                         reason=f"{what} {path} is owned by uid {st.st_uid}, not root; refused")
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not (is_dir and st.st_mode & stat.S_ISVTX):
        raise AgentError(name, "exec", None,
                         reason=f"{what} {path} is group- or world-writable "
                                f"(mode {stat.S_IMODE(st.st_mode):04o}); refused")


def stdin_payload(action: str, options: Mapping[str, str]) -> bytes:
    """The ``key=value`` lines an agent reads; refuses keys/values that could inject."""
    lines = [f"action={action}"]
    for key, value in options.items():
        if not _OPTION_KEY.match(key):
            raise AgentError("?", action, None, reason=f"option name {key!r} is not valid")
        if normalize_key(key) == "action":
            continue
        if any(c in str(value) for c in "\n\r\x00"):
            raise AgentError("?", action, None,
                             reason=f"option {key} contains a newline or NUL; refused")
        lines.append(f"{key}={value}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def metadata_key(path: str) -> tuple[str, int, int]:
    """Key of an agent's metadata: one per version of its file (path, mtime, size)."""
    st = os.stat(path)
    return path, st.st_mtime_ns, st.st_size


class AgentRunner:
    """Runs fence agents; ``metadata_cache`` (by :func:`metadata_key`) is shared with
    validation (``fencing.catalog``)."""

    def __init__(self, search_dirs: Sequence[str] = DEFAULT_DIRS, timeout: float = 60.0,
                 metadata_timeout: float = 15.0, script_timeout: float = 10.0,
                 secrets_dir: str = secrets.DEFAULT_DIR) -> None:
        self.search_dirs = tuple(search_dirs)
        self.secrets_dir = secrets_dir
        self.timeout = timeout
        self.metadata_timeout = metadata_timeout
        self.script_timeout = script_timeout
        self.metadata_cache: dict[tuple[str, int, int], AgentMetadata] = {}

    def resolve(self, agent: str) -> str:
        if not AGENT_NAME.match(agent or ""):
            raise AgentError(str(agent), "exec", None,
                             reason="agent name must match ^fence_[A-Za-z0-9_.-]+$; refused")
        for directory in self.search_dirs:
            candidate = os.path.join(directory, agent)
            if os.path.lexists(candidate):
                return check_trusted(candidate)
        raise AgentError(agent, "exec", None,
                         reason=f"fence agent {agent} is not installed "
                                f"(looked in {', '.join(self.search_dirs)})")

    def installed(self, agent: str) -> bool:
        try:
            self.resolve(agent)
        except AgentError:
            return False
        return True

    async def run(self, agent: str, action: str, options: Mapping[str, str],
                  timeout: float | None = None) -> FenceAgentResult:
        """Run ``agent`` once. Raises AgentError only for refusals (name, path, options,
        password script); any agent behaviour is reported in the FenceAgentResult."""
        path = self.resolve(agent)
        for key, value in options.items():
            if trust.is_program_param("fencedevice", key, in_rm=False):
                await self._trusted_program(agent, action, key, value)
        opts, redactor = await self._with_password(agent, action, options)
        try:
            payload = stdin_payload(action, opts)
        except AgentError as exc:
            raise AgentError(agent, action, None, reason=exc.reason) from None
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            rc, out, err, timed_out, truncated = await _exec_argv([path], payload, limit)
        except AgentError as exc:
            raise AgentError(agent, action, None, reason=exc.reason) from None
        result = FenceAgentResult(
            agent=agent, action=action, rc=rc,
            stdout=redactor.redact(out.decode("utf-8", "replace")),
            stderr=redactor.redact(err.decode("utf-8", "replace")),
            duration=time.monotonic() - started, timed_out=timed_out, truncated=truncated,
            garbage=_is_garbage(out) or _is_garbage(err))
        return result

    async def _with_password(self, agent: str, action: str, options: Mapping[str, str]
                             ) -> tuple[dict[str, str], Redactor]:
        opts = dict(options)
        extra: list[str] = []
        for key, value in list(opts.items()):
            if secrets.is_reference(value):          # S9: secret file + checksum
                try:
                    opts[key] = secrets.resolve(key, value, self.secrets_dir)
                except AgentError as exc:
                    raise AgentError(agent, action, None, reason=exc.reason) from None
                extra.append(opts[key])
        for key in list(opts):
            norm = normalize_key(key)
            if not norm.endswith(("passwd_script", "password_script")):
                continue
            command = opts.pop(key)
            target = norm[: -len("_script")]
            password = await self.run_password_script(agent, action, command)
            extra.append(password)
            if not any(normalize_key(k) == target for k in opts):
                opts[target] = password
        return opts, Redactor.for_options(opts, extra)

    async def _trusted_program(self, agent: str, action: str, key: str, value: str) -> str:
        """The real path of program option ``key``, checked just before it runs: validation
        checked the value, but the file may have changed since. Refusals are logged."""
        problem = await asyncio.to_thread(trust.program_problem, value)
        if problem is not None:
            logger.error("fence agent %s action %s: refusing to run option %s: it %s", agent,
                         action, key, problem)
            raise AgentError(agent, action, None, reason=f"{key} {problem}")
        return os.path.realpath(value)

    async def run_password_script(self, agent: str, action: str, command: str) -> str:
        """Run a passwd_script (one trusted path: no arguments, no shell; clean env,
        timeout); return its first stdout line. The value is never logged."""
        argv = [await self._trusted_program(agent, action, "passwd_script", command)]
        rc, out, _err, timed_out, _ = await _exec_argv(argv, b"", self.script_timeout)
        if timed_out or rc != 0:
            why = "timed out" if timed_out else f"exited with rc={rc}"
            raise AgentError(agent, action, None, reason=f"passwd_script {argv[0]} {why}")
        line = out.decode("utf-8", "replace").splitlines()[0:1]
        if not line or not line[0]:
            raise AgentError(agent, action, None,
                             reason=f"passwd_script {argv[0]} printed no password")
        return line[0]

    async def metadata(self, agent: str) -> AgentMetadata:
        key = metadata_key(self.resolve(agent))
        cached = self.metadata_cache.get(key)
        if cached is not None:
            return cached
        rc, out, err, timed_out, _ = await _exec_argv([key[0], "-o", "metadata"], b"",
                                                       self.metadata_timeout)
        if timed_out or rc != 0:
            last = _text(err).strip().splitlines()[-1:]
            why = (f"did not answer within {self.metadata_timeout:g}s" if timed_out
                   else f"exited with rc={rc}" + "".join(f": {ln[:200]}" for ln in last))
            raise AgentError(agent, "metadata", rc, "", _text(err),
                             reason=f"`{agent} -o metadata` {why}")
        meta = parse_metadata(agent, out)
        self.metadata_cache[key] = meta
        return meta

    async def power(self, agent: str, action: str, options: Mapping[str, str],
                    timeout: float | None = None) -> FenceAgentResult:
        """Run a power action (off/on/reboot/enable/disable); success only on rc 0 with
        readable output (agents confirm the new state themselves)."""
        result = await self.run(agent, action, options, timeout)
        why = result.failure(self.timeout if timeout is None else timeout)
        took = result.duration
        if why is not None:   # the caller logs it with the node, method and device
            logger.debug("fence agent %s action %s failed after %.2fs: %s",
                         agent, action, took, why)
            raise result.error(why)
        logger.debug("fence agent %s action %s succeeded in %.2fs", agent, action, took)
        return result

    async def status(self, agent: str, options: Mapping[str, str],
                     timeout: float | None = None) -> tuple[PowerState, str]:
        """ON (rc 0), OFF (rc 2), else UNKNOWN with the reason."""
        result = await self.run(agent, "status", options, timeout)
        return interpret_status(result, self.timeout if timeout is None else timeout)


def interpret_status(result: FenceAgentResult, timeout: float | None = None
                     ) -> tuple[PowerState, str]:
    said = re.findall(r"^\s*Status:\s*(ON|OFF)\b", result.stdout, re.MULTILINE | re.IGNORECASE)
    if result.timed_out or result.signal is not None or result.garbage:
        return PowerState.UNKNOWN, result.failure(timeout) or ""
    if result.rc in (0, 2):
        state = PowerState.ON if result.rc == 0 else PowerState.OFF
        if said and said[-1].lower() != state.value:
            return PowerState.UNKNOWN, (f"rc={result.rc} says {state.value} but the agent "
                                        f"printed Status: {said[-1].upper()}; not trusted")
        return state, f"Status: {state.value.upper()}"
    return PowerState.UNKNOWN, result.failure(timeout) or f"rc={result.rc}"


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")[-2000:]


async def _read_capped(stream: asyncio.StreamReader) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return b"".join(chunks), size > MAX_OUTPUT
        if size < MAX_OUTPUT:
            chunks.append(chunk[: MAX_OUTPUT - size])
        size += len(chunk)


async def _exec_argv(argv: list[str], payload: bytes, timeout: float
                     ) -> tuple[int | None, bytes, bytes, bool, bool]:
    """Run argv in its own session with a clean env; kill the group on timeout.
    Returns (rc, stdout, stderr, timed_out, truncated)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=dict(CLEAN_ENV), cwd="/",
            start_new_session=True, close_fds=True)
    except OSError as exc:
        raise AgentError(os.path.basename(argv[0]), "exec", None,
                         reason=f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    assert proc.stdin and proc.stdout and proc.stderr
    readers = [asyncio.ensure_future(_read_capped(proc.stdout)),
               asyncio.ensure_future(_read_capped(proc.stderr))]
    timed_out = False
    try:
        async with asyncio.timeout(timeout):
            try:
                proc.stdin.write(payload)
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                proc.stdin.close()
            await proc.wait()
            await asyncio.gather(*readers)
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid)
        try:
            async with asyncio.timeout(KILL_GRACE):
                await proc.wait()
                await asyncio.gather(*readers)
        except TimeoutError:
            logger.error("process group %d of %s survived SIGKILL for %.0fs",
                         proc.pid, argv[0], KILL_GRACE)
    except BaseException:
        # Cancelled (daemon stopping) or a bug: never leave the agent's group behind.
        _kill_group(proc.pid)
        with contextlib.suppress(BaseException):
            async with asyncio.timeout(KILL_GRACE):
                await proc.wait()
                await asyncio.gather(*readers)
        raise
    finally:
        for task in readers:
            if not task.done():
                task.cancel()
    outs = [t.result() if t.done() and not t.cancelled() and t.exception() is None
            else (b"", False) for t in readers]
    return (proc.returncode, outs[0][0], outs[1][0], timed_out, outs[0][1] or outs[1][1])


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
