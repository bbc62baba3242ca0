"""MembershipCore: failure detection, agreed views and quorum for one node (sans-IO).

Inputs: ``on_message(sender, incarnation, msg, now)`` for authenticated messages and
``tick(now)``; both return ``Outputs`` (messages to send, events). Time is monotonic
seconds passed in; nothing here does I/O.

Protocol. Every node sends a heartbeat to every heartbeat target each token/3 (rounds on
a grid of the shared clock, see ``_next_round``) carrying its view id, config (version,
sha256), the peers it hears and possibly a lease grant (see ``peers.py``). A peer silent
for ``token`` is suspected. The coordinator is the lowest nodeid among the node and the
peers it reaches both ways (it hears them and they report hearing it) whose config is
compatible (``agreement.py``). It proposes a view (epoch = highest seen + 1) with the
(nodeid, incarnation) of each member; members ack only their rightful coordinator;
once every member acked, the coordinator commits. A node installs a view only on commit
(or on seeing a member advertise a view it acked, which proves the commit), and only
views with a higher epoch than the one it is in. A member that does
not ack within ``token`` is left out of the next proposal and kept out for a while, so
one-way links settle instead of flapping. A node that sees a member of its view
advertise a newer view it never acked was dropped while alive: it tells the runtime to
stop services at once and rejoins with the same incarnation (only a daemon restart makes a
new one, so a pending fence of that incarnation still applies).

Quorum is cman's arithmetic over the installed view, counted only from members whose
lease currently backs it: exact at every instant, reported with a grace for a view
change (``quorum_report.py``). two_node: quorum 1 with at most two members; with
``wait_for_all`` (the default for two_node) a node is not quorate until, since its start,
it has been in a view with every configured node once. ``set_expected`` is the operator's
``cman_tool expected -e N`` (``override.py``): it may lower the quorum, and it lasts until
the next ``reconfigure``.
"""


from __future__ import annotations

import logging
import math

from clusterd.events import MustStopServices, OutputBuffer, Outputs, ViewInstalled
from clusterd.membership.agreement import Agreement, LocalConfig
from clusterd.membership.config import MembershipConfig
from clusterd.membership.override import CHANNELS, ExpectedOverride
from clusterd.membership.peers import PeerTable
from clusterd.membership.quorum import QdiskGrant, QuorumState
from clusterd.membership.quorum_report import LOSS_GRACE, QuorumReport
from clusterd.membership.views import RESTARTS, change_events, left_event
from clusterd.wire.messages import (
    Ack,
    AppMessage,
    Commit,
    Heartbeat,
    Leave,
    Message,
    Propose,
    View,
)

logger = logging.getLogger(__name__)

__all__ = ["LOSS_GRACE", "MembershipCore"]


class MembershipCore:
    def __init__(self, cfg: MembershipConfig, nodeid: int, incarnation: int, *,
                 grid_offset: float = 0.0):
        cfg.node(nodeid)  # KeyError if the node is not in the config
        self.cfg = cfg          # in force: cluster.conf's, or with expected votes set by hand
        self.configured = cfg   # cluster.conf's
        self.me = nodeid
        self.inc = incarnation
        self.table = PeerTable(cfg.token)
        self.view: View | None = None
        self.shared: dict[int, tuple[int, int]] = {}  # peer -> (its inc, last common epoch)
        self.seen_all = False
        self.joined: dict[int, tuple[int, float]] = {}  # node -> (epoch, when) it last joined
        self.leaving = False
        self.local = LocalConfig()  # set by the host from configsync
        self._hb_n = 0
        self._next_hb = float("-inf")
        self.grid_offset = grid_offset  # the shared clock minus ``now`` (see _next_round)
        self._ticked = float("-inf")  # the last tick: deadlines after it are still due
        self._grant_after: float | None = None  # no leases for one token after start
        self._stamp = 0  # bumped by every input; keys the is_quorate memo
        self._out = OutputBuffer()
        self.agreement = Agreement(cfg, nodeid, incarnation, self.table, self._out,
                                   view=lambda: self.view, local=lambda: self.local,
                                   install=self._install)
        self.qdisk: QdiskGrant | None = None  # the quorum disk's grant as last read
        self.quorum_report = QuorumReport(cfg, nodeid, self.table, self._out,
                                          view=lambda: self.view,
                                          self_vote_from=lambda: self._grant_after,
                                          seen_all=lambda: self.seen_all,
                                          qdisk=lambda: self.qdisk)
        self.expected = ExpectedOverride(nodeid, self._out, view=lambda: self.view,
                                         configured=lambda: self.configured,
                                         use=self._use_override)

    # ------------------------------------------------------------------ inputs
    def tick(self, now: float) -> Outputs:
        self._stamp += 1
        self._ticked = now
        if self._grant_after is None:
            self._grant_after = now + self.cfg.token
        if not self.leaving:
            if now >= self._next_hb:
                self._heartbeat(now)
                self.expected.resend()
            else:
                for peer in self._grants_due(now):
                    self._heartbeat(now, only=peer)
            self._evaluate(now)
        return self._out.take()

    def on_message(self, sender: int, incarnation: int, msg: Message, now: float) -> Outputs:
        self._stamp += 1
        if self.leaving or sender == self.me or sender not in self.cfg.nodeids:
            return self._out.take()
        if isinstance(msg, Heartbeat):
            before = (self.view, self.inc, self._routine_key(sender, now))
            self._on_heartbeat(sender, incarnation, msg, now)
            if before[2] is not None and before == (self.view, self.inc,
                                                    self._routine_key(sender, now)):
                # nothing coordination or quorum reads changed: the same members back the
                # view at this instant (a renewed lease only expires later than the one
                # the is_quorate memo was cut at), so the memo stays exact and the next
                # is_quorate (the host asks after every datagram) costs nothing rather
                # than a pass over every member's lease
                self._stamp -= 1
                return self._out.take()
        elif isinstance(msg, Propose):
            self.agreement.on_propose(sender, incarnation, msg.view, now)
        elif isinstance(msg, Ack):
            self.agreement.on_ack(sender, incarnation, msg.vid, now)
        elif isinstance(msg, Commit):
            self.agreement.on_commit(sender, msg.vid, now)
        elif isinstance(msg, AppMessage):
            if msg.channel in CHANNELS:
                self.expected.on_message(sender, msg, now)
        elif isinstance(msg, Leave):
            self.table.peer_left(sender, incarnation, msg.hold)
            logger.info("node %d: node %d %s: %s", self.me, sender,
                        RESTARTS if msg.hold else "leaves cleanly", msg.reason)
            if (self.view is not None and sender not in self.view.nodeids
                    and self.shared.get(sender, (None, 0))[0] == incarnation):
                # its leave arrived after the view that dropped it (reported as failed):
                # that incarnation stopped (or holds) everything, fencing must not follow
                self._out.emit(left_event(sender, incarnation, msg.hold, late=True))
        self._evaluate(now)
        return self._out.take()

    def reconfigure(self, cfg: MembershipConfig, now: float) -> Outputs:
        """Apply a new cluster.conf's membership part (nodes added or removed, votes,
        expected_votes, token). Like ``cman_tool version -r``, the quorum is recomputed
        from the new values (an admin action may lower it); peers no longer configured
        are forgotten and drop out of the next view. Expected votes set by hand end here."""
        cfg.node(self.me)  # KeyError: this node was removed; the runtime must leave
        self.configured = cfg
        self.table.token = cfg.token
        for gone in set(self.table.peers) - set(cfg.nodeids):
            del self.table.peers[gone]
            self.table.support.pop(gone, None)
        self.expected.clear("a config change brings cluster.conf's values back")
        self._use(cfg, now)
        return self._out.take()

    def set_expected(self, expected: int, origin: str, now: float) -> Outputs:
        """``cman_tool expected -e N`` by ``origin`` (``uid 0 on node1``): expected votes
        ``N`` here and, through the view, on every other member (``override.py``). Raises
        ValueError with the reason when refused (N < 1, in no view, or a quorum the
        members cannot reach); nothing changes then."""
        if self.leaving:
            raise ValueError("this node is leaving the cluster: nothing changed")
        self.expected.set(expected, origin, now)
        return self._out.take()

    def set_qdisk(self, grant: QdiskGrant | None, now: float) -> Outputs:
        """The quorum disk's grant as just read (``clusterd.qdisk``); None: no disk, or
        nothing it grants this node. Quorum is re-evaluated at once."""
        if grant != self.qdisk:
            self.qdisk = grant
            self._stamp += 1
            if not self.leaving:
                self._evaluate(now)
        return self._out.take()

    def _use(self, cfg: MembershipConfig, now: float) -> None:
        """Run with ``cfg`` (cluster.conf's, or it with expected votes set by hand): the
        quorum is recomputed from it, its floor included."""
        self.cfg = cfg
        self.agreement.cfg = cfg
        self.quorum_report.reconfigure(cfg)
        self._stamp += 1
        self._evaluate(now)

    def _use_override(self, cfg: MembershipConfig, now: float) -> None:
        self.seen_all = True   # the operator vouches for the missing nodes: no wait_for_all
        self._use(cfg, now)

    def leave(self, reason: str, now: float, hold: bool = False) -> Outputs:
        """Clean leave: announce it to every peer, then stop taking part. ``hold``: the
        daemon restarts and its services keep running (``Leave.hold``)."""
        for peer in self.cfg.nodeids:
            if peer != self.me:
                self._out.send(peer, Leave(reason, hold))
        self.leaving = True
        self._stamp += 1
        self.quorum_report.report(False, 0, self.quorum.quorum, f"left the cluster: {reason}")
        return self._out.take()

    def next_deadline(self, now: float) -> float:
        """When ``tick`` next has work: a heartbeat due, a peer going silent, a lease or
        a proposal timing out. Ticking later delays detection; earlier is harmless. A
        deadline that passed since the last tick is still named (it is due now): a
        datagram handled between a deadline and its tick must not move the tick past it
        (with heartbeat rounds on a shared grid, a peer's silence comes due exactly when
        the other peers' next round arrives)."""
        if self.leaving:
            return float("inf")
        if self._next_hb <= now:
            return now
        since = self._ticked
        times = [self._next_hb, self.table.next_change(since), *self.agreement.deadlines()]
        if self._grant_after is not None:
            times.append(self._grant_after)
        if self.qdisk is not None and self.qdisk.until > since:
            times.append(self.qdisk.until)
        loss = self.quorum_report.loss_due()
        if loss is not None:
            times.append(loss)
        if self.view is not None and self._ungranted():
            times.append(self.table.blocked_until(self.view.vid, now))
        return min(t for t in times if t > since)

    def heartbeat_soon(self) -> None:
        """Advertise at the next tick (e.g. a new config version to announce)."""
        self._next_hb = float("-inf")

    # ------------------------------------------------------------------ the SWIM hook
    def heartbeat_targets(self, now: float) -> list[int]:
        """Who gets a heartbeat this round: every configured peer (O(N) per node).
        A SWIM-style prober replaces only this function (k random peers + indirect
        probes) and the freshness rule in ``PeerTable.fresh``."""
        return [n for n in self.cfg.nodeids if n != self.me]

    # ------------------------------------------------------------------ heartbeats
    def _can_grant(self, now: float) -> bool:
        return (self.view is not None and self._grant_after is not None
                and now >= self._grant_after
                and self.table.blocked_until(self.view.vid, now) <= now)

    def _ungranted(self) -> list[int]:
        """Members that advertise my view and hold no lease from me for it yet."""
        if self.view is None:
            return []
        vid, out = self.view.vid, []
        for peer in self.view.nodeids:
            info = self.table.peers.get(peer)
            grant = self.table.grants.get(peer)
            if (peer != self.me and info is not None and info.hb is not None
                    and info.hb.view == vid and (grant is None or grant.vid != vid)):
                out.append(peer)
        return out

    def _grants_due(self, now: float) -> list[int]:
        """Peers to grant a lease for my view now rather than at the next heartbeat: a
        view change then costs one round trip of leases, not up to a heartbeat interval
        more (fencing and recovery wait for the new view's backing)."""
        fresh = self.table.fresh(now)
        return [p for p in self._ungranted() if p in fresh] if self._can_grant(now) else []

    def _heartbeat(self, now: float, only: int | None = None) -> None:
        """A heartbeat round to every target, or with ``only`` one heartbeat to that peer
        outside the rounds (the lease it is due)."""
        if only is None:
            self._next_hb = self._next_round(now)
        self._hb_n += 1
        self.table.record_sent(self._hb_n, now)
        vid = self.view.vid if self.view else None
        hears = tuple(sorted(self.table.fresh(now)))
        can_grant = self._can_grant(now)
        for peer in self.heartbeat_targets(now) if only is None else [only]:
            lease = None
            if can_grant and vid is not None and self.view is not None \
                    and peer in self.view.nodeids and peer in hears:
                lease = self.table.grant(peer, vid)
            self._out.send(peer, Heartbeat(vid, self.local.version, self.local.sha256, hears,
                                           self._hb_n, lease, self.local.held,
                                           not self.local.accepted, t=int(now * 1000)))

    def _next_round(self, now: float) -> float:
        """Rounds sit on a grid of heartbeat intervals of the shared clock (``now +
        grid_offset``, wall-clock time on a real node): on a cluster whose clocks are
        synchronised, every peer's round lands at the same instant, so a node reads a
        whole round of heartbeats in one wakeup instead of one per peer. Returns the
        first grid point at least a quarter interval away, so that a round sent off the
        grid (e.g. for a new view) is not followed by another one at once."""
        iv = self.cfg.heartbeat_interval
        t = now + self.grid_offset + iv / 4
        return (math.floor(t / iv) + 1) * iv - self.grid_offset

    def _on_heartbeat(self, sender: int, inc: int, hb: Heartbeat, now: float) -> None:
        if self.table.heard(sender, inc, hb, now):
            self.shared.pop(sender, None)
            logger.info("node %d: node %d restarted (incarnation %d)", self.me, sender, inc)
        if hb.view is not None:
            self.agreement.note_epoch(hb.view.epoch)
        self.table.take_lease(sender, hb, self.view.vid if self.view else None, now)
        if hb.view is None:
            return
        if self.view is not None and hb.view == self.view.vid and not self.leaving:
            grant = self.table.grants.get(sender)  # checked first: routine heartbeats
            if (grant is None or grant.vid != hb.view) and sender in self._grants_due(now):
                self._heartbeat(now, only=sender)  # it just moved to my view: back it now
        if self.agreement.commit_implied(sender, hb.view, now):
            return
        shared = self.shared.get(sender)
        if (shared is not None and shared[0] == inc
                and hb.view not in self.agreement.my_vids
                and hb.view.epoch >= shared[1] and not self.quorum_report.compute(now)[0]):
            # it moved on from our last common view to one this incarnation never acked;
            # the same epoch counts too: two coordinators proposed that epoch at once, the
            # peer installed the other one (after acking ours too), and neither side would
            # ever propose again (seed 563813348415: stuck in 2/1 beside 2/2 for good)
            self._dropped(f"node {sender} runs view {hb.view} without this node", now)

    def _routine_key(self, sender: int, now: float) -> tuple | None:
        """What coordination and quorum read from one peer's latest heartbeat: its
        freshness, incarnation, view, config, whom it hears, whether it holds out, and
        whether its lease backs my view. A heartbeat that leaves this unchanged (the
        common, idle case) needs no re-evaluation: changes that come with time alone
        are the ticks' business (``next_deadline``). None: not a fresh peer."""
        info = self.table.peers.get(sender)
        if info is None or info.hb is None or now - info.heard_at >= self.cfg.token:
            return None
        hb, lease = info.hb, self.table.support.get(sender)
        backing = (lease is not None and lease.expires > now and self.view is not None
                   and lease.vid == self.view.vid)
        return (info.incarnation, hb.view, hb.config_version, hb.config_sha256, hb.hears,
                hb.held, hb.unaccepted, backing)

    def _evaluate(self, now: float) -> None:
        if self.leaving:
            return
        self.agreement.evaluate(now)
        self.quorum_report.update(now)

    # ------------------------------------------------------------------ view changes
    @property
    def installed_epoch(self) -> int:
        return self.view.epoch if self.view else 0

    @property
    def was_backed(self) -> bool:
        """The installed view has had quorum backing (``ViewBacked`` was emitted for it)."""
        return self.view is not None and self.quorum_report.backed == self.view.vid

    def _install(self, view: View, reason: str, now: float) -> None:
        if view.epoch <= self.installed_epoch:
            return
        for event in change_events(self.me, self.view, view, self.table.left, reason,
                                   self.table.holding):
            self._out.emit(event)
        before = dict(self.view.members) if self.view is not None else {}
        self.view = view
        self.agreement.installed(view, now)
        self._changed()
        for nodeid, inc in view.members:
            self.shared[nodeid] = (inc, view.epoch)
            if before.get(nodeid) != inc:
                self.joined[nodeid] = (view.epoch, now)
        self.seen_all = self.seen_all or view.nodeids >= set(self.cfg.nodeids)
        self.table.support = {p: s for p, s in self.table.support.items() if s.vid == view.vid}
        logger.info("node %d: installed %s: %s", self.me, view, reason)
        self._out.emit(ViewInstalled(view, reason))
        self._next_hb = float("-inf")  # advertise the new view at once
        self._heartbeat(now)

    def _dropped(self, reason: str, now: float) -> None:
        """Dropped from the view while alive (paused, partitioned): stop services at once
        and rejoin with the *same* incarnation. An incarnation changes only when the daemon
        restarts, so a member that holds a fence intent for this incarnation still fences
        it when it reappears (RHCS: a node that rejoins without a full restart is fenced);
        it cannot escape its fence by coming back as someone new."""
        logger.warning("node %d: dropped from %s while alive (%s): stopping services, "
                       "rejoining as the same incarnation %d (members holding a fence "
                       "intent for it will still fence it)", self.me, self.view, reason,
                       self.inc)
        self.view = None
        self.agreement.dropped()
        self._changed()
        self.shared.clear()
        self.table.support.clear()
        # heartbeat numbers keep counting (peers drop a reordered older heartbeat by
        # its number); clearing sent_at voids every lease ack of the old view
        self.table.sent_at.clear()
        self._out.emit(MustStopServices(f"dropped from the view while alive: {reason}"))
        self.quorum_report.update(now)

    # ------------------------------------------------------------------ quorum
    @property
    def quorum(self) -> QuorumState:
        """Quorum as last reported (``QuorumChanged``): see ``quorum_report.py``."""
        return self.quorum_report.state

    @quorum.setter
    def quorum(self, state: QuorumState) -> None:
        self.quorum_report.state = state

    def is_quorate(self, now: float) -> bool:
        """Quorum at this very instant (leases can expire between ticks): check it right
        before acting on it. No side effects (memoized until an input or a lease expiry)."""
        if self.leaving or self.view is None:
            return False
        return self.quorum_report.is_quorate(self._stamp, now)

    def _changed(self) -> None:
        """The view changed inside an input: an ``is_quorate`` answer memoised earlier in
        the same input is void (the sim found one: a view of this node alone installed in
        the input that had asked about the previous, backed view answered quorate)."""
        self._stamp += 1
