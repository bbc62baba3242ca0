"""A deterministic discrete-event network for the aggregated lease tree alone
(``clusterd.membership.leasetree``), not the daemon: N ``LeaseTree``s, a virtual real
time, per-node clocks (an offset of up to a day, a rate of 1 +- 100 ppm), per link a base
delay (each message adds a jitter of up to that base, so messages overtake each other),
loss, duplication, crashes, a partition into two groups and its heal, pauses (the node
handles nothing for a while, then everything that queued) and freezes (a suspended VM:
the same, and in half of them its clock stands still meanwhile and resumes from where it
stopped, as ``tests/sim/harness.py`` ``SimNet.freeze`` models it). Views are installed by
the driver (agreement is not under test): the first over every node, then after each
crash, cut and heal the live nodes of each side, plus views over random subsets,
each installed on its live members at staggered instants. Every message goes through
``to_wire``, compact JSON and ``message_from_wire``.

Everything is drawn from one seed (``Scenario``): ``RHC_SIM_SEED=n`` replays it
(``schedules.seeds``).

The invariants (``LeaseViolation``), checked after every event and at every instant a
vote's promise lapses:

* ``one-quorate-group``: at any instant at most one view is quorate on the nodes that
  hold a valid certificate for it, as ``harness.SimNet.check_safety`` states it: paused
  and frozen nodes act on nothing and are not asked, and a node resumed from a freeze
  with a stopped clock that has not yet read a message sent after its resume by a node
  it had heard before is left out (it cannot know the time it lost: docs/architecture.md,
  "Clocks"; a message tells the loss only if its sender's clock did not stop too since
  this node's stopped (two VMs of one suspended host); a first message from a node gives
  no baseline to compare with: here a new
  parent or child after a view change, where today every peer heartbeats), until it
  installs a view (what it holds is then built from messages of that view: after the
  resume);
* ``stale-lease-bounded``: such a node is quorate for at most one lease of its clock
  after the resume;
* ``certificate-backed``: the reason the first holds: whenever a node counts a
  certificate of ``votes`` for view V, nodes whose own promise (on their own clock) is to
  V hold at least ``votes`` votes, within ``DRIFT_SLACK`` (the clocks' rates differ by up
  to 200 ppm: 0.2 ms a lease a hop);
* ``liveness`` (runs without faults): every member of the latest view, if it has a
  quorum of votes, holds a valid
  certificate within ``liveness_bound`` of its install, and keeps it to the end;
* ``load``: a node sends at most one grant per ``Down`` round of its parent and one
  ``Down`` per child a round, so over the run at most ``rounds`` grants and
  ``FANOUT * rounds`` downs, ``rounds`` = elapsed / period + views installed + 1;
* ``size``: no message over ``MAX_MESSAGE_BYTES``.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import json
import math
import random
from dataclasses import dataclass, field

from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.leasetree import LeaseOutputs, LeaseParams, LeaseTree
from clusterd.membership.leasetree_wire import (
    MAX_MESSAGE_BYTES,
    Down,
    message_from_wire,
)
from clusterd.membership.tree import FANOUT, Tree
from clusterd.wire.messages import View, ViewId

DRIFT = 100e-6           # each clock's rate is 1 +- this
DRIFT_SLACK = 0.001      # see certificate-backed
STAGGER = 0.05           # a view reaches its members within this of each other
SETTLE = 1.0             # the driver installs a view this long after a crash, cut or heal


class LeaseViolation(AssertionError):
    def __init__(self, name: str, message: str, sim: LeaseNet | None = None):
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
    pauses: tuple[tuple[float, int, float], ...] = ()               # (at, node, seconds)
    freezes: tuple[tuple[float, int, float, bool], ...] = ()        # ... clock stops
    partition: tuple[float, frozenset[int], float] | None = None    # (at, side, heal)
    views: tuple[tuple[float, frozenset[int]], ...] = ()            # (at, members)

    @property
    def faulty(self) -> bool:
        return bool(self.loss or self.dup or self.crashes or self.pauses or self.freezes
                    or self.partition)

    def __str__(self) -> str:
        part = None if self.partition is None else (
            round(self.partition[0], 2), sorted(self.partition[1]), round(self.partition[2], 2))
        return (f"seed {self.seed}: {self.n} nodes, {self.horizon:.0f} s, loss "
                f"{self.loss:.0%}, dup {self.dup:.0%}, delay {self.delay}, crashes "
                f"{[(round(t, 2), v) for t, v in self.crashes]}, pauses "
                f"{[(round(t, 2), v, round(d, 2)) for t, v, d in self.pauses]}, freezes "
                f"{[(round(t, 2), v, round(d, 2), s) for t, v, d, s in self.freezes]}, "
                f"partition {part}, {len(self.views)} views")


def draw(seed: int, n: int, *, horizon: float = 12.0, loss: float = 0.0, dup: float = 0.0,
         crashes: int = 0, pauses: int = 0, freezes: int = 0, partition: bool = False,
         random_views: int = 0, cut_after: float = 1.0) -> Scenario:
    rng = random.Random(seed)
    nodes = list(range(1, n + 1))
    span = (1.0, horizon - 2.0)
    crash = tuple(sorted((rng.uniform(*span), v)
                         for v in rng.sample(nodes, min(crashes, n - 1))))
    pause = tuple(sorted((rng.uniform(*span), rng.choice(nodes), rng.uniform(0.1, 2.0))
                         for _ in range(pauses)))
    freeze = tuple(sorted((rng.uniform(*span), rng.choice(nodes), rng.uniform(0.2, 3.0),
                           rng.random() < 0.5) for _ in range(freezes)))
    part = None
    if partition and n > 1:
        at = rng.uniform(max(cut_after, span[0]), span[1])
        side = frozenset(rng.sample(nodes, rng.randint(1, n // 2)))
        part = (at, side, rng.uniform(at + 0.5, horizon))
    dead = {v: t for t, v in crash}

    def live(t: float, among: list[int]) -> frozenset[int]:
        return frozenset(v for v in among if dead.get(v, math.inf) > t)

    views = [(0.0, frozenset(nodes))]
    for t, _v in crash:
        views.append((t + SETTLE, live(t + SETTLE, nodes)))
    if part is not None:
        at, side, heal = part
        for group in (sorted(side), [v for v in nodes if v not in side]):
            views.append((at + SETTLE, live(at + SETTLE, group)))
        views.append((heal + SETTLE, live(heal + SETTLE, nodes)))
    for _ in range(random_views):
        views.append((rng.uniform(*span), frozenset(rng.sample(nodes, rng.randint(1, n)))))
    views = [(t, m) for t, m in views if t < horizon and m]
    delay = rng.choice([(0.0005, 0.005), (0.001, 0.02)])
    return Scenario(seed, n, horizon, loss, dup, delay, crash, pause, freeze, part,
                    tuple(sorted(views, key=lambda v: v[0])))


def config(n: int) -> MembershipConfig:
    nodes = tuple(NodeSpec(f"node{i}", i, 1, f"198.18.{i // 250}.{i % 250 + 1}")
                  for i in range(1, n + 1))
    return MembershipConfig("simcluster", nodes)


@dataclass
class _Node:
    lt: LeaseTree
    offset: float
    rate: float
    stopped_at: float | None = None     # its clock's reading while a freeze stops it
    held_until: float = -math.inf       # paused or frozen until then (real time)
    queue: list[tuple[str, object]] = field(default_factory=list)
    dead: bool = False
    resumed_at: float = -math.inf       # real time of a resume with a stopped clock
    stopped_from: float = -math.inf     # real time that freeze began
    blind_since: float | None = None    # its clock then, until it reads a later message
    installed: float | None = None      # real time of its latest install
    certified: float | None = None      # real time it first held that view's certificate


@dataclass
class _Stats:
    grants: collections.Counter = field(default_factory=collections.Counter)
    downs: collections.Counter = field(default_factory=collections.Counter)
    bytes: collections.Counter = field(default_factory=collections.Counter)
    installs: collections.Counter = field(default_factory=collections.Counter)
    biggest: int = 0
    to_cert: list[float] = field(default_factory=list)   # install -> certified, per node
    minority_quorate: float = 0.0   # after a cut, how long the smaller side stayed quorate


class LeaseNet:
    def __init__(self, scn: Scenario, params: LeaseParams | None = None):
        self.scn, self.p = scn, params or LeaseParams()
        self.rng = random.Random(scn.seed)
        self.cfg = config(scn.n)
        self.now = 0.0
        self.nodes: dict[int, _Node] = {}
        for i in range(1, scn.n + 1):
            offset = self.rng.uniform(10.0, 1e5)
            self.nodes[i] = _Node(LeaseTree(i, self.cfg, offset, self.p), offset,
                                  1.0 + self.rng.uniform(-DRIFT, DRIFT))
        self.stats = _Stats()
        self.trace: collections.deque[str] = collections.deque(maxlen=40)
        self.side: frozenset[int] | None = None
        self.epoch = 0
        self.latest: dict[int, View] = {}       # node -> the view installed last
        self.last_view: View | None = None
        self._heap: list[tuple[float, int, str, int, object]] = []
        self._n = itertools.count()
        self._wake: dict[int, float] = {}
        self._link: dict[tuple[int, int], float] = {}
        for t, v in scn.crashes:
            self._push(t, "crash", v, None)
        for t, v, d in scn.pauses:
            self._push(t, "pause", v, (d, False))
        for t, v, d, stops in scn.freezes:
            self._push(t, "freeze", v, (d, stops))
        if scn.partition is not None:
            self._push(scn.partition[0], "cut", 0, scn.partition[1])
            self._push(scn.partition[2], "heal", 0, None)
        for t, members in scn.views:
            self._push(t, "view", 0, members)

    # ------------------------------------------------------------ clocks
    def mono(self, i: int) -> float:
        node = self.nodes[i]
        if node.stopped_at is not None:
            return node.stopped_at
        return node.offset + node.rate * self.now

    def real_at(self, i: int, reading: float) -> float:
        """When node ``i``'s clock reads ``reading`` (from now on, if it runs)."""
        return self.now + max(0.0, reading - self.mono(i)) / self.nodes[i].rate

    # ------------------------------------------------------------ the loop
    def _push(self, t: float, kind: str, node: int, arg: object) -> None:
        heapq.heappush(self._heap, (t, next(self._n), kind, node, arg))

    def _arm(self, i: int) -> None:
        d = self.nodes[i].lt.next_deadline()
        if d == math.inf:
            return
        t = self.real_at(i, d)
        if t < self._wake.get(i, math.inf):
            self._wake[i] = t
            self._push(t, "wake", i, None)

    def run_until(self, t_end: float) -> None:
        while self._heap and self._heap[0][0] <= t_end:
            t, _n, kind, i, arg = heapq.heappop(self._heap)
            self.now = t
            self._event(kind, i, arg)
            self.check()
        self.now = max(self.now, t_end)
        self.check()

    def _event(self, kind: str, i: int, arg: object) -> None:
        if kind == "view":
            self._new_view(arg)  # type: ignore[arg-type]
        elif kind == "cut":
            self.side = arg  # type: ignore[assignment]
            self.trace.append(f"{self.now:.3f} cut {sorted(arg)} from the rest")  # type: ignore[call-overload]
        elif kind == "heal":
            self.side = None
            self.trace.append(f"{self.now:.3f} heal")
        elif kind == "check":
            pass
        elif kind == "crash":
            self.nodes[i].dead = True
            self.trace.append(f"{self.now:.3f} crash node {i}")
            self._push_promise_check(i)
        elif not self.nodes[i].dead:
            self._node_event(kind, i, arg)

    def _new_view(self, members: frozenset[int]) -> None:
        self.epoch += 1
        view = View(ViewId(self.epoch, min(members), 1), tuple((m, 1) for m in sorted(members)))
        self.last_view = view
        self.trace.append(f"{self.now:.3f} view {view.vid} over {len(members)} nodes")
        for m in members:
            self._push(self.now + self.rng.uniform(0, STAGGER), "install", m, view)

    def _node_event(self, kind: str, i: int, arg: object) -> None:
        node = self.nodes[i]
        if kind == "wake":
            if self._wake.get(i) != self.now:
                return
            del self._wake[i]
        if kind in ("pause", "freeze"):
            d, stops = arg  # type: ignore[misc]
            if self.now < node.held_until:
                return
            node.held_until = self.now + d
            if stops:
                node.stopped_at, node.stopped_from = self.mono(i), self.now
            self.trace.append(f"{self.now:.3f} {kind} node {i} for {d:.2f} s"
                              + (" (clock stops)" if stops else ""))
            self._push(node.held_until, "resume", i, (d, stops))
            return
        if kind == "resume":
            d, stops = arg  # type: ignore[misc]
            if stops:
                node.offset -= node.rate * d
                node.stopped_at = None
                node.blind_since, node.resumed_at = self.mono(i), self.now
            queued, node.queue = node.queue, []
            for k, a in queued:
                self._handle(i, k, a)
            self._handle(i, "wake", None)
            return
        if self.now < node.held_until:
            node.queue.append((kind, arg))
            return
        self._handle(i, kind, arg)

    def _handle(self, i: int, kind: str, arg: object) -> None:
        node, now = self.nodes[i], self.mono(i)
        lt = node.lt
        before = lt.promise
        if kind == "install":
            view: View = arg  # type: ignore[assignment]
            if i in self.latest and self.latest[i].epoch > view.epoch:
                return                          # overtaken by a newer view's install
            self.latest[i] = view
            node.blind_since = None         # what it holds now comes after the resume
            self.stats.installs[i] += 1
            node.installed, node.certified = self.now, None
            out = lt.install(view, now)
        elif kind == "deliver":
            sender, data, sent_real = arg  # type: ignore[misc]
            if (sent_real >= node.resumed_at and sender in lt.offset
                    and self.nodes[sender].resumed_at < node.stopped_from):
                node.blind_since = None     # a sender it heard before: it learns the loss
            out = lt.on_message(sender, message_from_wire(json.loads(data)), now)
        else:
            out = lt.tick(now)
        if node.certified is None and lt.is_quorate(now) and self.latest.get(i) is not None:
            node.certified = self.now
            self.stats.to_cert.append(self.now - node.installed)
        self._outputs(i, out)
        if lt.promise != before:
            self._push_promise_check(i)
        self._arm(i)

    def _push_promise_check(self, i: int) -> None:
        until = self.nodes[i].lt.promise[1]
        if until != -math.inf:
            self._push(self.real_at(i, until) + 1e-9, "check", i, None)

    def _outputs(self, i: int, out: LeaseOutputs) -> None:
        st = self.stats
        for send in out.sends:
            data = json.dumps(send.msg.to_wire(), separators=(",", ":"))
            if isinstance(send.msg, Down):
                st.downs[i] += 1
            else:
                st.grants[i] += 1
            st.bytes[i] += len(data)
            st.biggest = max(st.biggest, len(data))
            self._transmit(i, send.dest, data)
        for ev in out.events:
            self.trace.append(f"{self.now:.3f} node {i}: {ev.reason}")

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
                           (src, data, self.now))

    # ------------------------------------------------------------ the invariants
    def asked(self, i: int) -> bool:
        node = self.nodes[i]
        return not node.dead and self.now >= node.held_until

    def quorate(self) -> dict[tuple, list[int]]:
        """View key -> the nodes that count themselves quorate in it now and count for
        one-quorate-group (raises stale-lease-bounded)."""
        out: dict[tuple, list[int]] = {}
        for i, node in self.nodes.items():
            if not self.asked(i) or not node.lt.is_quorate(self.mono(i)):
                continue
            if node.blind_since is not None:
                if self.mono(i) > node.blind_since + self.p.lease:
                    raise LeaseViolation("stale-lease-bounded", f"t={self.now:.3f}: node {i} "
                                         f"is quorate {self.mono(i) - node.blind_since:.3f} s "
                                         "of its clock after resuming with a stopped clock",
                                         self)
                continue
            out.setdefault(node.lt.key, []).append(i)
        return out

    def promised(self, key: tuple, slack: float = 0.0) -> int:
        return sum(self.cfg.votes({j}) for j, node in self.nodes.items()
                   if node.lt.promise[0] == key
                   and node.lt.promise[1] > self.mono(j) - slack)

    def check(self) -> None:
        quorate = self.quorate()
        if len(quorate) > 1:
            raise LeaseViolation("one-quorate-group", f"t={self.now:.3f}: two quorate "
                                 f"groups at once: { {str(k): v for k, v in quorate.items()} }",
                                 self)
        for key, holders in quorate.items():
            votes = max(self.nodes[i].lt.cert.votes for i in holders)
            live = self.promised(key, DRIFT_SLACK)
            if live < votes:
                raise LeaseViolation("certificate-backed", f"t={self.now:.3f}: nodes "
                                     f"{holders[:8]} hold a certificate of {votes} votes for "
                                     f"view {key}, but only {live} votes are promised to it",
                                     self)
        if self.side is not None and self.scn.partition is not None:
            small = self.scn.partition[1]
            if any(i in small for hs in quorate.values() for i in hs):
                self.stats.minority_quorate = self.now - self.scn.partition[0]
        if not self.scn.faulty:
            self._check_liveness()

    def liveness_bound(self) -> float:
        """From an install to a certificate at every member, without faults: the vote is
        promised elsewhere (the previous view, or a new incarnation's first lease) for
        up to a lease after the install (``STAGGER`` after the first member's); then up
        to a period to the root's next round, whose downs and grants cross the tree both
        ways (hop waits included), and a period to the round that carries the
        certificate down."""
        n = len(self.last_view.members) if self.last_view else self.scn.n
        depth = Tree.of(range(n)).depth
        hop = 2 * self.scn.delay[1]
        return (self.p.lease + STAGGER + 2 * self.p.period + 3 * depth * hop
                + depth * self.p.hop_wait)

    def _check_liveness(self) -> None:
        view = self.last_view
        if view is None or 2 * self.cfg.votes(view.nodeids) <= self.cfg.expected:
            return                              # a view without quorum stays without
        bound = self.liveness_bound()
        for i, node in self.nodes.items():
            if node.installed is None or self.latest.get(i) != self.last_view:
                continue
            if node.certified is None:
                if self.now - node.installed > bound:
                    raise LeaseViolation("liveness", f"t={self.now:.3f}: node {i} holds no "
                                         f"certificate {self.now - node.installed:.3f} s "
                                         f"after its install, bound {bound:.3f} s", self)
            elif not node.lt.is_quorate(self.mono(i)):
                raise LeaseViolation("liveness", f"t={self.now:.3f}: node {i} lost its "
                                     "certificate without a fault: "
                                     + node.lt.reason(self.mono(i)), self)


def run(scn: Scenario, params: LeaseParams | None = None) -> LeaseNet:
    sim = LeaseNet(scn, params)
    sim.run_until(scn.horizon)
    return sim


def check_load(sim: LeaseNet) -> None:
    st = sim.stats
    for i in sim.nodes:
        rounds = sim.now / sim.p.period * (1 + DRIFT) + st.installs[i] + 1
        if st.grants[i] > rounds or st.downs[i] > FANOUT * rounds:
            raise LeaseViolation("load", f"node {i} sent {st.grants[i]} grants and "
                                 f"{st.downs[i]} downs in {rounds:.0f} rounds", sim)
    if st.biggest > MAX_MESSAGE_BYTES:
        raise LeaseViolation("size", f"a {st.biggest}-byte message", sim)


def summary(sim: LeaseNet) -> str:
    st = sim.stats
    sent = sum(st.grants.values()) + sum(st.downs.values())
    to_cert = max(st.to_cert, default=math.nan)
    return (f"{sim.scn.n} nodes {sim.now:.1f} s: {sent / sim.scn.n / sim.now:.2f} "
            f"msgs/node/s, {sum(st.bytes.values()) / sim.scn.n / sim.now:.0f} bytes/node/s, "
            f"slowest install -> certificate {to_cert:.3f} s, minority quorate "
            f"{st.minority_quorate:.3f} s after the cut, biggest message {st.biggest} bytes")
