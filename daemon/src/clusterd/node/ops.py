"""The core control operations (status, conf.get, conf.propose, reload, leave).

Each handler is a thin async function over a :class:`NodeControl` (the daemon); the
registry is built here and other layers (fencing, services) add their own operations to
the same registry with ``registry.register(...)`` before the server starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from clusterd.control import protocol as p


class NodeControl(Protocol):
    def status_document(self) -> dict[str, Any]: ...

    def running_conf(self) -> Any: ...

    async def propose(self, data: bytes, origin: str) -> dict[str, Any]: ...

    async def reload(self) -> dict[str, Any]: ...

    def request_leave(self, reason: str) -> None: ...


def build_registry(node: NodeControl) -> p.OpRegistry:
    registry = p.OpRegistry()

    async def status(args: Mapping[str, Any], peer: p.Peer) -> Any:
        return node.status_document()

    async def conf_get(args: Mapping[str, Any], peer: p.Peer) -> Any:
        conf = node.running_conf()
        out: dict[str, Any] = {"name": conf.name, "version": conf.version,
                               "sha256": conf.sha256}
        if args.get("text"):
            out["conf"] = conf.canonical_bytes().decode("utf-8")
        return out

    async def conf_propose(args: Mapping[str, Any], peer: p.Peer) -> Any:
        data = p.conf_bytes_from_args(p.OP_CONF_PROPOSE, args)
        return await node.propose(data, origin=f"control socket (uid {peer.uid})")

    async def reload(args: Mapping[str, Any], peer: p.Peer) -> Any:
        return await node.reload()

    async def leave(args: Mapping[str, Any], peer: p.Peer) -> Any:
        node.request_leave(f"leave requested on the control socket by uid {peer.uid}")
        return {"leaving": True}

    handlers = {p.OP_STATUS: (status, "cluster status document (what clustat renders)"),
                p.OP_CONF_GET: (conf_get, "running cluster.conf version, hash, text"),
                p.OP_CONF_PROPOSE: (conf_propose,
                                    "validate, write and propagate a new cluster.conf"),
                p.OP_RELOAD: (reload, "re-read cluster.conf from disk and propose it"),
                p.OP_LEAVE: (leave, "leave the cluster cleanly and exit")}
    for name, (handler, text) in handlers.items():
        registry.register(name, handler, p.CORE_OP_ARGS[name], text)
    return registry
