"""Build placement Snapshots from the compact YAML case format and render actions as the
short strings the case files expect (cts-scheduler style: snapshot in, actions out).

Case file keys (all optional except nodes/services/expect)::

    description: one line
    quorate: true
    now: 1000
    nodes:    {node1: {id: 1, online: true, standby: false, fence: none|pending|confirmed,
                       clean: false, fencing: true, up_since: 50}}
    domains:  {dom: {ordered: 0, restricted: 0, nofailback: 0, members: {node1: 1}}}
    services: {web: {domain: dom, autostart: 1, exclusive: 0, recovery: restart,
                     max_restarts: 0, restart_expire_time: 0, depend: db, depend_mode: hard}}
    states:   {web: {state: started, owner: node1, frozen: false, restarts: [],
                     status_failed: false, start_failed: [], placed_at: 100}}
    in_flight: [{service: web, kind: start, node: node1}]
    expect:   {actions: ["start web node2", ...], reason: ["fragment", ...]}

Action strings: ``start SVC NODE``, ``stop SVC NODE`` (``stop SVC NODE disabled`` when the
final state is disabled), ``relocate SVC FROM TO``, ``restart SVC NODE``,
``mark SVC STATE``, ``fence NODE``. Service names are written without ``service:``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from clusterd.placement import (
    DependMode,
    DomainMember,
    FailoverDomain,
    Fence,
    FenceRequired,
    InFlight,
    InFlightKind,
    MarkState,
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
)


def _svc(name: str) -> str:
    return name if ":" in name else f"service:{name}"


def _short(name: str) -> str:
    return name.removeprefix("service:")


def snapshot_from(case: dict) -> Snapshot:
    nodes = tuple(
        NodeInfo(name, int(v.get("id", i + 1)), bool(v.get("online", True)),
                 bool(v.get("standby", False)), Fence(v.get("fence", "none")),
                 bool(v.get("clean", False)), bool(v.get("fencing", True)),
                 float(v["up_since"]) if "up_since" in v else None)
        for i, (name, v) in enumerate((case.get("nodes") or {}).items()))
    domains = tuple(
        FailoverDomain(name, tuple(DomainMember(m, int(p or 0)) for m, p in (v.get("members") or {}).items()),
                       bool(v.get("ordered", 0)), bool(v.get("restricted", 0)), bool(v.get("nofailback", 0)))
        for name, v in (case.get("domains") or {}).items())
    services = tuple(
        ServiceDef(_svc(name), v.get("domain"), bool(v.get("autostart", 1)), bool(v.get("exclusive", 0)),
                   Recovery(v.get("recovery", "restart")), int(v.get("max_restarts", 0)),
                   float(v.get("restart_expire_time", 0)),
                   _svc(v["depend"]) if v.get("depend") else None,
                   DependMode(v.get("depend_mode", "hard")))
        for name, v in ((n, v or {}) for n, v in (case.get("services") or {}).items()))
    states = tuple(
        ServiceStatus(_svc(name), ServiceState(v.get("state", "stopped")), v.get("owner"),
                      v.get("last_owner"), bool(v.get("frozen", False)),
                      tuple(float(t) for t in v.get("restarts", [])), bool(v.get("status_failed", False)),
                      tuple(v.get("start_failed", [])),
                      float(v["placed_at"]) if "placed_at" in v else None)
        for name, v in (case.get("states") or {}).items())
    flights = tuple(InFlight(_svc(f["service"]) if f["kind"] != "fence" else f["service"],
                             InFlightKind(f["kind"]), f.get("node"))
                    for f in case.get("in_flight") or [])
    return Snapshot(bool(case.get("quorate", True)), nodes, services, domains, states, flights,
                    float(case.get("now", 1000)))


def render(action) -> str:
    if isinstance(action, Start):
        return f"start {_short(action.service)} {action.node}"
    if isinstance(action, Stop):
        tail = "" if action.final_state is ServiceState.STOPPED else f" {action.final_state.value}"
        return f"stop {_short(action.service)} {action.node}{tail}"
    if isinstance(action, Relocate):
        return f"relocate {_short(action.service)} {action.source} {action.target}"
    if isinstance(action, Restart):
        return f"restart {_short(action.service)} {action.node}"
    if isinstance(action, MarkState):
        return f"mark {_short(action.service)} {action.state.value}"
    if isinstance(action, FenceRequired):
        return f"fence {action.node}"
    raise TypeError(action)


def load_cases(directory: Path) -> list[tuple[str, dict]]:
    return [(p.stem, yaml.safe_load(p.read_text())) for p in sorted(directory.glob("*.yaml"))]
