"""The SWIM + Lifeguard detector rule by rule (``clusterd.membership.swim``): probe order,
indirect probes and nacks, suspicion and refutation, the precedence of updates (a golden
table), Lifeguard's dynamic suspicion and local health, piggyback bounds, and the strict
wire forms. No network: messages are handed from one detector to another, or made up."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest
from clusterd.membership.swim import (
    Alive,
    Failed,
    Suspected,
    SwimConfig,
    SwimDetector,
    SwimOutputs,
    suspicion_timeout,
)
from clusterd.membership.swim_wire import (
    MAX_INC,
    MAX_MESSAGE_BYTES,
    MAX_NODEID,
    MAX_SEQ,
    MAX_UPDATES,
    Ack,
    Nack,
    Ping,
    PingReq,
    Status,
    Update,
    message_from_wire,
)

A, S, F = Status.ALIVE, Status.SUSPECT, Status.FAILED
CFG = SwimConfig()


def detector(n: int = 10, me: int = 1, seed: int = 7, **cfg: float) -> SwimDetector:
    det = SwimDetector(me, random.Random(seed), SwimConfig(**cfg))  # type: ignore[arg-type]
    det.set_members(range(1, n + 1), 0.0)
    return det


def sent(out: SwimOutputs, kind: type) -> list:
    return [(s.dest, s.msg) for s in out.sends if type(s.msg) is kind]


def start_probe(det: SwimDetector) -> tuple[float, int, Ping]:
    """Tick at the next probe time: (when, target, the ping)."""
    t = det.next_deadline()
    [(dest, ping)] = sent(det.tick(t), Ping)
    return t, dest, ping


def tell(det: SwimDetector, sender: int, *updates: Update, now: float = 0.0) -> SwimOutputs:
    """Hand ``det`` updates on a stale ack (an ack it expects nothing from)."""
    return det.on_message(sender, Ack(MAX_SEQ, tuple(updates)), now)


# ------------------------------------------------------------------ probing

def test_probe_order_covers_every_member_each_round_and_reshuffles():
    det = detector(10)
    rounds = []
    for _ in range(3):
        targets = []
        for _ in range(9):
            t, target, ping = start_probe(det)
            det.on_message(target, Ack(ping.seq), t + 0.01)
            targets.append(target)
        rounds.append(targets)
    assert all(sorted(r) == list(range(2, 11)) for r in rounds)
    assert len({tuple(r) for r in rounds}) == 3, "each round is shuffled anew"


def test_a_new_member_is_probed_within_the_round_after_it_joins():
    det = detector(10)
    t, target, ping = start_probe(det)
    det.on_message(target, Ack(ping.seq), t)
    det.set_members(range(1, 12), t)
    seen = []
    for _ in range(2 * 10):
        t, target, ping = start_probe(det)
        det.on_message(target, Ack(ping.seq), t)
        seen.append(target)
    assert 11 in seen[:19]
    assert det.status_of(11) == (A, 0)


def test_probes_are_one_period_apart():
    det = detector(5)
    times = []
    for _ in range(4):
        t, target, ping = start_probe(det)
        det.on_message(target, Ack(ping.seq), t + 0.002)
        times.append(t)
    assert [round(b - a, 9) for a, b in itertools.pairwise(times)] == [round(CFG.period, 9)] * 3


def test_no_ack_in_time_asks_k_others_then_suspects():
    det = detector(10)
    t, target, ping = start_probe(det)
    assert det.next_deadline() == pytest.approx(t + CFG.probe_timeout)
    out = det.tick(t + CFG.probe_timeout)
    reqs = sent(out, PingReq)
    assert len(reqs) == 3 and len({d for d, _ in reqs}) == 3
    assert all(d not in (1, target) and m == PingReq(ping.seq, target, m.updates)
               for d, m in reqs)
    assert det.tick(t + CFG.period - 0.001).events == ()
    out = det.tick(t + CFG.period)
    assert out.events == (Suspected(target, 0, 1),)
    assert det.status_of(target) == (S, 0)


def test_an_ack_relayed_by_a_helper_counts():
    det = detector(10)
    t, target, ping = start_probe(det)
    [(relay, _), *_] = sent(det.tick(t + CFG.probe_timeout), PingReq)
    det.on_message(relay, Ack(ping.seq), t + 0.2)
    assert det.tick(t + CFG.period).events == ()
    assert det.status_of(target) == (A, 0) and det.lhm == 0


def test_an_ack_from_a_node_not_asked_does_not_count():
    det = detector(10)
    t, target, ping = start_probe(det)
    relays = {d for d, _ in sent(det.tick(t + CFG.probe_timeout), PingReq)}
    stranger = next(x for x in range(2, 11) if x not in relays | {target})
    det.on_message(stranger, Ack(ping.seq), t + 0.2)
    assert det.tick(t + CFG.period).events == (Suspected(target, 0, 1),)


def test_a_helper_pings_the_target_and_relays_its_ack():
    relay = detector(10, me=5)
    out = relay.on_message(2, PingReq(41, 7, ()), 1.0)
    [(dest, ping)] = sent(out, Ping)
    assert dest == 7 and ping.target == 7
    out = relay.on_message(7, Ack(ping.seq), 1.01)
    assert [(d, m.seq) for d, m in sent(out, Ack)] == [(2, 41)]
    assert sent(relay.tick(1.0 + CFG.probe_timeout), Nack) == []


def test_a_helper_that_gets_no_ack_nacks():
    relay = detector(10, me=5)
    relay.on_message(2, PingReq(41, 7, ()), 1.0)
    assert relay.next_deadline() <= 1.0 + CFG.probe_timeout
    assert sent(relay.tick(1.0 + CFG.probe_timeout - 0.001), Nack) == []
    out = relay.tick(1.0 + CFG.probe_timeout)
    assert [(d, m.seq) for d, m in sent(out, Nack)] == [(2, 41)]
    assert sent(relay.tick(1.0 + CFG.probe_timeout + 0.05), Nack) == [], "one nack"


def test_a_helper_serves_a_bounded_number_of_ping_reqs():
    relay = detector(10, me=5, max_relays=4)
    outs = [relay.on_message(2, PingReq(s, 7, ()), 1.0) for s in range(6)]
    assert [len(o.sends) for o in outs] == [1, 1, 1, 1, 0, 0]
    assert relay.counters.relays_refused == 2


def test_a_member_removed_takes_its_state_with_it():
    relay = detector(10, me=5)
    relay.on_message(2, PingReq(41, 7, ()), 1.0)
    tell(relay, 3, Update(S, 8, 0, 3), now=1.0)
    relay.set_members([1, 3, 4, 5, 6, 7, 9, 10], 1.01)
    assert sent(relay.tick(1.0 + CFG.probe_timeout), Nack) == [], "none to a removed one"
    assert 8 not in relay.members and relay.live_count() == 8
    relay.set_members(range(1, 12), 1.2)
    assert relay.status_of(8) == (A, 0), "back as new"


def test_misdirected_pings_and_strangers_are_ignored():
    det = detector(10)
    assert det.on_message(2, Ping(3, 9), 0.0).sends == ()
    assert det.on_message(99, Ping(3, 1), 0.0).sends == ()
    assert det.on_message(99, Ack(0, (Update(S, 2, 0, 99),)), 0.0).events == ()
    assert [m for _, m in sent(det.on_message(2, Ping(3, 1), 0.0), Ack)] == [Ack(3)]


# ------------------------------------------------------------------ Lifeguard: nacks, LHM

@pytest.mark.parametrize(("members", "nacks", "lhm"), [
    (10, 0, 3),   # three relays asked, none nacked: the trouble is likely here
    (10, 3, 0),   # every relay nacked: they hear me, the target is the one gone
    (10, 2, 1),
    (2, 0, 1),    # nobody to ask: a failed probe counts one
])
def test_local_health_after_a_failed_probe(members, nacks, lhm):
    det = detector(members)
    t, _target, ping = start_probe(det)
    relays = [d for d, _ in sent(det.tick(t + CFG.probe_timeout), PingReq)]
    for relay in relays[:nacks]:
        det.on_message(relay, Nack(ping.seq), t + 0.25)
    det.tick(t + CFG.period)
    assert det.lhm == lhm


def test_missed_acks_raise_local_health_and_slow_probes_then_acks_lower_it():
    det = detector(2, suspicion_mult=100)  # one other member, silent, and not failed yet
    t, target, ping = start_probe(det)
    starts, lhms = [t], []
    for _ in range(5):
        det.tick(det.next_deadline())    # the direct timeout: no one else to ask
        t = det.next_deadline()          # the end of the period, and the next probe
        [(target, ping)] = sent(det.tick(t), Ping)
        starts.append(t)
        lhms.append(det.lhm)
    assert lhms == [1, 2, 3, 4, 5]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    assert gaps == [round(CFG.period * k, 6) for k in (1, 2, 3, 4, 5)]
    assert det.next_deadline() == pytest.approx(t + CFG.probe_timeout * 6)
    det.on_message(target, Ack(ping.seq), t + 0.01)
    assert det.lhm == 4


def test_local_health_saturates():
    det = detector(2, lhm_max=3, suspicion_mult=100)
    for _ in range(6):
        start_probe(det)
        det.tick(det.next_deadline())
    assert det.lhm == 3


# ------------------------------------------------------------------ suspicion, refutation

def test_a_suspect_refutes_with_a_higher_incarnation_in_its_ack():
    det = detector(10, me=4)
    out = det.on_message(2, Ping(9, 4, (Update(S, 4, 0, 2),)), 1.0)
    [(dest, ack)] = sent(out, Ack)
    assert dest == 2 and ack.seq == 9 and Update(A, 4, 1, 4) in ack.updates
    assert det.inc == 1 and det.lhm == 1 and det.counters.refutations == 1
    det.on_message(3, Ping(10, 4, (Update(S, 4, 0, 3),)), 1.1)
    assert det.inc == 1, "a stale suspicion is refuted already"
    det.on_message(3, Ping(11, 4, (Update(F, 4, 1, 3),)), 1.2)
    assert det.inc == 2, "a failure is refuted too"


def test_a_refutation_clears_the_suspicion():
    det = detector(10)
    tell(det, 2, Update(S, 7, 0, 2), now=1.0)
    out = tell(det, 7, Update(A, 7, 1, 7), now=1.5)
    assert out.events == (Alive(7, 1),)
    assert det.status_of(7) == (A, 1) and det.suspected_until(7) is None


def test_buddy_system_a_probe_of_a_suspect_carries_its_suspicion_first():
    det = detector(3, max_piggyback=1)
    tell(det, 2, Update(S, 3, 0, 2), *[Update(S, 2, 0, 3)], now=0.0)
    for _ in range(10):      # use up the retransmissions of everything queued
        det.on_message(2, Ping(1, 1), 0.0)
    while True:
        t, target, ping = start_probe(det)
        if target == 3:
            break
        det.on_message(target, Ack(ping.seq), t)
    assert ping.updates == (Update(S, 3, 0, 2),)


def test_a_member_that_missed_a_refutation_is_corrected_in_the_reply():
    det = detector(10)
    tell(det, 7, Update(A, 7, 2, 7))
    [(_, ack)] = sent(det.on_message(3, Ping(5, 1, (Update(S, 7, 1, 4),)), 1.0), Ack)
    assert ack.updates[0] == Update(A, 7, 2, 7)
    assert det.status_of(7) == (A, 2)


def test_a_ping_req_carries_the_suspicion_of_its_target():
    det = detector(10)
    t, target, _ping = start_probe(det)
    tell(det, 2 if target != 2 else 3, Update(S, target, 0, 5), now=t)
    for _relay, req in sent(det.tick(t + CFG.probe_timeout), PingReq):
        assert Update(S, target, 0, 5) in req.updates[:2]


@pytest.mark.parametrize(("confirmations", "expected"), [
    (0, "hi"), (1, "between"), (2, "lo"), (3, "lo"),
])
def test_suspicion_timeout_shrinks_logarithmically(confirmations, expected):
    lo, hi = 2.0, 12.0
    got = suspicion_timeout(lo, hi, 2, confirmations)
    want = {"hi": hi, "lo": lo, "between": hi - math.log(2) / math.log(3) * (hi - lo)}
    assert got == pytest.approx(want[expected])


def test_no_one_to_confirm_means_the_shortest_suspicion():
    assert suspicion_timeout(2.0, 12.0, 0, 0) == 2.0
    assert CFG.expected_confirmations(3) == 0 and CFG.expected_confirmations(4) == 2


@pytest.mark.parametrize(("n", "lo"), [(3, 4 / 3), (10, 4 / 3), (100, 8 / 3), (300, 3.3028)])
def test_suspicion_bounds_grow_as_log_n(n, lo):
    assert CFG.suspicion_bounds(n) == (pytest.approx(lo, abs=1e-3),
                                       pytest.approx(6 * lo, abs=1e-3))


def test_independent_confirmations_shorten_a_suspicion_to_its_minimum():
    det = detector(30)
    lo, hi = CFG.suspicion_bounds(30)
    tell(det, 2, Update(S, 9, 0, 2), now=10.0)
    assert det.suspected_until(9) == pytest.approx(10.0 + hi)
    tell(det, 3, Update(S, 9, 0, 2), now=10.5)
    assert det.suspected_until(9) == pytest.approx(10.0 + hi), "the same origin relayed"
    tell(det, 3, Update(S, 9, 0, 3), now=10.6)
    one = det.suspected_until(9)
    assert 10.0 + lo < one < 10.0 + hi
    tell(det, 4, Update(S, 9, 0, 4), now=10.7)
    assert det.suspected_until(9) == pytest.approx(10.0 + lo)
    when, failed = run_until_failed(det, 9, 10.0 + lo)
    assert when == pytest.approx(10.0 + lo + 2 * CFG.period), "after a last check"
    assert failed == Failed(9, 0, "node 9 failed: suspected by node 2, suspected for "
                            f"{when - 10.0:.1f} s, confirmed by 3 member(s)")


def run_until_failed(det: SwimDetector, node: int, t: float) -> tuple[float, Failed | None]:
    """Tick from ``t`` at every deadline (probes unanswered) until ``det`` declares
    ``node`` failed: (when, the event)."""
    for _ in range(100):
        for e in det.tick(t).events:
            if isinstance(e, Failed) and e.node == node:
                return t, e
        t = det.next_deadline()
    return math.inf, None


def test_a_last_check_before_failing_lets_a_suspect_that_missed_nothing_answer():
    """A member that refuted long ago, but whose refutation this node missed, answers
    the last probe with its current incarnation (a correction of a stale claim)."""
    det = detector(10)
    suspect = detector(10, me=9)
    tell(suspect, 2, Update(S, 9, 0, 2), now=1.0)          # it refutes at once...
    assert suspect.inc == 1
    for _ in range(20):                                     # ...and its gossip runs out
        suspect.on_message(3, Ping(1, 9), 1.0)
    tell(det, 2, Update(S, 9, 0, 2), now=1.0)               # ...but this node missed it
    deadline = det.suspected_until(9)
    t = deadline
    while True:
        out = det.tick(t)
        pings = [m for d, m in sent(out, Ping) if d == 9]
        if pings:
            break
        t = det.next_deadline()
    assert pings[0].updates[0] == Update(S, 9, 0, 2), "the buddy system"
    [(_, ack)] = sent(suspect.on_message(1, pings[0], t), Ack)
    assert ack.updates[0] == Update(A, 9, 1, 9), "a correction, first"
    assert det.on_message(9, ack, t + 0.01).events == (Alive(9, 1),)
    assert det.status_of(9) == (A, 1) and det.suspected_until(9) is None


def test_failed_reason_names_the_direct_and_indirect_probes():
    det = detector(4)
    t, target, _ping = start_probe(det)
    relays = sorted(d for d, _ in sent(det.tick(t + CFG.probe_timeout), PingReq))
    det.tick(t + CFG.period)
    lo, _hi = CFG.suspicion_bounds(4)
    for other in relays:
        tell(det, other, Update(S, target, 0, other), now=t + CFG.period)
    assert det.suspected_until(target) == pytest.approx(t + CFG.period + lo)
    when, failed = run_until_failed(det, target, det.next_deadline())
    assert failed == Failed(target, 0, f"node {target} failed: no ack to a direct probe "
                            f"nor via nodes {relays}, suspected for "
                            f"{when - t - CFG.period:.1f} s, confirmed by 3 member(s)")


def test_a_failure_heard_from_another_member_says_who():
    det = detector(10)
    out = tell(det, 3, Update(F, 7, 0, 3), now=2.0)
    assert out.events == (Failed(7, 0, "node 7 failed: declared failed by node 3"),)
    assert det.live_count() == 9


def test_a_failed_member_is_not_probed():
    det = detector(4)
    tell(det, 3, Update(F, 2, 0, 3), now=0.0)
    targets = set()
    for _ in range(9):
        t, target, ping = start_probe(det)
        det.on_message(target, Ack(ping.seq), t)
        targets.add(target)
    assert targets == {3, 4}


# The precedence of updates about one member, as SWIM (section 4.2) and memberlist have it:
# (current status, its incarnation, update status, its incarnation) -> (new status, new
# incarnation, event or None).
PRECEDENCE = [
    (A, 1, A, 0, A, 1, None), (A, 1, A, 1, A, 1, None), (A, 1, A, 2, A, 2, None),
    (A, 1, S, 0, A, 1, None), (A, 1, S, 1, S, 1, Suspected), (A, 1, S, 2, S, 2, Suspected),
    (A, 1, F, 0, A, 1, None), (A, 1, F, 1, F, 1, Failed), (A, 1, F, 2, F, 2, Failed),
    (S, 1, A, 0, S, 1, None), (S, 1, A, 1, S, 1, None), (S, 1, A, 2, A, 2, Alive),
    (S, 1, S, 0, S, 1, None), (S, 1, S, 1, S, 1, None), (S, 1, S, 2, S, 2, None),
    (S, 1, F, 0, S, 1, None), (S, 1, F, 1, F, 1, Failed), (S, 1, F, 2, F, 2, Failed),
    (F, 1, A, 0, F, 1, None), (F, 1, A, 1, F, 1, None), (F, 1, A, 2, A, 2, Alive),
    (F, 1, S, 0, F, 1, None), (F, 1, S, 1, F, 1, None), (F, 1, S, 2, F, 1, None),
    (F, 1, F, 0, F, 1, None), (F, 1, F, 1, F, 1, None), (F, 1, F, 2, F, 1, None),
]


@pytest.mark.parametrize(("cur", "cur_inc", "upd", "upd_inc", "new", "new_inc", "event"),
                         PRECEDENCE)
def test_precedence(cur, cur_inc, upd, upd_inc, new, new_inc, event):
    det = detector(5)
    tell(det, 3, Update(A, 2, cur_inc, 2))
    if cur is not A:
        tell(det, 3, Update(cur, 2, cur_inc, 3))
    assert det.status_of(2) == (cur, cur_inc)
    out = tell(det, 4, Update(upd, 2, upd_inc, 4), now=0.1)
    assert det.status_of(2) == (new, new_inc)
    assert [type(e) for e in out.events] == ([] if event is None else [event])


# ------------------------------------------------------------------ dissemination

def test_piggyback_is_bounded_in_count_and_bytes():
    det = detector(30)
    tell(det, 2, *[Update(S, x, 0, 2) for x in range(3, 19)])
    tell(det, 2, *[Update(S, x, 0, 2) for x in range(19, 31)])
    [(_, ack)] = sent(det.on_message(2, Ping(1, 1), 0.0), Ack)
    assert len(ack.updates) == CFG.max_piggyback
    size = len(json.dumps([u.to_wire() for u in ack.updates], separators=(",", ":")))
    assert size <= CFG.max_piggyback_bytes
    small = detector(30, max_piggyback_bytes=40)
    tell(small, 2, *[Update(S, x, 0, 2) for x in range(3, 19)])
    [(_, ack)] = sent(small.on_message(2, Ping(1, 1), 0.0), Ack)
    assert len(ack.updates) == 3, "[1,18,0,2] and a comma: three fit in 40 bytes"


def test_each_update_is_sent_lambda_log_n_times_newest_first():
    det = detector(30, max_piggyback=4)
    limit = CFG.retransmit_limit(30)
    assert limit == 4 * math.ceil(math.log10(31)) == 8
    tell(det, 2, *[Update(S, x, 0, 2) for x in range(3, 13)])
    counts: dict[int, int] = {}
    firsts = None
    for _ in range(40):
        [(_, ack)] = sent(det.on_message(2, Ping(1, 1), 0.0), Ack)
        firsts = firsts or [u.node for u in ack.updates]
        for u in ack.updates:
            counts[u.node] = counts.get(u.node, 0) + 1
    assert firsts == [12, 11, 10, 9], "newest first"
    assert counts == {x: limit for x in range(3, 13)}


def test_retransmit_limit_grows_as_log_n():
    assert [CFG.retransmit_limit(n) for n in (3, 9, 30, 99, 100, 300)] == [4, 4, 8, 8, 12, 12]


def test_the_biggest_message_is_max_message_bytes():
    u = Update(F, MAX_NODEID, MAX_INC, MAX_NODEID)
    biggest = PingReq(MAX_SEQ, MAX_NODEID, (u,) * MAX_UPDATES)
    assert len(json.dumps(biggest.to_wire(), separators=(",", ":"))) == MAX_MESSAGE_BYTES
    assert message_from_wire(biggest.to_wire()) == biggest


# ------------------------------------------------------------------ wire forms

ROUND_TRIPS = [
    Ping(1, 2), Ping(MAX_SEQ, MAX_NODEID, (Update(S, 3, 4, 5),)), PingReq(0, 9),
    Ack(7, (Update(A, 1, 0, 1), Update(F, 2, 3, 4))), Nack(8),
]


@pytest.mark.parametrize("msg", ROUND_TRIPS, ids=str)
def test_round_trip(msg):
    wire = json.loads(json.dumps(msg.to_wire()))
    assert message_from_wire(wire) == msg
    assert type(msg).from_wire(wire) == msg


MALFORMED = [
    ([], TypeError, "a message must be an object, not list"),
    ({"t": "pong", "s": 1, "u": []}, ValueError, "unknown message type 'pong'"),
    ({"s": 1, "u": []}, ValueError, "unknown message type None"),
    ({"t": "ack", "s": 1}, ValueError, "ack keys ['s', 't'] != ['s', 't', 'u']"),
    ({"t": "ack", "s": 1, "u": [], "x": 0}, ValueError, "ack keys"),
    ({"t": "ack", "s": -1, "u": []}, ValueError, "sequence must be in 0..4294967295, not -1"),
    ({"t": "ack", "s": 2**32, "u": []}, ValueError, "sequence must be in 0..4294967295"),
    ({"t": "ack", "s": True, "u": []}, TypeError, "sequence must be an integer, not bool"),
    ({"t": "ack", "s": 1.0, "u": []}, TypeError, "sequence must be an integer, not float"),
    ({"t": "ping", "s": 1, "n": 2**31, "u": []}, ValueError, "target must be in 0..2147483647"),
    ({"t": "ping", "s": 1, "n": "2", "u": []}, TypeError, "target must be an integer, not str"),
    ({"t": "ack", "s": 1, "u": {}}, TypeError, "updates must be a list, not dict"),
    ({"t": "ack", "s": 1, "u": [[0, 1, 0, 1]] * 17}, ValueError,
     "at most 16 updates per message, not 17"),
    ({"t": "ack", "s": 1, "u": [[0, 1, 0]]}, ValueError,
     "an update must be [status, node, incarnation, origin]"),
    ({"t": "ack", "s": 1, "u": [(0, 1, 0, 1)]}, TypeError, "an update must be a list, not tuple"),
    ({"t": "ack", "s": 1, "u": [[3, 1, 0, 1]]}, ValueError, "update status must be in 0..2"),
    ({"t": "ack", "s": 1, "u": [[0, 1, 2**32, 1]]}, ValueError,
     "update incarnation must be in 0..4294967295"),
    ({"t": "ack", "s": 1, "u": [[0, 1, 0, None]]}, TypeError,
     "update origin must be an integer, not NoneType"),
]


@pytest.mark.parametrize(("wire", "exc", "message"), MALFORMED, ids=lambda x: str(x)[:40])
def test_from_wire_rejects(wire, exc, message):
    with pytest.raises(exc) as err:
        message_from_wire(wire)
    assert str(err.value).startswith(message)


def test_from_wire_of_one_kind_rejects_another():
    with pytest.raises(ValueError, match="message type 'ack' is not 'nack'"):
        Nack.from_wire(Ack(1).to_wire())
    with pytest.raises(ValueError, match="message type 'ping' is not 'pingreq'"):
        PingReq.from_wire(Ping(1, 2).to_wire())


def _junk(rng: random.Random, depth: int = 0) -> object:
    pick = rng.randrange(9 if depth < 2 else 6)
    return [lambda: rng.choice([0, 1, 2, -1, 2**31, 2**32, 2**64]), lambda: rng.random(),
            lambda: rng.choice(["ping", "pingreq", "ack", "nack", "", "x"]), lambda: None,
            lambda: rng.choice([True, False]), lambda: rng.randrange(5),
            lambda: [_junk(rng, depth + 1) for _ in range(rng.randrange(5))],
            lambda: [[rng.randrange(4), rng.randrange(9), rng.randrange(3), _junk(rng, 2)]
                     for _ in range(rng.randrange(3))],
            lambda: {k: _junk(rng, depth + 1) for k in rng.sample("tsnux", rng.randrange(4))},
            ][pick]()


def _mutant(rng: random.Random) -> object:
    """Half random objects, half valid messages with a field or two spoiled."""
    if rng.random() < 0.5:
        return {k: _junk(rng) for k in rng.sample("tsnux", rng.randrange(1, 5))}
    wire = rng.choice(ROUND_TRIPS).to_wire()
    for _ in range(rng.randrange(3)):
        key = rng.choice([*wire, "x"])
        if rng.random() < 0.3:
            wire.pop(key, None)
        elif key == "u" and wire.get("u") and rng.random() < 0.5:
            wire["u"][0][rng.randrange(4)] = _junk(rng, 2)
        else:
            wire[key] = _junk(rng)
    return wire


def test_fuzz_from_wire_raises_only_type_or_value_errors():
    rng = random.Random(20261207)
    decoded = 0
    for _ in range(600):
        wire = _mutant(rng)
        try:
            msg = message_from_wire(wire)
        except (TypeError, ValueError) as exc:
            assert str(exc)
        else:
            decoded += 1
            assert msg.to_wire() == wire
    assert decoded > 0


def test_config_reports_every_problem():
    with pytest.raises(ValueError) as err:
        SwimConfig(probe_timeout=1.0, max_piggyback=17, max_piggyback_bytes=10)
    assert str(err.value) == (
        "probe_timeout must be above 0 and below the period; max_piggyback must be in "
        "1..16; max_piggyback_bytes must hold one update (37 bytes)")


def test_random_messages_and_ticks_never_raise_nor_spin():
    """Any well-formed message from any member, any update about anyone (this node
    included), in any order with ticks and member changes: no exception, and after a
    tick the next deadline is in the future."""
    rng = random.Random(4242)
    det = detector(12, me=1)
    now = 0.0
    for step in range(3000):
        now += rng.expovariate(30.0)
        updates = tuple(Update(Status(rng.randrange(3)), rng.randrange(1, 14),
                               rng.randrange(4), rng.randrange(1, 14))
                        for _ in range(rng.randrange(4)))
        seq = rng.randrange(1, 40)
        kind = rng.randrange(5)
        msg = [Ping(seq, rng.choice([1, 1, 2])), PingReq(seq, rng.randrange(1, 14)),
               Ack(seq), Nack(seq), Ack(det._seq)][kind]
        msg = type(msg)(**{**msg.__dict__, "updates": updates})
        det.on_message(rng.randrange(1, 14), msg, now)
        if step % 500 == 499:
            det.set_members(rng.sample(range(1, 14), rng.randrange(3, 13)), now)
        if det.next_deadline() <= now:
            det.tick(now)
            assert det.next_deadline() > now
