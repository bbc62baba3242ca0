"""A deterministic discrete-event network for the SWIM detector alone
(``clusterd.membership.swim``), not the daemon: N detectors, a virtual clock, and per link
a base delay drawn from ``delay`` (each message adds a jitter of up to that base), loss,
duplication, crashes, pauses (the node handles nothing for a while, then everything that
queued), "saturated" nodes (each message and timer handled 0.05-0.5 s late, in the order
they came) and a
partition into two groups. Every message goes through ``to_wire``, compact JSON and
``message_from_wire``, so its size is what it would be on the wire.

Everything is drawn from one seed (``Scenario``): ``RHC_SIM_SEED=n`` replays it
(``tests/sim/schedules.py`` ``seeds``).

The invariants (``check``), each a ``SwimViolation`` naming the seed:

* ``detected``: every crashed node is declared Failed by every live responsive node
  (never paused or saturated, on the crashed node's side of any partition) within
  ``detection_bound``: ``(FIRST_PROBE_PERIODS + 1 + 2 + retransmit_limit(n)) * P' + S``,
  where ``P' = period * (1 + L)`` with L the highest local health multiplier a
  responsive node reached (Lifeguard stretches its periods by that much), and S the
  longest suspicion (``hi``, or ``lo`` when there are too few members to confirm it).
  Why: some member probes the crashed one within FIRST_PROBE_PERIODS periods but with
  probability about e^-12 (each of the n-1 members probes it within m periods of a
  shuffled round with probability about m/(n-1)); that probe ends a period later; that
  member's suspicion lasts at most S, then its last check two periods; its Failed
  update is then relayed
  ``retransmit_limit`` times by every member that hears it, one message a period at
  least. A member that misses the gossip still probes the crashed node itself within two
  rounds: that deterministic but O(n) fallback is not what is asserted.
* ``no-false-failure``: no responsive node is declared Failed by a node on its side
  (asserted for loss up to 5 %; false suspicions are counted, not asserted).
* ``load``: a node starts at most one probe a period and k ping-reqs a probe (asserted
  exactly, from the periods elapsed), and sends on average at most
  ``load_bound`` = 2(1 + k) messages a period in all (its answers to the others' probes
  and ping-reqs included), the same constant at every n.
* ``size``: no message is over ``MAX_MESSAGE_BYTES``;
* ``livelock``: a detector does not ask for ticks at one instant forever.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import json
import math
import random
from dataclasses import dataclass, field

from clusterd.membership.swim import (
    Failed,
    Suspected,
    SwimConfig,
    SwimDetector,
    SwimOutputs,
)
from clusterd.membership.swim_wire import MAX_MESSAGE_BYTES, PingReq, message_from_wire

FIRST_PROBE_PERIODS = 12
# Messages a node sends per period on average, at most: its probe and k ping-reqs, and
# for each probe of it (one a period on average) its ack to the prober and to each of
# the k relays a late ack makes the prober ask (about 2 measured at rest, 5 for a
# saturated node that everyone probes indirectly)
def load_bound(cfg: SwimConfig) -> float:
    return 2.0 * (1 + cfg.indirect)
SATURATED_DELAY = (0.05, 0.5)
WARMUP = 2.0
SPINS = 1000  # ticks of one node at one instant: a detector whose deadline never passes


class SwimViolation(AssertionError):
    def __init__(self, name: str, message: str, sim: SwimNet | None = None):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.sim = sim


@dataclass(frozen=True)
class Scenario:
    """One run, drawn in full from ``seed`` by ``draw``; times in virtual seconds."""

    seed: int
    n: int
    horizon: float
    loss: float = 0.0
    dup: float = 0.0
    delay: tuple[float, float] = (0.0005, 0.005)
    crashes: tuple[tuple[float, int], ...] = ()
    saturated: frozenset[int] = frozenset()
    pauses: tuple[tuple[float, int, float], ...] = ()  # (at, node, seconds)
    partition: tuple[float, frozenset[int]] | None = None  # (at, one side)

    def __str__(self) -> str:
        return (f"seed {self.seed}: {self.n} nodes, {self.horizon:.0f} s, loss "
                f"{self.loss:.0%}, dup {self.dup:.0%}, crashes "
                f"{[(round(t, 2), v) for t, v in self.crashes]}, saturated "
                f"{sorted(self.saturated)}, pauses "
                f"{[(round(t, 2), v, round(d, 2)) for t, v, d in self.pauses]}, partition "
                f"{None if self.partition is None else sorted(self.partition[1])}")


def draw(seed: int, n: int, *, horizon: float = 20.0, loss: float = 0.0,
         dup: float = 0.0, crashes: int = 1, saturated: float = 0.0, pauses: int = 0,
         partition: bool = False) -> Scenario:
    """Crash times fall in the first half after the warm-up, so each has at least half
    the horizon to be detected (the run goes on to the bound if it needs to)."""
    rng = random.Random(seed)
    nodes = list(range(1, n + 1))
    victims = rng.sample(nodes, crashes)
    late = max(WARMUP + 0.1, horizon / 2)
    crash = tuple(sorted((rng.uniform(WARMUP, late), v) for v in victims))
    rest = [x for x in nodes if x not in victims]
    sat = frozenset(rng.sample(rest, round(saturated * n)))
    rest = [x for x in rest if x not in sat]
    pause = tuple(sorted((rng.uniform(WARMUP, horizon), rng.choice(rest),
                          rng.uniform(0.2, 3.0)) for _ in range(pauses)))
    part = None
    if partition:
        part = (rng.uniform(WARMUP, late), frozenset(rng.sample(nodes, n // 3)))
    delay = rng.choice([(0.0005, 0.005), (0.001, 0.02)])
    return Scenario(seed, n, horizon, loss, dup, delay, crash, sat, pause, part)


@dataclass
class _Stats:
    sent: collections.Counter = field(default_factory=collections.Counter)
    ping_reqs: collections.Counter = field(default_factory=collections.Counter)
    bytes: collections.Counter = field(default_factory=collections.Counter)
    biggest: int = 0
    suspected: dict[int, float] = field(default_factory=dict)  # crashed node -> first
    failed: dict[tuple[int, int], float] = field(default_factory=dict)  # (observer, node)
    false_suspicions: int = 0          # of nodes not crashed (any, responsive or not)
    false_suspicions_responsive: int = 0
    false_failures: list[tuple[float, int, int, str]] = field(default_factory=list)
    # distinct (node, incarnation) of nodes not crashed suspected / declared failed by
    # anyone: episodes, not one per observer
    suspected_live: set[tuple[int, int]] = field(default_factory=set)
    failed_live: set[tuple[int, int]] = field(default_factory=set)
    max_lhm: int = 0                   # over responsive nodes


class SwimNet:
    def __init__(self, scn: Scenario, cfg: SwimConfig | None = None):
        self.scn = scn
        self.cfg = cfg or SwimConfig()
        self.rng = random.Random(scn.seed)
        self.nodes = list(range(1, scn.n + 1))
        self.det = {i: SwimDetector(i, random.Random(self.rng.getrandbits(64)), self.cfg)
                    for i in self.nodes}
        self.now = 0.0
        self.stats = _Stats()
        self.trace: collections.deque[str] = collections.deque(maxlen=40)
        self.crashed: dict[int, float] = {}
        self.paused_until: dict[int, float] = {}
        self.side: frozenset[int] | None = None  # one side of the partition in force
        self.unresponsive = set(scn.saturated) | {v for _t, v, _d in scn.pauses}
        self._heap: list[tuple[float, int, str, int, object]] = []
        self._n = itertools.count()
        self._wake: dict[int, float] = {}
        self._late: dict[int, float] = {}  # a saturated node's latest handling time
        self._spun: dict[int, float] = {}  # a node's latest tick, and how many at that instant
        self._spins: collections.Counter = collections.Counter()
        self._link: dict[tuple[int, int], float] = {}
        for t, v in scn.crashes:
            self._push(t, "crash", v, None)
        for t, v, d in scn.pauses:
            self._push(t, "pause", v, d)
        if scn.partition is not None:
            self._push(scn.partition[0], "partition", 0, scn.partition[1])
        for i in self.nodes:
            self.det[i].set_members(self.nodes, 0.0)
            self._arm(i)

    # ------------------------------------------------------------ the loop
    def _push(self, t: float, kind: str, node: int, arg: object) -> None:
        heapq.heappush(self._heap, (t, next(self._n), kind, node, arg))

    def _arm(self, i: int) -> None:
        d = max(self.det[i].next_deadline(), self.now)
        if d < self._wake.get(i, math.inf) and d != math.inf:
            self._wake[i] = d
            self._push(d, "wake", i, None)

    def run_until(self, t_end: float) -> None:
        while self._heap and self._heap[0][0] <= t_end:
            t, _n, kind, i, arg = heapq.heappop(self._heap)
            self.now = t
            if kind == "crash":
                self.crashed[i] = t
                self.trace.append(f"{t:.3f} crash node {i}")
            elif kind == "pause":
                self.paused_until[i] = t + float(arg)  # type: ignore[arg-type]
                self.trace.append(f"{t:.3f} pause node {i} for {arg:.2f} s")
            elif kind == "partition":
                self.side = arg  # type: ignore[assignment]
                self.trace.append(f"{t:.3f} partition {sorted(arg)} from the rest")  # type: ignore[call-overload]
            elif i not in self.crashed:
                self._node_event(t, kind, i, arg)
        self.now = max(self.now, t_end)

    def _node_event(self, t: float, kind: str, i: int, arg: object) -> None:
        if kind == "wake":
            if self._wake.get(i) != t:
                return               # superseded by an earlier wake
            del self._wake[i]
            kind = "tick"
        until = self.paused_until.get(i, -1.0)
        if t < until:
            self._push(until, kind, i, arg)       # handled when the pause ends
            return
        if i in self.scn.saturated and kind in ("tick", "deliver"):
            # a stalled event loop: late, but in the order things arrived (a timer does
            # not overtake an ack that came before it)
            late = max(t + self.rng.uniform(*SATURATED_DELAY), self._late.get(i, 0.0))
            self._late[i] = late
            self._push(late, kind + "-late", i, arg)
            return
        det = self.det[i]
        if kind.startswith("tick"):
            spins = self._spins[i] = self._spins[i] + 1 if self._spun.get(i) == t else 0
            self._spun[i] = t
            if spins > SPINS:
                raise SwimViolation("livelock", f"node {i} asks for a tick at {t:.6f} s "
                                    f"again after {SPINS} ticks at that instant", self)
            out = det.tick(t)
        else:
            sender, data = arg  # type: ignore[misc]
            out = det.on_message(sender, message_from_wire(json.loads(data)), t)
        self._outputs(i, out)
        if i not in self.unresponsive and det.lhm > self.stats.max_lhm:
            self.stats.max_lhm = det.lhm
        self._arm(i)

    def _outputs(self, i: int, out: SwimOutputs) -> None:
        st = self.stats
        for send in out.sends:
            data = json.dumps(send.msg.to_wire(), separators=(",", ":"))
            st.sent[i] += 1
            st.bytes[i] += len(data)
            st.biggest = max(st.biggest, len(data))
            if isinstance(send.msg, PingReq):
                st.ping_reqs[i] += 1
            self._transmit(i, send.dest, data)
        for ev in out.events:
            self.trace.append(f"{self.now:.3f} node {i}: {ev}")
            if isinstance(ev, Suspected):
                if ev.node in self.crashed:
                    st.suspected.setdefault(ev.node, self.now)
                else:
                    st.false_suspicions += 1
                    st.suspected_live.add((ev.node, ev.inc))
                    st.false_suspicions_responsive += ev.node not in self.unresponsive
            elif isinstance(ev, Failed):
                st.failed.setdefault((i, ev.node), self.now)
                if ev.node not in self.crashed:
                    st.false_failures.append((self.now, i, ev.node, ev.reason))
                    st.failed_live.add((ev.node, ev.inc))

    def _transmit(self, src: int, dest: int, data: str) -> None:
        if self.side is not None and (src in self.side) != (dest in self.side):
            return
        copies = 2 if self.rng.random() < self.scn.dup else 1
        base = self._link.get((src, dest))
        if base is None:
            base = self._link[(src, dest)] = self.rng.uniform(*self.scn.delay)
        for _ in range(copies):
            if self.rng.random() >= self.scn.loss:
                self._push(self.now + base + self.rng.uniform(0, base), "deliver", dest,
                           (src, data))

    # ------------------------------------------------------------ the invariants
    def responsive(self, node: int) -> bool:
        return node not in self.crashed and node not in self.unresponsive

    def same_side(self, a: int, b: int) -> bool:
        return self.side is None or (a in self.side) == (b in self.side)

    def detection_bound(self) -> float:
        cfg, n = self.cfg, self.scn.n
        lo, hi = cfg.suspicion_bounds(n)
        longest = lo if cfg.expected_confirmations(n) == 0 else hi
        periods = FIRST_PROBE_PERIODS + 1 + 2 + cfg.retransmit_limit(n)
        return periods * cfg.period * (1 + self.stats.max_lhm) + longest

    def gone(self) -> dict[int, float]:
        """Nodes every responsive observer should declare failed: the crashed ones,
        and, for an observer, the other side of the partition (keyed by when)."""
        out = dict(self.crashed)
        if self.scn.partition is not None and self.side is not None:
            for v in self.nodes:
                out.setdefault(v, self.scn.partition[0])
        return out

    def undetected(self) -> list[tuple[int, int, float]]:
        """(observer, node, since) of every declaration still owed."""
        owed = []
        for v, since in self.gone().items():
            for o in self.nodes:
                if o == v or not self.responsive(o):
                    continue
                if v not in self.crashed and self.same_side(o, v):
                    continue
                if (o, v) not in self.stats.failed:
                    owed.append((o, v, since))
        return owed


def run(scn: Scenario, cfg: SwimConfig | None = None) -> SwimNet:
    """Run to the horizon, then on while a declaration is owed and its bound has not
    passed (so ``check`` can tell a slow detection from a short run)."""
    sim = SwimNet(scn, cfg)
    sim.run_until(scn.horizon)
    while True:
        owed = sim.undetected()
        if not owed:
            break
        due = max(since for _o, _v, since in owed) + sim.detection_bound()
        if sim.now > due:
            break
        sim.run_until(min(due + 0.01, sim.now + 1.0))
    return sim


def check(sim: SwimNet, *, false_failures: bool = True) -> None:
    st = sim.stats
    bound = sim.detection_bound()
    for o, v, since in sim.undetected():
        raise SwimViolation("detected", f"node {o} never declared node {v} failed "
                            f"(gone at {since:.2f} s) by {sim.now:.2f} s; bound "
                            f"{bound:.2f} s", sim)
    for (o, v), t in sorted(st.failed.items()):
        since = sim.gone().get(v)
        if since is not None and sim.responsive(o) and t - since > bound:
            raise SwimViolation("detected", f"node {o} declared node {v} failed "
                                f"{t - since:.2f} s after it went, over the bound "
                                f"{bound:.2f} s (largest LHM {st.max_lhm})", sim)
    if false_failures:
        for t, o, v, reason in st.false_failures:
            if sim.responsive(v) and sim.same_side(o, v):
                raise SwimViolation("no-false-failure", f"node {o} at {t:.3f} s: "
                                    f"{reason}", sim)
    periods = sim.now / sim.cfg.period
    for i in sim.nodes:
        lived = min(sim.now, sim.crashed.get(i, sim.now)) / sim.cfg.period
        probes = sim.det[i].counters.probes
        if probes > lived + 1 or st.ping_reqs[i] > sim.cfg.indirect * probes:
            raise SwimViolation("load", f"node {i} started {probes} probes and "
                                f"{st.ping_reqs[i]} ping-reqs in {lived:.0f} periods", sim)
        if i not in sim.crashed and st.sent[i] > load_bound(sim.cfg) * periods:
            raise SwimViolation("load", f"node {i} sent {st.sent[i] / periods:.2f} "
                                f"messages a period, over {load_bound(sim.cfg)}", sim)
    if st.biggest > MAX_MESSAGE_BYTES:
        raise SwimViolation("size", f"a {st.biggest}-byte message", sim)


def summary(sim: SwimNet) -> str:
    st = sim.stats
    live = [i for i in sim.nodes if i not in sim.crashed]
    per = sum(st.sent[i] for i in live) / len(live) / (sim.now / sim.cfg.period)
    return (f"{sim.scn.n} nodes {sim.now:.1f} s: {per:.2f} msgs/node/period, "
            f"{st.false_suspicions} false suspicions ({st.false_suspicions_responsive} of "
            f"responsive nodes), {len(st.false_failures)} false failures, max LHM "
            f"{st.max_lhm}, biggest message {st.biggest} bytes, bound "
            f"{sim.detection_bound():.2f} s")
