"""Safety properties of decide() over random snapshots (hypothesis)."""

from __future__ import annotations

from clusterd.placement import (
    DomainMember,
    FailoverDomain,
    Fence,
    InFlight,
    InFlightKind,
    NodeInfo,
    Recovery,
    Relocate,
    Restart,
    ServiceDef,
    ServiceState,
    ServiceStatus,
    Snapshot,
    Start,
    Stop,
    decide,
)
from clusterd.placement.domains import RUNNING, occupancy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NODES = ["node1", "node2", "node3", "node4"]


@st.composite
def snapshots(draw) -> Snapshot:
    n = draw(st.integers(1, 4))
    nodes = tuple(
        NodeInfo(NODES[i], i + 1, online=draw(st.booleans()), standby=draw(st.booleans()) and draw(st.booleans()),
                 fence=draw(st.sampled_from(list(Fence))), left_cleanly=draw(st.booleans()),
                 fencing_configured=draw(st.booleans()))
        for i in range(n))
    names = [x.name for x in nodes]
    domains = tuple(
        FailoverDomain(f"d{j}", tuple(DomainMember(m, draw(st.integers(0, 3)))
                                      for m in draw(st.lists(st.sampled_from(names), unique=True))),
                       ordered=draw(st.booleans()), restricted=draw(st.booleans()),
                       nofailback=draw(st.booleans()))
        for j in range(draw(st.integers(0, 2))))
    k = draw(st.integers(1, 5))
    services = []
    for i in range(k):
        dep = draw(st.sampled_from([None, *[f"service:s{j}" for j in range(i)]]))
        services.append(ServiceDef(
            f"service:s{i}", draw(st.sampled_from([None, "d0", "d1", "nosuch"])), draw(st.booleans()),
            draw(st.booleans()) and draw(st.booleans()), draw(st.sampled_from(list(Recovery))),
            draw(st.integers(0, 3)), draw(st.sampled_from([0, 60, 600])), dep))
    states = tuple(
        ServiceStatus(s.name, draw(st.sampled_from(list(ServiceState))),
                      draw(st.sampled_from([None, *names, "ghost"])), None, draw(st.booleans()) and draw(st.booleans()),
                      tuple(draw(st.lists(st.floats(0, 1000), max_size=4))), draw(st.booleans()),
                      tuple(draw(st.lists(st.sampled_from(names), unique=True, max_size=2))))
        for s in services)
    flights = tuple(InFlight(s.name, InFlightKind.START, draw(st.sampled_from(names)))
                    for s in services if draw(st.integers(0, 5)) == 0)
    return Snapshot(draw(st.booleans()) or draw(st.booleans()), nodes, tuple(services), domains, states,
                    flights, 1000.0)


def _maybe_running(snap: Snapshot) -> dict[str, set[str]]:
    """Where each service may be running now (an unfenced, gone owner may still run it)."""
    where: dict[str, set[str]] = {}
    for s in snap.states:
        node = snap.node(s.owner)
        if node is None:
            continue
        if (s.state in RUNNING or s.state is ServiceState.FAILED) and not node.safe_to_take_over:
            where.setdefault(s.name, set()).add(node.name)
    for f in snap.in_flight:
        if f.node:
            where.setdefault(f.service, set()).add(f.node)
    return where


def _placements(decision) -> list[tuple[str, str]]:
    return [(a.service, a.target if isinstance(a, Relocate) else a.node)
            for a in decision.actions if isinstance(a, Start | Relocate | Restart)]


COMMON = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(snapshots())
def test_never_on_two_nodes(snap):
    decision = decide(snap)
    where = _maybe_running(snap)
    placed = _placements(decision)
    assert len({s for s, _ in placed}) == len(placed), "two placements for one service"
    for a in decision.actions:
        if isinstance(a, Stop):
            where.get(a.service, set()).discard(a.node)
        if isinstance(a, Relocate):
            where.get(a.service, set()).discard(a.source)
    for service, node in placed:
        others = where.get(service, set()) - {node}
        assert not others, f"{service} placed on {node} while possibly running on {others}"


@COMMON
@given(snapshots())
def test_never_outside_restricted_domain_offline_or_standby(snap):
    for service, node in _placements(decide(snap)):
        svc = snap.service(service)
        dom = snap.domain(svc.domain)
        if dom is not None and dom.restricted:
            assert dom.has(node)
        info = snap.node(node)
        assert info is not None and info.online and not info.standby


@COMMON
@given(snapshots())
def test_never_starts_service_of_unfenced_failed_owner(snap):
    for service, node in _placements(decide(snap)):
        st_ = snap.state(service)
        owner = snap.node(st_.owner)
        if owner is not None and owner.name != node and (st_.state in RUNNING or st_.state is ServiceState.FAILED):
            assert owner.online or owner.safe_to_take_over
            assert st_.state is not ServiceState.FAILED or owner.safe_to_take_over


@COMMON
@given(snapshots())
def test_nothing_starts_when_inquorate(snap):
    if snap.quorate:
        return
    assert _placements(decide(snap)) == []


@COMMON
@given(snapshots())
def test_frozen_disabled_and_busy_services_untouched(snap):
    decision = decide(snap)
    touched = {getattr(a, "service", None) for a in decision.actions}
    if not snap.quorate:
        return
    for s in snap.states:
        if s.frozen or s.state is ServiceState.DISABLED or snap.busy(s.name):
            assert s.name not in touched


@COMMON
@given(snapshots())
def test_no_new_service_joins_an_exclusive_one(snap):
    decision = decide(snap)
    exclusive_at = {}  # as decide() sees it: states, overridden by in-flight targets
    for node, services in occupancy(snap).items():
        for name in services:
            if snap.service(name).exclusive:
                exclusive_at[node] = name
    moved_away = {a.service for a in decision.actions if isinstance(a, Relocate | Stop)}
    for service, node in _placements(decision):
        if node in exclusive_at and exclusive_at[node] != service and exclusive_at[node] not in moved_away:
            assert service in occupancy(snap)[node]  # only a restart of something already there
