"""Report merge and the coordinator's placement snapshot (pure).

Every node keeps the last report of every node it heard (``Reports``); reports of nodes
that are no longer live members stay as *ghosts*: a service a ghost ran is still owned by
it (state as last reported, owner offline) until placement recovers it, which happens
only once fencing confirms (or the node left cleanly). Rules of :func:`merge`:

* a live member claiming a service (starting/started/stopping/failed) owns it; two live
  claimants are a conflict: the started one is kept, the others are listed as duplicates
  (the coordinator stops them);
* else a ghost claim (not cleared by the coordinator) owns it;
* else nodes that reported a failed start make it ``recovering`` (``start_failed``);
* else it is stopped; the admin state overlays disabled/stopped and the frozen flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from clusterd.placement.model import (
    FailoverDomain,
    Fence,
    InFlight,
    InFlightKind,
    NodeInfo,
    ServiceDef,
    ServiceState,
    ServiceStatus,
    Snapshot,
)
from clusterd.services.model import CLAIMS, AdminState, NodeReport

_RANK = {ServiceState.STARTED: 0, ServiceState.STARTING: 1, ServiceState.STOPPING: 2,
         ServiceState.FAILED: 3}


@dataclass(frozen=True)
class Known:
    """A node's last report: ``live`` when it is a member of the current view with the
    incarnation that sent the report."""

    name: str
    report: NodeReport
    live: bool


@dataclass(frozen=True)
class Row:
    status: ServiceStatus
    admin_state: ServiceState | None = None   # disabled / stopped by an admin
    duplicates: tuple[str, ...] = ()          # live claimants other than the owner
    busy: tuple[tuple[str, str], ...] = ()    # (node, op id) executing on this service
    why: str = ""
    partial: bool = False                     # a non-critical subtree is stopped

    @property
    def shown_state(self) -> ServiceState:
        """What clustat shows: the admin state once nothing runs any more."""
        if self.admin_state is not None and self.status.state in (
                ServiceState.STOPPED, ServiceState.RECOVERING, ServiceState.DISABLED):
            return self.admin_state
        return self.status.state


def merge(services: Iterable[str], known: Mapping[int, Known], admin: AdminState,
          cleared: frozenset[tuple[str, str]] = frozenset()) -> dict[str, Row]:
    """Every service's row by the rules of the module doc. Linear in the services plus
    the entries that matter: a service that no report shows claimed, busy or recovering
    (every one of them, at rest, but those a node runs) is stopped, and its row is built
    without visiting the reports (8,000 services on 3 nodes: a third of a second a
    services cycle before, on the loop)."""
    nodes = sorted(known.items())
    notable: set[str] = set()
    for _nid, k in nodes:
        notable.update(k.report.notable)
    rows: dict[str, Row] = {}
    for svc in services:
        if svc in notable:
            rows[svc] = _merged(svc, nodes, known, admin, cleared)
        else:
            status = ServiceStatus(svc, ServiceState.STOPPED, None, None, svc in admin.frozen,
                                   (), False, ())
            rows[svc] = Row(status, _admin_state(svc, admin))
    return rows


def _admin_state(svc: str, admin: AdminState) -> ServiceState | None:
    return (ServiceState.DISABLED if svc in admin.disabled else
            ServiceState.STOPPED if svc in admin.stopped else None)


def _merged(svc: str, nodes: list[tuple[int, Known]], known: Mapping[int, Known],
            admin: AdminState, cleared: frozenset[tuple[str, str]]) -> Row:
    """One service's row from every report (``nodes``: ``known`` by nodeid)."""
    claims: list[tuple[int, int, str, ServiceState]] = []   # (ghost?, rank, node, st)
    failed_starts: list[str] = []
    busy: list[tuple[str, str]] = []
    why = ""
    restarts: tuple[float, ...] = ()
    status_failed = partial = False
    for _nid, k in nodes:
        local = k.report.get(svc)
        if k.live and local.busy:
            busy.append((k.name, local.busy))
        if local.state in CLAIMS and (k.live or (k.name, svc) not in cleared):
            claims.append((0 if k.live else 1, _RANK[local.state], k.name, local.state))
        elif k.live and local.state is ServiceState.RECOVERING:
            failed_starts.append(k.name)
    claims.sort()
    owner = state = None
    duplicates: tuple[str, ...] = ()
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
    status = ServiceStatus(svc, state, owner, None, svc in admin.frozen, restarts,
                           status_failed, tuple(failed_starts))
    return Row(status, _admin_state(svc, admin), duplicates, tuple(busy), why, partial)


def _busy_kind(state: ServiceState) -> InFlightKind:
    return {ServiceState.STOPPING: InFlightKind.STOP,
            ServiceState.FAILED: InFlightKind.STOP}.get(state, InFlightKind.START)


def build_snapshot(*, defs: tuple[ServiceDef, ...], domains: tuple[FailoverDomain, ...],
                   rows: Mapping[str, Row], nodes: Iterable[tuple[str, int, bool]],
                   live: Mapping[str, NodeReport], admin: AdminState, quorate: bool,
                   recovery_allowed: Callable[[str], bool], pending: Iterable[InFlight],
                   now: float, exclude: frozenset[str] = frozenset(),
                   unfit: frozenset[str] = frozenset(),
                   up_since: Mapping[str, float] | None = None,
                   placed_at: Mapping[str, float] | None = None) -> Snapshot:
    """The placement input. ``nodes`` is (name, nodeid, has a fence method) per configured
    node; ``live`` the reports of live members; ``exclude`` services the coordinator
    handles itself this cycle (they appear busy); ``unfit`` live nodes that take no
    service (a fence operation against them is open: they rejoined unreset). Admin-disabled
    or -stopped services that run nowhere are shown to placement as disabled (never
    auto-started)."""
    infos = []
    for name, nodeid, fenced in nodes:
        rep = live.get(name)
        online = rep is not None
        fence = Fence.NONE
        if not online:
            fence = Fence.CONFIRMED if recovery_allowed(name) else Fence.PENDING
        infos.append(NodeInfo(name, nodeid, online,
                              standby=online and (rep.leaving or name in admin.standby
                                                  or name in unfit),
                              fence=fence, fencing_configured=fenced,
                              up_since=(up_since or {}).get(name)))
    states = []
    in_flight = list(pending)
    for d in defs:
        row = rows.get(d.name)
        if row is None:
            continue
        st = row.status
        if row.admin_state is not None and st.owner is None:
            st = ServiceStatus(d.name, ServiceState.DISABLED, None, None, st.frozen)
        if placed_at and st.owner is not None and d.name in placed_at:
            st = dataclasses.replace(st, placed_at=placed_at[d.name])
        states.append(st)
        if not any(f.service == d.name for f in in_flight):
            for node, _op in row.busy:
                in_flight.append(InFlight(d.name, _busy_kind(st.state), node))
        if d.name in exclude and not any(f.service == d.name for f in in_flight):
            in_flight.append(InFlight(d.name, InFlightKind.RELOCATE, None))
    return Snapshot(quorate=quorate, nodes=tuple(infos), services=defs, domains=domains,
                    states=tuple(states), in_flight=tuple(in_flight), now=now)
