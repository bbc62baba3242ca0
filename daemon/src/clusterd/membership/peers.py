"""What one node knows about its peers: freshness, reachability, leases.

Leases make "quorate" safe at every instant, not just eventually. A heartbeat from Q to P
may carry ``lease_ack = n``: "I received your heartbeat number n and back your view".
P counts Q's support until ``sent_at(n) + token`` (P's own clock); Q records a grant
until ``received_at(n) + token`` (>= P's expiry). A node that installs a new view does
not grant leases for it while a grant for an older view is still live at a peer that
still sits in that older view (``blocked_until``). So no node's vote backs two
different views at one instant, and two disjoint groups cannot both be quorate unless
``expected_votes`` is set below the sum of the votes (cman warns about that too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clusterd.wire.messages import Heartbeat, ViewId

logger = logging.getLogger(__name__)

SENT_HISTORY = 64
# a clock lag this large is told to the operator (smaller ones are network jitter: a
# delay shorter than any before costs that much lease and is not worth a line)
LAG_LOGGED = 0.1


@dataclass(frozen=True)
class PeerInfo:
    incarnation: int
    heard_at: float  # when its latest heartbeat arrived (-inf: left or never)
    hb: Heartbeat | None
    hb_n: int = -1  # its heartbeat number in that heartbeat


@dataclass(frozen=True)
class Lease:
    vid: ViewId
    expires: float


class PeerTable:
    """Mutable bookkeeping for one core; every method takes ``now`` explicitly."""

    def __init__(self, token: float):
        self.token = token
        self.peers: dict[int, PeerInfo] = {}
        self.left: dict[int, int] = {}  # nodeid -> incarnation that sent LEAVE
        self.holding: dict[int, int] = {}  # ... whose LEAVE announced a restart (hold)
        self.support: dict[int, Lease] = {}  # leases peers granted me
        self.grants: dict[int, Lease] = {}  # leases I granted peers
        self.sent_at: dict[int, float] = {}  # my heartbeat number -> send time
        # per peer: seconds from one of my heartbeats to its lease ack arriving (the peer
        # acks at its next round or at once for a new view: what a view change costs)
        self.rtt: dict[int, float] = {}
        self.excluded_until: dict[int, float] = {}  # did not ack my proposal
        self.strikes: dict[int, int] = {}  # consecutive proposals a peer did not ack
        # per peer, the largest (its send time - my receive time) seen: its clock offset
        # minus the smallest delay; a larger one means my clock lost time (see _check_clock)
        self.offset: dict[int, float] = {}
        self.lag_total = 0.0

    def _check_clock(self, nodeid: int, o: float) -> None:
        """``o`` = the peer's send time minus my receive time. Normally it is its clock's
        offset minus the network delay, so bounded above by the largest seen. Above that,
        my monotonic clock lost time (a VM suspended with its clock stopped: packets sent
        during the freeze arrive with later and later send times at one stopped instant):
        the support leases I hold were counted on that clock, so they are shortened by
        the excess, and so are the send times they are computed from: a heartbeat of mine
        sent before the lost time may still be acked in packets read after it (the peer
        acks the last one it got), and a lease retaken from it must not be whole again.
        A delay smaller than any before costs that much lease, nothing more."""
        best = self.offset.get(nodeid)
        self.offset[nodeid] = o if best is None else max(best, o)
        if best is None or o <= best:
            return
        lag = o - best
        self.lag_total += lag
        if lag >= LAG_LOGGED:
            logger.warning(
                "heartbeats from node %d arrive %.3f s earlier by my monotonic clock than "
                "any before: my clock stood still that long (a VM suspended with its clock "
                "stopped), or its first heartbeats were that slow; the support leases I "
                "hold are shortened by %.3f s", nodeid, lag, lag)
        self.support = {p: Lease(lease.vid, lease.expires - lag)
                        for p, lease in self.support.items()}
        self.sent_at = {n: sent - lag for n, sent in self.sent_at.items()}

    # ------------------------------------------------------------ heartbeats
    def heard(self, nodeid: int, incarnation: int, hb: Heartbeat, now: float) -> bool:
        """Record a heartbeat; returns True if the peer has a new incarnation."""
        old = self.peers.get(nodeid)
        if old is not None and incarnation < old.incarnation:
            return False
        if old is not None and incarnation == old.incarnation and 0 <= hb.n <= old.hb_n:
            # an older heartbeat overtaken by a newer one in flight (the install round
            # goes out at once, right after a regular one): it would stand for the
            # peer's view and void the lease that holds it in its real one (the sim
            # found two quorate groups from it, seed 999779179075)
            return False
        restarted = old is not None and incarnation > old.incarnation
        if restarted:
            self.support.pop(nodeid, None)
            self.grants.pop(nodeid, None)
            self.offset.pop(nodeid, None)
        if hb.t is not None:
            self._check_clock(nodeid, hb.t / 1000.0 - now)
        if self.left.get(nodeid, -1) < incarnation:
            self.left.pop(nodeid, None)
            self.holding.pop(nodeid, None)
        self.peers[nodeid] = PeerInfo(incarnation, now, hb, hb.n)
        return restarted

    def record_sent(self, n: int, now: float) -> None:
        self.sent_at[n] = now
        if len(self.sent_at) > SENT_HISTORY:
            for k in sorted(self.sent_at)[:-SENT_HISTORY]:
                del self.sent_at[k]

    def take_lease(self, nodeid: int, hb: Heartbeat, my_vid: ViewId | None,
                   now: float | None = None) -> None:
        if my_vid is None or hb.view != my_vid:
            self.support.pop(nodeid, None)
            return
        if hb.lease_ack is not None and hb.lease_ack in self.sent_at:
            self.support[nodeid] = Lease(my_vid, self.sent_at[hb.lease_ack] + self.token)
            if now is not None:
                self.rtt[nodeid] = max(now - self.sent_at[hb.lease_ack], 0.0)

    def peer_left(self, nodeid: int, incarnation: int, hold: bool = False) -> None:
        info = self.peers.get(nodeid)
        if info is not None and info.incarnation > incarnation:
            return
        self.left[nodeid] = incarnation
        if hold:
            self.holding[nodeid] = incarnation
        else:
            self.holding.pop(nodeid, None)
        if info is not None:
            self.peers[nodeid] = PeerInfo(incarnation, float("-inf"), info.hb, info.hb_n)
        self.support.pop(nodeid, None)

    def next_change(self, now: float) -> float:
        """The earliest instant after ``now`` (the caller's last tick) at which time alone
        changes what this table says (a peer goes silent, a lease or a grant expires, an
        exclusion ends)."""
        # the runtime asks after every datagram: one pass, no lists built
        best, token = float("inf"), self.token
        for info in self.peers.values():
            t = info.heard_at + token
            if now < t < best:
                best = t
        for lease in self.support.values():
            if now < lease.expires < best:
                best = lease.expires
        for g in self.grants.values():
            if now < g.expires < best:
                best = g.expires
        for t in self.excluded_until.values():
            if now < t < best:
                best = t
        return best

    # ------------------------------------------------------------ views of the table
    def fresh(self, now: float) -> set[int]:
        return {p for p, i in self.peers.items() if now - i.heard_at < self.token}

    def bidirectional(self, me: int, now: float) -> set[int]:
        return {p for p in self.fresh(now)
                if self.peers[p].hb is not None and me in self.peers[p].hb.hears}

    def supporters(self, vid: ViewId, members: frozenset[int],
                   now: float) -> tuple[set[int], float]:
        """Peers whose lease backs ``vid`` now, and when the first of them expires."""
        backing, until = set(), float("inf")
        for p, lease in self.support.items():
            if lease.vid == vid and lease.expires > now and p in members:
                backing.add(p)
                until = min(until, lease.expires)
        return backing, until

    def blocked_until(self, my_vid: ViewId, now: float) -> float:
        """Until when a lease I granted for an older view is live at a peer that still
        sits in that view (my vote must not back ``my_vid`` before then)."""
        until = float("-inf")
        for p, g in self.grants.items():
            if g.vid != my_vid and g.expires > now:
                info = self.peers.get(p)
                if info is None or info.hb is None or info.hb.view != g.vid:
                    continue
                if self.left.get(p) == info.incarnation:
                    # it announced a clean leave: a leaving node counts no votes any more,
                    # so its grant cannot back its old view (else every clean leave would
                    # cost the survivors up to a token of quorum)
                    continue
                until = max(until, g.expires)
        return until

    def grant(self, nodeid: int, vid: ViewId) -> int | None:
        """Grant a lease for ``vid`` to a peer; returns the heartbeat number acked."""
        info = self.peers.get(nodeid)
        if info is None or info.hb is None or info.hb.view != vid or info.hb_n < 0:
            return None
        self.grants[nodeid] = Lease(vid, info.heard_at + self.token)
        return info.hb_n
