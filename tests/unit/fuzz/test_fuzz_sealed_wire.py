"""Fuzzing past the MAC, packet path: validly sealed packets (the right key, direction,
fresh seq and receiver incarnation) from a configured peer speaking protocol v1, v2 or
v3, whose payloads are valid messages of every type, mutations of them (keys dropped,
added or duplicated, wrong types, huge and negative numbers, NaN/Infinity, nesting past
the recursion limit, long and odd unicode strings, truncated or damaged JSON, random
bytes) and unknown message types, interleaved, into ``ClusterCore.on_datagram``.

Every packet must end in exactly one counted outcome: accepted, or dropped as
``malformed`` (the only drop reason a sealed packet may reach); valid packets must still
be accepted after any amount of garbage; app messages are handed to their consumers
(``fuzzlib.consume``); nothing raises, nothing logs a traceback (conftest), and the core
keeps its invariants: its view holds configured nodes only, its status document is
strict JSON, it ticks and names a finite deadline.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import sys

import pytest
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.host import AppReceived, ClusterCore
from clusterd.wire.codec import MAX_PAYLOAD, frame
from clusterd.wire.keys import WireKeys
from clusterd.wire.messages import MsgType
from fuzzlib import consume, dumps, mutated_bytes, valid_core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEY = b"f" * 256
KEYS = WireKeys(KEY)
ME_INC = 1
PEER_INC = 5
CFG = MembershipConfig("fuzzp", tuple(NodeSpec(f"n{i}", i, 1, f"198.18.1.{i}")
                                      for i in (1, 2, 3)))
ADDR2 = ("198.18.1.2", CFG.port)
UNKNOWN_TYPES = (0, 9, 127, 255)


class _Conf:
    version = 1


class Peer:
    """Node 2 sealing for node 1 in one protocol version (its own seq counter)."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.seq = itertools.count(1)

    def seal(self, mtype: int, payload: bytes) -> bytes:
        payload = payload[:MAX_PAYLOAD - 16]   # an oversize mutant goes out truncated
        return frame(mtype, payload, keys=KEYS, version=self.version, cluster_id=CFG.cid,
                     sender=2, incarnation=PEER_INC, seq=next(self.seq), receiver=1,
                     receiver_incarnation=ME_INC)


def new_core() -> ClusterCore:
    core = ClusterCore(CFG, 1, key=KEY, incarnation=ME_INC, config_data=b"c",
                       validator=lambda data: _Conf())
    core.tick(0.0)
    return core


def feed(core: ClusterCore, peer: Peer, mtype: int, payload: bytes, now: float,
         rng: random.Random) -> bool:
    """One sealed packet in; True if accepted. Exactly one outcome is counted, the only
    drop a sealed packet can get is 'malformed', and app messages reach their consumer."""
    accepted, dropped = core.guard.accepted, sum(core.guard.drops.values())
    out = core.on_datagram(peer.seal(mtype, payload), ADDR2, now)
    outcome = (core.guard.accepted - accepted, sum(core.guard.drops.values()) - dropped)
    assert outcome in ((1, 0), (0, 1)), outcome
    assert set(core.guard.drops) <= {"malformed"}, core.guard.drops
    for event in out.events:
        if isinstance(event, AppReceived):
            consume(event.channel, event.payload, rng)
    for gram in out.datagrams:
        assert gram.addr in CFG.addresses().values()
    return outcome == (1, 0)


def check_invariants(core: ClusterCore, now: float) -> None:
    core.tick(now)
    view = core.membership.view
    if view is not None:
        assert view.nodeids <= {1, 2, 3}
        assert all(inc >= 0 for _, inc in view.members)
    status = core.status(now)
    json.dumps(status, allow_nan=False)
    assert 0 <= status["quorum"]["votes"] <= 3
    assert math.isfinite(core.next_deadline(now))


def run_sequence(version: int, rng: random.Random, packets: int) -> tuple[int, int]:
    """Valid and mutated packets of every type, interleaved; returns (valid sent,
    mutants sent) after checking that every valid one was accepted."""
    core, peer = new_core(), Peer(version)
    now, valid, mutants = 0.1, 0, 0
    for _ in range(packets):
        now += rng.choice((0.01, 0.05, 0.4))
        mtype = rng.choice(list(MsgType))
        base = valid_core(rng, mtype, version, ME_INC)
        r = rng.random()
        if r < 0.3:
            assert feed(core, peer, mtype, dumps(base).encode(), now, rng), (mtype, base)
            valid += 1
        elif r < 0.95:
            feed(core, peer, mtype, mutated_bytes(rng, base), now, rng)
            mutants += 1
        else:
            assert not feed(core, peer, rng.choice(UNKNOWN_TYPES), dumps(base).encode(),
                            now, rng)
        if rng.random() < 0.1:
            check_invariants(core, now)
    # after any garbage, a valid heartbeat is still taken and the core is sound
    hb = valid_core(rng, MsgType.HEARTBEAT, version, ME_INC)
    assert feed(core, peer, MsgType.HEARTBEAT, dumps(hb).encode(), now + 0.01, rng)
    check_invariants(core, now + 0.02)
    return valid, mutants


@pytest.mark.parametrize("version", [1, 2, 3])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**64))
def test_sealed_mutants_of_every_type_and_version(version, seed) -> None:
    """Many short lives (hypothesis draws only the seed: the mutator's own random
    stream is far cheaper than hypothesis's, and the seed replays it exactly)."""
    run_sequence(version, random.Random(seed), packets=25)


def test_long_interleaved_run(fuzz_seed: int) -> None:
    """One long life of a core (state builds up: views, pulls, leases) under a mix of
    valid and mutated packets of all three versions' peers in turn (new peer
    incarnation per version, as a rolling upgrade would bring)."""
    rng = random.Random(fuzz_seed)
    valid = mutants = 0
    for version in (1, 2, 3):
        v, m = run_sequence(version, rng, packets=400)
        valid, mutants = valid + v, mutants + m
    assert valid > 200 and mutants > 600


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_type_valid_sample_is_accepted(version) -> None:
    """The mutations start from payloads the decoders take (else they test nothing)."""
    rng = random.Random(version)
    core, peer = new_core(), Peer(version)
    for i, mtype in enumerate(MsgType):
        base = valid_core(rng, mtype, version, ME_INC)
        assert feed(core, peer, mtype, dumps(base).encode(), 0.2 + i / 10, rng), mtype
    assert core.guard.accepted == len(MsgType) and not core.guard.drops


def test_regression_app_payload_nested_at_the_recursion_limit_is_dropped() -> None:
    """An app payload nested just below the recursion limit passed ``json.loads`` but
    made the size check's ``json.dumps`` (a few frames deeper) raise RecursionError,
    which escaped ``PacketGuard.accept`` and ``ClusterCore.on_datagram``. Every depth
    around the limit must now be accepted or dropped as malformed; the padding makes the
    datagram big enough for the size check to run."""
    core, peer = new_core(), Peer(3)
    pad = "x" * 12000
    limit = sys.getrecursionlimit()
    outcomes = set()
    for depth in range(limit - 300, limit + 3):
        payload = ('{"c":"svc.report","p":{"pad":"' + pad + '","a":' + "[" * depth + "]" * depth
                   + "}}").encode()
        outcomes.add(feed(core, peer, MsgType.APP, payload, 1.0, random.Random(depth)))
    assert outcomes == {True, False}        # both sides of the limit were reached
    assert feed(core, peer, MsgType.HEARTBEAT,
                dumps(valid_core(random.Random(1), MsgType.HEARTBEAT, 3, ME_INC)).encode(),
                1.1, random.Random(1))
