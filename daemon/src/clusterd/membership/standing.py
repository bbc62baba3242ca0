"""What a node can truthfully say about its view's quorum at one instant (pure).

One source for every line and note that states a view's quorum (the node's
``view N: ...`` line, the fencing policy's "no fencing, no recovery" note): the installed
view, the configured votes, cman's threshold (:func:`calculate_quorum`, the same inputs as
:func:`~clusterd.membership.quorum.backed_quorum`), the exact lease check and the
reported flag, all read from the membership core at the same instant.

Why not the ``QuorumChanged`` events: they are sent only when the flag flips, so a copy
of their ``votes`` lags every later view change (a 3-node view printed the 2 votes that
first backed it, a node that had just lost both peers printed its old ``2/2``), and a
node that never was quorate has no numbers at all (``0/0``).

Standings:

* ``QUORATE``: leases of a quorum of votes back the view now.
* ``WAITING``: the members hold enough votes but their leases do not back the view: a
  view never backed yet (a new view costs one lease round trip; at start a node lends its
  vote after one token), or a backed one whose leases lapsed while the node still reports
  quorum (a loss is reported after ``LOSS_GRACE``). Transient: callers log it at debug
  only; what follows (``QUORATE``, or the loss and ``INQUORATE``) is logged.
* ``INQUORATE``: too few member votes, ``wait_for_all`` not met, or the core reported the
  loss of this view's backing (``why`` says which).
* ``LEFT``: this node announced its leave.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from clusterd.membership.config import MembershipConfig
from clusterd.membership.quorum import QuorumState, calculate_quorum, qdisk_votes
from clusterd.wire.messages import View


class Standing(enum.Enum):
    QUORATE = "quorate"
    WAITING = "waiting"
    INQUORATE = "inquorate"
    LEFT = "left"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class ViewQuorum:
    epoch: int
    members: tuple[str, ...]   # names, in nodeid order
    votes: int                 # configured votes of the members present
    expected: int              # expected votes (cman@expected_votes or the sum)
    quorum: int                # the threshold for this view
    standing: Standing
    why: str = ""              # INQUORATE: what is missing (beyond the vote count)
    disk: int = 0              # of ``votes``, those of the quorum disk

    @property
    def settled(self) -> bool:
        """False while the standing is transient (``WAITING``)."""
        return self.standing is not Standing.WAITING

    @property
    def label(self) -> str:
        return f"view {self.epoch} ({', '.join(self.members)})"

    @property
    def arithmetic(self) -> str:
        disk = f" ({self.disk} from the quorum disk)" if self.disk else ""
        return f"{self.votes} of {self.expected} expected votes{disk}, quorum {self.quorum}"

    def state_text(self) -> str:
        if self.standing is Standing.WAITING:
            return "waiting for its members' quorum leases"
        if self.standing is Standing.LEFT:
            return "this node left the cluster"
        return self.standing.value + (f" ({self.why})" if self.why else "")

    def line(self) -> str:
        """``view 7: 3 members (node1, node2, node3), 3 of 3 expected votes, quorum 2:
        quorate``"""
        return (f"view {self.epoch}: {_plural(len(self.members), 'member')} "
                f"({', '.join(self.members)}), {self.arithmetic}: {self.state_text()}")

    def fencing_note(self) -> str:
        """Why fencing and recovery are off in this view ('' when they are not, or while
        the standing is transient)."""
        if self.standing is Standing.LEFT:
            return "this node left the cluster"
        if self.standing is not Standing.INQUORATE:
            return ""
        return f"{self.label} is inquorate ({self.why or self.arithmetic})"


def view_quorum(cfg: MembershipConfig, me: int, view: View | None, reported: QuorumState,
                backed: bool, *, seen_all: bool, leaving: bool,
                was_backed: bool = True, disk: int = 0) -> ViewQuorum | None:
    """The standing of ``view`` (None: the node is in no view). ``reported`` is the core's
    quorum state (the flag, and the backing votes as last evaluated), ``backed`` the exact
    lease check at this instant, ``was_backed`` whether this view ever had backing,
    ``disk`` the quorum disk's votes in it (``quorum.qdisk_votes``)."""
    if view is None or me not in view.nodeids:
        return None
    members = sorted(view.nodeids)
    names = {spec.nodeid: spec.name for spec in cfg.nodes}
    votes = cfg.votes(view.nodeids) + disk
    quorum = calculate_quorum(cfg.expected, votes, two_node=cfg.two_node,
                              member_count=len(members),
                              previous=0 if cfg.two_node else reported.quorum)
    why = ""
    if leaving:
        standing = Standing.LEFT
    elif backed:
        standing = Standing.QUORATE
    elif votes < quorum:
        standing = Standing.INQUORATE
    elif cfg.waits_for_all and not seen_all:
        standing, why = Standing.INQUORATE, "wait_for_all: every node must be seen once first"
    elif reported.quorate or not was_backed:
        standing = Standing.WAITING
    else:
        standing = Standing.INQUORATE
        why = f"its leases lapsed: {_plural(reported.votes, 'vote')} backed, quorum {quorum}"
    return ViewQuorum(view.epoch, tuple(names.get(n, f"nodeid {n}") for n in members),
                      votes, cfg.expected, quorum, standing, why, disk)


def of_core(core: Any, now: float) -> ViewQuorum | None:
    """The standing of a :class:`~clusterd.membership.core.MembershipCore` at ``now``."""
    view = core.view
    disk = (qdisk_votes(core.qdisk, view.vid, set(view.nodeids), now)[0]
            if view is not None else 0)
    return view_quorum(core.cfg, core.me, view, core.quorum, core.is_quorate(now),
                       seen_all=core.seen_all, leaving=core.leaving,
                       was_backed=core.was_backed, disk=disk)
