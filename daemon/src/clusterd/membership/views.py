"""Pure helpers for view changes: the events a change means and the reason sentences."""

from __future__ import annotations

from collections.abc import Mapping

from clusterd.events import Event, NodeFailed, NodeJoined, NodeLeft
from clusterd.wire.messages import View

Members = set[tuple[int, int]]
LEFT_CLEANLY = "left cleanly (its services were stopped)"  # a leave is announced only then
RESTARTS = "restarts keeping its services running"       # a leave with Leave.hold


def change_events(me: int, old: View | None, new: View, left: Mapping[int, int],
                  reason: str, holding: Mapping[int, int] | None = None) -> list[Event]:
    """NodeLeft for members that announced their leave (that incarnation; ``hold`` when
    ``holding`` says the leave announced a restart), NodeFailed for every other
    (nodeid, incarnation) that is gone, NodeJoined for the new ones."""
    holding = holding or {}
    before = set(old.members) if old else set()
    after = set(new.members)
    events: list[Event] = []
    for nodeid, inc in sorted(before - after):
        if nodeid == me:
            continue
        if left.get(nodeid) == inc:
            events.append(left_event(nodeid, inc, holding.get(nodeid) == inc))
        else:
            events.append(NodeFailed(nodeid, inc, f"node {nodeid} failed: not in view "
                                     f"{new.vid} ({reason})"))
    for nodeid, inc in sorted(after - before):
        if nodeid != me:
            events.append(NodeJoined(nodeid, inc, f"node {nodeid} joined view {new.vid}"))
    return events


def left_event(nodeid: int, inc: int, hold: bool, late: bool = False) -> NodeLeft:
    """The NodeLeft of a leave that incarnation announced; ``late``: it arrived after the
    view change that dropped the node (which was reported as NodeFailed)."""
    why = f"node {nodeid} {RESTARTS if hold else LEFT_CLEANLY}"
    return NodeLeft(nodeid, inc, why + (" (its leave arrived after the view change)"
                                        if late else ""), hold=hold)


def _nodes(ids: list[int]) -> str:
    return f"node {ids[0]}" if len(ids) == 1 else f"nodes {ids}"


def proposal_reason(me: int, current: Members, desired: Members,
                    why_gone: Mapping[int, str]) -> str:
    """Why the coordinator proposes ``desired``: each member that goes, grouped by why
    (``why_gone``: "left cleanly", "silent for 1000 ms", ...), then the ones that come."""
    if not current:
        return "starting: forming a view with the reachable nodes"
    back = {n for n, _ in desired}
    gone = sorted(n for n, _ in current - desired if n != me and n not in back)
    restarted = sorted(n for n, _ in current - desired if n != me and n in back)
    new = sorted(n for n, _ in desired - current if n != me and n not in restarted)
    groups: dict[str, list[int]] = {}
    for n in gone:
        groups.setdefault(why_gone.get(n, "unreachable"), []).append(n)
    parts = [f"{_nodes(ids)} {why}" for why, ids in groups.items()]
    if restarted:
        parts.append(f"{_nodes(restarted)} restarted (new incarnation)")
    if new:
        parts.append(f"{_nodes(new)} reachable both ways")
    return "; ".join(parts) or "taking over as coordinator"
