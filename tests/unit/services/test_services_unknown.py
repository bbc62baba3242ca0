"""Issue 11: services owned by nodes nobody in the view has heard from are unknown, never
"stopped"; members report what their fencers block and the claims they last heard."""

from __future__ import annotations

import dataclasses

import pytest
from clusterd.placement.model import (
    DomainMember,
    FailoverDomain,
    Recovery,
    ServiceDef,
    ServiceState,
)
from clusterd.services import coordinator as co
from clusterd.services.merge import Known, merge
from clusterd.services.model import AdminState, Ghost, LocalService, NodeReport

S = ServiceState
WEB = "service:web"
DOM = FailoverDomain("d", (DomainMember("n1", 1), DomainMember("n2", 2), DomainMember("n3", 3)),
                     ordered=True)
DEFS = (ServiceDef(WEB, "d", recovery=Recovery.RESTART),)
NODES = (("n1", 1, True), ("n2", 2, True), ("n3", 3, True))


def rep(state: S = S.STOPPED, **kw) -> NodeReport:
    return NodeReport(ready=True, services={WEB: LocalService(state)}, **kw)


def step(live: dict[str, NodeReport], *, ghosts: dict[str, NodeReport] | None = None,
         allowed=lambda n: False, unknown=frozenset(), unfit=frozenset()):
    ids = {"n1": 1, "n2": 2, "n3": 3}
    k = {ids[n]: Known(n, r, True) for n, r in live.items()}
    k.update({ids[n]: Known(n, r, False) for n, r in (ghosts or {}).items()})
    rows = merge([WEB], k, AdminState())
    return co.step(co.CoordState(epoch=5), co.Inputs(
        DEFS, (DOM,), rows, NODES, live, AdminState(), allowed, 10.0, 1000.0,
        unknown=frozenset(unknown), unfit=frozenset(unfit)))


def test_report_round_trips_blocked_nodes_and_ghost_claims() -> None:
    r = NodeReport(True, False, AdminState(), {WEB: LocalService(S.STOPPED)},
                   frozenset({"n1"}), {"n1": Ghost(1764, {WEB: S.STARTED})})
    wire = r.to_wire()
    assert wire["bk"] == ["n1"] and wire["gh"]["n1"] == {"i": 1764, "s": {WEB: "started"}}
    assert NodeReport.from_wire(wire) == r


def test_an_older_peers_report_reads_as_blocking_nothing() -> None:
    wire = rep().to_wire()
    assert "bk" not in wire and "gh" not in wire
    assert NodeReport.from_wire(wire).blocked == frozenset()


@pytest.mark.parametrize("ghost", [
    {"i": -1, "s": {}}, {"i": 1, "s": {WEB: "stopped"}}, {"i": "1", "s": {}}, [], {"i": 1},
])
def test_bad_ghosts_are_refused(ghost) -> None:
    wire = {**rep().to_wire(), "gh": {"n1": ghost}}
    with pytest.raises((TypeError, ValueError)):
        NodeReport.from_wire(wire)


def test_a_service_nobody_claims_is_not_started_while_an_unknown_node_may_run_it() -> None:
    live = {"n2": rep(), "n3": rep()}
    out = step(live, unknown={"n1"})
    assert out.commands == ()
    assert "n1 may run it" in out.reason and "waiting for n1" in out.reason
    out = step(live, allowed=lambda n: n == "n1")        # fenced: known to run nothing
    assert [(n, c.kind.value) for n, c in out.commands] == [("n2", "start")]


def test_a_ghost_claim_heard_by_another_member_waits_for_that_nodes_fence() -> None:
    live = {"n2": rep(), "n3": rep()}
    out = step(live, ghosts={"n1": rep(S.STARTED)})
    assert out.commands == () and "fenced" in out.reason
    out = step(live, ghosts={"n1": rep(S.STARTED)}, allowed=lambda n: n == "n1")
    assert [(n, c.kind.value) for n, c in out.commands] == [("n2", "start")]


def test_a_member_with_an_open_fence_against_it_takes_no_service() -> None:
    live = {"n1": rep(), "n2": rep(), "n3": rep()}
    out = step(live, unfit={"n1"})
    assert [(n, c.kind.value) for n, c in out.commands] == [("n2", "start")]


def test_a_relocation_target_is_not_started_while_the_state_is_unknown() -> None:
    live = {"n2": rep(), "n3": rep()}
    rows = merge([WEB], {2: Known("n2", live["n2"], True), 3: Known("n3", live["n3"], True)},
                 AdminState())
    cs = dataclasses.replace(co.CoordState(epoch=5), targets={WEB: "n3"})
    out = co.step(cs, co.Inputs(DEFS, (DOM,), rows, NODES, live, AdminState(),
                                lambda n: False, 10.0, 1000.0, unknown=frozenset({"n1"})))
    assert out.commands == ()
