"""Built-in ``fs`` agent: mount and unmount a filesystem (rgmanager ``fs.sh`` semantics).

- start: refuse when the block device is already mounted elsewhere on this node or another
  filesystem sits on the mountpoint; create the mountpoint; check the filesystem when
  fs.sh did (below); ``mount [-t fstype] [-o options] device mountpoint``; confirm from
  ``/proc/self/mountinfo``.
- fsck, as fs.sh's do_pre_mount: ``fsck -p device`` before mounting a block device when
  ``force_fsck`` is true or the filesystem has no journal (``ext2``, ``minix``, ``vfat``,
  ``msdos``, an unset or unknown ``fstype``; never for ext3/ext4/xfs/btrfs/jfs/reiserfs/
  vxfs unless forced). Exit 0 or 1 (errors corrected) mounts; 2 and above (errors left,
  or fsck failed) fails the start, naming the exit status: the cluster then tries another
  node, where the same disk fails the same way, so the service ends stopped for an
  operator to repair by hand.
- stop: not mounted = OK; ``umount``; when busy and ``force_unmount=1``, the processes using
  the filesystem (cwd, root, exe, open files, mapped files; found by a /proc scan, never
  clusterd itself) get SIGTERM, then SIGKILL, and the unmount is retried. When the
  filesystem is still mounted after that and ``self_fence`` is true, the node reboots at
  once (``sync``, then ``reboot -f -n``), as fs.sh did: the node holds a disk it may not
  hold, and rebooting is faster than waiting to be fenced (the cluster fences a node whose
  stop failed anyway, where fencing is configured).
- status: depth 0 = mounted at the mountpoint from the configured device; depth 10 = the
  directory can be listed; depth 20 = a file can be written and removed (skipped on ``ro``).

Note: one kernel can mount the same loop-backed image on two "nodes" of a lab without any
error, so exclusivity across nodes is the cluster's job (placement + fencing), not this one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass

from clusterd.errors import Problem
from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    MetaDataResult,
    Outcome,
    guarded,
)
from clusterd.resources.agents.metadata import (
    AgentMeta,
    parse_bool,
    validate_params,
)
from clusterd.resources.agents.runner import Runner
from clusterd.resources.rules import ActionSpec, ParamSpec

logger = logging.getLogger(__name__)

MOUNTINFO = "/proc/self/mountinfo"
# fs.sh's do_pre_mount: the types that never need a check before mounting (journaled, or
# not on a block device); any other type is checked, as fs.sh assumed for unknown ones
JOURNALED = frozenset({"ext3", "ext4", "xfs", "btrfs", "jfs", "reiserfs", "vxfs"})
REBOOT = ("reboot", "-f", "-n")
FSCK_TIMEOUT = 600.0
RW_PROBE = ".clusterd-rw-probe"
KILL_GRACE = 2.0

META = AgentMeta(
    name="fs",
    shortdesc="Filesystem mount",
    params=(
        ParamSpec("name", required=True, unique=True, primary=True),
        ParamSpec("mountpoint", required=True, unique=True),
        ParamSpec("device", required=True, unique=True),
        ParamSpec("fstype"),
        ParamSpec("options"),
        ParamSpec("force_unmount", content_type="boolean", default="0"),
        ParamSpec("force_fsck", content_type="boolean", default="0"),
        ParamSpec("quick_status", content_type="boolean", default="0"),
        ParamSpec("self_fence", content_type="boolean", default="0"),
        ParamSpec("nfslock", content_type="boolean", default="0"),
        ParamSpec("fsid"),
    ),
    actions=(
        ActionSpec("start", timeout=900.0), ActionSpec("stop", timeout=30.0),
        ActionSpec("status", timeout=10.0, interval=60.0, depth=0),
        ActionSpec("status", timeout=30.0, interval=30.0, depth=10),
        ActionSpec("status", timeout=30.0, interval=60.0, depth=20),
        ActionSpec("meta-data", timeout=5.0),
    ),
)


def validate(attrs: Mapping[str, str], where: str) -> list[Problem]:
    problems = validate_params(META, attrs, where)
    mountpoint = attrs.get("mountpoint", "")
    if mountpoint and (not mountpoint.startswith("/") or mountpoint.rstrip("/") == ""):
        problems.append(Problem(where, f"fs: mountpoint {mountpoint!r} must be an absolute "
                                       "path other than /"))
    device = attrs.get("device", "")
    if device and not (device.startswith(("/", "LABEL=", "UUID=")) or ":" in device
                       or device in ("tmpfs", "none")):
        problems.append(Problem(where, f"fs: device {device!r} must be a path, LABEL=, UUID=, "
                                       "host:/export, or tmpfs"))
    for key in ("options", "fstype"):
        if any(c.isspace() for c in attrs.get(key, "")):
            problems.append(Problem(where, f"fs: {key} must not contain spaces"))
    return problems


@dataclass(frozen=True)
class MountEntry:
    mountpoint: str
    source: str
    fstype: str
    devno: str      # "major:minor"
    options: str


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> tuple[MountEntry, ...]:
    """Entries of /proc/self/mountinfo (see proc(5)); malformed lines are skipped."""
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        entries.append(MountEntry(mountpoint=_unescape(fields[4]), source=_unescape(tail[1]),
                                  fstype=tail[0], devno=fields[2], options=fields[5]))
    return tuple(entries)


def device_number(device: str) -> str | None:
    """``major:minor`` of a block device path (LABEL=/UUID= resolved through
    /dev/disk/by-*), or None when it is not a block device (tmpfs, NFS, missing)."""
    for prefix, directory in (("LABEL=", "/dev/disk/by-label/"), ("UUID=", "/dev/disk/by-uuid/")):
        if device.startswith(prefix):
            device = directory + device[len(prefix):]
    try:
        st = os.stat(device)
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def users_of(mountpoint: str, proc: str = "/proc") -> list[int]:
    """PIDs whose cwd, root, exe, open files or mapped files are under ``mountpoint``
    (never this process)."""
    prefix = mountpoint.rstrip("/") + "/"
    me = os.getpid()

    def inside(path: str) -> bool:
        path = path.removesuffix(" (deleted)")
        return path == mountpoint or path.startswith(prefix)

    found = []
    for name in os.listdir(proc):
        if not name.isdigit() or int(name) == me:
            continue
        base = os.path.join(proc, name)
        try:
            links = [os.path.join(base, n) for n in ("cwd", "root", "exe")]
            links += [os.path.join(base, "fd", fd) for fd in os.listdir(os.path.join(base, "fd"))]
            hit = any(inside(_readlink(link)) for link in links)
            if not hit:
                with open(os.path.join(base, "maps"), encoding="utf-8", errors="replace") as maps:
                    hit = any(inside(line.split(None, 5)[-1].strip()) for line in maps
                              if line.count(" ") >= 5 and "/" in line)
        except OSError:
            continue
        if hit:
            found.append(int(name))
    return found


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


class FsAgent:
    rtype = "fs"

    def __init__(self, attrs: Mapping[str, str], *, runner: Runner | None = None,
                 mountinfo: str = MOUNTINFO, reboot: tuple[str, ...] = REBOOT):
        self.attrs = META.with_defaults(attrs)
        self._reboot = reboot
        self.name = self.attrs.get("name", "")
        self.mountpoint = os.path.normpath(self.attrs["mountpoint"])
        self.device = self.attrs["device"]
        self.force_unmount = parse_bool(self.attrs["force_unmount"])
        self._runner = runner or Runner()
        self._mountinfo = mountinfo
        self._who = f"fs:{self.name} ({self.device} on {self.mountpoint})"

    def _timeout(self, action: str, timeout: float | None) -> float:
        return timeout if timeout is not None else META.action_timeout(action, 30.0)

    async def _mounts(self) -> tuple[MountEntry, ...]:
        def read() -> str:
            with open(self._mountinfo, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        return parse_mountinfo(await asyncio.to_thread(read))

    def _is_ours(self, entry: MountEntry, devno: str | None) -> bool:
        return entry.devno == devno if devno else entry.source == self.device

    async def _state(self) -> tuple[MountEntry | None, MountEntry | None, MountEntry | None]:
        """(ours at the mountpoint, something else at the mountpoint, ours elsewhere)."""
        devno = await asyncio.to_thread(device_number, self.device)
        mounts = await self._mounts()
        at_mp = [m for m in mounts if m.mountpoint == self.mountpoint]
        top = at_mp[-1] if at_mp else None   # the last mount on a path is the visible one
        if top is not None and self._is_ours(top, devno):
            return top, None, None
        # Only a block device is one thing; tmpfs or an NFS export may be mounted twice.
        elsewhere = next((m for m in mounts if devno and m.devno == devno
                          and m.mountpoint != self.mountpoint), None)
        return None, top, elsewhere

    async def start(self, timeout: float | None = None) -> AgentResult:
        return await guarded(AgentAction.START, self._who, self._timeout("start", timeout),
                             self._start)

    async def _start(self) -> Outcome:
        ours, other, elsewhere = await self._state()
        if ours is not None:
            return Outcome(AgentRc.OK, f"{self._who}: already mounted")
        if other is not None:
            return Outcome(AgentRc.FAILED, f"{self._who}: mountpoint is busy with "
                                           f"{other.source} ({other.fstype})")
        if elsewhere is not None:
            return Outcome(AgentRc.FAILED, f"{self._who}: refusing to mount: device is already "
                                           f"mounted at {elsewhere.mountpoint} on this node")
        await asyncio.to_thread(os.makedirs, self.mountpoint, 0o755, True)
        checked = await self._fsck()
        if isinstance(checked, Outcome):
            return checked
        argv = ["mount"]
        if self.attrs.get("fstype"):
            argv += ["-t", self.attrs["fstype"]]
        if self.attrs.get("options"):
            argv += ["-o", self.attrs["options"]]
        argv += [self.device, self.mountpoint]
        result = await self._runner.run(argv, timeout=self._timeout("start", None))
        if result.rc != 0:
            detail = result.error or result.stderr.strip() or f"exit {result.rc}"
            return Outcome(AgentRc.FAILED, f"{self._who}: mount failed: {detail}", result.rc,
                           result.stderr)
        ours, _other, _elsewhere = await self._state()
        if ours is None:
            return Outcome(AgentRc.FAILED, f"{self._who}: mount exited 0 but the filesystem is "
                                           "not in mountinfo", result.rc)
        return Outcome(AgentRc.OK, f"{self._who}: mounted{checked}", result.rc)

    def needs_fsck(self) -> bool:
        """fs.sh's rule: forced, or a filesystem type without a journal (or unknown)."""
        return (parse_bool(self.attrs["force_fsck"]) is True
                or self.attrs.get("fstype", "") not in JOURNALED)

    async def _fsck(self) -> str | Outcome:
        """``fsck -p`` where fs.sh ran it: a note for the start message, or the failure."""
        if not self.needs_fsck() or await asyncio.to_thread(device_number, self.device) is None:
            return ""
        # no -t: fsck finds the type on the device (fs.sh ran exactly this)
        result = await self._runner.run(["fsck", "-p", self.device], timeout=FSCK_TIMEOUT)
        if result.rc in (0, 1):
            return " after fsck -p corrected errors (exit 1)" if result.rc else \
                " (fsck -p: clean)"
        last = (result.stdout.strip() + "\n" + result.stderr.strip()).strip().splitlines()
        detail = result.error or (f"exit {result.rc}" + (f": {last[-1][:200]}" if last else ""))
        logger.error("%s: fsck -p failed (%s): not mounting it", self._who, detail)
        return Outcome(AgentRc.FAILED, f"{self._who}: fsck -p {self.device} failed ({detail}): "
                                       "errors left uncorrected; repair it by hand (fsck "
                                       "with the service disabled) before enabling it",
                       result.rc, result.stdout + result.stderr)

    async def stop(self, timeout: float | None = None) -> AgentResult:
        return await guarded(AgentAction.STOP, self._who, self._timeout("stop", timeout),
                             self._stop)

    async def _stop(self) -> Outcome:
        ours, other, _elsewhere = await self._state()
        if ours is None:
            note = f" (mountpoint holds {other.source})" if other is not None else ""
            return Outcome(AgentRc.OK, f"{self._who}: not mounted{note}")
        result = await self._runner.run(["umount", self.mountpoint], timeout=30.0)
        killed: list[int] = []
        if result.rc != 0 and self.force_unmount:
            killed = await self._kill_users()
            result = await self._runner.run(["umount", self.mountpoint], timeout=30.0)
        ours, _other, _elsewhere = await self._state()
        if ours is not None:
            detail = result.error or result.stderr.strip() or f"exit {result.rc}"
            hint = "" if self.force_unmount else " (force_unmount=0)"
            if parse_bool(self.attrs["self_fence"]) is True:
                await self._self_fence(detail)
            return Outcome(AgentRc.FAILED, f"{self._who}: umount failed: {detail}{hint}",
                           result.rc, result.stderr)
        note = f" after killing {len(killed)} process(es) {killed}" if killed else ""
        return Outcome(AgentRc.OK, f"{self._who}: unmounted{note}", result.rc)

    async def _self_fence(self, detail: str) -> None:
        """fs.sh's self_fence: the disk is still mounted after a stop, so reboot now."""
        logger.critical("%s: umount failed (%s) and self_fence is set: REBOOTING this node "
                        "now (%s)", self._who, detail, " ".join(self._reboot))
        await self._runner.run(["sync"], timeout=10.0)
        result = await self._runner.run(list(self._reboot), timeout=10.0)
        # only reached when the reboot did not happen (no such program, not permitted)
        logger.critical("%s: self_fence: %s did not reboot this node (%s): the cluster "
                        "must fence it", self._who, self._reboot[0],
                        result.error or f"exit {result.rc}")

    async def _kill_users(self) -> list[int]:
        pids = await asyncio.to_thread(users_of, self.mountpoint)
        if not pids:
            return []
        logger.warning("%s: force_unmount: sending SIGTERM to %s", self._who, pids)
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        while time.monotonic() < deadline and await asyncio.to_thread(users_of, self.mountpoint):
            await asyncio.sleep(0.05)
        remaining = await asyncio.to_thread(users_of, self.mountpoint)
        if remaining:
            logger.warning("%s: force_unmount: sending SIGKILL to %s", self._who, remaining)
            _signal_all(remaining, signal.SIGKILL)
            deadline = time.monotonic() + KILL_GRACE
            while time.monotonic() < deadline and await asyncio.to_thread(users_of,
                                                                          self.mountpoint):
                await asyncio.sleep(0.05)
        return pids

    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult:
        async def body() -> Outcome:
            return await self._status(depth)
        return await guarded(AgentAction.STATUS, self._who, self._timeout("status", timeout), body)

    async def _status(self, depth: int) -> Outcome:
        ours, other, _elsewhere = await self._state()
        if ours is None:
            if other is not None:
                return Outcome(AgentRc.FAILED, f"{self._who}: mountpoint holds {other.source} "
                                               "instead")
            return Outcome(AgentRc.NOT_RUNNING, f"{self._who}: not mounted")
        if depth >= 10:
            await asyncio.to_thread(os.listdir, self.mountpoint)
        if depth >= 20 and "ro" not in ours.options.split(","):
            await asyncio.to_thread(_rw_probe, os.path.join(self.mountpoint, RW_PROBE))
        return Outcome(AgentRc.OK, f"{self._who}: mounted ({ours.fstype}, depth {depth})")

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult:
        result = AgentResult(AgentAction.META_DATA, AgentRc.OK, "fs: built-in meta-data", 0.0)
        return MetaDataResult(result, META)


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _rw_probe(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"clusterd\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.unlink(path)
