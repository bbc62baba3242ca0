"""Liveness on the quorum disk, master election and the master's grant (pure).

One :class:`Election` per node, driven once per cycle, every ``interval`` seconds or
later (the runner, or the simulator):

1. :meth:`Election.next_block`: the block to write now (from the last read, the current
   view and score), written before the read;
2. :meth:`Election.wrote`: whether that write landed, and when it started;
3. :meth:`Election.observe`: every node's block as just read (None where there is none),
   and when the read started.

**Liveness** (qdisk(5) 2.1): a node whose block changed in ``tko_up`` consecutive reads is
online; one unchanged for ``tko`` reads is offline. **Election** (2.3): with no master
seen, the lowest-numbered online node that is fit (score >= min_score for
``upgrade_wait`` cycles, its writes landing) bids; every other node votes for the lowest
bidder; a bidder that holds the votes of every online fit node for ``master_wait``
cycles, with nobody else claiming master, becomes master; only cycles whose last read
and write are recent count (after a pause the votes it read are old: it counts again).
A lower-numbered bidder or master makes a higher one step back. **Grant** (2.5): each write of the master names its
current view and the nodes in it that are online and fit on the disk.

**What a grant is worth, and for how long.** A node counts the master's grant while the
master is not offline on the disk (fewer than ``tko`` reads in a row without a change,
as qdiskd did) and for at most ``2 * interval`` after the start of its own last read
(after a hung read or a pause, nothing stale counts); the master counts its own for
``2 * interval`` after the start of its last write that landed. A new master can grant
only after the old one was offline for ``tko`` reads (or stepped down) and ``master_wait``
cycles of bidding after that: by then every node stopped counting the old grant, as long
as a read or a write takes at most half an interval (the runner counts a slower one as
failed) and ``master_wait`` is at least 2. One case is not covered, as it was not by
qdiskd: a write of the old master that hangs for longer than the whole election and lands
afterwards. The membership core then still counts the disk's votes only in the view the
master granted, and only while the master's lease backs that view
(``membership.quorum.qdisk_votes``): the old master cannot back two views at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from clusterd.conf.qdisk import QdiskConf
from clusterd.membership.quorum import QdiskGrant
from clusterd.qdisk.block import Block, DiskState, mask_of
from clusterd.wire.messages import View, ViewId


@dataclass
class PeerOnDisk:
    block: Block | None = None
    hits: int = 0
    misses: int = 0
    online: bool = False
    alive_at: float | None = None   # the writer is known alive at this local time


class Election:
    VOUCH = 2.0   # intervals a grant counts after the read (or the master's write) it is on

    def __init__(self, conf: QdiskConf, me: int, incarnation: int, nodeids: tuple[int, ...],
                 votes: int) -> None:
        self.conf = conf
        self.me = me
        self.inc = incarnation
        self.votes = votes
        self.peers = {n: PeerOnDisk() for n in nodeids if n != me}
        self.state = DiskState.NONE
        self.seq = 0
        self.vote_for = 0
        self.fit_cycles = 0      # consecutive cycles with a sufficient score
        self.bid_cycles = 0
        self.wrote_at: float | None = None      # start of the last write that landed
        self.written: Block | None = None       # what that write said
        self.read_at: float | None = None       # start of the last read
        self.score = 0
        self.notes: list[str] = []               # what changed, for the runner's log

    # ------------------------------------------------------------------ per cycle
    def next_block(self, now: float, view: View | None, score: int, wall_ms: int = 0) -> Block:
        """Decide this cycle's state from the last read, ``view`` (this node's view now)
        and ``score``; the block to write."""
        self.score = score
        fit = score >= self.conf.min_score
        self.fit_cycles = self.fit_cycles + 1 if fit else 0
        writing = self.wrote_at is not None and now - self.wrote_at < 2 * self.conf.interval + \
            self.conf.interval / 2
        reading = self.read_at is not None and now - self.read_at < 2 * self.conf.interval + \
            self.conf.interval / 2
        before = self.state
        master = self.master_seen(now)
        if self.state is DiskState.MASTER and not writing:
            # no write of this master landed for over two intervals: the others may count
            # it offline and elect another master; resuming as master when writes land
            # again would grant beside that one (two masters, two views): start over
            self._set(DiskState.AVAILABLE, 0, "no write to the quorum disk landed for "
                                              f"{now - (self.wrote_at or now):g}s: "
                                              "stepping down as master")
        if not fit:
            self._set(DiskState.NONE, 0, f"score {score} below min_score "
                                         f"{self.conf.min_score}")
        elif master is not None:
            if self.state is DiskState.MASTER and master < self.me:
                self._set(DiskState.AVAILABLE, master, f"node {master} is master too and has a "
                                                       "lower node id: stepping down")
            elif self.state is not DiskState.MASTER:
                self._set(DiskState.AVAILABLE, master, "")
        elif self.state is DiskState.MASTER:
            pass
        elif self.state is DiskState.BID:
            lower = self._lowest_fit()
            if lower is not None and lower < self.me:
                self._set(DiskState.AVAILABLE, lower, f"node {lower} has a lower node id: "
                                                      "withdrawing the bid")
            elif not (writing and reading):
                # a gap in this node's cycles (paused, a hung read or write): the votes it
                # last read are old and the others may have elected another master
                # meanwhile, seeing it offline; the bid counts again from fresh reads (the
                # simulator found a bidder paused 3.3 s that resumed as master on votes read
                # before its pause, beside the master elected meanwhile: seed 762300531676)
                self.bid_cycles = 0
            else:
                self.bid_cycles += 1
                if self.bid_cycles >= self.conf.master_wait and self._all_vote_for_me():
                    self._set(DiskState.MASTER, self.me, "")
        elif self.fit_cycles >= self.conf.upgrade_wait and writing:
            lower = self._lowest_fit()
            if lower is None or lower > self.me:
                self.bid_cycles = 0
                self._set(DiskState.BID, self.me, "")
            else:
                self._set(DiskState.AVAILABLE, self._lowest_bidder() or 0, "")
        else:
            self._set(DiskState.AVAILABLE, self._lowest_bidder() or 0, "")
        if self.state is not before and self.state in (DiskState.BID, DiskState.MASTER) \
                or before is DiskState.MASTER and self.state is not DiskState.MASTER:
            self.notes.append(self._transition(before))
        grant, mask = None, 0
        if self.state is DiskState.MASTER and view is not None and self.me in view.nodeids:
            grant, mask = tuple(view.vid), self._mask(view)
        self.seq += 1
        return Block(self.me, self.inc, self.seq, self.state, score, self.conf.max_score,
                     self.vote_for, grant, mask, wall_ms)

    def regrant(self, now: float, view: View | None, wall_ms: int = 0) -> Block | None:
        """Between cycles, when this node's view changed: the master's last block again
        with its grant moved to ``view``, to be written at once so that a new view does not
        wait up to an interval for the disk's votes (a survivor would otherwise be
        inquorate for that long). Nothing else changes: no state, vote or counter moves,
        so the election's timing is untouched. None when there is nothing to regrant, and
        when this master's own grant has lapsed (no write landed for ``VOUCH`` intervals:
        after a pause or a lost path the others may be electing another master, and only
        a cycle, which steps down first, may write again)."""
        w = self.written
        if (self.state is not DiskState.MASTER or w is None or w.state is not DiskState.MASTER
                or view is None or self.me not in view.nodeids or w.grant == tuple(view.vid)
                or self.wrote_at is None
                or now - self.wrote_at >= self.VOUCH * self.conf.interval):
            return None
        self.seq += 1
        return dataclasses.replace(w, seq=self.seq, grant=tuple(view.vid),
                                   mask=self._mask(view), wall_ms=wall_ms or w.wall_ms)

    def wrote(self, block: Block, started: float, ok: bool) -> None:
        if ok:
            self.wrote_at, self.written = started, block
        elif self.state is DiskState.MASTER:
            self.notes.append("a write to the quorum disk failed: the grant lapses unless the "
                              "next one lands")

    def observe(self, started: float, blocks: dict[int, Block | None],
                counted: bool = True) -> None:
        """Every other node's block as read by a read that started at ``started``.
        ``counted`` False: a read between cycles (after a view change): what changed is
        taken in, but nothing is counted (hits, misses, online), so that liveness still
        moves once per cycle."""
        prev = self.read_at
        for nodeid, peer in self.peers.items():
            block = blocks.get(nodeid)
            old = peer.block
            changed = block is not None and (old is None or (block.seq, block.incarnation)
                                             != (old.seq, old.incarnation))
            if not counted:
                if changed and old is not None:
                    peer.block, peer.alive_at = block, prev
                continue
            if changed:
                peer.hits += 1
                peer.misses = 0
                peer.alive_at = prev if old is not None else None
                if not peer.online and peer.hits >= self.conf.tko_up and old is not None:
                    peer.online = True
                    self.notes.append(f"node {nodeid} is online on the quorum disk")
            else:
                peer.misses += 1
                peer.hits = 0
                if peer.online and peer.misses >= self.conf.tko:
                    peer.online = False
                    self.notes.append(f"node {nodeid} is offline on the quorum disk (no write "
                                      f"in {peer.misses} cycles)")
            peer.block = block
        self.read_at = started

    # ------------------------------------------------------------------ answers
    def master_seen(self, now: float) -> int | None:
        """The lowest-numbered other node that claims master and is not offline."""
        claims = [n for n, p in self.peers.items()
                  if p.block is not None and p.block.state is DiskState.MASTER
                  and p.misses < self.conf.tko and (p.online or p.hits > 0)]
        return min(claims) if claims else None

    def master(self, now: float) -> int | None:
        if self.state is DiskState.MASTER:
            return self.me
        return self.master_seen(now)

    def grant(self, now: float) -> QdiskGrant | None:
        """What the disk vouches for at ``now``, for ``MembershipCore.set_qdisk``."""
        vouch = self.VOUCH * self.conf.interval
        if self.state is DiskState.MASTER:
            w = self.written
            if w is None or w.state is not DiskState.MASTER or w.grant is None \
                    or self.wrote_at is None:
                return None
            return QdiskGrant(self.me, ViewId(*w.grant), self.votes, True,
                              self.wrote_at + vouch)
        master = self.master_seen(now)
        if master is None:
            return None
        peer = self.peers[master]
        block = peer.block
        if (block is None or block.grant is None or peer.alive_at is None
                or self.read_at is None):
            return None   # alive_at: a write seen since this node started, not a leftover
        mine = self.conf.master_wins or (
            self.me in block.granted() and self.state is not DiskState.NONE
            and self.wrote_at is not None and now - self.wrote_at < 2 * self.conf.interval)
        # and never past the earliest a new master can grant after the write this read saw
        # (it landed after alive_at; tko misses, then master_wait cycles of bidding): after
        # a gap in this node's reads, a change it sees may be a write from long ago
        until = min(self.read_at + vouch, peer.alive_at
                    + (self.conf.tko + self.conf.master_wait - 1) * self.conf.interval)
        return QdiskGrant(master, ViewId(*block.grant), self.votes, mine, until)

    def online(self) -> frozenset[int]:
        return frozenset(n for n, p in self.peers.items() if p.online)

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    # ------------------------------------------------------------------ helpers
    def _mask(self, view: View) -> int:
        """The nodes of ``view`` the master grants: online and fit on the disk, and itself."""
        fit_peers = {n for n, p in self.peers.items()
                     if p.online and p.block is not None and p.block.state is not DiskState.NONE}
        return mask_of((set(view.nodeids) & fit_peers) | {self.me})

    def _set(self, state: DiskState, vote_for: int, why: str) -> None:
        if why and state is not self.state:
            self.notes.append(why)
        self.state = state
        self.vote_for = vote_for

    def _fit_online(self) -> dict[int, Block]:
        return {n: p.block for n, p in self.peers.items()
                if p.online and p.block is not None and p.block.state is not DiskState.NONE}

    def _lowest_fit(self) -> int | None:
        fit = self._fit_online()
        return min(fit) if fit else None

    def _lowest_bidder(self) -> int | None:
        bids = [n for n, b in self._fit_online().items() if b.state is DiskState.BID]
        return min(bids) if bids else None

    def _all_vote_for_me(self) -> bool:
        """Every online fit node votes for me, nobody else claims master, and no
        lower-numbered node that is still writing bids (one not online yet in my reading:
        at startup, slow I/O can keep two bidders from seeing each other online)."""
        others = self._fit_online()
        if not all(b.vote_for == self.me for b in others.values()):
            return False
        return not any(
            p.block is not None and p.misses < self.conf.tko
            and (p.block.state is DiskState.MASTER
                 or (p.block.state is DiskState.BID and n < self.me))
            for n, p in self.peers.items())

    def _transition(self, before: DiskState) -> str:
        if self.state is DiskState.MASTER:
            return "this node is now the quorum disk's master"
        if self.state is DiskState.BID:
            return "bidding for the quorum disk's master"
        return f"no longer the quorum disk's master (now {self.state.name.lower()})"
