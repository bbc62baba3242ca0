"""services.merge builds a row without visiting the reports for a service that no report
shows claimed, busy or recovering; every row must still be the one the straightforward
rules give (the reference below is merge as it was before, verbatim)."""

from __future__ import annotations

from clusterd.placement.model import ServiceState, ServiceStatus
from clusterd.services.merge import _RANK, Known, Row, merge
from clusterd.services.model import CLAIMS, AdminState, LocalService, NodeReport
from hypothesis import given, settings
from hypothesis import strategies as st

SERVICES = [f"s{i}" for i in range(6)]
NODES = ["n1", "n2", "n3", "n4"]


def reference(services, known, admin, cleared=frozenset()):
    rows = {}
    for svc in services:
        claims = []
        failed_starts = []
        busy = []
        why = ""
        restarts = ()
        status_failed = partial = False
        for _nid, k in sorted(known.items()):
            local = k.report.get(svc)
            if k.live and local.busy:
                busy.append((k.name, local.busy))
            if local.state in CLAIMS and (k.live or (k.name, svc) not in cleared):
                claims.append((0 if k.live else 1, _RANK[local.state], k.name, local.state))
            elif k.live and local.state is ServiceState.RECOVERING:
                failed_starts.append(k.name)
        claims.sort()
        owner = state = None
        duplicates = ()
        if claims:
            _ghost, _rank, owner, state = claims[0]
            duplicates = tuple(c[2] for c in claims[1:] if c[0] == 0)
            ok = next(k for k in known.values() if k.name == owner).report.get(svc)
            restarts, status_failed, why = ok.restarts, ok.status_failed, ok.why
            partial = ok.partial
        elif failed_starts:
            state = ServiceState.RECOVERING
            why = "; ".join(k.report.get(svc).why for k in known.values()
                            if k.name in failed_starts and k.report.get(svc).why)
        else:
            state = ServiceState.STOPPED
        admin_state = (ServiceState.DISABLED if svc in admin.disabled else
                       ServiceState.STOPPED if svc in admin.stopped else None)
        status = ServiceStatus(svc, state, owner, None, svc in admin.frozen, restarts,
                               status_failed, tuple(failed_starts))
        rows[svc] = Row(status, admin_state, duplicates, tuple(busy), why, partial)
    return rows


STATES = [ServiceState.STOPPED, ServiceState.STARTING, ServiceState.STARTED,
          ServiceState.STOPPING, ServiceState.FAILED, ServiceState.RECOVERING]
local_services = st.builds(
    LocalService, state=st.sampled_from(STATES), busy=st.sampled_from(["", "op1"]),
    restarts=st.sampled_from([(), (1.0,)]), status_failed=st.booleans(),
    why=st.sampled_from(["", "exit 1", "timeout"]), partial=st.booleans())
reports = st.builds(NodeReport, ready=st.booleans(),
                    services=st.dictionaries(st.sampled_from(SERVICES), local_services,
                                             max_size=6))
knowns = st.dictionaries(
    st.integers(1, 4),
    st.tuples(reports, st.booleans()), max_size=4).map(
        lambda d: {nid: Known(NODES[nid - 1], rep, live) for nid, (rep, live) in
                   # an insertion order other than by nodeid, as a real dict can have
                   sorted(d.items(), key=lambda kv: -kv[0])})
admins = st.builds(AdminState, disabled=st.frozensets(st.sampled_from(SERVICES)),
                   stopped=st.frozensets(st.sampled_from(SERVICES)),
                   frozen=st.frozensets(st.sampled_from(SERVICES)))
cleareds = st.frozensets(st.tuples(st.sampled_from(NODES), st.sampled_from(SERVICES)))


@settings(max_examples=600, deadline=None)
@given(knowns, admins, cleareds)
def test_every_row_is_the_one_the_plain_rules_give(known, admin, cleared) -> None:
    assert merge(SERVICES, known, admin, cleared) == reference(SERVICES, known, admin,
                                                               cleared)


def test_a_service_no_report_names_is_stopped_and_shows_its_admin_state() -> None:
    known = {1: Known("n1", NodeReport(ready=True, services={
        "s0": LocalService(ServiceState.STARTED)}), True)}
    admin = AdminState(disabled=frozenset({"s1"}), frozen=frozenset({"s2"}))
    rows = merge(SERVICES, known, admin)
    assert rows["s0"].status.owner == "n1"
    assert rows["s1"].status.state is ServiceState.STOPPED
    assert rows["s1"].shown_state is ServiceState.DISABLED
    assert rows["s2"].status.frozen and rows["s2"].admin_state is None
    assert rows == reference(SERVICES, known, admin)
