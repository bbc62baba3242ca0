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
from heapq import heapify, heappop, heappush
from itertools import groupby

from clusterd.placement.model import (
    FailoverDomain,
    InFlightKind,
    ServiceDef,
    ServiceState,
    Snapshot,
)

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
    return _occupancy(snap)[0]


def _occupancy(snap: Snapshot) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``occupancy()`` and its inverse (service -> the nodes whose sets hold it), so that
    moving a service touches only the sets that hold it, never every node's."""
    occ: dict[str, set[str]] = {n.name: set() for n in snap.nodes}
    where: dict[str, set[str]] = {}
    for st in snap.states:
        owner = snap.node(st.owner)
        if st.state in RUNNING and owner is not None and owner.online:
            occ[owner.name].add(st.name)
            where.setdefault(st.name, set()).add(owner.name)
    for f in snap.in_flight:
        if f.kind in (InFlightKind.START, InFlightKind.RELOCATE, InFlightKind.RESTART) and f.node:
            for node in where.pop(f.service, ()):
                occ[node].discard(f.service)
            occ.setdefault(f.node, set()).add(f.service)
            where[f.service] = {f.node}
    return occ, where


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


EXPLAIN_EACH = 8      # up to this many nodes, each is named with its reason
EXPLAIN_NAMES = 4     # above it, nodes are grouped by reason, naming this many per group
EXPLAIN_GROUPS = 6    # and this many groups (the rest counted)


def explain_none(snap: Snapshot, svc: ServiceDef, occ: Mapping[str, set[str]],
                 exclude: Iterable[str] = ()) -> str:
    """Why no node qualifies, in ``score_all``'s order (``explain_reasons``)."""
    skip = set(exclude)
    return explain_reasons([(c.node, c.why if c.node not in skip or c.score is Score.ILLEGAL
                             else "the node it leaves") for c in score_all(snap, svc, occ)])


def explain_reasons(pairs: list[tuple[str, str]]) -> str:
    """(node, why) pairs as one text: every node with its reason ("node1: offline;
    node2: ..."), or, on a cluster of more than ``EXPLAIN_EACH`` nodes, the nodes grouped
    by reason ("offline: node4, node5, node6, node7 and 36 more; ..."): the text is
    bounded whatever the cluster's size (it goes into logs, service states and commands;
    300 nodes each named with its reason made 15 KB for one service)."""
    if not pairs:
        return "no nodes configured"
    if len(pairs) <= EXPLAIN_EACH:
        return "; ".join(f"{node}: {why}" for node, why in pairs)
    groups: dict[str, list[str]] = {}
    for node, why in pairs:
        groups.setdefault(why, []).append(node)
    parts = []
    for why, nodes in list(groups.items())[:EXPLAIN_GROUPS]:
        named = ", ".join(nodes[:EXPLAIN_NAMES])
        more = f" and {len(nodes) - EXPLAIN_NAMES} more" if len(nodes) > EXPLAIN_NAMES else ""
        parts.append(f"{why[:200]}: {named}{more}")
    if len(groups) > EXPLAIN_GROUPS:
        rest = sum(len(nodes) for nodes in list(groups.values())[EXPLAIN_GROUPS:])
        parts.append(f"{len(groups) - EXPLAIN_GROUPS} other reasons for {rest} more nodes "
                     f"(cluster_info and the web page list every node)")
    return "; ".join(parts)


# -- the decision path ------------------------------------------------------------------
#
# ``score_all`` scores every node for a service, writes every reason and sorts: it is the
# explainer's and the manual operations' ranking, and the definition of the order. A
# decision asks far less (is the owner still legal and best? which node is first?) for
# every service in every services cycle, so it uses ``Ranker``: the same scores and order
# (tests/unit/placement/test_placement_fast.py checks it against the straightforward code
# on random snapshots), computed for one node at a time; the best node is the least of the
# sort key, taken from the first group of nodes ranked alike (a domain's members of one
# priority, its other nodes, or every node), each kept in a heap by load for the whole
# pass; a reason is written only for the nodes an action names. A started service on a
# node that scores BEST costs one node's score.


class _Group:
    """Nodes that, for any one service, share their place in ``score_all``'s order up to
    the load (the same score and priority; the service's owner and the nodes that hold it
    are ranked apart), in a heap by (services on the node, nodeid, name). Entries go stale
    when a node's load changes (``Ranker.move`` pushes a fresh one) and are dropped when
    met. Only nodes online and not in standby: the others never take a service."""

    __slots__ = ("heap", "prio")

    def __init__(self, prio: int, heap: list[tuple[int, int, str]]) -> None:
        self.prio = prio
        self.heap = heap


class _Dom:
    """A failover domain's lookups, built once per decision."""

    __slots__ = ("dom", "groups", "members", "other", "prio", "rest")

    def __init__(self, dom: FailoverDomain, configured: set[str], open_: set[str]) -> None:
        self.dom = dom
        self.prio = {m.name: dom.priority(m.name) for m in dom.members}
        # members that may take services, best priority first: the first one available
        # to a service is its best available member
        self.members = sorted((n for n in self.prio if n in configured and n in open_),
                              key=self.prio.__getitem__)
        self.other = 102 if dom.ordered else 0
        self.groups: list[_Group] = []      # the members by priority, best first
        self.rest: _Group | None = None     # the other nodes


class _Ctx:
    """One service as the ranking sees it at one moment of the pass."""

    __slots__ = ("best", "d", "excl_self", "failed", "owner_avail", "running", "st", "svc", "up")


class Ranker:
    """The decision path's view of ``score_all`` for one pass over a snapshot: the same
    score and order, without scoring every node or writing reasons nobody reads.
    ``occ`` is the pass's occupancy, changed only through ``move``."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.occ, self._where = _occupancy(snap)
        self._info = {n.name: n for n in snap.nodes}
        self._names = [n.name for n in snap.nodes]
        # Duplicate node names make score_all's ranking odd (one reason per name, one row
        # per node): such a snapshot takes the straightforward path.
        self.exact = len(self._info) == len(snap.nodes)
        self._open = {n.name for n in snap.nodes if n.online and not n.standby}
        self._configured = set(self._names)
        # when the last node came up (None: some node's time is unknown, "just now")
        ups = [n.up_since for n in snap.nodes]
        self.latest_up = None if None in ups else max(ups, default=float("-inf"))
        self._doms: dict[str, _Dom] = {}
        self._explained: dict[tuple, str] = {}
        self._groups_of: dict[str, list[_Group]] = {}
        self._all: _Group | None = None
        self._exclusive = snap.exclusive
        # node -> how many exclusive services its set holds
        self._exc: dict[str, int] = {}
        if self._exclusive:
            for node, services in self.occ.items():
                self._exc[node] = len(services & self._exclusive)

    def move(self, service: str, target: str | None) -> None:
        """``service`` now runs on ``target`` (None: nowhere) for the rest of the pass."""
        self._explained.clear()
        excl = service in self._exclusive
        changed = list(self._where.pop(service, ()))
        for node in changed:
            self.occ[node].discard(service)
            if excl:
                self._exc[node] -= 1
        if target is not None:
            here = self.occ.setdefault(target, set())
            if excl and service not in here:
                self._exc[target] = self._exc.get(target, 0) + 1
            here.add(service)
            self._where[service] = {target}
            changed.append(target)
        for node in changed:
            groups = self._groups_of.get(node)
            if groups:
                entry = (len(self.occ[node]), self._info[node].nodeid, node)
                for g in groups:
                    heappush(g.heap, entry)

    def _group(self, nodes: Iterable[str], prio: int) -> _Group:
        nodes = [n for n in nodes if n in self._open]
        g = _Group(prio, [(len(self.occ[n]), self._info[n].nodeid, n) for n in nodes])
        heapify(g.heap)
        for n in nodes:
            self._groups_of.setdefault(n, []).append(g)
        return g

    def _dom(self, dom: FailoverDomain) -> _Dom:
        d = self._doms.get(dom.name)
        if d is None or d.dom is not dom:
            d = self._doms[dom.name] = _Dom(dom, self._configured, self._open)
        return d

    def context(self, svc: ServiceDef) -> _Ctx:
        snap = self.snap
        c = _Ctx()
        c.svc = svc
        c.st = st = snap.state(svc.name)
        c.failed = st.start_failed
        c.excl_self = svc.name in self._exclusive
        dom = snap.domain(svc.domain)
        c.d = d = self._dom(dom) if dom is not None else None
        c.up, c.best = False, 0
        if d is not None:
            for node in d.members:
                if self._available(c, node):
                    c.up, c.best = True, d.prio[node]
                    break
        c.running = st.state in RUNNING and st.owner is not None
        c.owner_avail = st.owner in self._configured and self._available(c, st.owner)
        return c

    def _available(self, c: _Ctx, node: str) -> bool:
        """``_hard_constraints`` gives ``node`` no reason (a configured node)."""
        if node not in self._open or node in c.failed:
            return False
        here = self.occ.get(node)
        if here:
            inside = c.svc.name in here
            if c.svc.exclusive and len(here) > inside:
                return False
            if self._exc and self._exc.get(node, 0) - (inside and c.excl_self) > 0:
                return False
        return True

    def _domain_score(self, c: _Ctx, node: str) -> Score:
        """``_domain_scores`` for an available node."""
        d = c.d
        if d is None:
            return Score.BEST
        dom = d.dom
        p = d.prio.get(node)
        if p is None:
            if dom.restricted:
                return Score.ILLEGAL
            return Score.GOOD if c.up else Score.BEST
        if not dom.ordered:
            return Score.BEST
        if p <= c.best:
            if dom.nofailback and c.running and c.st.owner != node and c.owner_avail:
                return Score.BETTER
            return Score.BEST
        if dom.nofailback and c.running and c.st.owner == node:
            return Score.BEST
        return Score.BETTER

    def score(self, c: _Ctx, node: str) -> Score:
        """The score ``score_all`` gives a configured node."""
        if not self.exact:
            return self.candidate(c, node).score
        return self._domain_score(c, node) if self._available(c, node) else Score.ILLEGAL

    def candidate(self, c: _Ctx, node: str) -> Candidate:
        """The row ``score_all`` gives a configured node, with its reason."""
        if not self.exact:
            return next(x for x in score_all(self.snap, c.svc, self.occ) if x.node == node)
        if not self._available(c, node):
            return Candidate(node, Score.ILLEGAL, self._blocked_why(c, node))
        return Candidate(node, self._domain_score(c, node), self._domain_why(c, node))

    def pick(self, c: _Ctx, exclude: Iterable[str] = (), minimum: Score = Score.BEST
             ) -> Candidate | None:
        """``pick()``: the first node of ``score_all``'s order not in ``exclude`` with at
        least ``minimum``, with its reason."""
        node = self.best(c, exclude, minimum)
        return None if node is None else self.candidate(c, node)

    def best(self, c: _Ctx, exclude: Iterable[str] = (), minimum: Score = Score.BEST) -> str | None:
        """The node ``pick()`` chooses: the minimum of the order's key, from the nodes
        ranked apart (the owner, the nodes that hold the service) and the first group,
        in the order's sequence, with a node that may take the service."""
        if not self.exact or minimum <= Score.ILLEGAL:
            found = pick(self.snap, c.svc, self.occ, exclude, minimum)
            return None if found is None else found.node
        skip = exclude if isinstance(exclude, set | frozenset) else set(exclude)
        name = c.svc.name
        d = c.d
        prio, other = (d.prio, d.other) if d is not None else ({}, 0)
        apart = set(self._where.get(name, ()))
        if c.st.owner is not None:
            apart.add(c.st.owner)
        best_key, best = None, None
        for node in apart:
            if node in skip or node not in self._configured or not self._available(c, node):
                continue
            score = self._domain_score(c, node)
            if score >= minimum:
                here = self.occ[node]
                key = (-score, prio.get(node, other), len(here) - (name in here), self._info[node].nodeid, node)
                if best_key is None or key < best_key:
                    best_key, best = key, node
        for g, score in self._sequence(c):
            if score < minimum:
                break
            node = self._first(c, g, skip, apart)
            if node is not None:
                key = (-score, g.prio, len(self.occ[node]), self._info[node].nodeid, node)
                if best_key is None or key < best_key:
                    best_key, best = key, node
                break       # every later group ranks below this one
        return best

    def _sequence(self, c: _Ctx) -> list[tuple[_Group, Score]]:
        """The groups in the order's sequence, with the score their nodes (other than the
        owner) have for ``c``."""
        d = c.d
        if d is None:
            if self._all is None:
                self._all = self._group(self._names, 0)
            return [(self._all, Score.BEST)]
        dom = d.dom
        if d.rest is None:  # built when first needed: a steady pass never asks
            for p, nodes in groupby(d.members, key=d.prio.__getitem__):
                d.groups.append(self._group(nodes, p))
            d.rest = self._group((n for n in self._names if n not in d.prio), d.other)
        if not c.up:        # no member available: the other nodes are BEST or ILLEGAL
            return [] if dom.restricted else [(d.rest, Score.BEST)]
        out = []
        for g in d.groups:
            if not dom.ordered:
                score = Score.BEST
            elif g.prio <= c.best:
                held = dom.nofailback and c.running and c.owner_avail
                score = Score.BETTER if held else Score.BEST
            else:
                score = Score.BETTER
            out.append((g, score))
        out.append((d.rest, Score.ILLEGAL if dom.restricted else Score.GOOD))
        return out

    def _first(self, c: _Ctx, g: _Group, skip: set[str] | frozenset[str], apart: set[str]
               ) -> str | None:
        """The least loaded node of ``g`` that may take the service (not one ranked apart
        or skipped); the entries met on the way are put back."""
        heap, occ = g.heap, self.occ
        exclusive = c.svc.exclusive
        seen: set[str] = set()
        kept = []
        found = None
        while heap:
            entry = heappop(heap)
            load, _, node = entry
            if node in seen or load != len(occ[node]):
                continue        # stale, or met already
            seen.add(node)
            kept.append(entry)
            if node in apart or node in skip:
                continue
            if exclusive and load:
                break           # an exclusive service needs an empty node: none further on
            if self._available(c, node):
                found = node
                break
        for entry in kept:
            heappush(heap, entry)
        return found

    def explain_none(self, c: _Ctx, exclude: Iterable[str] = ()) -> str:
        """``explain_none()``: every node with its reason, in the order. Services that
        neither run anywhere nor are exclusive, with the same domain, failed nodes,
        exclusion and owner, get the same text until the pass moves a service: it is
        written once for them (1,000 services of a restricted domain with no member
        online would otherwise sort and explain every node 1,000 times a cycle)."""
        svc, st = c.svc, c.st
        skip = frozenset(exclude)
        key = None
        if svc.name not in self._where and svc.name not in self._exclusive:
            key = (svc.domain, svc.exclusive, frozenset(st.start_failed), skip,
                   st.state in RUNNING, st.owner)
            text = self._explained.get(key)
            if text is not None:
                return text
        text = explain_none(self.snap, svc, self.occ, skip)
        if key is not None:
            self._explained[key] = text
        return text

    def _blocked_why(self, c: _Ctx, node: str) -> str:
        """``_hard_constraints``' reason for one node."""
        info = self._info[node]
        svc = c.svc
        if not info.online:
            return "offline"
        if info.standby:
            return "in standby: takes no services"
        if node in c.failed:
            return "a start failed there during this recovery"
        here = self.occ.get(node, set())
        if svc.exclusive and (others := here - {svc.name}):
            return f"exclusive service needs an empty node; it runs {', '.join(sorted(others))}"
        name = None
        for name in here & (self._exclusive - {svc.name}):   # the one _hard_constraints names
            pass
        return f"runs exclusive service {name}"

    def _domain_why(self, c: _Ctx, node: str) -> str:
        """``_domain_scores``' reason for one available node."""
        svc, st, d = c.svc, c.st, c.d
        if d is None:
            return "no failover domain" if not svc.domain else f"domain {svc.domain} does not exist"
        dom = d.dom
        p = d.prio.get(node)
        kind = "restricted" if dom.restricted else "unrestricted"
        if p is None:
            if not c.up:
                return (f"restricted domain {dom.name} has no member available" if dom.restricted
                        else f"no member of {kind} domain {dom.name} is available")
            if dom.restricted:
                return f"not a member of restricted domain {dom.name}"
            return f"not a member of {kind} domain {dom.name}; members are available"
        if not dom.ordered:
            return f"member of unordered domain {dom.name}"
        if p <= c.best:
            if dom.nofailback and c.running and st.owner != node and c.owner_avail:
                return f"highest-priority member ({p}) of {dom.name}, but nofailback keeps it on {st.owner}"
            return f"highest-priority available member ({p}) of ordered domain {dom.name}"
        if dom.nofailback and c.running and st.owner == node:
            return f"current owner, member ({p}) of {dom.name} with nofailback"
        return f"member ({p}) of ordered domain {dom.name}; a higher-priority member ({c.best}) is available"
