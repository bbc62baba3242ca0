"""What the membership core says about quorum (sans-IO): the exact answer and the flag.

Quorum is cman's arithmetic over the installed view (``quorum.py``), counted only from
members whose lease currently backs it (see ``peers.py``), so ``is_quorate(now)`` is exact
at every instant; ``QuorumChanged(False)`` is reported once backing has been missing for
``LOSS_GRACE`` tokens (a view change costs a round trip of leases), ``QuorumChanged(True)``
as soon as it is back, and ``ViewBacked`` once per view, the first time its leases back it.

``QuorumReport`` is the component of ``MembershipCore`` that owns this: the
``QuorumState`` last reported, since when backing has been missing, the view
``ViewBacked`` was last emitted for and the memo of the exact answer. It is separate
because it only reads the core (the installed view, the peer table's leases, from when
this node's own vote counts and whether every node has been seen) and never changes
membership; the core decides when to ask (after each input, and on its own leave).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from clusterd.events import OutputBuffer, QuorumChanged, ViewBacked
from clusterd.membership.config import MembershipConfig
from clusterd.membership.peers import PeerTable
from clusterd.membership.quorum import (
    QdiskGrant,
    QuorumState,
    backed_quorum,
    calculate_quorum,
    quorum_reason,
)
from clusterd.wire.messages import View, ViewId

logger = logging.getLogger("clusterd.membership.core")  # one logger for the whole core

LOSS_GRACE = 0.5  # tokens without backing before QuorumChanged(False) is reported


class QuorumReport:
    def __init__(self, cfg: MembershipConfig, me: int, table: PeerTable, out: OutputBuffer,
                 *, view: Callable[[], View | None],
                 self_vote_from: Callable[[], float | None],
                 seen_all: Callable[[], bool],
                 qdisk: Callable[[], QdiskGrant | None] = lambda: None) -> None:
        """``view``, ``self_vote_from`` (no own vote before then; None: not started) and
        ``seen_all`` (wait_for_all is met) read the core's state at the moment asked."""
        self.cfg = cfg  # the core replaces it on reconfigure
        self.me = me
        self.table = table
        self._out = out
        self._view = view
        self._self_vote_from = self_vote_from
        self._seen_all = seen_all
        self._qdisk = qdisk
        self.state = QuorumState.initial(cfg.expected)  # as last reported
        self.unquorate_since: float | None = None
        self.backed: ViewId | None = None  # the last view ViewBacked was emitted for
        self._memo: tuple[int, float, bool] = (-1, 0.0, False)

    def is_quorate(self, stamp: int, now: float) -> bool:
        """The exact answer for the installed view (the caller checks there is one),
        memoized while ``stamp`` (bumped by every input of the core) is unchanged and until
        a lease expiry can change it."""
        memo_stamp, until, quorate = self._memo
        if memo_stamp == stamp and now < until:
            return quorate
        quorate, _votes, _quorum, until = self.compute(now)
        self._memo = (stamp, until, quorate)
        return quorate

    def compute(self, now: float) -> tuple[bool, int, int, float]:
        view = self._view()
        assert view is not None
        return backed_quorum(self.cfg, self.me, view, self.table, self._self_vote_from(),
                             self._seen_all(), self.state.quorum, now, self._qdisk())

    def reconfigure(self, cfg: MembershipConfig) -> None:
        """Like ``cman_tool version -r``: the quorum is recomputed from the new values."""
        self.cfg = cfg
        self.state = QuorumState(self.state.quorate, self.state.votes,
                                 calculate_quorum(cfg.expected, 0), cfg.expected)

    def loss_due(self) -> float | None:
        """When a loss of backing is reported unless backing returns first."""
        if self.unquorate_since is None:
            return None
        return self.unquorate_since + LOSS_GRACE * self.cfg.token

    def update(self, now: float) -> None:
        view = self._view()
        if view is None or self.me not in view.nodeids:
            self.report(False, 0, self.state.quorum, "not in a view")
            return
        quorate, votes, quorum, _until = self.compute(now)
        if quorate:
            self.unquorate_since = None
            if self.backed != view.vid:
                self.backed = view.vid
                self._out.emit(ViewBacked(view.vid, votes, quorum))
        elif self.state.quorate:
            # a view change leaves a node without backing for a round trip: report a
            # loss only once it lasted LOSS_GRACE tokens (is_quorate() stays strict)
            if self.unquorate_since is None:
                self.unquorate_since = now
            if now - self.unquorate_since < LOSS_GRACE * self.cfg.token:
                return
        if quorate == self.state.quorate:
            self.state = QuorumState(quorate, votes, quorum, self.cfg.expected)
            return
        reason = quorum_reason(quorate, votes, quorum, view.vid)
        self.report(quorate, votes, quorum, reason)

    def report(self, quorate: bool, votes: int, quorum: int, reason: str) -> None:
        old = self.state
        self.state = QuorumState(quorate, votes, quorum, self.cfg.expected)
        if quorate != old.quorate:
            logger.info("node %d: %s: %s", self.me, "quorate" if quorate else "NOT quorate",
                        reason)
            self._out.emit(QuorumChanged(quorate, votes, quorum, reason))
