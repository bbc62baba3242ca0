"""The quorum disk's cycle on a real device.

Every ``interval`` seconds (never sooner): decide and write this node's block, read every
block, feed the election, hand the grant to the membership core. Device I/O runs in a
thread with O_DIRECT and O_DSYNC (a SAN's cache must not answer for the disk); at most one
I/O is in flight, so a hung device (a lost path) costs cycles, not threads. A write or a
read that takes more than half an interval counts as failed: what the election concludes
from a read holds only if reads and writes are that quick (``election.py``).

The device is ``<quorumd device>`` or, with ``label``, the block device listed in
/proc/partitions whose header carries that label. A device without a header (never
initialised with ``mkqdisk -c DEVICE -l LABEL``) is refused with that advice and retried.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import time
from collections.abc import Callable
from typing import Any

from clusterd.conf.qdisk import QdiskConf
from clusterd.membership.quorum import QdiskGrant
from clusterd.qdisk.block import (
    MAX_NODEID,
    SIZE,
    SLOT,
    DiskState,
    decode_block,
    decode_header,
    disk_key,
    encode_block,
)
from clusterd.qdisk.election import Election
from clusterd.qdisk.heuristics import Heuristics
from clusterd.wire.messages import View

logger = logging.getLogger(__name__)

RETRY_CYCLES = 5   # a device that cannot be opened or has no header: retried this often
REREAD = 0.05      # s between reads after a view change, until the master's new grant


class DiskError(Exception):
    pass


def open_device(path: str) -> int:
    """Open ``path`` for direct, synchronous I/O (without O_DIRECT where the file system
    refuses it, e.g. a test file on tmpfs)."""
    flags = os.O_RDWR | os.O_DSYNC | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno != 22:  # EINVAL: no O_DIRECT here
            raise
    return os.open(path, flags)


def read_slots(fd: int, count: int) -> bytes:
    buf = mmap.mmap(-1, SLOT * count)   # page-aligned, as O_DIRECT needs
    try:
        n = os.preadv(fd, [buf], 0)
        if n < SLOT * count:
            raise DiskError(f"short read: {n} of {SLOT * count} bytes (is the device at "
                            f"least {SIZE} bytes?)")
        return bytes(buf)
    finally:
        buf.close()


def write_slot(fd: int, index: int, data: bytes) -> None:
    buf = mmap.mmap(-1, SLOT)
    try:
        buf.write(data)
        n = os.pwritev(fd, [buf], SLOT * index)
        if n != SLOT:
            raise DiskError(f"short write: {n} of {SLOT} bytes")
    finally:
        buf.close()


def find_label(label: str) -> str | None:
    """The block device in /proc/partitions whose quorum disk header has ``label``."""
    try:
        with open("/proc/partitions") as f:
            names = [line.split()[3] for line in f.read().splitlines()[2:] if line.split()]
    except OSError:
        return None
    for name in names:
        path = f"/dev/{name}"
        try:
            fd = open_device(path)
        except OSError:
            continue
        try:
            header = decode_header(read_slots(fd, 1))
        except (OSError, DiskError):
            continue
        finally:
            os.close(fd)
        if header is not None and header.label == label:
            return path
    return None


class QdiskRunner:
    def __init__(self, conf: QdiskConf, *, node: str, nodeid: int, incarnation: int,
                 cluster: str, nodeids: tuple[int, ...], names: dict[int, str],
                 keys: Callable[[], tuple[bytes, tuple[bytes, ...]]],
                 view: Callable[[], View | None], publish: Callable[[QdiskGrant | None], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.conf = conf
        self.node = node
        self.nodeid = nodeid
        self.cluster = cluster
        self.names = names
        self._keys = keys
        self._view = view
        self._publish = publish
        self._clock = clock
        self.election = Election(conf, nodeid, incarnation, nodeids, conf.votes)
        self.heuristics = Heuristics(conf.heuristics, node)
        self.path: str | None = None
        self._errors: dict[str, str] = {"open": "not started"}
        self._fd: int | None = None
        self._io: asyncio.Future | None = None
        self.cycles = 0
        self.grant: QdiskGrant | None = None
        self._poked = asyncio.Event()

    # ------------------------------------------------------------------ running
    async def run(self) -> None:
        try:
            await self._open()
            self.heuristics.start()
            if self.conf.heuristics:
                await self.heuristics.run_once()
            next_at = self._clock()
            while True:
                started = self._clock()
                await self._cycle(started)
                next_at = max(next_at + self.conf.interval, started + self.conf.interval)
                while (wait := next_at - self._clock()) > 0:
                    try:
                        async with asyncio.timeout(wait):
                            await self._poked.wait()
                    except TimeoutError:
                        break
                    self._poked.clear()
                    await self._between(self._clock())
        finally:
            await self.heuristics.stop()
            self._set_grant(None)
            if self._fd is not None:
                fd, self._fd = self._fd, None
                if self._io is None or self._io.done():
                    os.close(fd)

    async def _open(self) -> None:
        while True:
            try:
                path = self.conf.device or await asyncio.to_thread(find_label, self.conf.label)
                if path is None:
                    raise DiskError(f"no block device carries a quorum disk header labelled "
                                    f"{self.conf.label!r}: check the LUN is visible here, or "
                                    "initialise it with mkqdisk -c DEVICE -l LABEL")
                fd = await asyncio.to_thread(open_device, path)
                try:
                    header = decode_header(await asyncio.to_thread(read_slots, fd, 1))
                except BaseException:
                    os.close(fd)
                    raise
                if header is None:
                    os.close(fd)
                    raise DiskError(f"{path} has no quorum disk header: initialise it once, "
                                    f"from one node, with mkqdisk -c {path} -l LABEL")
                self._fd, self.path, self.error = fd, path, ""
                logger.info("node %s: quorum disk %s (label %s): %d votes, interval %ds, "
                            "tko %d, %d heuristics, min_score %d%s", self.node, path,
                            header.label, self.conf.votes, self.conf.interval, self.conf.tko,
                            len(self.conf.heuristics), self.conf.min_score,
                            ", master_wins" if self.conf.master_wins else "")
                return
            except (OSError, DiskError) as exc:
                error = str(exc) if isinstance(exc, DiskError) else \
                    f"cannot open {self.conf.name}: {exc.strerror or exc}"
                if error != self.error:
                    logger.error("node %s: quorum disk unusable: %s; no quorum disk votes "
                                 "here until it is (retrying every %ds)", self.node, error,
                                 RETRY_CYCLES * self.conf.interval)
                self.error = error
                await asyncio.sleep(RETRY_CYCLES * self.conf.interval)

    async def _cycle(self, started: float) -> None:
        self.cycles += 1
        active, accepted = self._keys()
        key = disk_key(active, self.cluster)
        keys = tuple(disk_key(k, self.cluster) for k in (active, *accepted))
        block = self.election.next_block(started, self._view(), self.heuristics.score(),
                                         int(time.time() * 1000))
        ok = await self._io_call(write_slot, self._fd, self.nodeid, encode_block(block, key),
                                 what="write")
        self.election.wrote(block, started, ok)
        read_start = self._clock()
        data = await self._io_call(read_slots, self._fd, MAX_NODEID + 1, what="read")
        if isinstance(data, bytes):
            blocks = {n: decode_block(data[n * SLOT:(n + 1) * SLOT], n, keys)
                      for n in self.election.peers}
            self.election.observe(read_start, blocks)
        for note in self.election.take_notes():
            logger.warning("node %s: quorum disk: %s", self.node, note)
        self._set_grant(self.election.grant(self._clock()))

    def poke(self) -> None:
        """This node's view changed: regrant and read at once (``_between``)."""
        self._poked.set()

    async def _between(self, started: float) -> None:
        """Between cycles, after a view change: the master writes its grant for the new
        view (``Election.regrant``) and every node reads, without counting the read. A
        node whose master is in its new view reads again every ``REREAD`` seconds, for up
        to half an interval, until the master's grant for that view is there: the master
        was told of the view at the same moment and may not have written it yet (a member
        of the winning side would otherwise wait for its next cycle, longer than the half
        token a view may go without backing before a loss of quorum is reported)."""
        if self._fd is None:
            return
        active, accepted = self._keys()
        block = self.election.regrant(started, self._view(), int(time.time() * 1000))
        if block is not None:
            ok = await self._io_call(write_slot, self._fd, self.nodeid,
                                     encode_block(block, disk_key(active, self.cluster)),
                                     what="write")
            self.election.wrote(block, started, ok)
        keys = tuple(disk_key(k, self.cluster) for k in (active, *accepted))
        until = started + self.conf.interval / 2
        while True:
            read_start = self._clock()
            data = await self._io_call(read_slots, self._fd, MAX_NODEID + 1, what="read")
            if isinstance(data, bytes):
                blocks = {n: decode_block(data[n * SLOT:(n + 1) * SLOT], n, keys)
                          for n in self.election.peers}
                self.election.observe(read_start, blocks, counted=False)
            grant = self.election.grant(self._clock())
            self._set_grant(grant)
            view = self._view()
            master = self.election.master(self._clock())
            if (view is None or master is None or master not in view.nodeids
                    or (grant is not None and grant.vid == view.vid)
                    or self._clock() + REREAD > until):
                return
            await asyncio.sleep(REREAD)

    async def _io_call(self, fn: Callable[..., Any], *args: Any, what: str) -> Any:
        """Run ``fn`` in a thread unless an I/O is still in flight; False when it failed,
        hung or took more than half an interval."""
        if self._io is not None and not self._io.done():
            self._note_error(what, f"a {what} is still waiting for the device from an earlier "
                                   "cycle")
            return False
        loop = asyncio.get_running_loop()
        t0 = self._clock()
        self._io = asyncio.ensure_future(loop.run_in_executor(None, fn, *args))
        try:
            result = await asyncio.wait_for(asyncio.shield(self._io), self.conf.interval)
        except TimeoutError:
            self._note_error(what, f"the {what} did not finish within {self.conf.interval}s")
            return False
        except (OSError, DiskError) as exc:
            self._note_error(what, f"{what} failed: {getattr(exc, 'strerror', None) or exc}")
            return False
        took = self._clock() - t0
        if took > self.conf.interval / 2:
            self._note_error(what, f"the {what} took {took:.2f}s, over half the "
                                   f"{self.conf.interval}s interval: counted as failed")
            return False
        if self._errors.pop(what, None) is not None:
            logger.info("node %s: quorum disk %s: %ss work again", self.node, self.path, what)
        return True if result is None else result

    @property
    def error(self) -> str:
        """The open I/O problems (write, read), or the device's ("" when it works)."""
        return "; ".join(e for e in (self._errors.get("open"), self._errors.get("write"),
                                     self._errors.get("read")) if e)

    @error.setter
    def error(self, text: str) -> None:
        self._errors = {"open": text} if text else {}

    def _note_error(self, what: str, error: str) -> None:
        if error != self._errors.get(what):
            logger.error("node %s: quorum disk %s: %s", self.node, self.path, error)
        self._errors[what] = error

    def _set_grant(self, grant: QdiskGrant | None) -> None:
        if grant != self.grant:
            self.grant = grant
            self._publish(grant)

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        e, now = self.election, self._clock()
        master = e.master(now)
        grant = self.grant
        written = e.written
        return {
            "name": self.conf.name, "device": self.path, "label": self.conf.label,
            "votes": self.conf.votes, "state": e.state.name.lower(),
            "master": self.names.get(master) if master is not None else None,
            "master_wins": self.conf.master_wins,
            "score": e.score, "min_score": self.conf.min_score,
            "max_score": self.conf.max_score,
            "online": sorted(self.names.get(n, str(n)) for n in e.online()),
            "writing": e.wrote_at is not None and now - e.wrote_at < 2 * self.conf.interval,
            "granted": bool(grant is not None and grant.mine and grant.until > now),
            "grant_view": grant.vid.epoch if grant is not None else None,
            "granted_nodes": sorted(self.names.get(n, str(n)) for n in written.granted())
            if written is not None and written.state is DiskState.MASTER else [],
            "error": self.error, "interval": self.conf.interval, "tko": self.conf.tko,
            "heuristics": self.heuristics.status(),
        }

