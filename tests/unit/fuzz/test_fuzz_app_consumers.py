"""Fuzzing past the MAC, application layer: payloads that an authenticated peer could
send on every channel the node consumes (``svc.report``, ``svc.report.part``, ``svc.cmd``,
``svc.req``, ``svc.resp``, ``fence.state``), decoded by the wire layer as the guard does
and handed to the consumer the node glue calls (``NodeReport.from_wire``, the report
assembler of ``services.chunks``, ``Command.from_wire``, the fencing merge,
``ServiceOps.on_request/on_response``).

The glue catches one documented rejection per channel (services: TypeError, ValueError,
KeyError; fence.state: MessageError); anything else escapes into the daemon cycle. What a
consumer takes must be usable: it re-encodes to strict JSON (no NaN/Infinity, which the
status document and this node's own broadcasts would carry on), and the fencing state it
feeds still renders its status and builds a broadcast peers accept.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter

import pytest
from clusterd.errors import WireError
from clusterd.fencing.exchange import CH_FENCE, FenceStateMessage, MessageError
from clusterd.fencing.ops import fence_status
from clusterd.fencing.policy import step
from clusterd.fencing.state import PeerFenceState
from clusterd.services.model import (
    CH_REPORT,
    CH_REQUEST,
    CH_RESPONSE,
    AdminState,
    NodeReport,
)
from clusterd.services.ops import ServiceOps
from clusterd.wire.messages import MsgType, decode_payload
from fuzzlib import (
    CHANNELS,
    WALL,
    consume,
    dumps,
    fence_member,
    mutated_bytes,
    valid_app,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def through_wire(channel: str, payload_text: bytes) -> object:
    """The app message as the guard's decoder delivers it (WireError: dropped there)."""
    body = b'{"c":' + json.dumps(channel).encode() + b',"p":' + payload_text + b"}"
    return decode_payload(MsgType.APP, body, 3)


def fuzz_one(channel: str, rng: random.Random) -> str:
    """'wire' (dropped by the decoder), 'refused' (the consumer's rejection) or 'taken'."""
    data = mutated_bytes(rng, valid_app(rng, channel))
    try:
        msg = through_wire(channel, data)
    except WireError:
        return "wire"
    return "taken" if consume(msg.channel, msg.payload, rng) else "refused"


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([c for c in CHANNELS if c not in (CH_REQUEST, CH_RESPONSE)]),
       st.integers(0, 2**64))
def test_mutated_payloads_reach_only_the_documented_rejection(channel, seed) -> None:
    fuzz_one(channel, random.Random(seed))


def test_every_channel_sees_taken_and_refused_payloads(fuzz_seed: int) -> None:
    """The mutator is not blind: on every consumed channel some mutants are taken (the
    consumer's own checks run on odd but valid data) and some are refused by the consumer
    itself, past the wire decoder."""
    rng = random.Random(fuzz_seed)
    for channel in (c for c in CHANNELS if c not in (CH_REQUEST, CH_RESPONSE)):
        # until both outcomes were seen 10 times (a rare one, svc.report's "taken" at
        # about 4 %, came out 9 of 250 for one seed): a blind mutator still fails here
        seen: Counter = Counter()
        for _ in range(5000):
            seen[fuzz_one(channel, rng)] += 1
            if seen["taken"] >= 10 and seen["refused"] >= 10:
                break
        assert seen["taken"] >= 10 and seen["refused"] >= 10, (channel, seen)


def test_valid_samples_are_taken() -> None:
    rng = random.Random(7)
    for channel in CHANNELS:
        for _ in range(20):
            payload = valid_app(rng, channel)
            msg = through_wire(channel, dumps(payload).encode())
            assert consume(msg.channel, msg.payload, rng), (channel, payload)


# ------------------------------------------------------------------ regressions
REPORT = {"r": True, "l": False, "adm": {"ver": 1},
          "s": {"service:a": {"st": "started", "rs": [WALL]}}}


@pytest.mark.parametrize("stamp", ["1e400", "-1e400", "NaN", "Infinity", "9" * 400])
def test_regression_report_restart_stamps_past_float_range_are_refused(stamp) -> None:
    """A restart timestamp of 10**400 made ``float()`` raise OverflowError, which the
    services glue (catching TypeError/ValueError/KeyError) let escape into the daemon
    cycle; NaN and infinity were taken and re-broadcast as invalid JSON."""
    text = json.dumps(REPORT).replace(json.dumps(WALL), stamp).encode()
    msg = through_wire(CH_REPORT, text)
    with pytest.raises(TypeError, match="'rs' must be a list of timestamps"):
        NodeReport.from_wire(msg.payload)
    assert NodeReport.from_wire(REPORT).services["service:a"].restarts == (WALL,)


@pytest.mark.parametrize("field", ["since", "not_before", "finished", "started", "written"])
@pytest.mark.parametrize("stamp", ["1e400", "NaN", "-Infinity", "9" * 400, "1e13"])
def test_regression_fence_state_times_must_be_finite(field, stamp) -> None:
    """A fence.state time of NaN or infinity was merged, and then every status document
    failed (``round()`` in ``fence_status`` raised ValueError/OverflowError); a time of
    10**400 raised OverflowError out of ``from_wire``, past the glue's MessageError."""
    wire = FenceStateMessage.build(fence_member("n1"), 3, 6.0, WALL).to_wire()
    target = wire if field == "written" else wire["ops"][0]
    target[field] = "STAMP"
    msg = through_wire(CH_FENCE, json.dumps(wire).replace('"STAMP"', stamp).encode())
    with pytest.raises(MessageError, match=f"field '{field}' must be a time"):
        FenceStateMessage.from_wire(msg.payload)
    target[field] = WALL - 1.0                          # the same message, sane: merged
    merged = step(fence_member("n2"), PeerFenceState("n1", FenceStateMessage.from_wire(
        wire)), 6.5).state
    assert all(math.isfinite(v["since"]) for v in fence_status(merged, 7.0, WALL))


# ------------------------------------------------------------------ forwarded control ops
class _Conf:
    @staticmethod
    def node_by_name(name: str) -> None:
        return None


class _Glue:
    """What ServiceOps reads of the services glue, on a coordinator that has evaluated
    its services (none configured: a real op ends at once with a refusal code)."""

    def __init__(self) -> None:
        self.name, self.me = "n1", 1
        self.last_snapshot = object()
        self.rows: dict = {}
        self.admin = AdminState()
        self.sent: list[tuple[int, str, dict]] = []
        self.daemon = type("D", (), {"rt": type("R", (), {"conf": _Conf()})()})()
        self.updated = asyncio.Event()

    def is_coordinator(self) -> bool:
        return True

    def set_admin(self, admin: AdminState) -> None:
        self.admin = admin

    def send(self, dest: int, channel: str, payload: dict) -> None:
        self.sent.append((dest, channel, payload))


FORWARDED_BAD_ARGS = [
    {"service": 5},
    {"service": ["s0"]},
    {"service": "s0", "timeout": "soon"},
    {"service": "s0", "timeout": 10**400},
    {"service": "s0", "timeout": None},
    {"service": "s0", "member": 3},
]


def test_forwarded_requests_with_bad_args_are_answered(no_tracebacks) -> None:
    async def scenario() -> tuple[_Glue, list[BaseException | None]]:
        glue = _Glue()
        ops = ServiceOps(glue)
        for i, args in enumerate(FORWARDED_BAD_ARGS):
            ops.on_request(2, {"rid": f"2.{i}", "op": "svc.enable", "args": args,
                               "from": "n2"})
        tasks = list(ops._tasks)       # refused at once, or answered by a task
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        return glue, [t.exception() for t in tasks]

    glue, errors = asyncio.run(scenario())
    no_tracebacks.records.clear()        # asyncio's own report is what the assert shows
    assert all(e is None for e in errors), errors
    assert sorted(p["rid"] for _, ch, p in glue.sent if ch == CH_RESPONSE) == sorted(
        f"2.{i}" for i in range(len(FORWARDED_BAD_ARGS)))


def test_forwarded_request_and_response_envelopes(fuzz_seed: int) -> None:
    """The envelope checks of ``on_request``/``on_response`` (run synchronously by the
    glue) reject with the documented errors only; a response resolves a waiting request
    only with a result object (what the control client gets back)."""
    rng = random.Random(fuzz_seed)

    async def scenario() -> Counter:
        ops = ServiceOps(_Glue())
        seen: Counter = Counter()
        for _ in range(600):
            waiting = asyncio.get_running_loop().create_future()
            ops._waiting["1.1"] = waiting
            channel = rng.choice((CH_REQUEST, CH_RESPONSE))
            try:
                msg = through_wire(channel, mutated_bytes(rng, valid_app(rng, channel)))
            except WireError:
                continue
            payload = dict(msg.payload)
            if channel == CH_REQUEST:
                payload["op"] = "svc.status"      # execute() itself: see the xfail above
            try:
                if channel == CH_REQUEST:
                    ops.on_request(2, payload)
                else:
                    ops.on_response(payload)
                seen[channel, "taken"] += 1
            except (TypeError, ValueError, KeyError):
                seen[channel, "refused"] += 1
            for task in list(ops._tasks):
                task.cancel()
            assert not waiting.done() or isinstance(waiting.result(), dict)
        return seen

    seen = asyncio.run(scenario())
    assert min(seen.values()) >= 10 and len(seen) == 4, seen
