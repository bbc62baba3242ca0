"""Putting a cluster.conf in force on this node, and keeping the files the cycle asks for.

:class:`ConfigApply` executes the cycle's config actions: ``ApplyConfig`` (parse off the
loop, keep the accepted copy, write the file, run the new config in the runtime, then tell
the parts that follow it, in order), ``KeepAccepted`` and ``KeepPending``. After every
config it runs with (at start and on each apply) it names the parts clusterd accepts but
does not use and reads the fence agents' metadata ahead into the fencer's cache. It is
handed what it needs explicitly (paths, the runtime's ``apply_conf``, the parts'
``on_conf`` callbacks, the fence agent runner read at each use), never the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from clusterd.conf import ClusterConf, parse
from clusterd.conf.files import write_atomic
from clusterd.conf.support import log_unused
from clusterd.configsync.startup import pending_path
from clusterd.fencing.catalog import prefetch
from clusterd.node.wiring import save_accepted

# the daemon's log lines, under the daemon's logger name as before this module existed
logger = logging.getLogger("clusterd.node.daemon")


class ConfigApply:
    def __init__(self, *, name: str, config_path: str, state_dir: str,
                 apply_conf: Callable[[ClusterConf], None],
                 on_conf: Sequence[Callable[[ClusterConf], None]],
                 fence_runner: Callable[[], Any]) -> None:
        self.name = name
        self.config_path = config_path
        self.state_dir = state_dir
        self._apply_conf = apply_conf
        self._on_conf = tuple(on_conf)          # told in this order, after the runtime
        self._fence_runner = fence_runner
        self.read_ahead: asyncio.Task | None = None

    async def started(self, conf: ClusterConf) -> None:
        """What follows the config the daemon starts with (as after an apply)."""
        await self.warn_unused(conf)
        self.read_fence_metadata(conf)

    async def write_and_apply(self, data: bytes, reason: str, accepted: bool = True
                              ) -> ClusterConf:
        conf = await asyncio.to_thread(parse, data, source=f"cluster.conf ({reason})")
        if accepted:  # the copy first: a crash between the two leaves an older file
            await asyncio.to_thread(save_accepted, self.state_dir, conf.canonical_bytes())
        await asyncio.to_thread(write_atomic, self.config_path, conf.canonical_bytes())
        self._apply_conf(conf)
        for on_conf in self._on_conf:
            on_conf(conf)
        logger.info("node %s: now running config_version %d (%s): %s", self.name,
                    conf.version, conf.sha256[:12], reason)
        await self.warn_unused(conf)
        self.read_fence_metadata(conf)
        return conf

    async def keep_accepted(self, data: bytes, version: int, reason: str) -> None:
        await asyncio.to_thread(save_accepted, self.state_dir, data)
        logger.info("node %s: config_version %d is accepted (%s): kept as the config "
                    "to start with", self.name, version, reason)

    async def keep_pending(self, data: bytes, version: int, message: str) -> None:
        path = pending_path(self.config_path, version=version)
        await asyncio.to_thread(write_atomic, path, data)
        logger.error("node %s: %s; the replaced file is kept as %s: to apply it, once "
                     "this node is a member, raise its config_version above the "
                     "cluster's and run: clusterd conf propose %s; or delete it",
                     self.name, message, path, path)

    def read_fence_metadata(self, conf: ClusterConf) -> None:
        """Read the metadata of the config's fence agents now, in the background, into
        the fencer's cache: the first fence otherwise runs ``AGENT -o metadata`` before the
        power-off (0.1 s on the lab's nodes). What fails here is only logged at debug:
        validation names an agent that cannot answer, and a fence asks again."""
        agents = sorted({d.agent for d in conf.fencedevices.values()})
        if not agents or (self.read_ahead is not None and not self.read_ahead.done()):
            return

        async def read() -> None:
            try:
                found = await prefetch(agents, self._fence_runner())
            except Exception:
                logger.debug("node %s: reading fence agent metadata ahead failed",
                             self.name, exc_info=True)
                return
            logger.debug("node %s: fence agent metadata read ahead: %s", self.name,
                         ", ".join(sorted(found.found)))

        self.read_ahead = asyncio.get_running_loop().create_task(read(),
                                                                 name="fence-metadata")

    async def stop_read_ahead(self) -> None:
        task = self.read_ahead
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def warn_unused(self, conf: ClusterConf) -> None:
        """One WARNING per part of the config clusterd accepts but does not use (RHCS's
        quorum disk, logging, ...: conf/support.py), in a thread (it walks the tree). The
        config is in force already: a failure here is logged, never the apply's."""
        try:
            await asyncio.to_thread(log_unused, self.name, conf)
        except Exception:
            logger.exception("node %s: listing the unused parts of config_version %s failed",
                             self.name, getattr(conf, "version", "?"))
