"""View agreement: who coordinates, proposals, acks and commits (sans-IO).

The protocol (see ``core.py`` for the whole picture): the coordinator is the lowest
nodeid among the node and the peers it reaches both ways whose config is compatible; it
proposes a view (epoch = highest seen + 1) with every member's (nodeid, incarnation),
members ack only their rightful coordinator, and once every member acked it commits. A
member that does not ack within ``token`` is left out of the next proposal and kept out
for ``EXCLUDE_FACTOR`` tokens, doubling at each further miss up to ``EXCLUDE_MAX``, so
one-way links settle instead of flapping.

``Agreement`` is the component of ``MembershipCore`` that decides and negotiates views.
It owns the negotiation state (the highest epoch seen, the proposals this incarnation
acked, the proposal it coordinates, a proposal it declined for now, the member set it
last wanted) and is handed the rest explicitly: the peer table, a reading of the
installed view and of the local config (both the core's), ``install`` to install an
agreed view (the core reports the change) and the output buffer its messages go to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from clusterd.events import OutputBuffer
from clusterd.membership.config import MembershipConfig
from clusterd.membership.peers import PeerTable
from clusterd.membership.views import LEFT_CLEANLY, RESTARTS, proposal_reason
from clusterd.wire.messages import Ack, Commit, Propose, View, ViewId

logger = logging.getLogger("clusterd.membership.core")  # one logger for the whole core

EXCLUDE_FACTOR = 4.0  # a non-acking peer stays out of proposals for this many tokens,
EXCLUDE_MAX = 32.0  # doubling at each further miss, up to this many
BEHIND_HEARTBEATS = 3  # a member's heartbeats without my installed view, after its first
#                        one a token late, before I propose again (3: a token of its own)

Install = Callable[[View, str, float], None]  # (view, reason, now): install an agreed view


@dataclass(frozen=True)
class LocalConfig:
    """This node's running config as coordination compares it with its peers' (the host
    sets it from configsync): version and sha256, whether a quorate view accepted it, and
    whether the node holds out of views (a newer config exists that it cannot apply, or
    it adopts the cluster's accepted one)."""

    version: int = 0
    sha256: str = ""
    accepted: bool = True
    held: bool = False


@dataclass
class _Proposal:
    view: View
    acks: set[int]
    started: float
    last_sent: float
    why: str


class Agreement:
    def __init__(self, cfg: MembershipConfig, me: int, inc: int, table: PeerTable,
                 out: OutputBuffer, *, view: Callable[[], View | None],
                 local: Callable[[], LocalConfig], install: Install) -> None:
        """``view`` and ``local`` read the core's installed view and local config at the
        moment of a decision; ``install`` is called once every member acked a view this
        node coordinates, or a commit (stated or implied) arrives for one it acked."""
        self.cfg = cfg  # the core replaces it on reconfigure
        self.me = me
        self.inc = inc
        self.table = table
        self._out = out
        self._view = view
        self._local = local
        self._install = install
        self.max_epoch = 0
        self.acked: dict[ViewId, View] = {}  # proposals acked, not yet installed
        self.my_vids: set[ViewId] = set()  # views this incarnation acked or installed
        self.proposal: _Proposal | None = None  # the one this node coordinates
        self.declined: tuple[int, int, View, float] | None = None  # see on_propose
        self._desired: set[tuple[int, int]] = set()
        self._desired_since = 0.0
        self._installed_at = float("-inf")  # when the installed view was installed
        # member -> (incarnation, number of its first heartbeat heard a token after the
        # install that still advertised no view or an older one): see _fell_out
        self._behind: dict[int, tuple[int, int]] = {}

    # ------------------------------------------------------------------ inputs
    def on_propose(self, sender: int, inc: int, view: View, now: float) -> None:
        if self._local().held or view.epoch <= self._installed_epoch():
            return
        if (self.me, self.inc) not in view.members or view.coordinator != sender \
                or view.vid.coord_incarnation != inc:
            return
        info = self.table.peers.get(sender)
        if info is None or info.incarnation != inc or now - info.heard_at >= self.cfg.token:
            return
        current = self._view()
        joining = current is None or sender not in current.nodeids
        if not self._compatible(sender, joining=False):
            return
        if joining and info.hb is not None and info.hb.config_version < self._local().version:
            return  # a stale coordinator must take the newer config before it admits me
        rightful = min(self._candidates(now) | {self.me, sender})
        if rightful != sender:
            # Not the coordinator I see yet: typically the old one just failed and its
            # silence timer fires here a few ms after the proposer's. Keep the proposal and
            # look again at every evaluation until the next resend (_retry_declined), so
            # that it does not wait a whole heartbeat interval for that resend.
            held = self.declined
            since = held[3] if held is not None and held[2] == view else now
            self.declined = (sender, inc, view, since)
            return
        self.declined = None
        installed = self._installed_epoch()
        self.acked = {v: w for v, w in self.acked.items() if w.epoch > installed}
        self.acked[view.vid] = view
        self.remember(view.vid)
        self.max_epoch = max(self.max_epoch, view.epoch)
        self._out.send(sender, Ack(view.vid))

    def on_ack(self, sender: int, inc: int, vid: ViewId, now: float) -> None:
        p = self.proposal
        if p is None or p.view.vid != vid or p.view.incarnation_of(sender) != inc:
            return
        p.acks.add(sender)
        self.table.strikes.pop(sender, None)
        if p.acks >= p.view.nodeids:
            self.proposal = None
            for member in p.view.nodeids - {self.me}:
                self._out.send(member, Commit(vid))
            self._install(p.view, f"{p.why}; every member acked", now)

    def on_commit(self, sender: int, vid: ViewId, now: float) -> None:
        view = self.acked.get(vid)
        if view is not None and view.coordinator == sender:
            self._install(view, f"committed by coordinator {sender}", now)

    def commit_implied(self, sender: int, vid: ViewId, now: float) -> bool:
        """``sender`` runs ``vid``, a view this node acked with it as a member: the commit
        happened (lost or still on its way), so install it. False if it is no such view."""
        acked = self.acked.get(vid)
        if acked is None or sender not in acked.nodeids:
            return False
        self._install(acked, f"node {sender} runs it (commit implied)", now)
        return True

    def note_epoch(self, epoch: int) -> None:
        """A peer runs a view of this epoch: the next proposal goes above it."""
        self.max_epoch = max(self.max_epoch, epoch)

    def evaluate(self, now: float) -> None:
        """Take a declined proposal if its sender became the rightful coordinator, then
        coordinate if this node is the rightful coordinator."""
        self._retry_declined(now)
        self._coordinate(now)

    # ------------------------------------------------------------------ the core's view
    def installed(self, view: View, now: float) -> None:
        """The core installed ``view``: acks and proposals at or below it are done."""
        self._installed_at = now
        self._behind.clear()
        self.remember(view.vid)
        self.max_epoch = max(self.max_epoch, view.epoch)
        self.acked = {v: w for v, w in self.acked.items() if w.epoch > view.epoch}
        if self.proposal is not None and self.proposal.view.epoch <= view.epoch:
            self.proposal = None

    def dropped(self) -> None:
        """The core was dropped from its view while alive. Proposals this incarnation
        acked stay: if one commits with this node in it, the others count it as a
        member, so it must install that view when it sees it run."""
        self.my_vids.clear()
        self.proposal = None

    def remember(self, vid: ViewId) -> None:
        self.my_vids.add(vid)
        if len(self.my_vids) > 256:
            self.my_vids.discard(min(self.my_vids))

    def deadlines(self) -> list[float]:
        """When evaluating next has agreement work: the wanted member set has settled,
        or the proposal is due to be resent or has timed out."""
        times = [self._desired_since + self.cfg.heartbeat_interval]
        p = self.proposal
        if p is not None:
            times += (p.started + self.cfg.token, p.last_sent + self.cfg.heartbeat_interval)
        return times

    # ------------------------------------------------------------------ deciding
    def _installed_epoch(self) -> int:
        view = self._view()
        return view.epoch if view else 0

    def _compatible(self, peer: int, joining: bool) -> bool:
        hb = self.table.peers[peer].hb
        if hb is None or hb.held:
            return False
        local = self._local()
        version, sha = local.version, local.sha256
        if hb.config_version == version and hb.config_sha256 != sha:
            return False  # same version, other content: conflict, never admitted
        if joining and hb.unaccepted and local.accepted \
                and (hb.config_version, hb.config_sha256) != (version, sha):
            return False  # a config no quorate view accepted: it adopts ours first
        return not (joining and hb.config_version < version)  # joiner must sync first

    def _candidates(self, now: float) -> set[int]:
        view = self._view()
        members = view.nodeids if view else frozenset()
        return {p for p in self.table.bidirectional(self.me, now)
                if self._compatible(p, joining=p not in members)}

    def _retry_declined(self, now: float) -> None:
        """A proposal declined because its sender was not yet the rightful coordinator here
        is taken again (same checks, now) while the proposer would not yet have resent it."""
        held = self.declined
        if held is None:
            return
        sender, inc, view, since = held
        if now - since >= self.cfg.heartbeat_interval:
            self.declined = None  # the proposer resends by now (or gave up)
            return
        self.on_propose(sender, inc, view, now)

    def _propose(self, members: set[int], now: float, why: str) -> None:
        self.max_epoch += 1
        member_list = [(self.me, self.inc)] + [(p, self.table.peers[p].incarnation)
                                               for p in members]
        view = View(ViewId(self.max_epoch, self.me, self.inc), tuple(sorted(member_list)))
        logger.info("node %d: proposing %s: %s", self.me, view, why)
        self.proposal = _Proposal(view, {self.me}, now, now, why)
        if view.nodeids == {self.me}:
            self.proposal = None
            self._install(view, why, now)
            return
        for member in view.nodeids - {self.me}:
            self._out.send(member, Propose(view))

    def _coordinate(self, now: float) -> None:
        if self._defers_to_coordinator(now):
            self.proposal = None
            return
        excluded = {p for p, t in self.table.excluded_until.items() if t > now}
        cands = self._candidates(now) - excluded
        if min(cands | {self.me}) != self.me or self._local().held or self._stale(cands):
            self.proposal = None
            return
        p = self.proposal
        if p is not None and p.view.nodeids - {self.me} - cands:
            lost = sorted(p.view.nodeids - {self.me} - cands)
            self.proposal = p = None
            self._propose(cands, now, f"nodes {lost} became unreachable during the proposal")
            return
        if p is not None:
            if now - p.started < self.cfg.token:
                if now - p.last_sent >= self.cfg.heartbeat_interval:
                    p.last_sent = now
                    for member in p.view.nodeids - p.acks:
                        self._out.send(member, Propose(p.view))
                return
            missing = p.view.nodeids - p.acks
            for m in missing:
                strikes = self.table.strikes[m] = self.table.strikes.get(m, 0) + 1
                backoff = min(EXCLUDE_FACTOR * 2 ** (strikes - 1), EXCLUDE_MAX)
                self.table.excluded_until[m] = now + backoff * self.cfg.token
            cands -= missing
            self.proposal = None
            logger.info("node %d: nodes %s did not ack %s: leaving them out for now", self.me,
                        sorted(missing), p.view.vid)
        desired = {(self.me, self.inc)} | {(c, self.table.peers[c].incarnation) for c in cands}
        view = self._view()
        current = set(view.members) if view else set()
        if desired != self._desired:
            self._desired, self._desired_since = desired, now
        strays = sorted(c for c in cands if self._ran_past(c, view))
        behind = sorted(c for c in cands if self._fell_out(c, view))
        if view is not None and desired == current and view.coordinator == self.me \
                and not strays and not behind:
            return
        if strays and desired == current:
            # a member runs a later view than mine (it was cut off, formed its own and
            # came back before I noticed it gone): same members, but it is not in my
            # view any more and no one else will propose (seed 999779179342)
            self._propose(cands, now, f"nodes {strays} run a later view than {view.vid}")
            return
        if behind and desired == current:
            # a member still runs no view (or an older one) a token after mine was
            # installed: it took itself for dropped (it saw a member run a view without
            # it) and waits, with no view, for its coordinator, me, to propose again;
            # same members here, so no one else would (seed 579853886433)
            self._propose(cands, now, f"nodes {behind} still run no view or an older one "
                                      f"a token after {view.vid} was installed")
            return
        if desired - current and view is not None \
                and now - self._desired_since < self.cfg.heartbeat_interval:
            return  # let the set of joiners settle for a round: fewer startup views
        gone = {n for n, _ in current} - cands - {self.me}
        self._propose(cands, now, proposal_reason(self.me, current, desired,
                                                  self._why_gone(gone, now)))

    def _ran_past(self, peer: int, view: View | None) -> bool:
        """Whether member ``peer``'s latest heartbeat advertises a view of a later epoch
        than ``view`` (which then no longer holds it)."""
        if view is None or peer not in view.nodeids:
            return False
        hb = self.table.peers[peer].hb
        return hb is not None and hb.view is not None and hb.view.epoch > view.epoch

    def _fell_out(self, peer: int, view: View | None) -> bool:
        """Whether member ``peer`` has left ``view``: heard a token or more after it was
        installed here, it still advertises no view or one of an earlier epoch, and has
        done so for ``BEHIND_HEARTBEATS`` more of its own heartbeats. Every member acked
        ``view``, so by then it would run it (commit, or commit implied by my heartbeats)
        unless it left it. One late heartbeat is not enough: on a busy machine a heartbeat
        sent before the peer installed can be read here more than a token later (either
        loop stalled), and a needless proposal costs the cluster a round of leases."""
        if view is None or peer not in view.nodeids:
            return False
        info = self.table.peers[peer]
        hb = info.hb
        if not (hb is not None and info.heard_at - self._installed_at >= self.cfg.token
                and (hb.view is None or hb.view.epoch < view.epoch)):
            self._behind.pop(peer, None)
            return False
        first = self._behind.get(peer)
        if first is None or first[0] != info.incarnation or hb.n < first[1]:
            first = self._behind[peer] = (info.incarnation, hb.n)
        return hb.n - first[1] >= BEHIND_HEARTBEATS

    def _why_gone(self, gone: set[int], now: float) -> dict[int, str]:
        """Why each member that is not a candidate any more is left out, as seen here."""
        excluded = {p for p, t in self.table.excluded_until.items() if t > now}
        view = self._view()
        out = {}
        for n in gone:
            info = self.table.peers.get(n)
            inc = view.incarnation_of(n) if view is not None else None
            if inc is not None and self.table.holding.get(n) == inc:
                out[n] = RESTARTS
            elif inc is not None and self.table.left.get(n) == inc:
                out[n] = LEFT_CLEANLY
            elif info is None or now - info.heard_at >= self.cfg.token:
                out[n] = f"silent for {self.cfg.token_ms} ms"
            elif n in excluded:
                out[n] = "did not ack a proposal in time"
            elif n not in self.table.bidirectional(self.me, now):
                out[n] = "does not hear this node"
            else:
                out[n] = "holds a conflicting config or cannot apply the newest"
        return out

    def _stale(self, peers: set[int]) -> bool:
        """A peer runs a newer config: sync it before coordinating (never the reverse)."""
        version = self._local().version
        return any(self.table.peers[p].hb.config_version > version for p in peers
                   if self.table.peers[p].hb is not None)

    def _defers_to_coordinator(self, now: float) -> bool:
        """The coordinator of my view is alive and still runs it: it decides, even if I
        do not yet see it hear me (its commit proved it did). Avoids startup splits."""
        view = self._view()
        if view is None or view.coordinator == self.me:
            return False
        info = self.table.peers.get(view.coordinator)
        return (info is not None and now - info.heard_at < self.cfg.token
                and info.incarnation == view.vid.coord_incarnation and info.hb is not None
                and (info.hb.view is None or info.hb.view.epoch <= view.epoch)
                and self._compatible(view.coordinator, joining=False))
