"""Where may a service run: node scoring per failover domain, hard constraints, and the
candidate explainer (pure).

Scoring is rgmanager's ``node_should_start()`` (RHCS-3.0.12
``rgmanager/src/daemons/fo_domain.c``; RHCS-SEMANTICS b5), ILLEGAL < GOOD < BETTER < BEST:

1. no domain, or the domain does not exist -> BEST;
2. N not a member, no member available -> BEST if unrestricted, ILLEGAL if restricted;
3. N not a member, some member available -> GOOD if unrestricted, ILLEGAL if restricted;
4. N a member, not the best-priority available member -> BETTER if ordered (BEST if
   nofailback and N owns the started service); BEST if unordered;
5. N the best-priority available member -> BEST (BETTER if nofailback and the service is
   started on another available node).

"Available" is rgmanager's "online", narrowed by our hard constraints: a node in standby,
a node where this service's start failed during the current recovery, and a node that
exclusivity forbids (``groups.c`` ``best_target_node()``/``consider_start()``: an exclusive
service needs an empty node; nothing joins a node running an exclusive service) are
ILLEGAL and do not count as available domain members, so "the best available member"
is the best member that may actually take the service.

Ties (same score and, in ordered domains, the same priority) are broken by the number
of services the node runs, then the lowest nodeid, then name. rgmanager shuffled equal
nodes randomly (``fod_get_node`` / ``node_domain_set``); a deterministic order makes
``decide()`` a function (every node computing it on the same snapshot agrees, tests are
reproducible) and can never move a service back and forth, while counting services
still spreads them as the shuffle meant to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from clusterd.placement.model import InFlightKind, ServiceDef, ServiceState, Snapshot

# States in which the owner may hold the service's resources. RECOVERING is not one of
# them: the executor sets it only after the service was stopped cleanly on the owner
# (its in-place start failed), so it awaits placement like a stopped service.
RUNNING = frozenset({ServiceState.STARTED, ServiceState.STARTING, ServiceState.STOPPING})


class Score(IntEnum):
    ILLEGAL = 0
    GOOD = 1
    BETTER = 2
    BEST = 3


@dataclass(frozen=True)
class Candidate:
    node: str
    score: Score
    why: str


def occupancy(snap: Snapshot) -> dict[str, set[str]]:
    """node -> services running there or on their way there (in-flight starts/relocations)."""
    occ: dict[str, set[str]] = {n.name: set() for n in snap.nodes}
    for st in snap.states:
        owner = snap.node(st.owner)
        if st.state in RUNNING and owner is not None and owner.online:
            occ[owner.name].add(st.name)
    for f in snap.in_flight:
        if f.kind in (InFlightKind.START, InFlightKind.RELOCATE, InFlightKind.RESTART) and f.node:
            for services in occ.values():
                services.discard(f.service)
            occ.setdefault(f.node, set()).add(f.service)
    return occ


def _hard_constraint(snap: Snapshot, svc: ServiceDef, node: str,
                     occ: Mapping[str, set[str]]) -> str | None:
    """Why ``node`` can never take ``svc`` right now, or None."""
    info = snap.node(node)
    if info is None:
        return "not a cluster member"
    if not info.online:
        return "offline"
    if info.standby:
        return "in standby: takes no services"
    st = snap.state(svc.name)
    if node in st.start_failed:
        return "a start failed there during this recovery"
    others = sorted(occ.get(node, set()) - {svc.name})
    if svc.exclusive and others:
        return f"exclusive service needs an empty node; it runs {', '.join(others)}"
    excl = [o for o in others if (d := snap.service(o)) is not None and d.exclusive]
    if excl:
        return f"runs exclusive service {excl[0]}"
    return None


def _domain_score(snap: Snapshot, svc: ServiceDef, node: str, available: set[str]) -> Candidate:
    dom = snap.domain(svc.domain)
    if dom is None:
        why = "no failover domain" if not svc.domain else f"domain {svc.domain} does not exist"
        return Candidate(node, Score.BEST, why)
    up = [m.name for m in dom.members if m.name in available]
    kind = "restricted" if dom.restricted else "unrestricted"
    if not dom.has(node):
        if not up:
            if dom.restricted:
                return Candidate(node, Score.ILLEGAL, f"restricted domain {dom.name} has no member available")
            return Candidate(node, Score.BEST, f"no member of {kind} domain {dom.name} is available")
        if dom.restricted:
            return Candidate(node, Score.ILLEGAL, f"not a member of restricted domain {dom.name}")
        return Candidate(node, Score.GOOD, f"not a member of {kind} domain {dom.name}; members are available")
    if not dom.ordered:
        return Candidate(node, Score.BEST, f"member of unordered domain {dom.name}")
    st = snap.state(svc.name)
    running = st.state in RUNNING and st.owner is not None
    best = min(dom.priority(m) for m in up) if up else dom.priority(node)
    prio = dom.priority(node)
    if prio <= best:
        if dom.nofailback and running and st.owner != node and st.owner in available:
            return Candidate(node, Score.BETTER, f"highest-priority member ({prio}) of {dom.name}, "
                                                 f"but nofailback keeps it on {st.owner}")
        return Candidate(node, Score.BEST, f"highest-priority available member ({prio}) of ordered "
                                           f"domain {dom.name}")
    if dom.nofailback and running and st.owner == node:
        return Candidate(node, Score.BEST, f"current owner, member ({prio}) of {dom.name} with nofailback")
    return Candidate(node, Score.BETTER, f"member ({prio}) of ordered domain {dom.name}; a "
                                         f"higher-priority member ({best}) is available")


def score_all(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]] | None = None
              ) -> list[Candidate]:
    """Every configured node with its score and the reason, best first."""
    occ = occupancy(snap) if occ is None else occ
    blocked = {n.name: _hard_constraint(snap, svc, n.name, occ) for n in snap.nodes}
    available = {n for n, why in blocked.items() if why is None}
    out = []
    for n in snap.nodes:
        if blocked[n.name] is not None:
            out.append(Candidate(n.name, Score.ILLEGAL, blocked[n.name]))
        else:
            out.append(_domain_score(snap, svc, n.name, available))
    return sorted(out, key=lambda c: _rank(snap, svc, c, occ))


def _rank(snap: Snapshot, svc: ServiceDef, c: Candidate, occ: Mapping[str, set[str]]) -> tuple:
    dom = snap.domain(svc.domain)
    info = snap.node(c.node)
    load = len(occ.get(c.node, set()) - {svc.name})
    return (-int(c.score), dom.priority(c.node) if dom else 0, load,
            info.nodeid if info else 1 << 30, c.node)


def candidates(snap: Snapshot, service: str) -> list[tuple[str, Score, str]]:
    """The explainer cluster_info shows: (node, score, why) for every node, best first."""
    svc = snap.service(service)
    if svc is None:
        raise KeyError(f"no such service {service!r}")
    return [(c.node, c.score, c.why) for c in score_all(snap, svc)]


def pick(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]],
         exclude: Iterable[str] = (), minimum: Score = Score.BEST) -> Candidate | None:
    """The best node with at least ``minimum`` (automatic placement needs BEST)."""
    skip = set(exclude)
    for c in score_all(snap, svc, occ):
        if c.node not in skip and c.score >= minimum:
            return c
    return None


def score_of(snap: Snapshot, svc: ServiceDef, node: str, occ: Mapping[str, set[str]]) -> Candidate:
    return next(c for c in score_all(snap, svc, occ) if c.node == node)


def explain_none(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]],
                 exclude: Iterable[str] = ()) -> str:
    """Why no node qualifies: every node with its reason."""
    skip = set(exclude)
    parts = [f"{c.node}: {c.why if c.node not in skip or c.score is Score.ILLEGAL else 'the node it leaves'}"
             for c in score_all(snap, svc, occ)]
    return "; ".join(parts) or "no nodes configured"
