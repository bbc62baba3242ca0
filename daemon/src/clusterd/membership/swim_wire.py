"""The SWIM detector's messages (``swim.py``) and their wire forms (pure).

``Ping``, ``PingReq``, ``Ack`` and ``Nack``, each carrying up to ``MAX_UPDATES``
piggybacked ``Update``s, as plain dicts for now: the packet codec (protocol v5,
authentication) is a later step and will turn the ``TypeError``/``ValueError`` of
``from_wire`` into ``WireError``. ``from_wire`` is strict: exact keys, integer types and
ranges, bounded lists, so a message's compact JSON is at most ``MAX_MESSAGE_BYTES``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Self

MAX_NODEID = 2**31 - 1
MAX_INC = 2**32 - 1
MAX_SEQ = 2**32 - 1
MAX_UPDATES = 16
# {"t":"pingreq","s":4294967295,"n":2147483647,"u":[...]} with 16 updates of at most
# [2,2147483647,4294967295,2147483647] (36 bytes) and 15 commas (test_swim checks it)
MAX_MESSAGE_BYTES = 643


class Status(enum.IntEnum):
    ALIVE = 0
    SUSPECT = 1
    FAILED = 2


def _int(value: Any, what: str, hi: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
    if not 0 <= value <= hi:
        raise ValueError(f"{what} must be in 0..{hi}, not {value}")
    return value


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class Update:
    """What one node says of a member: its status at an incarnation. ``origin`` is the
    node that first said it (for a suspicion, the suspecting node: Lifeguard counts
    confirmations by distinct origins, not by who relayed them)."""

    status: Status
    node: int
    inc: int
    origin: int

    def to_wire(self) -> list[int]:
        return [int(self.status), self.node, self.inc, self.origin]

    @classmethod
    def from_wire(cls, value: Any) -> Update:
        if not isinstance(value, list):
            raise TypeError(f"an update must be a list, not {type(value).__name__}")
        if len(value) != 4:
            raise ValueError("an update must be [status, node, incarnation, origin]")
        status = _int(value[0], "update status", len(Status) - 1)
        return cls(Status(status), _int(value[1], "update node", MAX_NODEID),
                   _int(value[2], "update incarnation", MAX_INC),
                   _int(value[3], "update origin", MAX_NODEID))


def _updates_from(value: Any) -> tuple[Update, ...]:
    if not isinstance(value, list):
        raise TypeError(f"updates must be a list, not {type(value).__name__}")
    if len(value) > MAX_UPDATES:
        raise ValueError(f"at most {MAX_UPDATES} updates per message, not {len(value)}")
    return tuple(Update.from_wire(u) for u in value)


def checked_fields(d: Any, kind: str, keys: set[str]) -> dict:
    """``d`` as a message of ``kind`` with exactly ``keys`` (and its type ``t``)."""
    if not isinstance(d, dict):
        raise TypeError(f"a {kind} must be an object, not {type(d).__name__}")
    if d.get("t") != kind:
        raise ValueError(f"message type {d.get('t')!r} is not {kind!r}")
    if set(d) != keys | {"t"}:
        raise ValueError(f"{kind} keys {sorted(map(str, d))} != {sorted(keys | {'t'})}")
    return d


@dataclass(frozen=True)
class Ping:
    """A probe. ``target`` is whom the sender meant: a ping reaching another node (an
    address reused by a new node) is dropped rather than acked."""

    seq: int
    target: int
    updates: tuple[Update, ...] = ()
    kind = "ping"

    def to_wire(self) -> dict:
        return {"t": self.kind, "s": self.seq, "n": self.target,
                "u": [u.to_wire() for u in self.updates]}

    @classmethod
    def from_wire(cls, d: Any) -> Self:
        d = checked_fields(d, cls.kind, {"s", "n", "u"})
        return cls(_int(d["s"], "sequence", MAX_SEQ), _int(d["n"], "target", MAX_NODEID),
                   _updates_from(d["u"]))


@dataclass(frozen=True)
class PingReq(Ping):
    """Please probe ``target`` and relay its ack (or a nack) to me under ``seq``."""

    kind = "pingreq"


@dataclass(frozen=True)
class Ack:
    seq: int
    updates: tuple[Update, ...] = ()
    kind = "ack"

    def to_wire(self) -> dict:
        return {"t": self.kind, "s": self.seq, "u": [u.to_wire() for u in self.updates]}

    @classmethod
    def from_wire(cls, d: Any) -> Self:
        d = checked_fields(d, cls.kind, {"s", "u"})
        return cls(_int(d["s"], "sequence", MAX_SEQ), _updates_from(d["u"]))


@dataclass(frozen=True)
class Nack(Ack):
    """A relay got no ack from the target in time: the requester is not cut off."""

    kind = "nack"


SwimMessage = Ping | PingReq | Ack | Nack
_KINDS: dict[str, type[Ping | Ack]] = {c.kind: c for c in (Ping, PingReq, Ack, Nack)}


def message_from_wire(d: Any) -> SwimMessage:
    """Decode any of the four messages; TypeError or ValueError if ``d`` is not one."""
    if not isinstance(d, dict):
        raise TypeError(f"a message must be an object, not {type(d).__name__}")
    kind = d.get("t")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown message type {kind!r}")
    return cls.from_wire(d)
