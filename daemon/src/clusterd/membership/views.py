"""Pure helpers for view changes: the events a change means and the reason sentences."""

from __future__ import annotations

from collections.abc import Mapping

from clusterd.membership.events import Event, NodeFailed, NodeJoined, NodeLeft
from clusterd.wire.messages import View

Members = set[tuple[int, int]]


def change_events(me: int, old: View | None, new: View, left: Mapping[int, int],
                  reason: str) -> list[Event]:
    """NodeLeft for members that announced their leave (that incarnation), NodeFailed for
    every other (nodeid, incarnation) that is gone, NodeJoined for the new ones."""
    before = set(old.members) if old else set()
    after = set(new.members)
    events: list[Event] = []
    for nodeid, inc in sorted(before - after):
        if nodeid == me:
            continue
        if left.get(nodeid) == inc:
            events.append(NodeLeft(nodeid, inc, f"node {nodeid} left cleanly"))
        else:
            events.append(NodeFailed(nodeid, inc, f"node {nodeid} failed: not in view "
                                     f"{new.vid} ({reason})"))
    for nodeid, inc in sorted(after - before):
        if nodeid != me:
            events.append(NodeJoined(nodeid, inc, f"node {nodeid} joined view {new.vid}"))
    return events


def proposal_reason(me: int, current: Members, desired: Members, token_ms: int) -> str:
    if not current:
        return "starting: forming a view with the reachable nodes"
    gone = sorted(n for n, _ in current - desired if n != me)
    new = sorted(n for n, _ in desired - current if n != me)
    parts = []
    if gone:
        parts.append(f"nodes {gone} silent for {token_ms} ms, left or restarted")
    if new:
        parts.append(f"nodes {new} reachable both ways")
    return "; ".join(parts) or "taking over as coordinator"
