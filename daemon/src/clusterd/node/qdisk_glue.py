"""Wire the quorum disk (``clusterd.qdisk.runner``) into the node.

Runs a :class:`~clusterd.qdisk.runner.QdiskRunner` while the running cluster.conf has a
``<quorumd>``, restarts it when the quorum disk's settings change and stops it when they
go; hands each grant it reads to the membership core (through ``set_grant``, the
endpoint's ``set_qdisk``) and fills the status document's ``qdisk`` section.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from clusterd.conf import ClusterConf
from clusterd.conf.qdisk import QdiskConf, qdisk_warnings
from clusterd.membership.quorum import QdiskGrant
from clusterd.node.port import NodePort
from clusterd.qdisk.runner import QdiskRunner

logger = logging.getLogger(__name__)


class QdiskGlue:
    def __init__(self, port: NodePort, *, incarnation: int,
                 keys: Callable[[], tuple[bytes, tuple[bytes, ...]]],
                 set_grant: Callable[[QdiskGrant | None], None]) -> None:
        self.port = port
        self.incarnation = incarnation
        self._keys = keys
        self._set_grant = set_grant
        self.runner: QdiskRunner | None = None
        self._task: asyncio.Task | None = None
        self._conf: QdiskConf | None = None
        self._started = False
        port.sections["qdisk"] = self.status_section

    def status_section(self) -> tuple[Mapping[str, Any], ...]:
        return (self.runner.status(),) if self.runner is not None else ()

    async def start(self) -> None:
        """Once the endpoint runs (a grant goes straight to the core)."""
        self._started = True
        self.on_conf(self.port.conf())

    def on_conf(self, conf: ClusterConf) -> None:
        if not self._started:
            return
        if conf.qdisk == self._conf and (self._task is not None) == (conf.qdisk is not None):
            return
        for _el, warning in qdisk_warnings(conf.section("quorumd")):
            logger.warning("node %s: quorum disk: %s", self.port.name, warning)
        old = self._task
        self._conf = conf.qdisk
        self._task = None
        self.runner = None
        if old is not None:
            old.cancel()
            logger.info("node %s: quorum disk %s", self.port.name,
                        "settings changed: restarting it" if conf.qdisk is not None
                        else "removed from cluster.conf: its votes no longer count here")
        if conf.qdisk is None:
            self._set_grant(None)
            return
        names = {n.nodeid: n.name for n in conf.nodes}
        self.runner = QdiskRunner(
            conf.qdisk, node=self.port.name, nodeid=self.port.nodeid,
            incarnation=self.incarnation, cluster=conf.name,
            nodeids=tuple(sorted(names)), names=names, keys=self._keys,
            view=lambda: self.port.membership().view, publish=self._set_grant,
            clock=self.port.clock)
        self._task = asyncio.get_running_loop().create_task(
            self._run(self.runner, old), name="quorum disk")

    async def _run(self, runner: QdiskRunner, previous: asyncio.Task | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("node %s: the quorum disk loop failed; its votes no longer "
                             "count here", self.port.name)
            self._set_grant(None)

    def poke(self) -> None:
        """The view changed: the disk's master regrants at once (``QdiskRunner.poke``)."""
        if self.runner is not None:
            self.runner.poke()

    async def close(self) -> None:
        self._started = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
