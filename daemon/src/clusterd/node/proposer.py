"""Proposing a new cluster.conf from this node (control ops ``conf.propose`` and ``reload``,
SIGHUP).

:class:`Proposer` validates a proposal with clear codes in worker threads, never on the
loop (the checks are in ``proposal.py``), hands the canonical bytes and that validation
to configsync through the endpoint, and runs a node cycle at once so that the file is
written before the reply. Proposals run one at a time. It is handed what it needs
explicitly (the running config, the daemon's phase, the fence agent runner, the
endpoint's ``propose_config``, the cycle, the status document), never the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from clusterd.conf import ClusterConf, parse
from clusterd.conf.files import read_limited
from clusterd.control import protocol as p
from clusterd.errors import ConfigError, ControlError
from clusterd.node import cycle as cy
from clusterd.node.proposal import (
    check_proposal,
    refuse_shared_addresses,
    refuse_unknown_fence_params,
    refuse_untrusted_programs,
)

# the daemon's log lines, under the daemon's logger name as before this module existed
logger = logging.getLogger("clusterd.node.daemon")

_CORE_CODES = {"version": p.E_STALE_VERSION, "quorum": p.E_NO_QUORUM}


class Proposer:
    def __init__(self, *, name: str, config_path: str, conf: Callable[[], ClusterConf],
                 phase: Callable[[], cy.DaemonPhase], fence_runner: Callable[[], Any],
                 propose_config: Callable[[bytes, ClusterConf], None],
                 run_cycle: Callable[[float], Awaitable[None]],
                 publish: Callable[[float], None], view: Callable[[], Any],
                 status: Callable[[], dict[str, Any]]) -> None:
        self.name = name
        self.config_path = config_path
        self._conf = conf
        self._phase = phase
        self._fence_runner = fence_runner
        self._propose_config = propose_config
        self._run_cycle = run_cycle
        self._publish = publish
        self._view = view
        self._status = status
        self.lock = asyncio.Lock()   # proposals one at a time (see propose)

    async def propose(self, data: bytes, origin: str) -> dict[str, Any]:
        """Validate here (clear codes) in a worker thread, never on the loop (1 MiB takes
        up to a second; heartbeats must not wait), then hand the canonical bytes and that
        validation to configsync, which checks version and quorum and emits WriteConfig; a
        cycle run right here writes the file before the reply, and peers pull it from this
        node. Proposals run one at a time: each is checked against the config the one
        before it left running."""
        async with self.lock:
            return await self._propose(data, origin)

    async def _propose(self, data: bytes, origin: str) -> dict[str, Any]:
        phase = self._phase()
        if phase in (cy.DaemonPhase.LEAVING, cy.DaemonPhase.RESTARTING):
            raise ControlError(p.E_NOT_READY, f"clusterd is {phase.value}")
        verdict = await asyncio.to_thread(check_proposal, self._conf(), data,
                                          local_name=self.name, parse=parse)
        loop = asyncio.get_running_loop()
        if verdict.changed:
            await asyncio.to_thread(refuse_untrusted_programs, verdict.conf)
            if {n.name for n in verdict.conf.nodes} != {n.name for n in self._conf().nodes}:
                await asyncio.to_thread(refuse_shared_addresses, verdict.conf)   # DNS
            await refuse_unknown_fence_params(verdict.conf, self._fence_runner())
            try:
                self._propose_config(verdict.conf.canonical_bytes(), verdict.conf)
            except ControlError as exc:
                raise ControlError(_CORE_CODES.get(exc.code, exc.code), exc.message) from None
            except ConfigError as exc:
                raise ControlError(p.E_INVALID_CONFIG, str(exc)) from None
            await self._run_cycle(loop.time())
            logger.info("node %s: config_version %d proposed via %s", self.name,
                        verdict.conf.version, origin)
        self._publish(loop.time())
        view = self._view()
        conf = self._conf()
        return {"version": conf.version, "sha256": conf.sha256,
                "changed": verdict.changed, "reason": verdict.reason,
                "holders": self._status()["cluster"]["config_holders"],
                "members": len(view.nodeids) if view else 1}

    async def reload(self) -> dict[str, Any]:
        try:
            data = await asyncio.to_thread(read_limited, self.config_path, 1024 * 1024)
        except OSError as exc:
            raise ControlError(p.E_INVALID_CONFIG, f"cannot read {self.config_path}: "
                                                   f"{exc.strerror}") from None
        return await self.propose(data, origin=f"reload of {self.config_path}")
