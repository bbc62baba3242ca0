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


def _hard_constraints(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]]
                      ) -> dict[str, str | None]:
    """node -> why it can never take ``svc`` right now (None: it may)."""
    st = snap.state(svc.name)
    failed = set(st.start_failed)
    exclusive_on = {}
    exclusive = snap.exclusive - {svc.name}
    if exclusive:       # only those: scanning every running service per service was
        for node, services in occ.items():   # quadratic (1,000 services: 1 s a pass)
            for name in services & exclusive:
                exclusive_on[node] = name
    out: dict[str, str | None] = {}
    for info in snap.nodes:
        node = info.name
        if not info.online:
            out[node] = "offline"
        elif info.standby:
            out[node] = "in standby: takes no services"
        elif node in failed:
            out[node] = "a start failed there during this recovery"
        elif svc.exclusive and (others := occ.get(node, set()) - {svc.name}):
            out[node] = f"exclusive service needs an empty node; it runs {', '.join(sorted(others))}"
        elif node in exclusive_on:
            out[node] = f"runs exclusive service {exclusive_on[node]}"
        else:
            out[node] = None
    return out


def _domain_scores(snap: Snapshot, svc: ServiceDef, available: list[str]) -> list[Candidate]:
    dom = snap.domain(svc.domain)
    if dom is None:
        why = "no failover domain" if not svc.domain else f"domain {svc.domain} does not exist"
        return [Candidate(n, Score.BEST, why) for n in available]
    avail = set(available)
    up = [m.name for m in dom.members if m.name in avail]
    kind = "restricted" if dom.restricted else "unrestricted"
    st = snap.state(svc.name)
    running = st.state in RUNNING and st.owner is not None
    prio = {m.name: dom.priority(m.name) for m in dom.members}
    best = min((prio[m] for m in up), default=0)
    out = []
    for node in available:
        if node not in prio:
            if not up:
                out.append(Candidate(node, Score.ILLEGAL, f"restricted domain {dom.name} has no member available")
                           if dom.restricted else
                           Candidate(node, Score.BEST, f"no member of {kind} domain {dom.name} is available"))
            elif dom.restricted:
                out.append(Candidate(node, Score.ILLEGAL, f"not a member of restricted domain {dom.name}"))
            else:
                out.append(Candidate(node, Score.GOOD, f"not a member of {kind} domain {dom.name}; "
                                                       "members are available"))
        elif not dom.ordered:
            out.append(Candidate(node, Score.BEST, f"member of unordered domain {dom.name}"))
        elif prio[node] <= best:
            if dom.nofailback and running and st.owner != node and st.owner in avail:
                out.append(Candidate(node, Score.BETTER, f"highest-priority member ({prio[node]}) of "
                                                         f"{dom.name}, but nofailback keeps it on {st.owner}"))
            else:
                out.append(Candidate(node, Score.BEST, f"highest-priority available member ({prio[node]}) "
                                                       f"of ordered domain {dom.name}"))
        elif dom.nofailback and running and st.owner == node:
            out.append(Candidate(node, Score.BEST, f"current owner, member ({prio[node]}) of {dom.name} "
                                                   "with nofailback"))
        else:
            out.append(Candidate(node, Score.BETTER, f"member ({prio[node]}) of ordered domain {dom.name}; "
                                                     f"a higher-priority member ({best}) is available"))
    return out


def score_all(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]] | None = None
              ) -> list[Candidate]:
    """Every configured node with its score and the reason, best first."""
    occ = occupancy(snap) if occ is None else occ
    blocked = _hard_constraints(snap, svc, occ)
    scored = {c.node: c for c in _domain_scores(snap, svc, [n for n, why in blocked.items() if why is None])}
    dom = snap.domain(svc.domain)
    prio = {m.name: dom.priority(m.name) for m in dom.members} if dom else {}
    other = 102 if dom is not None and dom.ordered else 0
    out = []
    for info in snap.nodes:
        c = scored.get(info.name) or Candidate(info.name, Score.ILLEGAL, blocked[info.name] or "")
        here = occ.get(info.name, ())
        load = len(here) - (svc.name in here)
        out.append(((-int(c.score), prio.get(info.name, other), load, info.nodeid, info.name), c))
    out.sort(key=lambda rc: rc[0])
    return [c for _, c in out]


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
