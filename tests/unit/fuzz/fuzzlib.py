"""Valid payloads of every wire message and application channel, a structural mutator
and a JSON writer that can say what ``json.dumps`` cannot (duplicate keys, NaN,
numbers past float range, integers past Python's digit limit, nesting deeper than the
recursion limit, lone surrogates), plus the consumers' documented rejection paths.

Everything takes a ``random.Random`` so that hypothesis (``st.randoms``) or a printed
seed replays a failure exactly.
"""

from __future__ import annotations

import base64
import json
import math
import random
from dataclasses import dataclass
from typing import Any

from clusterd.fencing.exchange import CH_FENCE, FenceStateMessage, MessageError
from clusterd.fencing.ops import fence_status
from clusterd.fencing.policy import step
from clusterd.fencing.state import (
    FenceRequested,
    FencingState,
    PeerFenceState,
    PolicyConfig,
    ViewChanged,
)
from clusterd.placement.model import ServiceState
from clusterd.services import chunks
from clusterd.services.model import (
    CH_COMMAND,
    CH_REPORT,
    CH_REQUEST,
    CH_RESPONSE,
    AdminState,
    Command,
    CommandKind,
    Ghost,
    LocalService,
    NodeReport,
    accept_command,
)
from clusterd.wire.messages import MsgType

SHA = "cd" * 32
WALL = 1_764_100_000.0
CHANNELS = (CH_REPORT, CH_COMMAND, CH_REQUEST, CH_RESPONSE, CH_FENCE,
            chunks.CH_REPORT_PART, chunks.CH_REPORT_HAVE, chunks.CH_REPORT_WANT)
NODES = {"n1": 1, "n2": 2, "n3": 3}


# ------------------------------------------------------------------ JSON writer
@dataclass(frozen=True)
class Raw:
    """JSON text written as is (deep nesting, 5000-digit numbers, 1e400, NaN ...)."""

    text: str


class Pairs(list):
    """An object written from (key, value) pairs: duplicate keys allowed."""


_string = json.encoder.encode_basestring_ascii


def dumps(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{_string(k)}:{dumps(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, allow_nan=True)


# ------------------------------------------------------------------ random values
EDGE = (None, True, False, 0, -1, 1, 2, 3, 255, 256, 2**31 - 1, 2**31, -(2**31), 2**53 + 1,
        2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -(10**30), 0.0, -0.0, 0.5,
        -1.5, 1e-300, 1e308, -1e308, math.nan, math.inf, -math.inf, "", " ", "0", "1",
        "true", "null", "started", "stopped", "svc.report", "n1", SHA, SHA.upper(),
        "\u00e9\u6f22\U0001f600", "\x00", "\ud800", "\udfff x", "a\nb\r\t", "\u202e",
        [], {}, [[]], [{}], {"": None}, [1, 2, 3], [[1, 5]], {"st": "started"})
RAW = (Raw("9" * 5000), Raw("-" + "9" * 4400), Raw("1e400"), Raw("-1e400"), Raw("1E-400"),
       Raw("-0"), Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw('"\\ud800"'),
       Raw('"\\udc00\\ud800"'), Raw('"\\u0000"'), Raw("0.0000000000000000000000001"),
       Raw("123456789012345678901234567890.5"))


def deep(rng: random.Random) -> Raw:
    depth = rng.choice((32, 200, 990, 1100, 3000, 20000))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}"), ('[{"s":', "}]")))
    core = rng.choice(("1", "[]", "{}", '"x"'))
    return Raw(opener * depth + core + closer * depth)


def text(rng: random.Random) -> str:
    n = rng.choice((1, 3, 8, 64, 65, 200, 201, 256, 257, 300, 2000, 20000))
    alphabet = rng.choice(("abc", "0123456789abcdef", "\u00e9\u6f22\U0001f600\u0301",
                           "\x00\x01\n\"\\", "._-:/ "))
    return "".join(rng.choice(alphabet) for _ in range(min(n, 64))) * max(1, n // 64)


def value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if r < 0.45:
        return rng.choice(EDGE)
    if r < 0.55:
        return rng.choice(RAW)
    if r < 0.60:
        return deep(rng)
    if r < 0.70:
        return text(rng)
    if r < 0.78:
        return rng.choice((rng.randint(-(2**70), 2**70), rng.uniform(-1e12, 1e12),
                           rng.randint(-5, 5)))
    if depth > 2:
        return None
    if r < 0.89:
        return [value(rng, depth + 1) for _ in range(rng.choice((0, 1, 2, 5, 40)))]
    return {rng.choice(("a", "st", "s", "v", "", "\u00e9", "rs", "ops")) + str(i):
            value(rng, depth + 1) for i in range(rng.choice((0, 1, 3)))}


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every node of a JSON tree (the first 50 items of a long list)."""
    out = [prefix]
    if isinstance(obj, dict) and not isinstance(obj, Pairs):
        for key, item in obj.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(obj, list) and not isinstance(obj, Pairs):
        for i, item in enumerate(obj[:50]):
            out += _paths(item, (*prefix, i))
    return out


def _change(rng: random.Random, node: Any) -> Any:
    """One change of this node: inside a container (drop, add, duplicate a key, replace
    or wrap an item, repeat the items), or the node replaced by an odd value."""
    if isinstance(node, dict) and node and rng.random() < 0.7:
        key = rng.choice(list(node))
        out = dict(node)
        op = rng.choice(("drop", "add", "dup", "replace", "wrap"))
        if op == "drop":
            del out[key]
        elif op == "add":
            out[rng.choice((key + "x", "", "h", "x", "extra", "\u00e9"))] = value(rng)
        elif op == "dup":
            pairs = Pairs(out.items())
            pairs.insert(rng.randrange(len(pairs) + 1), (key, value(rng)))
            return pairs
        elif op == "replace":
            out[key] = value(rng)
        else:
            out[key] = rng.choice(([node[key]], {"v": node[key]}))
        return out
    if isinstance(node, list) and node and rng.random() < 0.7:
        out = list(node)
        i = rng.randrange(len(out))
        op = rng.choice(("drop", "insert", "replace", "repeat"))
        if op == "drop":
            del out[i]
        elif op == "insert":
            out.insert(i, value(rng))
        elif op == "replace":
            out[i] = value(rng)
        else:   # many copies, written once (a Raw: mutating inside it is pointless)
            return Raw("[" + ",".join([dumps(v) for v in out] * rng.choice((2, 50, 1100)))
                       + "]")
        return out
    return value(rng)


def _replace_at(obj: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(obj) if isinstance(obj, dict) else list(obj)
    copy[head] = _replace_at(obj[head], rest, new)
    return copy


def mutate(rng: random.Random, obj: Any) -> Any:
    """One change at a node of ``obj`` chosen uniformly (so deep leaves such as a
    timestamp inside a service entry are hit as often as top-level keys); a fresh copy,
    ``obj`` is untouched."""
    path = rng.choice(_paths(obj))
    node = obj
    for step_ in path:
        node = node[step_]
    return _replace_at(obj, path, _change(rng, node))


def mutated_bytes(rng: random.Random, obj: Any) -> bytes:
    """``obj`` after one to three structural mutations, written, and sometimes damaged as
    text (truncated, bytes flipped or inserted, a BOM, trailing garbage, not UTF-8)."""
    for _ in range(rng.choice((1, 1, 2, 3))):
        obj = mutate(rng, obj)
    data = dumps(obj).encode("utf-8", "surrogatepass")
    r = rng.random()
    if r < 0.08 and data:
        data = data[:rng.randrange(len(data))]
    elif r < 0.12 and data:
        buf = bytearray(data)
        for _ in range(rng.choice((1, 3))):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        data = bytes(buf)
    elif r < 0.14:
        data = b"\xef\xbb\xbf" + data
    elif r < 0.16:
        data = data + rng.choice((b"}", b" x", b"\x00", b"[]"))
    elif r < 0.18:
        data = rng.randbytes(rng.choice((0, 1, 7, 300)))
    elif r < 0.20:
        data = data.replace(b'"', b"'", 1)
    return data


# ------------------------------------------------------------------ valid payloads
def _vid(rng: random.Random) -> list[int]:
    return [rng.randint(1, 9), rng.choice((1, 2, 3)), rng.randint(1, 2**40)]


def valid_core(rng: random.Random, mtype: MsgType, version: int, me_inc: int) -> dict:
    """A payload the decoder of ``mtype`` takes at protocol ``version`` (random fields)."""
    if mtype is MsgType.HEARTBEAT:
        d = {"v": rng.choice((None, _vid(rng))), "cv": rng.randint(0, 9), "cs":
             rng.choice(("", SHA)), "h": sorted(rng.sample([1, 2, 3], rng.randint(0, 3))),
             "n": rng.randint(0, 99), "l": rng.choice((None, rng.randint(0, 99)))}
        if version >= 2:
            d["x"] = rng.randint(0, 3 if version >= 3 else 1)
        return d
    if mtype is MsgType.PROPOSE:
        return {"v": _vid(rng), "m": [[1, me_inc], [2, 5]][:rng.choice((1, 2))]}
    if mtype in (MsgType.ACK, MsgType.COMMIT):
        return {"v": _vid(rng)}
    if mtype is MsgType.LEAVE:
        return rng.choice(({"r": "bye"}, {"r": "restart", "h": 1}, {"r": "", "h": 0}))
    if mtype is MsgType.CONFIG_REQUEST:
        return {"cv": rng.randint(0, 9), "cs": SHA, "o": rng.choice((0, 16384))}
    if mtype is MsgType.CONFIG_CHUNK:
        data = rng.randbytes(rng.choice((0, 4, 100)))
        offset = rng.choice((0, 16384))
        return {"cv": rng.randint(1, 9), "cs": SHA, "o": offset,
                "t": offset + len(data) + rng.choice((0, 7)),
                "d": base64.b64encode(data).decode()}
    channel = rng.choice(CHANNELS)
    return {"c": channel, "p": valid_app(rng, channel)}


def valid_report(rng: random.Random) -> dict:
    states = sorted(s.value for s in (ServiceState.STARTED, ServiceState.STOPPED,
                                      ServiceState.FAILED, ServiceState.RECOVERING))
    services = {f"service:s{i}": LocalService(ServiceState(rng.choice(states)), busy=rng.choice(
        ("", "3.1")), restarts=(WALL, WALL + 1.5)[:rng.randint(0, 2)], why="x")
                for i in range(rng.randint(0, 3))}
    return NodeReport(ready=rng.random() < 0.5, leaving=False,
                      admin=AdminState(rng.randint(0, 5), frozenset({"service:s0"}),
                                       locked=rng.random() < 0.3),
                      services=services, blocked=frozenset({"n3"}) if rng.random() < .5
                      else frozenset(),
                      ghosts={"n3": Ghost(7, {"service:s1": ServiceState.STARTED})}
                      if rng.random() < 0.5 else {}).to_wire()


def fence_member(local: str = "n2") -> FencingState:
    """A member of a quorate three-node view (n1 coordinates) holding an open intent."""
    state = FencingState.initial(local, PolicyConfig(nodeids=dict(NODES)))
    state = step(state, ViewChanged({"n1": "11", "n2": "12", "n3": "13"}, True, "n1"),
                 0.0).state
    state = step(state, ViewChanged({"n1": "11", "n2": "12"}, True, "n1"), 5.0).state
    return step(state, FenceRequested("n3", "root", "test"), 5.5).state


def valid_fence(rng: random.Random) -> dict:
    return FenceStateMessage.build(fence_member(rng.choice(("n1", "n2"))), rng.randint(1, 9),
                                   6.0, WALL + rng.choice((0.0, 3600.0))).to_wire()


_SECOND: dict[str, dict] = {}     # digest -> the other half of a sample part


def report_halves(rng: random.Random) -> tuple[dict, dict]:
    """A valid report's text as the two parts of a split report (``services.chunks``;
    short parts: the assembler takes any length up to ``PART_BYTES``)."""
    text = chunks.encode(valid_report(rng))
    cut = len(text) // 2
    head = {"g": 5, "n": 2, "h": chunks.digest(text)}
    return {**head, "i": 0, "d": text[:cut]}, {**head, "i": 1, "d": text[cut:]}


def valid_app(rng: random.Random, channel: str) -> dict:
    if channel == chunks.CH_REPORT_HAVE:
        first, _second = report_halves(rng)
        return {"g": first["g"], "n": first["n"], "h": first["h"]}
    if channel == chunks.CH_REPORT_WANT:
        return {"g": 5, "i": rng.sample(range(2), rng.randint(1, 2))}
    if channel == chunks.CH_REPORT_PART:
        first, second = report_halves(rng)
        _SECOND[first["h"]] = second
        return first
    if channel == CH_REPORT:
        return valid_report(rng)
    if channel == CH_COMMAND:
        return Command(rng.randint(1, 9), f"{rng.randint(1, 9)}.{rng.randint(1, 99)}",
                       "service:s0", rng.choice(list(CommandKind)), rng.random() < 0.5,
                       ServiceState.STOPPED).to_wire()
    if channel == CH_REQUEST:
        return {"rid": "2.1", "op": "svc.enable", "args": {"service": "s0", "timeout": 5},
                "from": "n2"}
    if channel == CH_RESPONSE:
        return {"rid": "1.1", "result": {"code": 0, "message": "Success"}}
    return valid_fence(rng)


def _parts_core() -> Any:
    """A services core whose current report went out in two parts of generation 5 (the
    valid want's), holding no report of node 2 (a valid have is wanted whole)."""
    from clusterd.services.core import ServicesCore
    from clusterd.services.model import AdminState

    core = ServicesCore("n1", 1, AdminState())
    first, second = report_halves(random.Random(0))
    core._generation, core._parts = 5, (first, second)
    return core


# ------------------------------------------------------------------ consumers
def strict_json(doc: Any) -> None:
    """What a node derives from a peer's message and sends on or shows must be JSON a
    strict reader takes (no NaN/Infinity) and small enough to re-encode."""
    json.dumps(doc, allow_nan=False)


def consume(channel: str, payload: Any, rng: random.Random) -> bool:
    """Hand an app payload to the consumer of its channel as the node glue does; True if
    it was taken. Only the documented rejection escapes here (the glue catches it):
    TypeError/ValueError/KeyError for the services channels, MessageError for
    fence.state. What is taken must be usable: it re-encodes to strict JSON, and the
    state it feeds (fencing merge, status rows, this node's own broadcast) stays sound."""
    if channel == CH_REPORT:
        try:
            rep = NodeReport.from_wire(payload)
        except (TypeError, ValueError, KeyError):
            return False
        wire = rep.to_wire()
        strict_json(wire)
        assert NodeReport.from_wire(wire) == rep
        return True
    if channel == CH_COMMAND:
        try:
            cmd = Command.from_wire(payload)
        except (TypeError, ValueError, KeyError):
            return False
        strict_json(cmd.to_wire())
        assert Command.from_wire(cmd.to_wire()) == cmd
        why = accept_command(cmd, 2, epoch=cmd.epoch, coordinator=2, quorate=True,
                             leaving=rng.random() < 0.5, local=LocalService())
        assert why is None or isinstance(why, str)
        return True
    if channel == chunks.CH_REPORT_PART:
        # the second half first: the mutant may complete (or contradict) the report
        assembler = chunks.Assembler()
        h = payload.get("h") if isinstance(payload, dict) else None
        other = _SECOND.get(h) if isinstance(h, str) else None
        if other is not None:
            assembler.add(2, 9, other)
        try:
            wire = assembler.add(2, 9, payload)
            if wire is not None:
                rep = NodeReport.from_wire(wire)
                strict_json(rep.to_wire())
        except (TypeError, ValueError, KeyError):
            return False
        return True
    if channel in (chunks.CH_REPORT_HAVE, chunks.CH_REPORT_WANT):
        # a core holding a report of its own in parts (the want's) and none of node 2's
        core = _parts_core()
        try:
            if channel == chunks.CH_REPORT_HAVE:
                out = core.on_report_have(2, 9, payload)
            else:
                out = core.on_report_want(2, payload)
        except (TypeError, ValueError, KeyError):
            return False
        for o in out:
            strict_json(o.payload)
            assert o.dest == 2 and (
                o.channel == chunks.CH_REPORT_PART if channel == chunks.CH_REPORT_WANT
                else o.channel == chunks.CH_REPORT_WANT)
        return True
    if channel == CH_FENCE:
        try:
            msg = FenceStateMessage.from_wire(payload)
        except MessageError:
            return False
        state = fence_member("n2")
        result = step(state, PeerFenceState("n1", msg), 6.5)
        strict_json(fence_status(result.state, 7.0, WALL))
        mine = FenceStateMessage.build(result.state, 3, 7.0, WALL).to_wire()
        strict_json(mine)
        FenceStateMessage.from_wire(mine)       # peers must take this node's broadcast
        return True
    return isinstance(payload, dict)    # svc.req / svc.resp: see test_fuzz_app_consumers
