"""How the daemon ends: a leave or a restart, and an exit that waits for nothing stale.

**Leave or restart.** A *leave* stops this node's services, announces the leave and
exits: peers recover the services at once, nobody is fenced (``systemctl stop``, a system
shutdown, ``clusterd leave``). A *restart* keeps the services running, announces a
restart (``Leave.hold``) and exits at once: peers neither fence the node nor recover its
services for the restart grace, and the next daemon re-adopts them (``systemctl
restart``, a package upgrade's ``try-restart``, ``clusterd leave --restart`` where there
is no systemd). On SIGTERM the daemon asks systemd which job runs on its own unit:
``systemctl restart`` queues a job of type ``restart`` (``try-restart`` of an active unit
collapses into one, ``job_type_collapse``) that stops the unit and becomes a ``start``
job only once the stop is done (systemd ``src/core/job.c``: "Patch restart jobs so that
they become normal start jobs"), so during our SIGTERM ``systemctl list-jobs`` shows
``restart``. ``stop``
(``systemctl stop``, shutdown, isolate), no job (``kill`` by hand) or no answer within
``SYSTEMCTL_TIMEOUT``: a leave, as before. A restart falls back to a leave while a view
member speaks a protocol older than ``LEAVE_HOLD_VERSION`` (it would drop the
announcement and fence this node).

**Exit.** Teardown steps run in order, each bounded (``close_all``); whatever is still
slow is named in the log. The event loop is run by :func:`run`, which cancels leftover
tasks (bounded) but, unlike ``asyncio.run``, does not join the worker threads of
``asyncio.to_thread``: a thread stuck in a blocking call (a name lookup, a netlink dump,
a stat on a hung NFS mount under a status check) would hold the exit for as long as
that call takes. The daemon's own writes are awaited before (intents, config,
incarnation); when a worker thread is still busy, the CLI names it and ends the process
with ``os._exit`` once the log is flushed (the interpreter would join the thread).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from clusterd.resources.agents.runner import Runner
from clusterd.wire.messages import LEAVE_HOLD_VERSION

if TYPE_CHECKING:
    from clusterd.conf import ClusterConf

logger = logging.getLogger(__name__)

SYSTEMCTL = "systemctl"
SYSTEMCTL_TIMEOUT = 2.0
DEFAULT_UNIT = "clusterd.service"
RESTART_JOBS = frozenset({"restart", "try-restart"})  # try-restart: collapsed by systemd
STEP_BUDGET = 2.0        # seconds one teardown step may take before it is abandoned
SLOW_STEP = 0.5          # a step slower than this is named in the log
LEFTOVER_BUDGET = 1.0    # seconds for tasks nobody owns to end after cancellation


class Mode(str, enum.Enum):
    LEAVE = "leave"        # stop the services, announce the leave, exit
    RESTART = "restart"    # keep the services running, announce a restart, exit


# ----------------------------------------------------------------- leave or restart
def unit_of(cgroup_text: str) -> str | None:
    """This process's systemd unit from ``/proc/self/cgroup`` (v2 ``0::/...`` or v1
    ``name=systemd``): the innermost ``*.service`` component of the path."""
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[1] in ("", "name=systemd"):
            units = [c for c in parts[2].split("/") if c.endswith(".service")]
            if units:
                return units[-1]
    return None


def own_unit(cgroup_path: str = "/proc/self/cgroup") -> str:
    """The unit this daemon runs in (``DEFAULT_UNIT`` when the cgroup does not say)."""
    try:
        with open(cgroup_path) as fh:
            return unit_of(fh.read()) or DEFAULT_UNIT
    except OSError:
        return DEFAULT_UNIT


def job_of(list_jobs: str, unit: str) -> str | None:
    """The type of the job on ``unit`` in ``systemctl list-jobs --no-legend`` output
    (columns JOB UNIT TYPE STATE), or None when there is none."""
    for line in list_jobs.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == unit:
            return fields[2]
    return None


def mode_of(job: str | None, unit: str) -> tuple[Mode, str]:
    """What a job on our unit means, with the sentence the log says."""
    if job in RESTART_JOBS:
        return Mode.RESTART, f"systemd runs a {job} job on {unit}: restart, keeping services"
    if job is None:
        return Mode.LEAVE, f"no systemd job on {unit} (a signal sent by hand): leave"
    return Mode.LEAVE, f"systemd runs a {job} job on {unit}: leave"


async def ask_systemd(env: Mapping[str, str] | None = None,
                      cgroup_path: str = "/proc/self/cgroup",
                      runner: Runner | None = None) -> tuple[Mode, str]:
    """Leave or restart, from the job systemd runs on this daemon's unit. Never raises
    (cancellation aside): any doubt is a leave, the behaviour of old."""
    env = os.environ if env is None else env
    if not env.get("INVOCATION_ID"):
        return Mode.LEAVE, ("not run by systemd: leave ('clusterd leave --restart' "
                            "restarts keeping the services)")
    unit = await asyncio.to_thread(own_unit, cgroup_path)
    try:
        result = await (runner or Runner()).run(
            [SYSTEMCTL, "list-jobs", "--no-legend", "--no-pager", unit],
            timeout=SYSTEMCTL_TIMEOUT)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any doubt is a leave
        return Mode.LEAVE, f"cannot ask systemd ({exc}): leave"
    if result.error or result.timed_out or result.rc != 0:
        why = result.error or ("no answer within "
                               f"{SYSTEMCTL_TIMEOUT:g}s" if result.timed_out else
                               f"exit {result.rc}")
        return Mode.LEAVE, f"cannot ask systemd which job runs on {unit} ({why}): leave"
    return mode_of(job_of(result.stdout, unit), unit)


class OnSignal:
    """The SIGTERM/SIGINT handler: asks systemd once whether this is a restart, then calls
    ``request(reason, mode)`` (the daemon's ``request_leave``)."""

    def __init__(self, request: Callable[[str, Mode], object]) -> None:
        self.request = request
        self.task: asyncio.Task[None] | None = None

    def __call__(self, name: str) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._decide(name))

    async def _decide(self, name: str) -> None:
        try:
            mode, why = await ask_systemd()
        except Exception as exc:  # noqa: BLE001 - a signal must end the daemon, whatever
            mode, why = Mode.LEAVE, f"cannot tell a restart from a stop ({exc}): leave"
        self.request(f"signal {name}: {why}", mode)


def hold_refused(members: Iterable[int], version_of: Callable[[int], int],
                 names: Mapping[int, str]) -> str | None:
    """Why a restart cannot keep the services: members whose protocol would drop the
    announcement (and fence this node as failed). None when every member decodes it."""
    old = sorted(names.get(n, f"node {n}") for n in members
                 if version_of(n) < LEAVE_HOLD_VERSION)
    if not old:
        return None
    return (f"{', '.join(old)} speak(s) a protocol older than v{LEAVE_HOLD_VERSION}, which "
            "does not know restarts that keep services")


def feasible(mode: Mode, core: Any, conf: ClusterConf, node: str) -> Mode:
    """``mode``, or a leave when a restart cannot keep the services (logged): a member of
    the current view speaks a protocol that would take the announcement for garbage."""
    view = core.membership.view
    refused = hold_refused(view.nodeids - {core.me} if view is not None else (),
                           core.guard.peer_version, {n.nodeid: n.name for n in conf.nodes})
    if mode is not Mode.RESTART or refused is None:
        return mode
    logger.warning("node %s: a restart cannot keep the services: %s; leaving cleanly "
                   "instead", node, refused)
    return Mode.LEAVE


# ----------------------------------------------------------------- exit
async def close_all(node: str, steps: Iterable[tuple[str, Callable[[], Awaitable[Any]]]],
                    budget: float = STEP_BUDGET) -> None:
    """Run the teardown steps in order, each within ``budget`` seconds; log the slow or
    failed ones by name (the exit is never held by one step)."""
    for name, step in steps:
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget):
                await step()
        except TimeoutError:
            logger.error("node %s: shutdown: %s did not finish within %gs; exiting anyway",
                         node, name, budget)
        except Exception:
            logger.exception("node %s: shutdown: %s failed", node, name)
        took = time.monotonic() - started
        if SLOW_STEP < took <= budget:
            logger.warning("node %s: shutdown: %s took %.2fs", node, name, took)


def run(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(main)`` without joining ``asyncio.to_thread``'s worker threads at the
    end (see the module docstring); leftover tasks get ``LEFTOVER_BUDGET`` seconds."""
    loop = asyncio.new_event_loop()
    workers = ThreadPoolExecutor(thread_name_prefix="clusterd-worker")
    loop.set_default_executor(workers)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.wait(leftovers, timeout=LEFTOVER_BUDGET))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            workers.shutdown(wait=False, cancel_futures=True)
            asyncio.set_event_loop(None)
            loop.close()


def busy_threads(grace: float = 0.2) -> list[str]:
    """Non-daemon threads other than this one still running after ``grace`` seconds (idle
    workers end at once), each with the function it is in: a worker stuck in a blocking
    call, which would hold the interpreter's exit (it joins them). For the log."""
    deadline = time.monotonic() + grace
    others = [t for t in threading.enumerate()
              if t is not threading.current_thread() and not t.daemon]
    for t in others:
        t.join(max(0.0, deadline - time.monotonic()))
    frames = sys._current_frames()
    out = []
    for t in others:
        if not t.is_alive():
            continue
        frame = frames.get(t.ident or -1)
        where = f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}" \
            if frame is not None else "?"
        out.append(f"{t.name} in {where}")
    return out
