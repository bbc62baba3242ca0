"""Cluster wire messages: frozen dataclasses and their strict per-type payload schemas.

Payloads are compact JSON objects whose key set and value types are checked exactly
(unknown or missing keys are errors). Every decoding problem raises ``WireError``.
Protocol v2 added the heartbeat ``held`` flag; a v1 payload decodes with ``held=False``
and a v1 encoding simply leaves it out (see ``codec.py``). Protocol v3 makes it a flag
set: bit 0 ``held``, bit 1 ``unaccepted`` (no quorate view has accepted the sender's
config yet: ``configsync/core.py``); v2 encodes ``held`` only, so a v2 peer's config
counts as accepted, as it always did.

A leave may carry ``"h": 1`` (``Leave.hold``): the sender restarts and keeps its services
running for the daemon that follows it. The key is present only then, so a plain leave is
the bytes it always was. Decoders before this flag (every v1/v2 node) check the key set
exactly and drop such a leave as malformed: to them the node just falls silent and is
fenced like a crashed one, never taken as a clean leave whose services may be recovered
at once. A restarting daemon therefore holds its services only when every member speaks
``LEAVE_HOLD_VERSION`` or later, and leaves cleanly otherwise (``node/shutdown.py``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from clusterd.errors import WireError

MAX_NODEID = 2**31 - 1
MAX_U64 = 2**64 - 1
CONFIG_CHUNK_BYTES = 16 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
MAX_LIST = 1024
MAX_APP_PAYLOAD = 32 * 1024      # encoded JSON bytes of one application message payload
MAX_APP_CHANNEL = 64
MAX_PACKET_GUESS = 64000         # raw payload length assumed when the caller gives none
LEAVE_HOLD_VERSION = 3           # first protocol version whose nodes decode Leave.hold


class MsgType(enum.IntEnum):
    HEARTBEAT = 1
    PROPOSE = 2
    ACK = 3
    COMMIT = 4
    LEAVE = 5
    CONFIG_REQUEST = 6
    CONFIG_CHUNK = 7
    APP = 8          # application channel (services); older nodes drop it as malformed


class ViewId(NamedTuple):
    """Identity of a view: epochs are unique per coordinator incarnation. (A NamedTuple:
    immutable, ordered, and cheap to compare in the hot path.)"""

    epoch: int
    coordinator: int
    coord_incarnation: int

    def to_wire(self) -> list[int]:
        return [self.epoch, self.coordinator, self.coord_incarnation]

    @classmethod
    def from_wire(cls, value: Any) -> ViewId:
        if not (isinstance(value, list) and len(value) == 3):
            raise WireError("view id must be [epoch, coordinator, incarnation]")
        epoch, coord, inc = value
        return cls(_int(epoch, "view id", MAX_U64), _int(coord, "view id", MAX_U64),
                   _int(inc, "view id", MAX_U64))

    def __str__(self) -> str:
        return f"{self.epoch}/{self.coordinator}"

    def __repr__(self) -> str:
        return f"ViewId({self.epoch}/{self.coordinator}#{self.coord_incarnation})"


@dataclass(frozen=True)
class View:
    """An agreed membership: id plus (nodeid, incarnation) of every member, sorted."""

    vid: ViewId
    members: tuple[tuple[int, int], ...]

    @property
    def epoch(self) -> int:
        return self.vid.epoch

    @property
    def coordinator(self) -> int:
        return self.vid.coordinator

    @cached_property
    def nodeids(self) -> frozenset[int]:
        return frozenset(n for n, _ in self.members)

    def incarnation_of(self, nodeid: int) -> int | None:
        return dict(self.members).get(nodeid)

    def __str__(self) -> str:
        return f"view {self.vid} members {sorted(self.nodeids)}"


@dataclass(frozen=True)
class Heartbeat:
    view: ViewId | None
    config_version: int
    config_sha256: str
    hears: tuple[int, ...]
    n: int = 0  # the sender's heartbeat number (per incarnation), acked by lease grants
    lease_ack: int | None = None  # seq of the receiver's heartbeat this one grants a lease for
    held: bool = False  # v2: sender refuses to join (cannot apply the newest config)
    unaccepted: bool = False  # v3: no quorate view has accepted the sender's config yet
    t: int | None = None  # v4: the sender's monotonic clock (ms) when it sent this one


@dataclass(frozen=True)
class Propose:
    view: View


@dataclass(frozen=True)
class Ack:
    vid: ViewId


@dataclass(frozen=True)
class Commit:
    vid: ViewId


@dataclass(frozen=True)
class Leave:
    reason: str
    hold: bool = False  # a restart: the sender's services keep running (see the docstring)


@dataclass(frozen=True)
class ConfigRequest:
    version: int
    sha256: str
    offset: int


@dataclass(frozen=True)
class ConfigChunk:
    version: int
    sha256: str
    offset: int
    total: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class AppMessage:
    """An application-level message (e.g. the services layer) on a named channel: a JSON
    object of at most ``MAX_APP_PAYLOAD`` encoded bytes, authenticated like every packet."""

    channel: str
    payload: dict = field(hash=False)


Message = (Heartbeat | Propose | Ack | Commit | Leave | ConfigRequest | ConfigChunk
           | AppMessage)

MSG_TYPES: dict[type, MsgType] = {
    Heartbeat: MsgType.HEARTBEAT, Propose: MsgType.PROPOSE, Ack: MsgType.ACK,
    Commit: MsgType.COMMIT, Leave: MsgType.LEAVE, ConfigRequest: MsgType.CONFIG_REQUEST,
    ConfigChunk: MsgType.CONFIG_CHUNK, AppMessage: MsgType.APP,
}


@dataclass(frozen=True)
class Send:
    """An output of a core: deliver ``msg`` to node ``dest``."""

    dest: int
    msg: Message


# ---------------------------------------------------------------- field checkers

def _int(value: Any, what: str, hi: int = MAX_NODEID) -> int:
    if type(value) is not int or not 0 <= value <= hi:
        raise WireError(f"{what} must be an integer in 0..{hi}")
    return value


_HEX = frozenset("0123456789abcdef")


def _sha(value: Any, what: str = "sha256") -> str:
    if not isinstance(value, str) or len(value) not in (0, 64) or not _HEX.issuperset(value):
        raise WireError(f"{what} must be 64 lowercase hex digits or empty")
    return value


def _nodelist(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise WireError(f"{what} must be a list of at most {MAX_LIST} node ids")
    return tuple(_int(v, what) for v in value)


def _members(value: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise WireError("members must be a non-empty list")
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2):
            raise WireError("member must be [nodeid, incarnation]")
        out.append((_int(item[0], "member nodeid"), _int(item[1], "member incarnation", MAX_U64)))
    if len({n for n, _ in out}) != len(out) or out != sorted(out):
        raise WireError("members must be sorted and unique")
    return tuple(out)


def _check_keys(obj: Any, keys: set[str] | frozenset[str], name: str) -> dict:
    if not isinstance(obj, dict):
        raise WireError(f"{name} payload must be an object")
    if set(obj) != keys:
        raise WireError(f"{name} payload keys {sorted(obj)} != {sorted(keys)}")
    return obj


# ---------------------------------------------------------------- per-type schema

def _hb_to(m: Heartbeat, version: int) -> dict:
    d: dict[str, Any] = {"v": m.view.to_wire() if m.view else None, "cv": m.config_version,
                         "cs": m.config_sha256, "h": list(m.hears), "n": m.n,
                         "l": m.lease_ack}
    if version >= 3:
        d["x"] = (1 if m.held else 0) | (2 if m.unaccepted else 0)
    elif version >= 2:
        d["x"] = 1 if m.held else 0
    if version >= 4:
        d["t"] = m.t
    return d


def _hb_keys(version: int) -> frozenset[str]:
    return frozenset({"v", "cv", "cs", "h", "n", "l"} | ({"x"} if version >= 2 else set())
                     | ({"t"} if version >= 4 else set()))


# every heartbeat is checked against its version's key set: built once, not per packet
_HB_KEYS = {version: _hb_keys(version) for version in range(1, 5)}


def _hb_from(d: Any, version: int) -> Heartbeat:
    keys = _HB_KEYS.get(version) or _hb_keys(version)
    d = _check_keys(d, keys, "heartbeat")
    held = unaccepted = False
    if version >= 2:
        flags = (0, 1, 2, 3) if version >= 3 else (0, 1)
        if type(d["x"]) is not int or d["x"] not in flags:
            raise WireError(f"heartbeat flags must be one of {flags}")
        held, unaccepted = bool(d["x"] & 1), bool(d["x"] & 2)
    return Heartbeat(
        view=None if d["v"] is None else ViewId.from_wire(d["v"]),
        config_version=_int(d["cv"], "config version", MAX_U64),
        config_sha256=_sha(d["cs"]), hears=_nodelist(d["h"], "hears"),
        n=_int(d["n"], "heartbeat number", MAX_U64),
        lease_ack=None if d["l"] is None else _int(d["l"], "lease ack", MAX_U64), held=held,
        unaccepted=unaccepted,
        t=None if version < 4 or d["t"] is None else _int(d["t"], "send time", MAX_U64))


def _propose_from(d: Any, version: int) -> Propose:
    d = _check_keys(d, {"v", "m"}, "propose")
    return Propose(View(ViewId.from_wire(d["v"]), _members(d["m"])))


def _vid_from(cls: Callable[[ViewId], Any], name: str) -> Callable[[Any, int], Any]:
    def decode(d: Any, version: int) -> Any:
        return cls(ViewId.from_wire(_check_keys(d, {"v"}, name)["v"]))
    return decode


def _leave_to(m: Leave, version: int) -> dict:
    return {"r": m.reason, "h": 1} if m.hold else {"r": m.reason}


def _leave_from(d: Any, version: int) -> Leave:
    d = _check_keys(d, {"r", "h"} if isinstance(d, dict) and "h" in d else {"r"}, "leave")
    reason = d["r"]
    if not isinstance(reason, str) or len(reason) > 200:
        raise WireError("leave reason must be a string of at most 200 characters")
    if "h" in d and (type(d["h"]) is not int or d["h"] not in (0, 1)):
        raise WireError("leave hold flag must be 0 or 1")
    return Leave(reason, hold=d.get("h") == 1)


def _req_from(d: Any, version: int) -> ConfigRequest:
    d = _check_keys(d, {"cv", "cs", "o"}, "config request")
    return ConfigRequest(_int(d["cv"], "config version", MAX_U64), _sha(d["cs"]),
                         _int(d["o"], "offset", MAX_CONFIG_BYTES))


def _chunk_from(d: Any, version: int) -> ConfigChunk:
    d = _check_keys(d, {"cv", "cs", "o", "t", "d"}, "config chunk")
    if not isinstance(d["d"], str):
        raise WireError("config chunk data must be base64 text")
    try:
        data = base64.b64decode(d["d"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError(f"config chunk data is not base64: {exc}") from None
    offset = _int(d["o"], "offset", MAX_CONFIG_BYTES)
    total = _int(d["t"], "total", MAX_CONFIG_BYTES)
    if len(data) > CONFIG_CHUNK_BYTES or offset + len(data) > total:
        raise WireError("config chunk exceeds its declared total or the chunk size")
    return ConfigChunk(_int(d["cv"], "config version", MAX_U64), _sha(d["cs"]), offset, total, data)


def _channel(value: Any) -> str:
    if (not isinstance(value, str) or not 0 < len(value) <= MAX_APP_CHANNEL
            or not all(c.isascii() and (c.isalnum() or c in "._-") for c in value)):
        raise WireError(f"app channel must be 1..{MAX_APP_CHANNEL} characters of "
                        "[A-Za-z0-9._-]")
    return value


# json.dumps(obj, separators=(",", ":")) builds a JSONEncoder at every call (any argument
# but the defaults does); this is that same encoder built once: the same bytes, and the
# heartbeats (every token/3 to each peer) skip the construction
_compact = json.JSONEncoder(separators=(",", ":")).encode


def app_payload_size(payload: dict) -> int:
    return len(_compact(payload).encode())


def _app_to(m: AppMessage, version: int) -> dict:
    _channel(m.channel)
    if not isinstance(m.payload, dict):
        raise TypeError("app payload must be a dict")
    size = app_payload_size(m.payload)
    if size > MAX_APP_PAYLOAD:
        raise ValueError(f"app payload on {m.channel!r} is {size} bytes, over the "
                         f"{MAX_APP_PAYLOAD}-byte limit")
    return {"c": m.channel, "p": m.payload}


def _app_from(d: Any, version: int, raw_len: int = MAX_PACKET_GUESS) -> AppMessage:
    d = _check_keys(d, {"c", "p"}, "app")
    channel = _channel(d["c"])
    if not isinstance(d["p"], dict):
        raise WireError("app payload must be an object")
    # re-encoding expands at most 3x (a 2-byte UTF-8 character becomes a 6-byte escape),
    # so a small datagram cannot hold an oversize payload: measure the big ones only
    if 3 * raw_len > MAX_APP_PAYLOAD:
        try:
            size = app_payload_size(d["p"])
        except RecursionError:   # json.loads took it a few frames higher up the stack
            raise WireError("app payload is nested too deeply") from None
        if size > MAX_APP_PAYLOAD:
            raise WireError(f"app payload exceeds {MAX_APP_PAYLOAD} bytes")
    return AppMessage(channel, d["p"])


_ENCODERS: dict[MsgType, Callable[[Any, int], dict]] = {
    MsgType.HEARTBEAT: _hb_to,
    MsgType.PROPOSE: lambda m, v: {"v": m.view.vid.to_wire(), "m": [list(x) for x in m.view.members]},
    MsgType.ACK: lambda m, v: {"v": m.vid.to_wire()},
    MsgType.COMMIT: lambda m, v: {"v": m.vid.to_wire()},
    MsgType.LEAVE: _leave_to,
    MsgType.CONFIG_REQUEST: lambda m, v: {"cv": m.version, "cs": m.sha256, "o": m.offset},
    MsgType.CONFIG_CHUNK: lambda m, v: {"cv": m.version, "cs": m.sha256, "o": m.offset,
                                        "t": m.total, "d": base64.b64encode(m.data).decode()},
    MsgType.APP: _app_to,
}

_DECODERS: dict[MsgType, Callable[[Any, int], Message]] = {
    MsgType.HEARTBEAT: _hb_from,
    MsgType.PROPOSE: _propose_from,
    MsgType.ACK: _vid_from(Ack, "ack"),
    MsgType.COMMIT: _vid_from(Commit, "commit"),
    MsgType.LEAVE: _leave_from,
    MsgType.CONFIG_REQUEST: _req_from,
    MsgType.CONFIG_CHUNK: _chunk_from,
    MsgType.APP: _app_from,
}


def encode_payload(msg: Message, version: int) -> tuple[MsgType, bytes]:
    mtype = MSG_TYPES[type(msg)]
    body = _compact(_ENCODERS[mtype](msg, version))
    return mtype, body.encode()


def decode_payload(mtype: int, payload: bytes, version: int) -> Message:
    try:
        kind = MsgType(mtype)
    except ValueError:
        raise WireError(f"unknown message type {mtype}") from None
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"payload is not JSON: {type(exc).__name__}") from None
    if kind is MsgType.APP:
        return _app_from(obj, version, len(payload))
    return _DECODERS[kind](obj, version)
