"""The node's cluster keys (S5): the loaded key ring and the rekey steps.

:class:`NodeKeys` holds the :class:`~clusterd.wire.auth.KeyRing` read from the authkey
files and hands its secrets to the core's packet guard. It serves the control ops
``key.status``, ``key.reload`` and ``key.activate`` (``ops.register_key_ops``) and the key
reload of SIGHUP. It is handed what it needs explicitly (the authkey path, the core's
``set_keys``, the guard and the running config read at each use, the local nodeid), never
the daemon. A reload that is refused keeps the loaded keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from clusterd.conf import ClusterConf
from clusterd.control import protocol as p
from clusterd.errors import ControlError, FatalError
from clusterd.wire.auth import KeyRing, activate_next, key_id, load_keyring

# the daemon's log lines, under the daemon's logger name as before this module existed
logger = logging.getLogger("clusterd.node.daemon")


def _secrets(ring: KeyRing) -> tuple[bytes, tuple[bytes, ...]]:
    return ring.active.secret, tuple(k.secret for k in ring.accepted)


class NodeKeys:
    def __init__(self, *, name: str, nodeid: int, authkey_path: str,
                 set_keys: Callable[[bytes, tuple[bytes, ...]], None],
                 guard: Callable[[], Any], conf: Callable[[], ClusterConf],
                 ring: KeyRing | None = None) -> None:
        self.name = name
        self.nodeid = nodeid
        self.authkey_path = authkey_path
        self._set_keys = set_keys
        self._guard = guard
        self._conf = conf
        self.ring = ring or load_keyring(authkey_path)  # FatalError: refuse to start
        set_keys(*_secrets(self.ring))

    @property
    def active_id(self) -> str:
        """The id of the key this node sends with (the status document's ``wire.key``)."""
        return self.ring.active.key_id

    async def key_status(self) -> dict[str, Any]:
        guard = self._guard()
        peers = {}
        for node in self._conf().nodes:
            if node.nodeid != self.nodeid:
                secret = guard.peer_key(node.nodeid)
                peers[node.name] = key_id(secret) if secret is not None else None
        return {**self.ring.describe(), "peers": peers}

    async def reload_keys(self) -> dict[str, Any]:
        """Re-read the key files; on any refusal keep the loaded keys (ControlError)."""
        try:
            ring = await asyncio.to_thread(load_keyring, self.authkey_path)
        except FatalError as exc:
            raise ControlError(p.E_INVALID_CONFIG, f"keys not reloaded: {exc}") from None
        self.ring = ring
        self._set_keys(*_secrets(ring))
        logger.info("node %s: cluster keys loaded: sending with %s, also accepting %s",
                    self.name, ring.active.key_id,
                    ", ".join(k.key_id for k in ring.accepted) or "no other key")
        return await self.key_status()

    async def activate_key(self) -> dict[str, Any]:
        try:
            await asyncio.to_thread(activate_next, self.authkey_path)
        except (FatalError, OSError) as exc:
            raise ControlError(p.E_INVALID_CONFIG, f"key not activated: {exc}") from None
        return await self.reload_keys()
