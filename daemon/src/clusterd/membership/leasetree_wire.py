"""The aggregated lease tree's messages (``leasetree.py``) and their wire forms (pure).

``Down`` (parent to child, once a round: the round's number, the child's latest grant it
answers, and the quorum certificate if it holds one) and ``Grant`` (child to parent, once
per ``Down``: the votes of its subtree that back the view, and for how long). Both name
the view by its ``ViewKey``: the view id and a digest of the members' (nodeid,
incarnation), so a grant counts only in the very member set it was given to.

Times never cross the wire as instants of one clock for another to read (the clocks of
two nodes are unrelated): a message carries only durations relative to an instant the
receiver itself recorded (the send time of the message it answers), plus the sender's
send time ``s`` for the clock check (``leasetree.py``). Plain dicts for now, as
``swim_wire.py``: the packet codec (protocol v5, authentication) is a later step.
``from_wire`` is strict (exact keys, integer types and ranges), so a message's compact
JSON is at most ``MAX_MESSAGE_BYTES``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Self

from clusterd.membership.swim_wire import checked_fields
from clusterd.wire.messages import View

MAX_NODEID = 2**31 - 1
MAX_U64 = 2**64 - 1
MAX_DIGEST = 2**63 - 1
MAX_SEQ = 2**53 - 1          # a round a period for 10**6 years
MAX_TIME_US = 2**62          # a monotonic clock, in microseconds, either sign
MAX_VOTES = 2**31 - 1
MAX_DURATION_US = 2**32 - 1  # 71 minutes: far above any lease
# {"t":"grant","v":[u64,u31,u64,u63],"n":u53,"s":-2**62,"e":u53,"w":u31,"d":u32} and
# {"t":"down","v":[...],"n":u53,"s":-2**62,"g":u53,"c":[u31,u31,u32]} at their widest
# (test_leasetree checks it)
MAX_MESSAGE_BYTES = 197


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{what} must be in {lo}..{hi}, not {value}")
    return value


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def to_us(seconds: float) -> int:
    return round(seconds * 1e6)


class ViewKey(NamedTuple):
    """What a grant is given to: the view id and a digest of its (nodeid, incarnation)
    members (the first 63 bits of a sha256 of their compact JSON)."""

    epoch: int
    coordinator: int
    coord_incarnation: int
    digest: int

    @classmethod
    def of(cls, view: View) -> ViewKey:
        return cls(view.vid.epoch, view.vid.coordinator, view.vid.coord_incarnation,
                   members_digest(view.members))

    def to_wire(self) -> list[int]:
        return list(self)

    @classmethod
    def from_wire(cls, value: Any) -> ViewKey:
        if not isinstance(value, list) or len(value) != 4:
            raise ValueError("a view key must be [epoch, coordinator, incarnation, digest]")
        return cls(_int(value[0], "view epoch", 0, MAX_U64),
                   _int(value[1], "view coordinator", 0, MAX_NODEID),
                   _int(value[2], "view coordinator incarnation", 0, MAX_U64),
                   _int(value[3], "view digest", 0, MAX_DIGEST))

    def __str__(self) -> str:
        return f"{self.epoch}/{self.coordinator}"


def members_digest(members: Iterable[tuple[int, int]]) -> int:
    data = compact(sorted([n, i] for n, i in members)).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class Certificate:
    """On the wire: the root found ``votes`` (>= ``quorum``) backing the view, valid for
    ``valid_us`` microseconds after the receiver sent the grant this ``Down`` answers."""

    votes: int
    quorum: int
    valid_us: int

    def to_wire(self) -> list[int]:
        return [self.votes, self.quorum, self.valid_us]

    @classmethod
    def from_wire(cls, value: Any) -> Certificate:
        if not isinstance(value, list) or len(value) != 3:
            raise ValueError("a certificate must be [votes, quorum, microseconds]")
        votes = _int(value[0], "certificate votes", 1, MAX_VOTES)
        quorum = _int(value[1], "certificate quorum", 1, MAX_VOTES)
        if votes < quorum:
            raise ValueError(f"a certificate of {votes} votes is below its quorum {quorum}")
        return cls(votes, quorum, _int(value[2], "certificate validity", 1, MAX_DURATION_US))


@dataclass(frozen=True)
class Down:
    """Round ``seq`` of the sender, sent at its clock's ``sent_us``; ``answers``: the
    receiver's latest grant the sender got (0: none), which ``cert``'s validity counts
    from."""

    view: ViewKey
    seq: int
    sent_us: int
    answers: int
    cert: Certificate | None = None
    kind = "down"

    def to_wire(self) -> dict:
        return {"t": self.kind, "v": self.view.to_wire(), "n": self.seq, "s": self.sent_us,
                "g": self.answers, "c": None if self.cert is None else self.cert.to_wire()}

    @classmethod
    def from_wire(cls, d: Any) -> Self:
        d = checked_fields(d, cls.kind, {"v", "n", "s", "g", "c"})
        cert = None if d["c"] is None else Certificate.from_wire(d["c"])
        answers = _int(d["g"], "answered grant", 0, MAX_SEQ)
        if cert is not None and answers == 0:
            raise ValueError("a certificate must count from an answered grant")
        return cls(ViewKey.from_wire(d["v"]), _int(d["n"], "round", 1, MAX_SEQ),
                   _int(d["s"], "send time", -MAX_TIME_US, MAX_TIME_US), answers, cert)


@dataclass(frozen=True)
class Grant:
    """The sender's subtree backs the view with ``votes``, for ``valid_us`` microseconds
    after the receiver sent its round ``answers``; ``seq``: the sender's grant number,
    sent at its clock's ``sent_us``."""

    view: ViewKey
    seq: int
    sent_us: int
    answers: int
    votes: int
    valid_us: int
    kind = "grant"

    def to_wire(self) -> dict:
        return {"t": self.kind, "v": self.view.to_wire(), "n": self.seq, "s": self.sent_us,
                "e": self.answers, "w": self.votes, "d": self.valid_us}

    @classmethod
    def from_wire(cls, d: Any) -> Self:
        d = checked_fields(d, cls.kind, {"v", "n", "s", "e", "w", "d"})
        return cls(ViewKey.from_wire(d["v"]), _int(d["n"], "grant number", 1, MAX_SEQ),
                   _int(d["s"], "send time", -MAX_TIME_US, MAX_TIME_US),
                   _int(d["e"], "answered round", 1, MAX_SEQ),
                   _int(d["w"], "votes", 0, MAX_VOTES),
                   _int(d["d"], "validity", 0, MAX_DURATION_US))


LeaseMessage = Down | Grant
_KINDS: dict[str, type[Down | Grant]] = {c.kind: c for c in (Down, Grant)}


def message_from_wire(d: Any) -> LeaseMessage:
    """Decode either message; TypeError or ValueError if ``d`` is not one."""
    if not isinstance(d, dict):
        raise TypeError(f"a message must be an object, not {type(d).__name__}")
    kind = d.get("t")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown message type {kind!r}")
    return cls.from_wire(d)
