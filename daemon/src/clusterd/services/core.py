"""The services layer's protocol as a sans-IO core: reports, the coordinator's decisions
and the commands they issue, with no asyncio, no clock and no daemon behind it.

``ServicesCore`` is told what it needs to know and returns what to do, the way
``membership.host.ClusterCore`` is: every input takes the node's current ``Facts`` (the
view and quorum from membership, the daemon's phase, what the fencing policy allows, the
executor's local services) and returns ``Output``s for the adapter
(``node/services_glue.py``) to carry out: datagrams to send, a command to execute here,
a fence to request, a local service to reset, an admin state to persist, a re-announce
of the local services. Time comes in as arguments (``now`` monotonic, ``wall`` for the
restart history and the status page). The adapter keeps the asyncio loop, the executor
that runs resource agents and the control ops (``services/ops.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from clusterd.placement.model import ServiceState
from clusterd.services import chunks
from clusterd.services import coordinator as co
from clusterd.services.merge import Known, Row, merge
from clusterd.services.model import (
    CH_COMMAND,
    CH_REPORT,
    CLAIMS,
    AdminState,
    Command,
    Ghost,
    LocalService,
    NodeReport,
    accept_command,
)
from clusterd.wire.limit import RefusalLog, oversize

if TYPE_CHECKING:
    from clusterd.conf import ClusterConf
    from clusterd.wire.messages import View

logger = logging.getLogger("clusterd.node.services_glue")  # the operators' logger name

# A report goes out as soon as its content (or the view) changes; the periodic copy only
# repairs a lost datagram. Was token/2: an idle 8-node cluster spent a third of its CPU
# on unchanged reports. A lost report costs at most this much delay.
REPORT_REFRESH = 2.0


class FencingFacts(Protocol):
    """What the services core asks the fencing policy (``node.fencing_glue``)."""

    def recovery_blocked(self, node: str) -> bool: ...
    def recovery_allowed(self, node: str) -> bool: ...
    def fence_open(self, node: str) -> bool: ...
    def members(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class Facts:
    """The node as the services core needs it at one input."""

    view: View | None
    quorate: bool                 # the reported quorum (a loss counts after a grace)
    leaving: bool                 # the daemon stops: it reports so, and takes no command
    restarting: bool              # exits keeping the services running: takes no command
    fencing: FencingFacts
    local: Mapping[str, LocalService]   # the executor's view of this node's services
    ready: bool = True            # the executor probed what runs here
    running: int = 0              # services running or in an operation here
    # quorum backed by live leases at this instant (``MembershipCore.is_quorate(now)``):
    # only then does a coordinator decide. The reported ``quorate`` lags a loss by a
    # grace (no services stopped on a round-trip gap); the sim found a coordinator alone
    # in an inquorate view issuing commands inside that grace.
    backed: bool = True


# ---------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class Send:
    dest: int | None              # None: every member
    channel: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Execute:
    """Run this command on this node (the executor checks nothing more)."""
    cmd: Command


@dataclass(frozen=True)
class Fence:
    node: str
    reason: str


@dataclass(frozen=True)
class SetLocal:
    """Replace the executor's record of one local service."""
    service: str
    local: LocalService


@dataclass(frozen=True)
class AdminChanged:
    """A newer admin state (lock, freeze, standby): persist it, apply ``frozen``."""
    admin: AdminState


@dataclass(frozen=True)
class Wake:
    """Something changed that the next ``step`` must see: run it soon."""


@dataclass(frozen=True)
class Announce:
    """Tell the resource agents' side that the view changed while services run here."""


Output = Send | Execute | Fence | SetLocal | AdminChanged | Wake | Announce


class ServicesCore:
    def __init__(self, name: str, me: int, admin: AdminState) -> None:
        self.name = name
        self.me = me
        self.admin = admin
        self.conf: ClusterConf | None = None
        self.defs: tuple = ()
        self.domains: tuple = ()
        self.fence_nodes: tuple[tuple[str, int, bool], ...] = ()
        self.known: dict[int, tuple[int, NodeReport]] = {}
        self.rows: dict[str, Row] = {}
        self.coord = co.CoordState()
        self.last_snapshot: Any = None
        self.last_reason = ""
        self.history: dict[str, tuple[str, str | None, str | None, int]] = {}
        self.fenced_asked: set[tuple[int, str]] = set()
        self.dirty = True
        self._sent = float("-inf")
        self._sent_wire: dict[str, Any] | None = None
        self._view_key: tuple | None = None
        self._out: list[Output] = []
        self._generation = 0          # of this node's report (a new one when it changes)
        self._now = 0.0               # the last step's clock (for the refusal log)
        self._parts_sent = 0          # parts of the last report (0: one message)
        self._parts: tuple[dict[str, Any], ...] = ()  # of the current generation, for wants
        self._full_sent = float("-inf")  # the last whole copy of the report
        self._single: dict[str, Any] | None = None  # the report as last sent in one message
        self._single_h = ""                          # ... and its digest
        # per member, (incarnation, the generation of its one-message report held here);
        # a member whose one-message report names no generation is an older version
        self._singles: dict[int, tuple[int, int]] = {}
        # per member, (incarnation, whether it reads a one-message report's have): said by
        # a generation in its one-message report or "x" in its have of a report in parts
        self._reads_single_have: dict[int, tuple[int, bool]] = {}
        self._wants: dict[int, float] = {}  # receiver -> when its want was last served
        self.assembler = chunks.Assembler()
        self.refusals = RefusalLog(logger, name)

    def _take(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    # ------------------------------------------------------------------ inputs
    def load(self, conf: ClusterConf) -> list[Output]:
        """A config's services, domains and nodes (built and checked when it was parsed)."""
        self.conf = conf
        self.fence_nodes = tuple((n.name, n.nodeid, bool(n.fence_methods)) for n in conf.nodes)
        self.defs, self.domains = conf.services, conf.domains
        self.dirty = True
        return self._take()

    def on_facts(self, facts: Facts) -> list[Output]:
        """The view or quorum may have changed (the node's cycle calls this after every
        batch of core events)."""
        view = facts.view
        key = (view.vid if view else None, facts.quorate)
        if not facts.quorate and self.admin.locked:
            # rgmanager: the lock is reset once quorum dissolves (no new version: the
            # quorate side's admin state stays authoritative)
            self.admin = replace(self.admin, locked=False)
            logger.warning("node %s: quorum lost: services unlocked here", self.name)
        if key != self._view_key:
            self._view_key = key
            self.dirty = True
            if view is not None and facts.running and not facts.restarting:
                self._out.append(Announce())
        return self._take()

    def on_report(self, src: int, incarnation: int, payload: Mapping[str, Any]
                  ) -> list[Output]:
        """A member's report (``ValueError``/``TypeError``/``KeyError`` when malformed)."""
        generation = chunks.single_generation(payload)
        rep = NodeReport.from_wire(payload)
        self.assembler.single(src, incarnation)
        if generation is None:
            self._singles.pop(src, None)
        else:
            self._singles[src] = (incarnation, generation)
        self._reads_single_have[src] = (incarnation, generation is not None)
        return self._on_report(src, incarnation, rep)

    def on_report_part(self, src: int, incarnation: int, payload: Mapping[str, Any]
                       ) -> list[Output]:
        """One part of a member's report sent in parts (``services.chunks``): taken as
        its report once every part of one generation is in, else nothing changes (the
        member's previous complete report stands). Malformed: ``TypeError``/``ValueError``."""
        wire = self.assembler.add(src, incarnation, payload)
        if wire is None:
            return []
        return self._on_report(src, incarnation, NodeReport.from_wire(wire))

    def on_report_have(self, src: int, incarnation: int, payload: Mapping[str, Any]
                       ) -> list[Output]:
        """A member's report in parts is unchanged (``chunks.have``): if it is not here
        whole, ask that member for the parts missing. Malformed: ``TypeError``/
        ``ValueError``. A have of a report in one message (``"n": 1``) wants it again
        unless its generation (or a later one) of that incarnation is held here."""
        if chunks.have_count(payload) == 1:
            gen = chunks.single_have(payload)
            held, known = self._singles.get(src), self.known.get(src)
            if held is None or held[0] != incarnation or held[1] < gen \
                    or known is None or known[0] != incarnation:
                self._out.append(Send(src, chunks.CH_REPORT_WANT, {"g": gen, "i": [0]}))
            return self._take()
        if payload.get("x") == 1:
            self._reads_single_have[src] = (incarnation, True)
        missing = self.assembler.missing(src, incarnation, payload)
        held = self.known.get(src)
        if missing is None and (held is None or held[0] != incarnation):
            self.assembler.forget(src)     # assembled once, but not what is held now
            missing = self.assembler.missing(src, incarnation, payload)
        if missing:
            self._out.append(Send(src, chunks.CH_REPORT_WANT,
                                  {"g": payload["g"], "i": missing}))
        return self._take()

    def on_report_want(self, src: int, payload: Mapping[str, Any]) -> list[Output]:
        """A member lacks parts of this node's current report: send it those parts again,
        to it alone, at most once per ``chunks.WANT_EVERY``. Malformed: ``TypeError``/
        ``ValueError``."""
        single = self._single if not self._parts else None
        indices = chunks.wanted(payload, self._generation,
                                1 if single is not None else len(self._parts))
        last = self._wants.get(src)
        if indices and (last is None or self._now - last >= chunks.WANT_EVERY):
            self._wants[src] = self._now
            if single is not None:
                self._out.append(Send(src, CH_REPORT, single))
            else:
                self._out.extend(Send(src, chunks.CH_REPORT_PART, self._parts[i])
                                 for i in indices)
        return self._take()

    def _on_report(self, src: int, incarnation: int, rep: NodeReport) -> list[Output]:
        if self.known.get(src) == (incarnation, rep):
            return []                    # the periodic copy of what we have: nothing to do
        self.known[src] = (incarnation, rep)
        self._set_admin(rep.admin)
        self._out.append(Wake())
        return self._take()

    def on_command(self, src: int, payload: Mapping[str, Any], facts: Facts) -> list[Output]:
        self._accept(Command.from_wire(payload), src, facts)
        return self._take()

    def _accept(self, cmd: Command, src: int, facts: Facts) -> None:
        view = facts.view
        why = "restarting: the services wait for the next daemon" if facts.restarting \
            else accept_command(cmd, src, epoch=view.epoch if view else 0,
                                coordinator=view.coordinator if view else None,
                                quorate=facts.quorate, leaving=facts.leaving,
                                local=facts.local.get(cmd.service, LocalService()))
        if why:
            logger.info("node %s: %s %s (op %s) ignored: %s", self.name, cmd.kind.value,
                        cmd.service, cmd.op_id, why)
            return
        self._out.append(Execute(cmd))

    def set_admin(self, admin: AdminState) -> list[Output]:
        """Take a newer admin state (older or equal versions are ignored)."""
        self._set_admin(admin)
        return self._take()

    def _set_admin(self, admin: AdminState) -> None:
        if admin.version > self.admin.version:
            self.admin = admin
            self.dirty = True
            self._out.append(AdminChanged(admin))

    def command(self, node: str, cmd: Command, facts: Facts) -> list[Output]:
        """Send ``cmd`` to ``node`` (executed here when it is this node)."""
        self._command(node, cmd, facts)
        return self._take()

    def _command(self, node: str, cmd: Command, facts: Facts) -> None:
        logger.info("node %s: -> %s: %s %s (op %s)", self.name, node, cmd.kind.value,
                    cmd.service, cmd.op_id)
        if node == self.name:
            self._accept(cmd, self.me, facts)
        else:
            target = self.conf.node_by_name(node) if self.conf is not None else None
            if target is not None:
                payload = cmd.to_wire()
                size = oversize(payload)
                if size is not None:   # a service name of 32 KiB: refused where built
                    self.refusals.refuse(self._now, CH_COMMAND, size, f"{cmd.kind.value} "
                                         f"{cmd.service[:64]} is not sent to {node}; the "
                                         "coordinator decides again next cycle")
                    return
                self._out.append(Send(target.nodeid, CH_COMMAND, payload))

    # ------------------------------------------------------------------ the cycle
    def report_due(self, now: float) -> bool:
        """Whether ``step`` at ``now`` sends the periodic copy of an unchanged report (the
        one thing it does on its own clock when nothing else changed)."""
        return now - self._sent >= REPORT_REFRESH

    def step(self, now: float, wall: float, facts: Facts) -> list[Output]:
        """One services cycle: forget failed starts of services running elsewhere, send
        this node's report when it changed (or as the periodic repair copy), merge every
        member's report into the rows, and on the coordinator of a quorate view decide."""
        self._now = now
        facts = replace(facts, local=self._reset_recovering(facts))
        wire = self.report(facts).to_wire()
        if self.dirty or wire != self._sent_wire or self.report_due(now):
            changed = self.dirty or wire != self._sent_wire
            self.dirty = False
            self._sent = now
            if wire != self._sent_wire:
                self._generation += 1
            self._sent_wire = wire
            if not changed and self._parts and now - self._full_sent < chunks.FULL_REFRESH:
                # the periodic copy of an unchanged report in parts: its generation only;
                # a member that lacks it asks for the parts (on_report_want)
                self._out.append(Send(None, chunks.CH_REPORT_HAVE,
                                      {**chunks.have(self._parts, self._generation),
                                       "x": 1}))
            elif not changed and self._single is not None and not self._parts \
                    and now - self._full_sent < chunks.FULL_REFRESH \
                    and self._members_read_single_have(facts):
                # the same for a report in one message, once every member says it reads
                # that: 60 bytes to each member every 2 s instead of the report (up to
                # 32 KiB; at 300 members, megabytes a second from every node)
                self._out.append(Send(None, chunks.CH_REPORT_HAVE, chunks.have_single(
                    self._generation, self._single_h)))
            else:
                self._send_report(wire, now)
        known = self._known(facts)
        self.rows = merge([d.name for d in self.defs], known, self.admin, self.coord.cleared)
        if self._drop_superseded(known, facts):
            known = self._known(facts)
            self.rows = merge([d.name for d in self.defs], known, self.admin,
                              self.coord.cleared)
        self._track(self.rows, wall)
        if self.is_coordinator(facts):
            self._coordinate(known, now, wall, facts)
        return self._take()

    def _members_read_single_have(self, facts: Facts) -> bool:
        """Every other member of the view said (in its own report or have) that it reads
        the have of a report in one message; until then the report itself is repeated."""
        view = facts.view
        if view is None:
            return False
        for nodeid, inc in view.members:
            if nodeid != self.me and self._reads_single_have.get(nodeid) != (inc, True):
                return False
        return True

    def _send_report(self, wire: dict[str, Any], now: float) -> None:
        """This node's report to every member: in one message when it fits (the form
        every version reads), else in parts (``services.chunks``), else (more than
        ``chunks.MAX_PARTS`` parts) not at all, said in the log at most once a minute."""
        built = chunks.build(wire, self._generation)
        self._full_sent = now
        self._parts = built.parts
        if len(built.parts) != self._parts_sent:
            self._parts_sent = len(built.parts)
            logger.info("node %s: services report of %d services is %d bytes: %s", self.name,
                        len(wire.get("s", ())), built.size,
                        f"sent in {len(built.parts)} parts on {chunks.CH_REPORT_PART}"
                        if built.parts else f"sent in one message on {CH_REPORT}"
                        if built.single is not None else "too large to send")
        self._single = None
        if built.single is not None:
            # with its generation, so a member can tell the have of an unchanged report
            # (an older version ignores the key: NodeReport.from_wire reads what it knows)
            self._single = dict(built.single)
            self._single_h = chunks.digest(chunks.encode(self._single))
            self._out.append(Send(None, CH_REPORT, self._single))
        elif built.parts:
            self._out.extend(Send(None, chunks.CH_REPORT_PART, part) for part in built.parts)
        else:
            self.refusals.refuse(
                now, CH_REPORT, built.size, "this report is not sent: members keep this "
                "node's previous report (none: its coordinator waits for one and places "
                f"nothing); a report is sent in at most {chunks.MAX_PARTS} parts of "
                f"{chunks.PART_BYTES} characters (about {chunks.MAX_REPORT_SERVICES} "
                "services)", services=len(wire.get("s", ())), what="report",
                limit=chunks.MAX_REPORT_BYTES)

    def _coordinate(self, known: Mapping[int, Known], now: float, wall: float,
                    facts: Facts) -> None:
        view = facts.view
        assert view is not None
        live = {k.name: k.report for k in known.values() if k.live}
        # a member's report from before it installed this view may lack what it learned
        # in the one before (a node it saw start a service, then lost): decide only on
        # reports written in this view (epoch 0: an older daemon that does not say)
        waiting = [k.name for n, k in known.items() if n in view.nodeids
                   and (not k.live or not k.report.ready
                        or k.report.epoch not in (0, view.epoch))]
        missing = [n for n in view.nodeids if n not in known]
        if waiting or missing:
            self._say(f"waiting for service reports from {sorted(waiting) + missing}")
            return
        fencing = facts.fencing
        names = {nid: name for name, nid, _ in self.fence_nodes}
        if fencing.members() != {names.get(n) for n in view.nodeids}:
            # the core's view can be newer than the one the fencing policy took in (the
            # node's cycle feeds it): until it has, a node that just left still looks
            # settled there, and its services would start elsewhere beside it
            # (integration test: a restarted owner's web started on node 2)
            self._say(f"waiting for fencing to take in view {view.epoch}")
            return
        self.coord = self.coord.for_epoch(view.epoch)
        blockers = frozenset(n for rep in live.values() for n in rep.blocked)

        def allowed(node: str) -> bool:
            # every member's knowledge counts: one fresh daemon's ignorance never
            # outvotes another member that saw the node lost and not yet fenced
            return fencing.recovery_allowed(node) and node not in blockers

        outside = [(name, nid) for name, nid, _ in self.fence_nodes if nid not in view.nodeids]
        out = co.step(self.coord, co.Inputs(
            defs=self.defs, domains=self.domains, rows=self.rows, nodes=self.fence_nodes,
            live=live, admin=self.admin, recovery_allowed=allowed, now=now, wall=wall,
            # a node outside the view that may not be recovered yet may run a service
            # its last report does not show (never heard from, or told to start it just
            # before it was cut off: reports lag commands): nothing unowned starts until
            # it joins or is fenced (the sim found a start beside a cut-off node's)
            unknown=frozenset(name for name, _nid in outside if not allowed(name)),
            unfit=frozenset(name for name in live if fencing.fence_open(name))))
        self.coord = out.state
        self.last_snapshot = out.snapshot
        self._set_admin(out.admin)
        for fence in out.fence:
            if (view.epoch, fence.node) not in self.fenced_asked:
                self.fenced_asked.add((view.epoch, fence.node))
                logger.warning("node %s: %s", self.name, fence.reason)
                self._out.append(Fence(fence.node, fence.reason))
        for node, cmd in out.commands:
            self._command(node, cmd, facts)
        self._say(out.reason)

    def _drop_superseded(self, known: Mapping[int, Known], facts: Facts) -> bool:
        """Forget the claims of departed nodes on services a live member runs now: they
        were recovered after those nodes were fenced, and a stale claim left in place
        would later be taken for the owner (the sim found it: web ran on node2, node2 was
        fenced, web moved to node5; node5 died unfenced and the row named node2, fenced
        long ago, so web started again beside node5). True when any were dropped."""
        live_owned = {svc for svc, row in self.rows.items()
                      if any(k.live and k.name == row.status.owner for k in known.values())}
        view = facts.view
        dropped = False
        for nid, (inc, rep) in list(self.known.items()):
            if view is not None and view.incarnation_of(nid) == inc:
                continue
            stale = [svc for svc in live_owned if rep.get(svc).state in CLAIMS]
            if stale:
                services = {k: v for k, v in rep.services.items() if k not in stale}
                self.known[nid] = (inc, replace(rep, services=services))
                dropped = True
        return dropped

    def _say(self, reason: str) -> None:
        if reason != self.last_reason:
            self.last_reason = reason
            logger.info("node %s: services: %s", self.name, reason)

    def _reset_recovering(self, facts: Facts) -> Mapping[str, LocalService]:
        """A failed start here is forgotten once the service runs elsewhere: the local
        services as they are after that (the executor is told by ``SetLocal``). Started
        there, not merely starting: forgetting it while the next node's start is still in
        flight lost the record, so a service that could start nowhere went round the
        nodes for ever (start, fail, clean up, next node) instead of being marked stopped
        once every node had failed it (found by the lab's database test)."""
        local = facts.local
        for svc, ls in facts.local.items():
            row = self.rows.get(svc)
            if (ls.state is ServiceState.RECOVERING and not ls.busy and row is not None
                    and row.status.owner not in (None, self.name)
                    and row.status.state is ServiceState.STARTED):
                reset = LocalService(ServiceState.STOPPED, "", ls.done, ls.restarts)
                self._out.append(SetLocal(svc, reset))
                local = {**local, svc: reset}
                self.dirty = True
        return local

    # ------------------------------------------------------------------ reading
    def is_coordinator(self, facts: Facts) -> bool:
        view = facts.view
        return (view is not None and view.coordinator == self.me and facts.quorate
                and facts.backed)

    def report(self, facts: Facts) -> NodeReport:
        blocked, ghosts = self._outside(facts)
        return NodeReport(facts.ready, facts.leaving, self.admin, dict(facts.local),
                          blocked, ghosts, facts.view.epoch if facts.view else 0)

    def _outside(self, facts: Facts) -> tuple[frozenset[str], dict[str, Ghost]]:
        """The configured nodes outside my view whose recovery my fencer forbids, and the
        claims I last heard from them (possibly none): what a coordinator that never
        heard of them must respect."""
        inside = facts.view.nodeids if facts.view is not None else frozenset()
        blocked = frozenset(name for name, nid, _ in self.fence_nodes
                            if nid not in inside and nid != self.me
                            and facts.fencing.recovery_blocked(name))
        ghosts = {}
        for nid, (inc, rep) in self.known.items():
            name = self._name_of(nid)
            if name is not None and name in blocked:
                ghosts[name] = Ghost(inc, {svc: ls.state for svc, ls in rep.services.items()
                                           if ls.state in CLAIMS})
        return blocked, ghosts

    def _name_of(self, nodeid: int) -> str | None:
        node = self.conf.node_by_id(nodeid) if self.conf is not None else None
        return node.name if node is not None else None

    def live(self, facts: Facts) -> dict[str, NodeReport]:
        """Reports of live members (this node's own included), by node name."""
        if facts.view is None:
            return {}
        return {k.name: k.report for k in self._known(facts).values() if k.live}

    def _known(self, facts: Facts) -> dict[int, Known]:
        view = facts.view
        out: dict[int, Known] = {}
        for nid, (inc, rep) in self.known.items():
            live = view is not None and view.incarnation_of(nid) == inc
            out[nid] = Known(self._name_of(nid) or str(nid), rep, live)
        out[self.me] = Known(self.name, self.report(facts), view is not None)
        self._add_ghosts(out, view)
        return out

    def _add_ghosts(self, out: dict[int, Known], view: View | None) -> None:
        """Claims that live members last heard from nodes outside the view, where they
        are newer than what I heard myself (a daemon that just started heard nothing)."""
        if self.conf is None:
            return
        inside = view.nodeids if view is not None else frozenset()
        best: dict[int, Ghost] = {}
        for k in [k for k in out.values() if k.live]:
            for name, ghost in k.report.ghosts.items():
                node = self.conf.node_by_name(name)
                if node is None or node.nodeid == self.me or node.nodeid in inside:
                    continue
                mine = self.known.get(node.nodeid)
                if mine is not None and mine[0] >= ghost.incarnation:
                    continue
                if node.nodeid not in best or best[node.nodeid].incarnation < ghost.incarnation:
                    best[node.nodeid] = ghost
        for nid, ghost in best.items():
            services = {svc: LocalService(st) for svc, st in ghost.services.items()}
            out[nid] = Known(self._name_of(nid) or str(nid),
                             NodeReport(ready=True, services=services), live=False)

    def _track(self, rows: Mapping[str, Row], wall: float) -> None:
        for svc, row in rows.items():
            state = row.shown_state.value
            owner = row.status.owner
            old = self.history.get(svc)
            if old is None:
                self.history[svc] = (state, owner, None, int(wall))
            elif (old[0], old[1]) != (state, owner):
                last = old[1] if old[1] and old[1] != owner else old[2]
                self.history[svc] = (state, owner, last, int(wall))

    def status_section(self) -> tuple[Mapping[str, Any], ...]:
        out = []
        for d in self.defs:
            row = self.rows.get(d.name)
            if row is None:
                continue
            state, owner, last, since = self.history.get(
                d.name, (row.shown_state.value, row.status.owner, None, 0))
            flags = ["frozen"] if row.status.frozen else []
            if row.partial:
                flags.append("partial")
            if row.status.status_failed:
                flags.append("status-failed")
            entry = {"name": d.name, "state": state, "owner": owner, "last_owner": last,
                     "flags": flags, "restarts": len(row.status.restarts),
                     "last_transition": since, "domain": d.domain}
            if row.why:
                entry["reason"] = row.why
            out.append(entry)
        return tuple(out)
