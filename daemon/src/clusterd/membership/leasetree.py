"""Quorum leases aggregated up the dissemination tree, for one node (sans-IO).

docs/architecture.md, "Planned: membership at 300 nodes", "Quorum leases, aggregated".
Not wired into the daemon: nothing imports it outside its tests, the simulator
``tests/sim/leasetree_sim.py`` and ``tests/bench/bench_leasetree.py``.

Today every member grants a lease to every peer; here each member grants only to its
parent in the view's tree (``tree.py``), and the root (the lowest nodeid) alone holds
the votes of the whole view. A round, every ``period`` of the root's clock:

* the root sends ``Down`` to each child; an inner node forwards a ``Down`` to each of its
  children as soon as it gets one from its parent (one per round: a duplicate or an
  older round is dropped);
* a member that gets its parent's ``Down`` grants its vote for the view (unless its vote
  is still promised to another view, below) and answers with one ``Grant``: a leaf at
  once, an inner node once every child answered or ``height * hop_wait`` later, with the
  votes of its subtree it holds and the earliest expiry among them (a vote that lapses
  within ``keep`` is left out: it would drag the aggregate's expiry below the next
  renewal);
* at its next round the root adds up the votes it holds; at quorum (cman's arithmetic,
  ``quorum.calculate_quorum``) it has a certificate: those votes back the view until the
  earliest of their expiries. Each ``Down`` carries the latest certificate the sender
  holds, so it reaches every member one round after the grants went up;
* a member is quorate in its view exactly while it holds an unexpired certificate for it.

Per member and round: one ``Grant`` up, one ``Down`` to each child (at most ``FANOUT``),
whatever the size of the view.

**One view at a time.** A member that grants its vote to view V promises not to grant it
to any other view until ``promise`` (its own clock): one lease after it received the
``Down`` it answers. Installing V' does not void the promise; its vote goes to V' only
once the promise to V lapsed (a view change costs up to one lease of quorum: the price of
one-way grants, where today's pairwise grants see the holder move on). A new incarnation
(``LeaseTree`` created) promises nothing for its first lease: its previous life may have.

**Clocks** (the rule of docs/architecture.md, "Clocks", and of ``peers.py``). No instant
of one clock is read by another: every validity on the wire is a duration counted from an
instant the receiver recorded itself, the send time of the message it answers.

* Up: a member that received round ``e`` of its parent at ``r`` (its clock) promises its
  vote until ``r + lease``, and a ``Grant`` answering ``e`` says "valid ``d`` after your
  ``e``" with ``d = min(lease, E - r)``, ``E`` the earliest expiry it holds for its
  children's votes. The parent counts until ``sent(e) + d``. Since ``e`` was sent before
  it was received, ``sent(e) + d`` comes no later in real time than ``r + d``: the holder
  never counts a vote longer than the granter promised it, at any depth (by induction:
  each child's expiry ``E`` is itself bounded so).
* Down: the root's certificate expires at ``X`` (its clock). To a child whose latest
  grant ``g`` it received at ``a`` it says "valid ``X - a`` after your ``g``"; the child
  counts until ``sent(g) + X - a``, no later in real time than ``X`` since ``g`` was sent
  before ``a``; an inner node passes it on the same way. Each hop shortens the
  certificate by the delay of the grant it answers: the "depth times the hop delay" of the
  plan, measured rather than estimated.
* Both hold while the two clocks run at the same rate. A clock that stands still (a KVM
  guest suspended with kvmclock stopped) would make a holder count too long: every
  message carries its send time ``s`` and, as ``PeerTable._check_clock`` does, the largest
  ``s - receive time`` seen per sender is kept; above it, this node's clock lost that
  much, and every expiry it holds (its children's grants, its certificate) and every send
  time it recorded (the bases of those expiries) is moved back by the excess, and so is
  the baseline of every other sender (the loss is against all of them). What it
  subtracts (the receive times ``a`` and ``r`` above) is not moved: that would lengthen
  what it passes on. Its own promises need no change: a stopped clock only makes them
  last longer. The limit that
  remains is today's: a node resumed with a stopped clock that reads nothing sent after
  the resume by a node it heard before (a first message gives no baseline: after a view
  change its parent and children may be new) counts its certificate until it expires by
  its clock, at most one lease after its last grant.

So every vote in a certificate is a grant that is live on its granter's clock, to that
view, at every instant the certificate is valid anywhere; a granter's vote is live for
one view at a time; and a quorum is more than half of ``expected_votes`` (cman): two
certificates for two views cannot be valid at one instant unless ``expected_votes`` is
set below the votes of the nodes (cman warns about that). The simulator checks both
(``certificate-backed``, ``one-quorate-group``).

Liveness bounds: a dead inner node costs the votes and the certificate of its subtree
(a dead root: of the whole view) until the next view, whose tree is recomputed without
it, as the plan says; a lost ``Down`` or ``Grant`` costs a round, which the lease
(``lease`` = 4 ``period`` by default) covers. Not here: the quorum disk's votes and
two_node (quorum 1: both halves quorate, fencing decides), which stay as today.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clusterd.membership.config import MembershipConfig
from clusterd.membership.leasetree_wire import (
    MAX_DURATION_US,
    Certificate,
    Down,
    Grant,
    LeaseMessage,
    ViewKey,
    to_us,
)
from clusterd.membership.quorum import calculate_quorum
from clusterd.membership.tree import Tree
from clusterd.wire.messages import View

HISTORY = 64  # recorded send times kept per kind (a reply older than that is dropped)


@dataclass(frozen=True)
class LeaseParams:
    period: float = 0.25   # a round, on the root's clock (token/4 at the default token)
    lease: float = 1.0     # how long a vote is promised (a token)

    @property
    def hop_wait(self) -> float:
        """How long an inner node waits per level below it for its children's grants (it
        sends at once when all answered): a hop's round trip up to a third of a period
        (the simulator's slow links take up to 80 ms) keeps the grants of a round in it."""
        return self.period / 3

    @property
    def keep(self) -> float:
        """A vote that lapses sooner is left out of an aggregate."""
        return self.lease / 2


@dataclass(frozen=True)
class LeaseSend:
    dest: int
    msg: LeaseMessage


@dataclass(frozen=True)
class QuorateChanged:
    view: ViewKey
    quorate: bool
    reason: str


@dataclass
class LeaseOutputs:
    sends: list[LeaseSend] = field(default_factory=list)
    events: list[QuorateChanged] = field(default_factory=list)


@dataclass(frozen=True)
class Held:
    """A child's latest grant (or the certificate) as this node counts it: ``votes``
    until ``expires`` (this node's clock); ``seq``/``received``: the grant's number and
    when it arrived (a certificate passed down counts from there)."""

    seq: int
    votes: int
    expires: float
    received: float


@dataclass(frozen=True)
class HeldCert:
    votes: int
    quorum: int
    expires: float


@dataclass
class _Round:
    """This view's state: the latest round from the parent (its number, when it came,
    whether this node's own vote went with it), the children's grants, and the wait."""

    parent_seq: int = 0
    parent_at: float = float("-inf")
    own_vote: bool = False
    down_seq: int = 0  # my latest Down to my children
    answered: set[int] = field(default_factory=set)
    up_due: float | None = None


class LeaseTree:
    def __init__(self, me: int, cfg: MembershipConfig, now: float,
                 params: LeaseParams | None = None):
        self.me, self.cfg, self.p = me, cfg, params or LeaseParams()
        # (view, until): my vote is promised to that view until then (my clock); a new
        # incarnation promises nothing to anyone for a lease (its last life may have)
        self.promise: tuple[ViewKey | None, float] = (None, now + self.p.lease)
        self.view: View | None = None
        self.key: ViewKey | None = None
        self.tree: Tree | None = None
        self.quorum = 0
        self.subtree_votes: dict[int, int] = {}
        self.seq = 0
        self.down_sent: dict[int, float] = {}   # my Down number -> send time
        self.grant_sent: dict[int, float] = {}  # my Grant number -> send time
        self.offset: dict[int, float] = {}      # see _check_clock
        self.incarnations: dict[int, int] = {}
        self.lag_total = 0.0
        self.held: dict[int, Held] = {}         # child -> its latest grant
        self.cert: HeldCert | None = None
        self.next_round = float("inf")          # the root's
        self.round = _Round()
        self._quorate = False
        self.dropped = 0                        # messages not for my view, stale, or bad

    # ------------------------------------------------------------ inputs
    def install(self, view: View, now: float, previous_quorum: int = 0) -> LeaseOutputs:
        """Install ``view`` (this node must be a member): a new tree, nothing held.
        ``previous_quorum``: cman never lowers the quorum on its own (quorum.py)."""
        if self.me not in view.nodeids:
            raise ValueError(f"node {self.me} is not a member of {view}")
        self.view, self.key = view, ViewKey.of(view)
        self.tree = Tree.of(view.nodeids)
        votes = {n: self.cfg.votes({n}) for n in view.nodeids}
        self.quorum = calculate_quorum(self.cfg.expected, sum(votes.values()),
                                       two_node=self.cfg.two_node,
                                       member_count=len(view.nodeids),
                                       previous=previous_quorum)
        self.subtree_votes = {c: sum(votes[m] for m in self.tree.subtree(c))
                              for c in self.tree.children(self.me)}
        for n, inc in view.members:
            if self.incarnations.get(n) != inc:
                self.offset.pop(n, None)
            self.incarnations[n] = inc
        self.held, self.cert, self.round = {}, None, _Round()
        self.next_round = now if self.tree.root == self.me else float("inf")
        return self.tick(now)

    def tick(self, now: float) -> LeaseOutputs:
        out = LeaseOutputs()
        if self.cert is not None and self.cert.expires <= now:
            self.cert = None
        if self.next_round <= now:
            self._root_round(now, out)
        if self.round.up_due is not None and self.round.up_due <= now:
            self._send_up(now, out)
        self._report(now, out)
        return out

    def on_message(self, sender: int, msg: LeaseMessage, now: float) -> LeaseOutputs:
        out = LeaseOutputs()
        # first, and for any message: one of another view or a stale one still tells
        # how much time my clock lost (the simulator found a node resumed with a stopped
        # clock that read only other views' messages keep its certificate, seed 144)
        self._check_clock(sender, msg.sent_us, now)
        if self.tree is None or msg.view != self.key or sender not in self.tree.order:
            self.dropped += 1
            return self.tick(now)
        if isinstance(msg, Down) and sender == self.tree.parent(self.me):
            self._on_down(msg, now, out)
        elif isinstance(msg, Grant) and sender in self.subtree_votes:
            self._on_grant(sender, msg, now, out)
        else:
            self.dropped += 1
        tick = self.tick(now)
        out.sends += tick.sends
        out.events += tick.events
        return out

    def _check_clock(self, sender: int, sent_us: int, now: float) -> None:
        """As ``PeerTable._check_clock``: ``o`` = the sender's send time minus my receive
        time is bounded above by the largest seen unless my clock lost time; then every
        expiry I hold and every send time I recorded moves back by the excess."""
        o = sent_us / 1e6 - now
        best = self.offset.get(sender)
        self.offset[sender] = o if best is None else max(best, o)
        if best is None or o <= best:
            return
        lag = o - best
        self.lag_total += lag
        # my clock lost ``lag`` against every sender, not just this one: their baselines
        # move too, or each would shorten everything by the same loss again
        self.offset = {p: t + lag if p != sender else t for p, t in self.offset.items()}
        # ``received`` stays: it is subtracted from a certificate's expiry, so moving it
        # back would lengthen what a child counts (the simulator found that, seed 5065)
        self.held = {c: Held(h.seq, h.votes, h.expires - lag, h.received)
                     for c, h in self.held.items()}
        if self.cert is not None:
            self.cert = HeldCert(self.cert.votes, self.cert.quorum, self.cert.expires - lag)
        self.down_sent = {n: t - lag for n, t in self.down_sent.items()}
        self.grant_sent = {n: t - lag for n, t in self.grant_sent.items()}

    def _on_down(self, msg: Down, now: float, out: LeaseOutputs) -> None:
        if msg.seq <= self.round.parent_seq:
            self.dropped += 1                  # a duplicate, or overtaken by a newer round
            return
        if msg.cert is not None and msg.answers in self.grant_sent:
            expires = self.grant_sent[msg.answers] + msg.cert.valid_us / 1e6
            if self.cert is None or expires > self.cert.expires:
                self.cert = HeldCert(msg.cert.votes, msg.cert.quorum, expires)
        self.round = _Round(msg.seq, now, self._grant_own(now))
        self._send_downs(now, out)
        if self.subtree_votes:
            self.round.up_due = now + self.tree.height(self.me) * self.p.hop_wait
        else:
            self._send_up(now, out)

    def _on_grant(self, child: int, msg: Grant, now: float, out: LeaseOutputs) -> None:
        old = self.held.get(child)
        if old is not None and msg.seq <= old.seq:
            self.dropped += 1
            return
        if (msg.answers not in self.down_sent or msg.votes > self.subtree_votes[child]
                or msg.valid_us > to_us(self.p.lease)):
            self.dropped += 1                  # not a round of mine, or more than it can
            return
        expires = self.down_sent[msg.answers] + msg.valid_us / 1e6
        self.held[child] = Held(msg.seq, msg.votes, expires, now)
        if msg.answers == self.round.down_seq:
            self.round.answered.add(child)
            if self.round.up_due is not None and self.round.answered >= set(self.subtree_votes):
                self._send_up(now, out)

    # ------------------------------------------------------------ outputs
    def _grant_own(self, now: float) -> bool:
        """Promise my vote to my view for a lease from now, unless it is promised to
        another view until later."""
        view, until = self.promise
        if view != self.key and until > now:
            return False
        self.promise = (self.key, max(now + self.p.lease, until if view == self.key else now))
        return True

    def _aggregate(self, now: float, base: float) -> tuple[int, float]:
        """The votes I hold (mine if it went with this round, from ``base``) and the
        earliest expiry among them."""
        votes = self.cfg.votes({self.me}) if self.round.own_vote else 0
        until = base + self.p.lease
        for h in self.held.values():
            if h.expires - now > self.p.keep and h.votes:
                votes += h.votes
                until = min(until, h.expires)
        return votes, until

    def _root_round(self, now: float, out: LeaseOutputs) -> None:
        self.round.own_vote = self._grant_own(now)
        votes, until = self._aggregate(now, now)
        if votes >= self.quorum and until > now and (
                self.cert is None or until >= self.cert.expires):
            self.cert = HeldCert(votes, self.quorum, until)
        self._send_downs(now, out)
        self.next_round += self.p.period
        if self.next_round <= now:              # ticked late (a pause): no catching up
            self.next_round = now + self.p.period

    def _send_downs(self, now: float, out: LeaseOutputs) -> None:
        children = self.tree.children(self.me)
        if not children:
            return
        self.seq += 1
        self._record(self.down_sent, now)
        self.round.down_seq, self.round.answered = self.seq, set()
        for c in children:
            h = self.held.get(c)
            cert = None
            if self.cert is not None and h is not None:
                valid = min(to_us(self.cert.expires - h.received), MAX_DURATION_US)
                if valid > 0:
                    cert = Certificate(self.cert.votes, self.cert.quorum, valid)
            out.sends.append(LeaseSend(c, Down(self.key, self.seq, to_us(now),
                                               0 if h is None else h.seq, cert)))

    def _send_up(self, now: float, out: LeaseOutputs) -> None:
        self.round.up_due = None
        if not self.round.parent_seq:
            return
        r = self.round.parent_at
        votes, until = self._aggregate(now, r)
        valid = max(0, min(to_us(until - r), to_us(self.p.lease)))
        self.seq += 1
        self._record(self.grant_sent, now)
        out.sends.append(LeaseSend(self.tree.parent(self.me), Grant(
            self.key, self.seq, to_us(now), self.round.parent_seq, votes if valid else 0,
            valid)))

    def _record(self, sent: dict[int, float], now: float) -> None:
        sent[self.seq] = now
        if len(sent) > HISTORY:
            del sent[min(sent)]

    def _report(self, now: float, out: LeaseOutputs) -> None:
        q = self.is_quorate(now)
        if q != self._quorate:
            self._quorate = q
            out.events.append(QuorateChanged(self.key, q, self.reason(now)))

    # ------------------------------------------------------------ reading
    def is_quorate(self, now: float) -> bool:
        return self.cert is not None and self.cert.expires > now

    def reason(self, now: float) -> str:
        if self.key is None:
            return "in no view"
        if self.is_quorate(now):
            return (f"certificate for view {self.key}: {self.cert.votes} votes back it, "
                    f"quorum {self.cert.quorum}, valid {self.cert.expires - now:.3f} s more")
        return (f"no valid quorum certificate for view {self.key} (quorum {self.quorum}, "
                f"depth {self.tree.depth_of(self.me)} under node {self.tree.root})")

    def next_deadline(self) -> float:
        times = [self.next_round]
        if self.round.up_due is not None:
            times.append(self.round.up_due)
        if self.cert is not None:
            times.append(self.cert.expires)
        return min(times)
