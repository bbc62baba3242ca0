"""Built-in ``samba`` agent: one smbd and nmbd per resource (rgmanager ``samba.sh``).

RHCS's ``<samba name= config_file= smbd_options= nmbd_options= shutdown_wait=/>`` ran
its own smbd and nmbd for each resource, on a copy of the operator's smb.conf with the
instance's settings added, bound to the ``<ip>`` addresses of its service, so several
samba services could share a node. resource-agents has no such agent (only CTDB and
smb-share), so this one does it:

- start: make ``RUN_DIR/NAME/`` holding ``smb.conf`` and the pid directory ``pid/``;
  write ``smb.conf`` (atomically) as a comment header, ``config_file`` verbatim, then a
  trailing ``[global]`` with ``pid directory``, ``netbios name = NAME`` and, when the
  service has addresses, ``interfaces = ADDRS`` and ``bind interfaces only = yes`` (a
  later ``[global]`` overrides the earlier parameters in Samba's loadparm, as samba.sh's
  leading block plus its commenting out of the same lines did). An unreadable
  ``config_file`` is CONFIG_ERROR. Where ``testparm`` is installed, ``testparm -s`` must
  accept the file (else CONFIG_ERROR quoting it), and ``disable netbios = yes`` (asked
  with ``--parameter-name``) leaves nmbd out. Then ``smbd -D OPTIONS -s FILE`` and
  ``nmbd -D OPTIONS -s FILE`` (``-D`` is added when the options lack it: samba.sh always
  passed it), each started only when not running already; each must exit 0 and its
  ``smbd*.pid`` / ``nmbd*.pid`` must then name a live smbd/nmbd before the deadline
  (Samba 4 writes ``smbd.pid``, Samba 3 wrote ``smbd-smb.conf.pid`` for a non-default
  config file; the pid directory is the instance's own, so any match is ours). A start
  that fails leaves none of the instance's daemons running (the runtime stops only the
  resources before a failed one).
- status: OK when each daemon the last start ran (state file ``daemons``) has a live
  pid from its pid file whose ``/proc/PID/stat`` name (or ``exe``) is smbd/nmbd;
  NOT_RUNNING when nothing runs and nothing is left (no pid file, no state file);
  otherwise FAILED, naming the daemon that died.
- stop: SIGTERM each live daemon of the instance (pid file, verified by name), wait up
  to the stop timeout (``shutdown_wait`` when set), then SIGKILL what is left of it and
  of its process group (smbd's children: smbd-notifyd, cleanupd, one per client; each
  verified as an smbd/nmbd program by ``exe``) and say so (``pidfile.terminate``);
  remove the pid files. A pid file naming some other program is never acted on. Not
  running, or never started, = OK.

Attributes (cluster.rng's): ``name`` (the directory and NetBIOS name: no ``/``,
blanks, ``%`` or ``\\``; not ``.`` or ``..``), ``config_file`` (absolute, default
``/etc/samba/smb.conf``), ``smbd_options`` / ``nmbd_options`` (shell words; options the
agent must own, ``-s -i -F -S`` and their long forms, are refused), ``shutdown_wait``
(whole seconds: the stop timeout, as in rhcs_types), ``service_name`` (rgmanager filled
it in to find the service's addresses: ignored). ``SERVICE_IPS`` is internal:
``services.agentset`` fills it with the addresses of every ``<ip>`` of the service. A
service without one runs the configuration as written (validating a cluster.conf
refuses a samba without an ip).

Differences from samba.sh: it refused to start without a service IP (see above); it
kept a generated file an operator had edited (a SHA-1 line), this one writes it at every
start (edit ``config_file``); when smbd outlived ``shutdown_wait`` (default 20 s) it
failed the stop and left smbd running, this one kills it (SIGKILL) and the stop succeeds;
it checked only that the pids existed. As there, ``netbios name`` is ``NAME`` whatever
the file says (NetBIOS allows 15 characters: testparm warns about a longer name), each
instance shares Samba's lock, state and cache directories with the others unless its
``config_file`` sets them, and a changed ``<ip>`` address reaches smbd at the samba
resource's next start. A ``config file =`` or ``config backend = registry`` line in
``config_file`` makes Samba read other settings than these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import time
from collections.abc import Mapping

from clusterd.atomicfile import write_atomic
from clusterd.errors import Problem
from clusterd.resources.agents import pidfile
from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    MetaDataResult,
    Outcome,
    guarded,
)
from clusterd.resources.agents.metadata import RGMANAGER_ATTRS, AgentMeta
from clusterd.resources.agents.pidfile import KILL_GRACE, POLL_FIRST, POLL_MAX, named
from clusterd.resources.agents.runner import Runner, RunResult
from clusterd.resources.agents.script import describe_exit, printable
from clusterd.resources.rules import ActionSpec, ParamSpec
from clusterd.truth import bool_or_none

logger = logging.getLogger(__name__)

RUN_DIR = "/run/cluster/samba"
DEFAULT_CONFIG = "/etc/samba/smb.conf"
SERVICE_IPS = "__service_ips"   # internal: the service's <ip> addresses, space-separated
DAEMONS = ("smbd", "nmbd")
STATE_FILE = "daemons"
ATTRIBUTES = ("name", "config_file", "smbd_options", "nmbd_options", "shutdown_wait",
              "service_name")
_SECONDS = re.compile(r"^\s*[0-9]+\s*$")   # rhcs_types' rule for *_wait
_NAME_FORBIDDEN = frozenset("/%\\")
# Options the agent must own: popt short letters (combinable with the flags in
# _FLAGS; -s takes the file) and long names: (why it is refused, what to do besides
# removing it).
_OWNED_SHORT = {"s": "configfile", "i": "interactive", "F": "foreground", "S": "log-stdout"}
_FOREGROUND = ("it keeps the daemon in the foreground, where clusterd waits for it to daemonize",
               "")
_OWNED_LONG = {
    "configfile": ("clusterd passes its generated file with -s",
                   " and put the settings in config_file"),
    "interactive": _FOREGROUND,
    "foreground": _FOREGROUND,
    "log-stdout": ("the daemon's output is closed once it daemonizes",
                   " and set 'log file' or 'logging' in config_file"),
}
_FLAGS = frozenset("DFiSbV")

META = AgentMeta(
    name="samba",
    shortdesc="Samba: an smbd and nmbd of its own, bound to the service's addresses",
    params=(
        ParamSpec("name", required=True, unique=True, primary=True,
                  shortdesc="instance name: its run directory and NetBIOS name"),
        ParamSpec("config_file", default=DEFAULT_CONFIG,
                  shortdesc="smb.conf the instance runs (copied, its own settings added)"),
        ParamSpec("smbd_options", default="-D", shortdesc="more smbd options (-D always)"),
        ParamSpec("nmbd_options", default="-D", shortdesc="more nmbd options (-D always)"),
        ParamSpec("shutdown_wait", content_type="integer",
                  shortdesc="seconds stop waits after SIGTERM before SIGKILL"),
        ParamSpec("service_name", shortdesc="ignored (rgmanager filled it in)"),
    ),
    actions=(
        ActionSpec("start", timeout=60.0), ActionSpec("stop", timeout=60.0),
        ActionSpec("status", timeout=10.0, interval=60.0, depth=0),
        ActionSpec("meta-data", timeout=5.0),
    ),
    extra_ok=frozenset({SERVICE_IPS}),
)


def owned_options(words: list[str]) -> list[str]:
    """The words among ``words`` that set an option the agent must own (see _OWNED_*)."""
    found = []
    for word in words:
        if word.startswith("--"):
            if word[2:].split("=", 1)[0] in _OWNED_LONG:
                found.append(word)
        elif word.startswith("-") and len(word) > 1:
            letters = word[1:]
            if letters[0] in _OWNED_SHORT or (set(letters) <= _FLAGS
                                              and set(letters) & set(_OWNED_SHORT)):
                found.append(word)
    return found


def _owned_reason(word: str) -> tuple[str, str]:
    if word.startswith("--"):
        return _OWNED_LONG[word[2:].split("=", 1)[0]]
    letter = next(c for c in word[1:] if c in _OWNED_SHORT)
    return _OWNED_LONG[_OWNED_SHORT[letter]]


def validate(attrs: Mapping[str, str], where: str) -> list[Problem]:
    """Every problem with one ``<samba>``, each naming the attribute and what to write."""
    problems: list[Problem] = []

    def refuse(attr: str, why: str, instead: str, value: str | None = None) -> None:
        shown = f'{attr}="{value}"' if value is not None else attr
        problems.append(Problem(where, f"<samba> {shown}: {why}; {instead}"))

    for attr in attrs:
        if attr not in ATTRIBUTES and attr not in RGMANAGER_ATTRS and attr != SERVICE_IPS:
            refuse(attr, "is not an attribute of RHCS <samba> (cluster.rng allows "
                   f"{', '.join(sorted(ATTRIBUTES))})", "remove it")
    name = attrs.get("name", "")
    if not name.strip():
        refuse("name", "required by RHCS <samba> and not set", 'add name="..."')
    elif name in (".", "..") or _NAME_FORBIDDEN & set(name) or any(c.isspace() for c in name):
        refuse("name", "names the instance's directory and NetBIOS name, so it must not be "
               ". or .. nor hold /, blanks, % or \\", "write a plain name, e.g. fileserver",
               name)
    config = attrs.get("config_file", "")
    if config.strip() and not config.startswith("/"):
        refuse("config_file", "is not an absolute path",
               "write the full path, e.g. /etc/samba/smb.conf", config)
    for attr in ("smbd_options", "nmbd_options"):
        value = attrs.get(attr)
        if value is None:
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            refuse(attr, "has unbalanced quotes", "fix the quoting", value)
            continue
        for word in owned_options(words):
            why, then = _owned_reason(word)
            refuse(attr, f"sets {word}, an option clusterd must own: {why}",
                   f"remove {word}{then}", value)
    wait = attrs.get("shutdown_wait", "")
    if wait.strip() and (not _SECONDS.match(wait) or int(wait) < 1):
        refuse("shutdown_wait", "is not a whole number of seconds of at least 1 (rgmanager's "
               "agents compared it as an integer)", "write the seconds, e.g. 30", wait)
    return problems


def render_config(original: str, *, source: str, name: str, piddir: str,
                  ips: tuple[str, ...]) -> str:
    """The instance's smb.conf: header, ``original`` verbatim, its own ``[global]``."""
    head = (f"# Generated by clusterd from {source} for samba:{name}.\n"
            f"# Edits here are overwritten at each start: change {source} instead.\n")
    body = original if not original or original.endswith("\n") else original + "\n"
    tail = ["",   # ends a trailing "\" continuation of the original's last line
            f"# clusterd: samba:{name}'s own settings (this [global] overrides the above)",
            "[global]", f"\tpid directory = {piddir}", f"\tnetbios name = {name}"]
    if ips:
        tail += [f"\tinterfaces = {' '.join(ips)}", "\tbind interfaces only = yes"]
    return head + body + "\n".join(tail) + "\n"


def _write_atomic(path: str, text: str) -> None:
    write_atomic(path, text.encode("utf-8", "surrogateescape"), 0o644, root_owned=False)


def _last_lines(result: RunResult, count: int = 3) -> str:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()
             if line.strip()]
    return printable(" / ".join(lines[-count:])[:400])


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.01)


class SambaAgent:
    rtype = "samba"

    def __init__(self, attrs: Mapping[str, str], *, runner: Runner | None = None,
                 smbd: str = "smbd", nmbd: str = "nmbd", testparm: str = "testparm",
                 run_dir: str = RUN_DIR, proc: str = "/proc"):
        self.attrs = META.with_defaults({k: v for k, v in attrs.items() if v.strip()})
        self.name = self.attrs["name"]
        self.config_file = self.attrs["config_file"]
        self.ips = tuple(self.attrs.get(SERVICE_IPS, "").split())
        wait = self.attrs.get("shutdown_wait")
        self.shutdown_wait = float(int(wait)) if wait else None
        self._options = {d: _with_daemon_flag(shlex.split(self.attrs[f"{d}_options"]))
                         for d in DAEMONS}
        self._programs = {"smbd": smbd, "nmbd": nmbd}
        self._testparm = testparm
        self._runner = runner or Runner()
        self._proc = proc
        self.instance = os.path.join(run_dir, self.name)
        self.conf = os.path.join(self.instance, "smb.conf")
        self.piddir = os.path.join(self.instance, "pid")
        self._state = os.path.join(self.instance, STATE_FILE)
        self._who = f"samba:{self.name}"

    def _timeout(self, action: str, timeout: float | None) -> float:
        if timeout is not None:
            return timeout
        if action == "stop" and self.shutdown_wait is not None:
            return self.shutdown_wait
        return META.action_timeout(action, 60.0)

    # ---------------------------------------------------------------- the instance's files
    def _survey(self, daemon: str) -> pidfile.Survey:
        return pidfile.survey(self.piddir, daemon, self._proc)

    def _expected(self) -> tuple[str, ...] | None:
        """The daemons the last start ran (None: no start since the last stop)."""
        try:
            with open(self._state, encoding="utf-8") as handle:
                words = handle.read().split()
        except FileNotFoundError:
            return None
        return tuple(d for d in DAEMONS if d in words) or DAEMONS

    def _write(self, path: str, text: str) -> None:
        os.makedirs(self.piddir, 0o755, exist_ok=True)
        _write_atomic(path, text)

    def _forget(self) -> None:
        """Remove the pid files (every process they name is gone or not ours) and the
        record of the last start."""
        paths = [p for d in DAEMONS for p in pidfile.pid_files(self.piddir, d)]
        for path in [*paths, self._state]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _remove_stale(self, daemon: str) -> None:
        for path, _pid in self._survey(daemon).stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _leaders(self) -> dict[int, str]:
        return {pid: d for d in DAEMONS for pid in self._survey(d).live}

    async def _terminate(self, wait: float) -> pidfile.Termination:
        leaders = await asyncio.to_thread(self._leaders)
        return await pidfile.terminate(leaders, wait, who=self._who, proc=self._proc)

    # ---------------------------------------------------------------- start
    async def start(self, timeout: float | None = None) -> AgentResult:
        limit = self._timeout("start", timeout)

        async def body() -> Outcome:
            outcome = await self._start(time.monotonic() + limit)
            if outcome.rc is AgentRc.OK:
                return outcome
            done = await self._terminate(KILL_GRACE)
            if not done.left:
                await asyncio.to_thread(self._forget)
            undone = (f" (stopped what had started: {named(done.stopped)})"
                      if done.stopped else "") + \
                (f" (still running after SIGKILL: {named(done.left)})" if done.left else "")
            return Outcome(outcome.rc, outcome.message + undone, outcome.exit_code,
                           outcome.output)
        return await guarded(AgentAction.START, self._who,
                             limit + 2 * KILL_GRACE + self._runner.cleanup_budget, body)

    async def _start(self, deadline: float) -> Outcome:
        if self._runner.which(self._programs["smbd"]) is None:
            return Outcome(AgentRc.NOT_INSTALLED, f"{self._who}: {self._programs['smbd']} "
                                                  "not found: install the samba package")
        try:
            original = await asyncio.to_thread(_read_text, self.config_file)
        except OSError as exc:
            return Outcome(AgentRc.CONFIG_ERROR,
                           f"{self._who}: cannot read config_file {self.config_file} "
                           f"({exc.strerror or exc}): nothing started; install it on every "
                           "node that may run the service")
        text = render_config(original, source=self.config_file, name=self.name,
                             piddir=self.piddir, ips=self.ips)
        await asyncio.to_thread(self._write, self.conf, text)
        daemons = await self._check_config(deadline)
        if isinstance(daemons, Outcome):
            return daemons
        await asyncio.to_thread(self._write, self._state, " ".join(daemons) + "\n")
        notes = []
        for daemon in daemons:
            live = (await asyncio.to_thread(self._survey, daemon)).live
            if live:
                notes.append(f"{daemon} pid {live[0]} (already running)")
                continue
            launched = await self._launch(daemon, deadline)
            if isinstance(launched, Outcome):
                return launched
            notes.append(f"{daemon} pid {launched}")
        bound = (f"bound to {' '.join(self.ips)}" if self.ips
                 else "on every interface (no <ip> in the service)")
        skipped = "" if "nmbd" in daemons else "; no nmbd: disable netbios = yes"
        return Outcome(AgentRc.OK, f"{self._who}: running ({', '.join(notes)}), {bound}"
                                   f"{skipped}")

    async def _check_config(self, deadline: float) -> tuple[str, ...] | Outcome:
        """``testparm`` on the generated file, when installed: its verdict, and whether
        nmbd runs (not with ``disable netbios = yes``)."""
        testparm = self._runner.which(self._testparm)
        if testparm is None:
            logger.info("%s: %s not installed: %s not checked; starting smbd and nmbd",
                        self._who, self._testparm, self.conf)
            return DAEMONS
        result = await self._runner.run([testparm, "-s", self.conf], timeout=_left(deadline))
        if result.rc != 0:
            rc = AgentRc.TIMEOUT if result.timed_out else AgentRc.CONFIG_ERROR \
                if result.rc is not None and result.rc > 0 else AgentRc.FAILED
            return Outcome(rc, f"{self._who}: testparm -s {self.conf} refused the "
                               f"configuration made from {self.config_file} "
                               f"({describe_exit(result)}; {_last_lines(result)}): nothing "
                               f"started; fix {self.config_file}", result.rc,
                           result.stderr)
        asked = await self._runner.run([testparm, "-s", "--parameter-name=disable netbios",
                                        self.conf], timeout=_left(deadline))
        answer = (asked.stdout.strip().splitlines() or [""])[-1]
        if asked.rc == 0 and bool_or_none(answer) is True:
            return ("smbd",)
        return DAEMONS

    async def _launch(self, daemon: str, deadline: float) -> int | Outcome:
        """Run ``daemon`` and wait for its pid file to name a live one."""
        exe = self._runner.which(self._programs[daemon])
        if exe is None:
            return Outcome(AgentRc.NOT_INSTALLED, f"{self._who}: {self._programs[daemon]} "
                                                  "not found: install the samba package")
        await asyncio.to_thread(self._remove_stale, daemon)
        argv = [exe, *self._options[daemon], "-s", self.conf]
        logger.info("%s: starting %s", self._who, shlex.join(argv))
        result = await self._runner.run(argv, timeout=_left(deadline))
        if result.rc != 0:
            rc = AgentRc.TIMEOUT if result.timed_out else AgentRc.FAILED
            return Outcome(rc, f"{self._who}: {shlex.join(argv)} failed: "
                               f"{describe_exit(result)}", result.rc,
                           result.stdout + result.stderr)
        delay = POLL_FIRST
        while True:
            live = (await asyncio.to_thread(self._survey, daemon)).live
            if live:
                return live[0]
            if time.monotonic() >= deadline:
                return Outcome(AgentRc.FAILED,
                               f"{self._who}: {daemon} exited 0 but no running {daemon} "
                               f"wrote {daemon}*.pid in {self.piddir} before the start "
                               f"deadline: it stopped while starting; its log ('log file' "
                               f"in {self.config_file}) says why")
            await asyncio.sleep(min(delay, _left(deadline)))
            delay = min(delay * 2, POLL_MAX)

    # ---------------------------------------------------------------- stop
    async def stop(self, timeout: float | None = None) -> AgentResult:
        limit = self._timeout("stop", timeout)

        async def body() -> Outcome:
            if not await asyncio.to_thread(os.path.isdir, self.instance):
                return Outcome(AgentRc.OK, f"{self._who}: not running (never started here)")
            done = await self._terminate(limit)
            if done.left:
                return Outcome(AgentRc.FAILED, f"{self._who}: still running after SIGKILL: "
                                               f"{named(done.left)}")
            await asyncio.to_thread(self._forget)
            if not done.stopped:
                return Outcome(AgentRc.OK, f"{self._who}: not running")
            note = (f"; {named(done.killed)} still ran {limit:g}s after SIGTERM: killed "
                    "(SIGKILL)") if done.killed else ""
            return Outcome(AgentRc.OK, f"{self._who}: stopped {named(done.stopped)}{note}")
        return await guarded(AgentAction.STOP, self._who, limit + 2 * KILL_GRACE, body)

    # ---------------------------------------------------------------- status
    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult:
        async def body() -> Outcome:
            return await asyncio.to_thread(self._status)
        return await guarded(AgentAction.STATUS, self._who, self._timeout("status", timeout),
                             body)

    def _status(self) -> Outcome:
        expected = self._expected()
        seen = {d: self._survey(d) for d in DAEMONS}
        wanted = expected or DAEMONS
        running = [d for d in wanted if seen[d].live]
        dead = [d for d in wanted if not seen[d].live]
        alive = ", ".join(f"{d} pid {seen[d].live[0]}" for d in running)
        if not dead:
            return Outcome(AgentRc.OK, f"{self._who}: running ({alive})")
        if not running and expected is None and not any(seen[d].stale for d in DAEMONS):
            return Outcome(AgentRc.NOT_RUNNING, f"{self._who}: not running")
        why = "; ".join(seen[d].why_dead(d, self.piddir) for d in dead)
        return Outcome(AgentRc.FAILED, f"{self._who}: {' and '.join(dead)} died ({why})"
                                       + (f" while {alive} runs" if alive else ""))

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult:
        result = AgentResult(AgentAction.META_DATA, AgentRc.OK, "samba: built-in meta-data", 0.0)
        return MetaDataResult(result, META)


def _with_daemon_flag(words: list[str]) -> list[str]:
    """samba.sh always ran the daemons with -D; options without it get it first."""
    return words if {"-D", "--daemon"} & set(words) else ["-D", *words]


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()
