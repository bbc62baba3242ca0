"""The core control operations (status, conf.get, conf.propose, reload, leave,
quorum.expected, key.*).

Each handler is a thin async function over a :class:`NodeControl` (the daemon), the key
operations over a :class:`KeyControl` (the node's keys, ``keys.py``); the registry is
built here and other layers (fencing, services) add their own operations to the same
registry with ``registry.register(...)`` before the server starts. Reading is
``Role.READ``, changing anything ``Role.ADMIN``; ``conf.get`` masks every secret parameter
unless root passes ``reveal_secrets`` (``Role.ROOT``, enforced by the server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from clusterd.conf.render import to_bytes
from clusterd.conf.secrets import masked_copy
from clusterd.control import protocol as p
from clusterd.errors import ControlError
from clusterd.node.shutdown import Mode

OP_KEY_STATUS, OP_KEY_RELOAD, OP_KEY_ACTIVATE = "key.status", "key.reload", "key.activate"


class NodeControl(Protocol):
    def status_document(self) -> dict[str, Any]: ...

    def running_conf(self) -> Any: ...

    async def propose(self, data: bytes, origin: str) -> dict[str, Any]: ...

    async def reload(self) -> dict[str, Any]: ...

    def request_leave(self, reason: str, mode: Mode = Mode.LEAVE) -> Mode: ...

    def set_expected(self, expected: int, origin: str) -> dict[str, Any]: ...


class KeyControl(Protocol):
    async def key_status(self) -> dict[str, Any]: ...

    async def reload_keys(self) -> dict[str, Any]: ...

    async def activate_key(self) -> dict[str, Any]: ...


def build_registry(node: NodeControl) -> p.OpRegistry:
    registry = p.OpRegistry()

    async def status(args: Mapping[str, Any], peer: p.Peer) -> Any:
        return node.status_document()

    async def conf_get(args: Mapping[str, Any], peer: p.Peer) -> Any:
        conf = node.running_conf()
        out: dict[str, Any] = {"name": conf.name, "version": conf.version,
                               "sha256": conf.sha256}
        if args.get("text"):
            reveal = bool(args.get("reveal_secrets"))
            data = conf.canonical_bytes() if reveal else to_bytes(masked_copy(conf.root))
            out["conf"] = data.decode("utf-8")
            out["masked"] = not reveal
        return out

    async def conf_propose(args: Mapping[str, Any], peer: p.Peer) -> Any:
        data = p.conf_bytes_from_args(p.OP_CONF_PROPOSE, args)
        return await node.propose(data, origin=f"control socket ({peer.who})")

    async def reload(args: Mapping[str, Any], peer: p.Peer) -> Any:
        return await node.reload()

    async def leave(args: Mapping[str, Any], peer: p.Peer) -> Any:
        try:
            mode = Mode(args.get("mode", Mode.LEAVE.value))
        except ValueError:
            raise ControlError(p.E_BAD_ARGS, "op 'leave': mode must be 'leave' (stop the "
                                             "services, they move) or 'restart' (keep "
                                             "them running for the next daemon)") from None
        done = node.request_leave(f"{mode.value} requested on the control socket by "
                                  f"{peer.who}", mode)
        return {"leaving": True, "mode": done.value}

    async def quorum_expected(args: Mapping[str, Any], peer: p.Peer) -> Any:
        expected = args["expected"]
        if expected < 1:
            raise ControlError(p.E_BAD_ARGS, f"op {p.OP_QUORUM_EXPECTED!r}: expected votes "
                                             f"must be at least 1, not {expected}")
        try:
            return node.set_expected(expected, origin=peer.who)
        except ValueError as exc:
            raise ControlError(p.E_CONFLICT, f"expected votes not changed: {exc}") from None

    handlers = {p.OP_STATUS: (status, "cluster status document (what clustat renders)"),
                p.OP_CONF_GET: (conf_get, "running cluster.conf version, hash, text"),
                p.OP_CONF_PROPOSE: (conf_propose,
                                    "validate, write and propagate a new cluster.conf"),
                p.OP_RELOAD: (reload, "re-read cluster.conf from disk and propose it"),
                p.OP_LEAVE: (leave, "leave cleanly and exit, or restart keeping services"),
                p.OP_QUORUM_EXPECTED: (quorum_expected,
                                       "set expected votes by hand (cman_tool expected)")}
    for name, (handler, text) in handlers.items():
        registry.register(name, handler, p.CORE_OP_ARGS[name], text,
                          role=p.CORE_OP_ROLES[name])
    return registry


def register_key_ops(registry: p.OpRegistry, keys: KeyControl) -> None:
    """``key.status`` (read) and the rekey steps ``key.reload``/``key.activate`` (admin)."""
    for op, method, role, text in (
            (OP_KEY_STATUS, keys.key_status, p.Role.READ,
             "loaded cluster keys and each peer's key"),
            (OP_KEY_RELOAD, keys.reload_keys, p.Role.ADMIN,
             "re-read authkey, authkey.next, .old"),
            (OP_KEY_ACTIVATE, keys.activate_key, p.Role.ADMIN,
             "rekey: authkey.next becomes active")):
        registry.register(op, lambda args, peer, m=method: m(), (), text, role=role)
