"""SWIM failure detection with Lifeguard's refinements, for one node (sans-IO).

Its messages and their wire forms are in ``swim_wire.py``. Not wired into the daemon
yet: nothing imports it outside its tests, the simulator in ``tests/sim/swim_sim.py``
and ``tests/bench/bench_swim.py``. It is the first brick of docs/architecture.md,
"Planned: membership at 300 nodes": the next ones are protocol v5 messages
(authenticated like every packet), ``Failed`` fed into ``Agreement`` instead of the
pairwise silence, and aggregated leases.

Why SWIM: today every node heartbeats every peer, so a node handles about 3(n-1)
packets a second. Here a node sends one probe a period and answers, on average, one;
what a node learns about the others travels piggybacked on those messages. The per-node
load does not depend on n, and detection takes O(log n) periods.

The protocol (Das, Gupta, Motivala 2002), each ``period``:

* probe one member, in a shuffled round-robin order (reshuffled every round, a new member
  inserted at a random place), so every member is probed within two rounds at worst;
* no ``Ack`` within ``probe_timeout``: ask ``indirect`` (k) random alive members to probe
  it (``PingReq``); they relay its ack, or answer ``Nack`` when they got none in time;
* no ack by the end of the period: the member is *suspect*. Suspicions, refutations and
  failures are ``Update``s piggybacked on every message, each sent
  ``retransmit_mult * ceil(log10(n + 1))`` times (memberlist's lambda log n), least-sent
  and newest first, at most ``max_piggyback`` of them and ``max_piggyback_bytes`` per
  message. A suspect that hears of its suspicion refutes it with a higher incarnation.

Lifeguard (Dadgar et al. 2018, as HashiCorp memberlist implements it):

* dynamic suspicion: a suspicion lasts ``hi`` = ``suspicion_max_mult * lo`` at first and
  shrinks as ``log(c + 1) / log(k + 1)`` toward ``lo`` = ``suspicion_mult *
  max(1, log10(n)) * period`` with each of the k expected independent confirmations
  (members whose own probes failed); then the member is *failed*, final for that
  incarnation;
* local health multiplier (LHM, 0..``lhm_max``): +1 per failed probe (or per missed nack
  when relays were asked: relays that cannot nack say the trouble is here), +1 per
  refutation, -1 per successful probe; probe period and timeout are scaled by LHM+1, so
  a saturated node slows down instead of suspecting everyone;
* nacks from the relays, above; and the buddy system: a message to a member this node
  suspects (memberlist: a probe) carries that suspicion first, so it can refute at once.

Ours, because the simulator showed a responsive member declared failed without them (at
100 and 300 nodes with 10 % of the nodes saturated: their constant suspicion and
refutation overload the piggyback, and SWIM has no anti-entropy, so a member that
misses a refutation keeps a refuted suspicion until it expires):

* a suspicion that expires gets a last check: the member is probed once more, in this
  node's next probe slot (no extra probes), before it is declared failed; the probe
  carries the suspicion, so a live member answers with its incarnation;
* corrections: a node that gets a suspicion or failure already refuted by a higher
  incarnation it knows puts that incarnation first in its next message to the sender;
  a ping-req carries the requester's suspicion of its target for the same reason;
* this node's own refutation rides first in every message while it is queued.

These keep the load per node constant; detection takes two periods more (the last
check), and a node that declares a member failed first is usually the only one to check:
the others take its Failed.

Precedence of updates about one member (SWIM section 4.2, memberlist's state.go):
alive(i) overrides alive/suspect/failed(j) if i > j; suspect(i) overrides alive(j) if
i >= j and is a confirmation of suspect(j) (taking the higher incarnation); failed(i)
overrides alive/suspect(j) if i >= j; nothing but a higher alive overrides failed.

Message size: at most ``MAX_UPDATES`` updates on the wire, so a message's compact JSON
is at most ``MAX_MESSAGE_BYTES`` (643) bytes: one datagram, with room for the packet
header and authentication under IPv6's minimum MTU (1280). The defaults fill at most 16
updates and 600 bytes. Wire forms here are plain dicts: the packet codec (v5,
authentication) is a later step and will turn the ``TypeError``/``ValueError`` of
``from_wire`` into ``WireError``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from clusterd.membership.swim_wire import (
    MAX_INC,
    MAX_SEQ,
    MAX_UPDATES,
    Ack,
    Nack,
    Ping,
    PingReq,
    Status,
    SwimMessage,
    Update,
    compact,
)

# at most this many suspects waiting for their last check (see SwimDetector.tick), and
# corrections owed to one member (see SwimDetector._piggyback)
TELL_MAX = 4

@dataclass(frozen=True)
class SwimSend:
    dest: int
    msg: SwimMessage


@dataclass(frozen=True)
class Suspected:
    node: int
    inc: int
    by: int


@dataclass(frozen=True)
class Alive:
    """A suspected or failed member is alive again (it refuted at a higher incarnation)."""

    node: int
    inc: int


@dataclass(frozen=True)
class Failed:
    node: int
    inc: int
    reason: str


SwimEvent = Suspected | Alive | Failed


@dataclass(frozen=True)
class SwimOutputs:
    sends: tuple[SwimSend, ...] = ()
    events: tuple[SwimEvent, ...] = ()


@dataclass(frozen=True)
class SwimConfig:
    """Defaults: the period is token/3 at the default 1 s token, as the heartbeats are
    now; the rest are memberlist's (LAN profile) but ``lhm_max``, 8 here as Lifeguard's
    paper has it (memberlist's multiplier 8 is a counter 0..7)."""

    period: float = 1 / 3
    probe_timeout: float = 0.1
    indirect: int = 3               # k: members asked to probe after a missed ack
    retransmit_mult: int = 4        # lambda
    suspicion_mult: float = 4.0     # alpha: lo = alpha * max(1, log10 n) * period
    suspicion_max_mult: float = 6.0  # beta: hi = beta * lo
    lhm_max: int = 8
    max_piggyback: int = 16         # updates per message
    max_piggyback_bytes: int = 600  # their compact JSON, commas included
    max_relays: int = 64            # ping-reqs served at once; more are refused

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.probe_timeout < self.period:
            problems.append("probe_timeout must be above 0 and below the period")
        if not 1 <= self.max_piggyback <= MAX_UPDATES:
            problems.append(f"max_piggyback must be in 1..{MAX_UPDATES}")
        if self.max_piggyback_bytes < 37:
            problems.append("max_piggyback_bytes must hold one update (37 bytes)")
        if self.indirect < 0 or self.retransmit_mult < 1 or self.lhm_max < 0:
            problems.append("indirect, lhm_max must be >= 0 and retransmit_mult >= 1")
        if self.suspicion_mult <= 0 or self.suspicion_max_mult < 1:
            problems.append("suspicion_mult must be > 0 and suspicion_max_mult >= 1")
        if problems:
            raise ValueError("; ".join(problems))

    def retransmit_limit(self, n: int) -> int:
        return self.retransmit_mult * math.ceil(math.log10(n + 1))

    def suspicion_bounds(self, n: int) -> tuple[float, float]:
        lo = self.suspicion_mult * max(1.0, math.log10(max(1, n))) * self.period
        return lo, self.suspicion_max_mult * lo

    def expected_confirmations(self, n: int) -> int:
        """memberlist's k: suspicion_mult - 2, or none when there are not that many
        other members to confirm (a suspicion then lasts ``lo`` from the start)."""
        k = int(self.suspicion_mult) - 2
        return 0 if n - 2 < k else k


def suspicion_timeout(lo: float, hi: float, k: int, confirmations: int) -> float:
    """Lifeguard's dynamic suspicion: ``hi`` with no independent confirmation, ``lo``
    after k of them, logarithmic in between (memberlist ``remainingSuspicionTime``)."""
    if k < 1:
        return lo
    frac = math.log(confirmations + 1) / math.log(k + 1)
    return max(lo, hi - frac * (hi - lo))


@dataclass
class _Suspicion:
    started: float
    k: int
    lo: float
    hi: float
    confirmed: set[int]  # the origin, then up to k independent confirmations
    why: str
    checked: float | None = None  # when the last check ends (see SwimDetector.tick)

    @property
    def expires(self) -> float:
        return self.deadline if self.checked is None else self.checked

    @property
    def deadline(self) -> float:
        return self.started + suspicion_timeout(self.lo, self.hi, self.k,
                                                len(self.confirmed) - 1)


@dataclass
class _Member:
    status: Status = Status.ALIVE
    inc: int = 0
    suspicion: _Suspicion | None = None


@dataclass
class _Gossip:
    update: Update
    size: int       # its compact JSON plus a comma
    order: int      # higher is newer
    sent: int = 0


@dataclass
class _Probe:
    target: int
    inc: int        # the target's when probed: a refutation meanwhile proves it alive
    seq: int
    direct_until: float
    end: float
    relays: tuple[int, ...] = ()
    asked: bool = False
    nacks: set[int] = field(default_factory=set)


@dataclass
class _Relay:
    requester: int
    seq: int        # the requester's
    target: int
    nack_at: float
    drop_at: float
    nacked: bool = False


@dataclass
class SwimCounters:
    probes: int = 0
    failed_probes: int = 0
    refutations: int = 0
    relays_refused: int = 0


class SwimDetector:
    """One node's detector. Inputs ``set_members``, ``tick`` and ``on_message``, each
    with ``now`` (monotonic seconds); outputs are returned, nothing here does I/O. The
    injected ``rng`` makes a run reproducible. Members come from outside (the agreed
    view will be the authority on who is a member); messages from others are ignored."""

    def __init__(self, me: int, rng: random.Random, cfg: SwimConfig | None = None):
        self.me = me
        self.rng = rng
        self.cfg = cfg or SwimConfig()
        self.inc = 0
        self.lhm = 0
        self.members: dict[int, _Member] = {}
        self.counters = SwimCounters()
        self._failed = 0
        self._order: list[int] = []
        self._pos = 0
        self._next_probe = math.inf
        self._probe: _Probe | None = None
        self._seq = 0
        self._relays: dict[int, _Relay] = {}
        self._gossip: dict[int, _Gossip] = {}
        self._gossip_n = 0
        self._suspects: set[int] = set()
        self._check: list[int] = []  # suspects to probe next, a last check (see tick)
        # member -> nodes it made refuted claims about (this one first, at most
        # TELL_MAX): my next message to it says so
        self._correct: dict[int, list[int]] = {}
        self._sends: list[SwimSend] = []
        self._events: list[SwimEvent] = []

    # ------------------------------------------------------------ inputs
    def set_members(self, nodes: Iterable[int], now: float) -> None:
        """The member set (this node excluded if given). A new member starts alive at
        incarnation 0 at a random place of this round; a removed one is forgotten."""
        wanted = set(nodes) - {self.me}
        for node in set(self.members) - wanted:
            if self.members.pop(node).status is Status.FAILED:
                self._failed -= 1
            self._gossip.pop(node, None)
            self._suspects.discard(node)
            self._correct.pop(node, None)
        self._relays = {seq: r for seq, r in self._relays.items()
                        if r.requester in wanted and r.target in wanted}
        if set(self._order) - wanted:
            self._pos -= sum(1 for x in self._order[:self._pos] if x not in wanted)
            self._order = [x for x in self._order if x in wanted]
        for node in sorted(wanted - set(self.members)):
            self.members[node] = _Member()
            at = self.rng.randint(0, len(self._order))
            self._order.insert(at, node)
            if at < self._pos:
                self._pos += 1
        if self._probe is not None and self._probe.target not in self.members:
            self._probe = None
        if self.members and self._next_probe == math.inf:
            self._next_probe = now + self.rng.uniform(0, self.cfg.period)

    def tick(self, now: float) -> SwimOutputs:
        self._relay_deadlines(now)
        self._probe_deadlines(now)
        for node in list(self._suspects):
            s = self._suspicion(node)
            if s.checked is not None and now >= s.checked:
                self._fail_suspect(node, now)
            elif s.checked is None and now >= s.deadline:
                # the last check: probe it once more, in the next probe slot
                s.checked = now + 2 * self.cfg.period * (self.lhm + 1)
                if len(self._check) < TELL_MAX:
                    self._check.append(node)
        if self._probe is None and now >= self._next_probe:
            self._start_probe(now)
        return self._flush()

    def on_message(self, sender: int, msg: SwimMessage, now: float) -> SwimOutputs:
        if sender == self.me or sender not in self.members:
            return self._flush()
        for update in msg.updates:
            self._apply(sender, update, now)
        if isinstance(msg, PingReq):
            self._serve_ping_req(sender, msg, now)
        elif isinstance(msg, Ping):
            if msg.target == self.me:
                self._send(sender, Ack(msg.seq, self._piggyback(sender)))
        elif isinstance(msg, Nack):
            probe = self._probe
            if probe is not None and msg.seq == probe.seq and sender in probe.relays:
                probe.nacks.add(sender)
        else:
            self._on_ack(sender, msg)
        return self._flush()

    def next_deadline(self) -> float:
        """When ``tick`` next has something to do (``math.inf``: nothing until a
        message or a member arrives)."""
        times = [self._next_probe]
        if self._probe is not None:
            times.append(self._probe.end if self._probe.asked else self._probe.direct_until)
        times += [r.drop_at if r.nacked else r.nack_at for r in self._relays.values()]
        times += [self._suspicion(node).expires for node in self._suspects]
        return min(times)

    # ------------------------------------------------------------ reading
    def status_of(self, node: int) -> tuple[Status, int]:
        m = self.members[node]
        return m.status, m.inc

    def suspected_until(self, node: int) -> float | None:
        """When this node will declare ``node`` failed unless it refutes (None: it is
        not suspected); earlier with each independent confirmation."""
        m = self.members[node]
        return None if m.suspicion is None else m.suspicion.expires

    def live_count(self) -> int:
        """Members not failed, this node included: the n of the timeouts."""
        return len(self.members) + 1 - self._failed

    # ------------------------------------------------------------ probing
    def _next_target(self) -> int | None:
        while self._check:              # a suspect to check before failing it (tick)
            node = self._check.pop(0)
            if node in self.members and self.members[node].status is Status.SUSPECT:
                return node
        for _ in range(len(self._order) + 1):
            if self._pos >= len(self._order):
                self.rng.shuffle(self._order)
                self._pos = 0
                if not self._order:
                    return None
            node = self._order[self._pos]
            self._pos += 1
            if self.members[node].status is not Status.FAILED:
                return node
        return None

    def _start_probe(self, now: float) -> None:
        scale = self.lhm + 1
        target = self._next_target()
        if target is None:
            self._next_probe = now + self.cfg.period * scale
            return
        self.counters.probes += 1
        self._seq = self._seq % MAX_SEQ + 1
        self._probe = _Probe(target, self.members[target].inc, self._seq,
                             now + self.cfg.probe_timeout * scale,
                             now + self.cfg.period * scale)
        self._next_probe = self._probe.end
        self._send(target, Ping(self._seq, target, self._piggyback(target)))

    def _probe_deadlines(self, now: float) -> None:
        probe = self._probe
        if probe is None:
            return
        if not probe.asked and now >= probe.direct_until:
            probe.asked = True
            others = [n for n, m in self.members.items()
                      if m.status is Status.ALIVE and n != probe.target]
            probe.relays = tuple(sorted(self.rng.sample(
                others, min(self.cfg.indirect, len(others)))))
            for relay in probe.relays:
                self._send(relay, PingReq(probe.seq, probe.target,
                                          self._piggyback(relay, probe.target)))
        if now < probe.end:
            return
        self._probe = None
        self.counters.failed_probes += 1
        missed = len(probe.relays) - len(probe.nacks) if probe.relays else 1
        self._health(missed)
        via = (f"nor via nodes {list(probe.relays)}" if probe.relays
               else "and no other alive member to ask")
        self._suspect(probe.target, probe.inc, self.me, now, f"no ack to a direct probe {via}")

    def _on_ack(self, sender: int, msg: Ack) -> None:
        relay = self._relays.get(msg.seq)
        if relay is not None and sender == relay.target:
            del self._relays[msg.seq]
            self._send(relay.requester, Ack(relay.seq, self._piggyback(relay.requester)))
            return
        probe = self._probe
        if probe is not None and msg.seq == probe.seq and (
                sender == probe.target or sender in probe.relays):
            self._probe = None       # the next probe still waits for the period's end
            self._health(-1)

    def _serve_ping_req(self, sender: int, msg: PingReq, now: float) -> None:
        if msg.target == self.me or msg.target not in self.members:
            return
        if len(self._relays) >= self.cfg.max_relays:
            self.counters.relays_refused += 1
            return
        self._seq = self._seq % MAX_SEQ + 1
        self._relays[self._seq] = _Relay(sender, msg.seq, msg.target,
                                         now + self.cfg.probe_timeout,
                                         now + self.cfg.period * (self.cfg.lhm_max + 1))
        self._send(msg.target, Ping(self._seq, msg.target, self._piggyback(msg.target)))

    def _relay_deadlines(self, now: float) -> None:
        for seq, relay in list(self._relays.items()):
            if not relay.nacked and now >= relay.nack_at:
                relay.nacked = True
                self._send(relay.requester, Nack(relay.seq,
                                                 self._piggyback(relay.requester)))
            if now >= relay.drop_at:
                del self._relays[seq]

    def _health(self, delta: int) -> None:
        self.lhm = min(self.cfg.lhm_max, max(0, self.lhm + delta))

    # ------------------------------------------------------------ updates
    def _apply(self, sender: int, u: Update, now: float) -> None:
        if u.node == self.me:
            if u.status is not Status.ALIVE and u.inc >= self.inc:
                self.inc = min(MAX_INC, u.inc + 1)
                self.counters.refutations += 1
                self._health(1)
                self._gossip_update(Update(Status.ALIVE, self.me, self.inc, self.me))
            elif u.status is not Status.ALIVE:
                self._corrects(sender, self.me)
            return
        m = self.members.get(u.node)
        if m is None:
            return
        if u.status is not Status.ALIVE and m.status is Status.ALIVE and u.inc < m.inc:
            self._corrects(sender, u.node)      # it missed the refutation
        if u.status is Status.ALIVE:
            self._alive(u, m)
        elif u.status is Status.SUSPECT:
            self._suspect(u.node, u.inc, u.origin, now, f"suspected by node {u.origin}")
        elif m.status is not Status.FAILED and u.inc >= m.inc:
            why = f"declared failed by node {u.origin}"
            if m.suspicion is not None:
                s = m.suspicion
                why += (f" (suspected here for {now - s.started:.1f} s, "
                        f"confirmed by {len(s.confirmed)} member(s))")
            self._mark_failed(u.node, u.inc, u.origin, why)

    def _corrects(self, member: int, node: int) -> None:
        nodes = self._correct.setdefault(member, [])
        if node == self.me and node not in nodes:
            nodes.insert(0, node)
            del nodes[TELL_MAX:]
        elif node not in nodes and len(nodes) < TELL_MAX:
            nodes.append(node)

    def _alive(self, u: Update, m: _Member) -> None:
        if u.inc <= m.inc:
            return
        was = m.status
        if was is Status.FAILED:
            self._failed -= 1
        m.status, m.inc, m.suspicion = Status.ALIVE, u.inc, None
        self._suspects.discard(u.node)
        if was is not Status.ALIVE:
            self._events.append(Alive(u.node, u.inc))
        self._gossip_update(u)

    def _suspect(self, node: int, inc: int, origin: int, now: float, why: str) -> None:
        m = self.members[node]
        if inc < m.inc or m.status is Status.FAILED:
            return
        if m.status is Status.SUSPECT:
            s = self._suspicion(node)
            m.inc = inc
            if origin not in s.confirmed and len(s.confirmed) <= s.k:
                s.confirmed.add(origin)          # an independent confirmation: re-gossip
                self._gossip_update(Update(Status.SUSPECT, node, inc, origin))
            return
        n = self.live_count()
        lo, hi = self.cfg.suspicion_bounds(n)
        m.status, m.inc = Status.SUSPECT, inc
        m.suspicion = _Suspicion(now, self.cfg.expected_confirmations(n), lo, hi, {origin},
                                 why)
        self._suspects.add(node)
        self._events.append(Suspected(node, inc, origin))
        self._gossip_update(Update(Status.SUSPECT, node, inc, origin))

    def _suspicion(self, node: int) -> _Suspicion:
        s = self.members[node].suspicion
        assert s is not None, f"node {node} is a suspect without a suspicion"
        return s

    def _fail_suspect(self, node: int, now: float) -> None:
        s = self._suspicion(node)
        self._mark_failed(node, self.members[node].inc, self.me,
                          f"{s.why}, suspected for {now - s.started:.1f} s, "
                          f"confirmed by {len(s.confirmed)} member(s)")

    def _mark_failed(self, node: int, inc: int, origin: int, why: str) -> None:
        m = self.members[node]
        m.status, m.inc, m.suspicion = Status.FAILED, inc, None
        self._failed += 1
        self._suspects.discard(node)
        self._events.append(Failed(node, inc, f"node {node} failed: {why}"))
        self._gossip_update(Update(Status.FAILED, node, inc, origin))

    # ------------------------------------------------------------ dissemination
    def _gossip_update(self, u: Update) -> None:
        """Queue ``u`` for piggybacking; it replaces what was queued about that node."""
        self._gossip_n += 1
        self._gossip[u.node] = _Gossip(u, len(compact(u.to_wire())) + 1, self._gossip_n)

    def _piggyback(self, dest: int, about: int | None = None) -> tuple[Update, ...]:
        """Up to ``max_piggyback`` updates within ``max_piggyback_bytes``: first what
        ``dest`` needs at once, then the queue, least sent and newest first (this node's
        own refutation before the rest: it is what stops a false failure).

        What goes first: a correction (``dest`` sent a suspicion or failure that a
        higher incarnation already refuted: SWIM has no anti-entropy, and a member that
        missed a refutation would otherwise declare a live member failed); this node's
        suspicion of ``dest``, queued or not (Lifeguard's buddy system, which memberlist
        applies to probes: here every message, so a suspect refutes on the first
        message it gets from a member that suspects it); and on a ping-req, the
        suspicion of its target ``about``, so a relay that knows better corrects it."""
        chosen: list[Update] = []
        for fixed in self._correct.pop(dest, ()):
            if fixed == self.me:
                chosen.append(Update(Status.ALIVE, self.me, self.inc, self.me))
            elif fixed in self.members and self.members[fixed].status is Status.ALIVE:
                chosen.append(Update(Status.ALIVE, fixed, self.members[fixed].inc, fixed))
        for node in (dest,) if about is None else (dest, about):
            m = self.members[node]
            if m.status is not Status.ALIVE:
                s = m.suspicion
                origin = self.me if s is None or self.me in s.confirmed else min(s.confirmed)
                chosen.append(Update(m.status, node, m.inc, origin))
        size = sum(len(compact(u.to_wire())) + 1 for u in chosen)
        if not self._gossip:
            return tuple(chosen)
        limit = self.cfg.retransmit_limit(self.live_count())
        me = self.me                            # this node's refutation rides first
        for g in sorted(self._gossip.values(),
                        key=lambda g: (g.update.node != me, g.sent, -g.order)):
            if len(chosen) >= self.cfg.max_piggyback:
                break
            if size + g.size > self.cfg.max_piggyback_bytes or g.update in chosen:
                continue
            chosen.append(g.update)
            size += g.size
            g.sent += 1
            if g.sent >= limit:
                del self._gossip[g.update.node]
        return tuple(chosen)

    def _send(self, dest: int, msg: SwimMessage) -> None:
        self._sends.append(SwimSend(dest, msg))

    def _flush(self) -> SwimOutputs:
        out = SwimOutputs(tuple(self._sends), tuple(self._events))
        self._sends.clear()
        self._events.clear()
        return out
