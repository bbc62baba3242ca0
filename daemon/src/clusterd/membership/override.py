"""Expected votes set by hand (``cman_tool expected -e N``), sans-IO: the check, the
override in force, and its spread to the other members of the view.

What cman did (``commands.c`` ``do_cmd_set_expected``): refuse unless the node is a
cluster member and the new quorum, ``max((N + 2) / 2, (total_votes + 2) / 2)``, is at most
the votes of the current members (a value that would leave them inquorate is no way to
restore quorum); then lower every member's expected votes, recompute the quorum allowing
it to go *down* (the only way it ever does) and send the new value to every member.

Here the same check (plus N >= 1), then :class:`ExpectedOverride` replaces the expected
votes of the core's membership config and recomputes the quorum as a config change does:
the "never lower than before" floor restarts from the new value, and ``wait_for_all`` is
waived (the operator vouches for the nodes that are missing). The override reaches the
other members of the view as an authenticated application message (:data:`CH_EXPECTED`);
each applies it when it is in the same view, answers on :data:`CH_EXPECTED_ACK`, and the
setter repeats it every heartbeat round to those that have not answered (for
``RESEND_ROUNDS`` rounds, then it says who never did: an older clusterd ignores the
channel). Nodes that join later keep their own expected votes. The override lasts until
the next config change (``MembershipCore.reconfigure``, which brings the file's value back)
or until clusterd restarts; it is never written anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from clusterd.events import OutputBuffer
from clusterd.membership.config import MembershipConfig
from clusterd.membership.quorum import calculate_quorum
from clusterd.wire.messages import AppMessage, View, ViewId, WireError

logger = logging.getLogger("clusterd.membership.core")  # one logger for the whole core

CH_EXPECTED = "quorum.expected"          # setter -> member: {"e", "vid", "by"}
CH_EXPECTED_ACK = "quorum.expected.ack"  # member -> setter: {"e", "ok", "why"}
CHANNELS = frozenset({CH_EXPECTED, CH_EXPECTED_ACK})
RESEND_ROUNDS = 9        # heartbeat rounds (three tokens) a member has to answer
MAX_ORIGIN = 120         # characters of a peer's "set by" text kept


@dataclass(frozen=True)
class Override:
    expected: int       # the expected votes in force
    configured: int     # cluster.conf's value, which the next config change brings back
    origin: str         # who set it: "uid 0 on node1", "uid 0 on node1 (via node 1)"
    epoch: int          # the view it was set in


def refusal(cfg: MembershipConfig, me: int, view: View | None, expected: int) -> str:
    """Why ``expected`` cannot be set now ('' when it can): cman's checks."""
    if expected < 1:
        return f"expected votes must be at least 1, not {expected}"
    if view is None or me not in view.nodeids:
        return "this node is in no view (not a cluster member yet): nothing changed"
    votes = cfg.votes(view.nodeids)
    quorum = calculate_quorum(expected, votes, two_node=cfg.two_node,
                              member_count=len(view.nodeids))
    if quorum > votes:
        return (f"expected votes {expected} need a quorum of {quorum} votes and the members "
                f"of view {view.vid} hold {votes}: they would stay inquorate (cman refused "
                "such a value too); nothing changed")
    return ""


def _origin(value: Any) -> str:
    text = value if isinstance(value, str) else "?"
    return "".join(c if c.isprintable() else "?" for c in text[:MAX_ORIGIN])


class ExpectedOverride:
    """The component of ``MembershipCore`` that owns the override: the one in force, and
    the members this node sent its own to that have not answered yet. ``view`` and
    ``configured`` (cluster.conf's membership config) read the core when asked;
    ``use`` makes the core run with a membership config (``MembershipCore._use``)."""

    def __init__(self, me: int, out: OutputBuffer, *, view: Callable[[], View | None],
                 configured: Callable[[], MembershipConfig],
                 use: Callable[[MembershipConfig, float], None]) -> None:
        self.me = me
        self._out = out
        self._view = view
        self._configured = configured
        self._use = use
        self.current: Override | None = None
        self.pending: dict[int, int] = {}   # member -> rounds left to answer

    # ------------------------------------------------------------------ inputs
    def set(self, expected: int, origin: str, now: float) -> None:
        """The operator's command on this node: apply it, then send it to every other
        member of the view. Raises ValueError (nothing changes) when refused."""
        view = self._view()
        why = refusal(self._configured(), self.me, view, expected)
        if why:
            raise ValueError(why)
        assert view is not None
        self._apply(expected, origin, view, now)
        self.pending = {n: RESEND_ROUNDS for n in sorted(view.nodeids) if n != self.me}
        self.resend()

    def on_message(self, sender: int, msg: AppMessage, now: float) -> None:
        if msg.channel == CH_EXPECTED_ACK:
            self._on_ack(sender, msg.payload)
            return
        view = self._view()
        try:
            expected = msg.payload["e"]
            if not isinstance(expected, int) or isinstance(expected, bool):
                raise TypeError("expected votes must be an integer")
            vid = ViewId.from_wire(msg.payload["vid"])
        except (KeyError, TypeError, WireError):
            logger.warning("node %d: malformed expected votes message from node %d ignored",
                           self.me, sender)
            return
        if view is None or sender not in view.nodeids or vid != view.vid:
            logger.debug("node %d: expected votes %d from node %d for view %s, not this "
                         "node's: it repeats it once views agree", self.me, expected, sender,
                         vid)
            return
        origin = f"{_origin(msg.payload.get('by'))} (via node {sender})"
        cur = self.current
        why = ""
        if cur is None or cur.expected != expected or cur.origin != origin:
            why = refusal(self._configured(), self.me, view, expected)
            if why:
                logger.warning("node %d: expected votes %d set by %s refused here: %s",
                               self.me, expected, origin, why)
            else:
                self.pending = {}
                self._apply(expected, origin, view, now)
        self._out.send(sender, AppMessage(CH_EXPECTED_ACK, {"e": expected, "ok": not why,
                                                            "why": why}))

    def resend(self) -> None:
        """Send the override to the members that have not answered (each heartbeat
        round); a member gone from the view, or silent for ``RESEND_ROUNDS`` rounds, is
        given up on, in the log."""
        view, cur = self._view(), self.current
        if not self.pending:
            return
        if cur is None or view is None:
            self.pending = {}
            return
        for peer in sorted(self.pending):
            if peer not in view.nodeids:
                logger.warning("node %d: node %d left the view before it confirmed expected "
                               "votes %d", self.me, peer, cur.expected)
                del self.pending[peer]
            elif self.pending[peer] <= 0:
                logger.warning("node %d: node %d did not confirm expected votes %d (an older "
                               "clusterd?): run cman_tool expected there too", self.me, peer,
                               cur.expected)
                del self.pending[peer]
            else:
                self.pending[peer] -= 1
                self._out.send(peer, AppMessage(CH_EXPECTED, {
                    "e": cur.expected, "vid": view.vid.to_wire(), "by": cur.origin}))

    def clear(self, why: str) -> None:
        """A config change ends the override: the caller has put cluster.conf's values
        back in force."""
        cur, self.current, self.pending = self.current, None, {}
        if cur is not None:
            logger.warning("node %d: expected votes %d set by hand by %s end: %s; expected "
                           "votes %d from cluster.conf again", self.me, cur.expected,
                           cur.origin, why, self._configured().expected)

    def status(self) -> dict[str, Any] | None:
        cur = self.current
        if cur is None:
            return None
        return {"expected_votes": cur.expected, "configured": cur.configured,
                "origin": cur.origin, "epoch": cur.epoch,
                "unconfirmed": sorted(self.pending)}

    # ------------------------------------------------------------------ internals
    def _apply(self, expected: int, origin: str, view: View, now: float) -> None:
        configured = self._configured()
        before = self.current.expected if self.current else configured.expected
        self.current = Override(expected, configured.expected, origin, view.epoch)
        votes = configured.votes(view.nodeids)
        quorum = calculate_quorum(expected, votes, two_node=configured.two_node,
                                  member_count=len(view.nodeids))
        waived = (" wait_for_all is waived." if configured.waits_for_all else "")
        logger.warning(
            "node %d: EXPECTED VOTES SET BY HAND to %d by %s (was %d, cluster.conf %d): "
            "quorum now %d, the %d vote(s) of view %s count. RISK: a group of nodes that is "
            "not a majority of the cluster's votes can now be quorate; if the nodes outside "
            "this view are not down for good (a partition, not a failure), both sides may "
            "run the same services on the same data.%s Until the next config change or "
            "restart of clusterd.", self.me, expected, origin, before, configured.expected,
            quorum, votes, view.vid, waived)
        self._use(replace(configured, expected_votes=expected), now)   # then its effects

    def _on_ack(self, sender: int, payload: dict) -> None:
        cur = self.current
        if cur is None or sender not in self.pending or payload.get("e") != cur.expected:
            return
        del self.pending[sender]
        if payload.get("ok") is not True:
            logger.warning("node %d: node %d refused expected votes %d: %s", self.me, sender,
                           cur.expected, _origin(payload.get("why")))
