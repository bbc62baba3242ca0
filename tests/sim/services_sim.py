"""The services layer in the simulator: every node's real ``ServicesCore`` (reports, the
coordinator, its commands) over the real cluster cores of ``SimNet``, with fake resource
agents and a fake fence device, and the services invariants checked after every step.

What is real: ``clusterd.services.core.ServicesCore`` and everything it calls (merge,
the coordinator's step, placement, command acceptance), fed exactly the facts the node
adapter (``node/services_glue.py``) gives it, its messages sealed and carried by the
cluster cores. What is fake, per node:

* the executor: a start or stop takes a random time; a start may fail (the resources
  are stopped again: RECOVERING, or FAILED when that stop fails too), a stop may fail
  (FAILED: the resources may still run), an operation may hang until its timeout; what
  each outcome does to the service is ``services.transitions``, as in the real
  executor. When to stop everything (a drop from the view; a quorum loss unless peers
  restarting with their services hold it off) is the daemon's own node cycle,
  ``node.cycle.fold_events``;
* fencing, on a plain ``SimNet``: a fence request powers the node off after a delay (the
  sim crashes it) and is then confirmed; a dead BMC never confirms; ``recovery_allowed``
  / ``recovery_blocked`` answer from those confirmations, the same for every node. On a
  ``FenceSim`` (``fencing_sim.py``) instead, every node's real fencing core answers
  (``PolicyFacts``, as ``node/fencing_glue.py`` does), takes the core's fence requests and
  the services counts, exchanges ``fence.state`` and fences through its fake agent.

Ground truth per node: ``truth``, the services whose resources may be running there (from
the first start action until a stop succeeded; a crash or power-off clears it).

Invariants (``Violation`` names):
* ``I1-one-node``: no service has resources running on two live nodes at once (a paused
  or partitioned node's services run on);
* ``recovery-before-fence``: no node starts a service that a node lost without a clean
  stop (crashed, or cut off with it running) may still hold, before that node's fence
  was confirmed;
* ``inquorate-acts``: a node issues commands or fence requests only while its membership
  core is quorate (``is_quorate(now)``, the lease-backed answer).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from clusterd.conf import ClusterConf, parse
from clusterd.events import ViewInstalled
from clusterd.fencing import policy
from clusterd.fencing.core import service_counts
from clusterd.fencing.state import FenceRequested, ServicesRunning
from clusterd.membership.host import AppReceived
from clusterd.node import cycle as cy
from clusterd.placement.model import ServiceState
from clusterd.services import core as sc
from clusterd.services import transitions as to
from clusterd.services.model import (
    CH_COMMAND,
    CH_REPORT,
    AdminState,
    Command,
    CommandKind,
    LocalService,
)
from harness import SimNet, violated

OP_TIMEOUT = 3.0   # a hung agent operation fails after this long


def services_conf(n: int, services: int) -> ClusterConf:
    """A real cluster.conf for the sim's nodes with ``services`` autostart services (one
    script resource each; the fake executor never runs it)."""
    nodes = "".join(f'<clusternode name="node{i}" nodeid="{i}" votes="1"/>'
                    for i in range(1, n + 1))
    rm = "".join(f'<service name="s{k}" autostart="1" recovery="relocate">'
                 f'<script name="r{k}" file="/etc/init.d/s{k}"/></service>' for k in range(services))
    return parse((f'<?xml version="1.0"?><cluster name="simcluster" config_version="1">'
                  f'<clusternodes>{nodes}</clusternodes><rm>{rm}</rm></cluster>').encode())


@dataclass(frozen=True)
class AgentFaults:
    """How the fake resource agents and the fence device misbehave."""
    start: tuple[float, float] = (0.05, 0.5)     # seconds a start takes
    stop: tuple[float, float] = (0.05, 0.3)
    start_fails: float = 0.0                     # probability per start
    stop_fails: float = 0.0                      # probability per stop
    hangs: float = 0.0                           # probability an operation hangs
    fence: tuple[float, float] = (0.2, 1.0)      # seconds until a power-off is confirmed
    dead_bmc: frozenset[int] = frozenset()       # nodes whose fence never succeeds


@dataclass
class NodeServices:
    core: sc.ServicesCore
    state: cy.NodeState = field(default_factory=cy.NodeState)   # the node cycle's (local safety)
    local: dict[str, LocalService] = field(default_factory=dict)
    truth: set[str] = field(default_factory=set)
    ops: dict[str, int] = field(default_factory=dict)    # svc -> token of the op in flight


class Fencer:
    """One fence device for the whole sim: requests power nodes off after a delay and
    are then confirmed; what every node's facts read (see the module docstring)."""

    def __init__(self, sim: SimNet, faults: AgentFaults, rng: random.Random,
                 lost: dict[str, set[str]]) -> None:
        self.sim, self.faults, self.rng = sim, faults, rng
        self.lost = lost                     # what a confirmed fence settles
        self.pending: set[str] = set()
        self.confirmed: set[str] = set()     # powered off since it last left the cluster

    def request(self, name: str) -> None:
        if name in self.pending or name in self.confirmed:
            return
        self.pending.add(name)
        nodeid = int(name.removeprefix("node"))
        self.sim.trace.append(f"{self.sim.now:.3f} fence {name} requested")
        if nodeid in self.faults.dead_bmc:
            return                                           # never answers
        self.sim.at(self.sim.now + self.rng.uniform(*self.faults.fence),
                    lambda: self._power_off(name, nodeid))

    def _power_off(self, name: str, nodeid: int) -> None:
        if self.sim.nodes[nodeid].alive:
            self.sim.crash(nodeid)
        self.pending.discard(name)
        self.confirmed.add(name)
        self.lost.pop(name, None)
        self.sim.trace.append(f"{self.sim.now:.3f} fence {name} confirmed (powered off)")

    def rejoined(self, name: str) -> None:
        self.confirmed.discard(name)


@dataclass
class DeviceFacts:
    """``FencingFacts`` of one node: the shared fencer, that node's view."""
    fencer: Fencer
    inside: frozenset[str]          # that node's view, by name

    def recovery_blocked(self, node: str) -> bool:
        return node not in self.inside and node not in self.fencer.confirmed

    def recovery_allowed(self, node: str) -> bool:
        return node in self.inside or node in self.fencer.confirmed

    def fence_open(self, node: str) -> bool:
        return node in self.fencer.pending

    def members(self) -> frozenset[str]:
        return self.inside


class PolicyFacts:
    """``FencingFacts`` of node ``i`` from the real fencing policy (``FenceSim``): what
    ``node/fencing_glue.py`` answers the services glue."""

    def __init__(self, sim: Any, i: int) -> None:
        self.state = sim.fstate.get(i)

    def recovery_blocked(self, node: str) -> bool:
        return self.state is None or policy.recovery_blocked(self.state, node)

    def recovery_allowed(self, node: str) -> bool:
        return self.state is not None and policy.recovery_allowed(self.state, node)

    def fence_open(self, node: str) -> bool:
        op = self.state.ops.get(node) if self.state is not None else None
        return op is not None and op.phase.open

    def members(self) -> frozenset[str]:
        return frozenset(self.state.members) if self.state is not None else frozenset()


class SimServices:
    """Attach to a ``SimNet`` (``sim.parts``): every node runs the services core."""

    def __init__(self, sim: SimNet, services: int = 4, faults: AgentFaults = AgentFaults(),
                 seed: int = 0) -> None:
        self.sim = sim
        self.faults = faults
        self.rng = random.Random(seed ^ 0x5E4)
        self.conf = services_conf(len(sim.nodes), services)
        self.lost: dict[str, set[str]] = {}            # node -> services it may hold, lost
        self.fencer = Fencer(sim, faults, self.rng, self.lost)
        # on a FenceSim the real fencing policy of every node answers and fences (its
        # FakeAgent powers victims off); else the fake device above stands in
        self.policy = hasattr(sim, "fstate")
        self._counts: dict[int, dict[str, int]] = {}
        self.nodes: dict[int, NodeServices] = {}
        self.admin: dict[int, AdminState] = {}         # persisted across restarts
        self._token = 0
        sim.parts.append(self)
        sim.invariants.append(("I1-one-node", lambda _sim: self.one_node()))
        for i, node in sim.nodes.items():
            if node.alive:
                self.on_start(i)

    # ------------------------------------------------------------------ SimNet hooks
    def on_start(self, i: int) -> None:
        core = sc.ServicesCore(f"node{i}", i, self.admin.get(i, AdminState()))
        core.load(self.conf)
        self.nodes[i] = NodeServices(core)
        self.fencer.rejoined(f"node{i}")
        self.lost.pop(f"node{i}", None)     # a new process: what the old one ran is gone
        self._counts.pop(i, None)

    def on_crash(self, i: int) -> None:
        part = self.nodes.pop(i, None)
        if part is None:
            return
        self.admin[i] = part.core.admin
        name = f"node{i}"
        if part.truth and not self._fenced(name):
            self.lost[name] = set(part.truth)            # died holding them: fence first

    def on_tick(self, i: int) -> None:
        part = self.nodes.get(i)
        if part is None:
            return
        part.state, actions = cy.fold_events(part.state, (), now=self.sim.node_now(i))
        if any(isinstance(a, cy.StopServices) for a in actions):
            self.stop_all(i)                 # a restart grace that ended without quorum
        sim_node = self.sim.nodes[i]
        self.fence_the_departed(i)
        if i not in self.nodes:
            return
        if self.policy:
            counts = service_counts(part.core.rows)
            if counts != self._counts.get(i):
                self._counts[i] = counts
                self.sim.feed(i, ServicesRunning(counts))
        facts = self.facts(i)
        now, wall = self.sim.node_now(i), sim_node.clock.wall(self.sim.now)
        self.apply(i, part.core.step(now, wall, facts), issued=True)

    def on_events(self, i: int, events) -> None:
        part = self.nodes.get(i)
        if part is None:
            return
        # local safety as the daemon's node cycle decides it (node.cycle.fold_events):
        # stop everything when dropped from the view, or on a quorum loss unless
        # members restarting with their services hold it off for their grace
        part.state, actions = cy.fold_events(part.state, events, now=self.sim.node_now(i))
        stop = any(isinstance(a, cy.StopServices) for a in actions)
        for e in events:
            if isinstance(e, AppReceived):
                try:
                    if e.channel == CH_REPORT:
                        self.apply(i, part.core.on_report(e.src, e.incarnation, e.payload))
                    elif e.channel == CH_COMMAND:
                        self.apply(i, part.core.on_command(e.src, e.payload, self.facts(i)))
                except (TypeError, ValueError, KeyError) as exc:
                    violated("services-message", f"node {i}: a {e.channel} from node "
                             f"{e.src} did not parse: {exc}")
            elif isinstance(e, ViewInstalled):
                self.rejoined(e.view.nodeids)
        if i in self.nodes:
            self.apply(i, part.core.on_facts(self.facts(i)))
        if stop:
            self.stop_all(i)

    # ------------------------------------------------------------------ facts, outputs
    def facts(self, i: int) -> sc.Facts:
        part = self.nodes[i]
        m = self.sim.nodes[i].core.membership
        view = m.view
        inside = frozenset(f"node{n}" for n in view.nodeids) if view else frozenset()
        return sc.Facts(view=view, quorate=bool(m.quorum.quorate), leaving=False,
                        restarting=False,
                        fencing=PolicyFacts(self.sim, i) if self.policy
                        else DeviceFacts(self.fencer, inside),
                        local=part.local, ready=True,
                        running=sum(1 for ls in part.local.values()
                                    if ls.state is not ServiceState.STOPPED),
                        backed=m.is_quorate(self.sim.node_now(i)))

    def apply(self, i: int, outputs, issued: bool = False) -> None:
        part = self.nodes.get(i)
        if part is None:
            return
        acts = [o for o in outputs if isinstance(o, sc.Fence) or (
            isinstance(o, sc.Send) and o.channel == CH_COMMAND) or isinstance(o, sc.Execute)]
        if issued and acts:
            core = self.sim.nodes[i].core
            if not core.membership.is_quorate(self.sim.node_now(i)):
                violated("inquorate-acts", f"t={self.sim.now:.3f}: node {i} issues "
                         f"{[type(o).__name__ for o in acts]} while not quorate")
        for out in outputs:
            if isinstance(out, sc.Send):
                core = self.sim.nodes[i].core
                self.sim._send(i, core.send_app(out.dest, out.channel, out.payload,
                                                self.sim.node_now(i)))
            elif isinstance(out, sc.Execute):
                self.execute(i, out.cmd)
            elif isinstance(out, sc.Fence) and self.policy:
                self.sim.feed(i, FenceRequested(out.node, f"node{i}", out.reason))
            elif isinstance(out, sc.Fence):
                self.fencer.request(out.node)
            elif isinstance(out, sc.SetLocal):
                part.local[out.service] = out.local

    def fence_the_departed(self, i: int) -> None:
        """What fenced does on a quorate node: a node that shared a view with it and is
        outside its view now is fenced (the sim's stand-in for the fencing policy)."""
        m = self.sim.nodes[i].core.membership
        view = m.view
        if view is None or not m.is_quorate(self.sim.node_now(i)):
            return
        for j in m.shared:
            if j not in view.nodeids:
                name = f"node{j}"
                other = self.nodes.get(j)
                if other is not None and other.truth and not self._fenced(name):
                    # cut off holding services: recovering them needs its fence first
                    self.lost.setdefault(name, set()).update(other.truth)
                if not self.policy:      # the real policy fences departed nodes itself
                    self.fencer.request(name)

    def rejoined(self, members) -> None:
        """A node back inside a view holds only what it still runs (its report says so)."""
        for j, other in self.nodes.items():
            name = f"node{j}"
            if j in members and name in self.lost:
                self.lost[name] &= other.truth
                if not self.lost[name]:
                    del self.lost[name]

    # ------------------------------------------------------------------ fake executor
    def execute(self, i: int, cmd: Command) -> None:
        part = self.nodes[i]
        svc = cmd.service
        if svc in part.ops:
            return                                          # busy: ignored, as for real
        self.sim.trace.append(f"{self.sim.now:.3f} node {i} {cmd.kind.value} {svc}")
        if cmd.kind is CommandKind.START:
            self._check_fenced(i, svc)
            self._begin(i, svc, cmd.op_id, "start")
        elif cmd.kind is CommandKind.STOP:
            self._begin(i, svc, cmd.op_id, "stop")
        elif cmd.kind is CommandKind.RESTART:
            self._begin(i, svc, cmd.op_id, "restart")

    def _check_fenced(self, i: int, svc: str) -> None:
        # a lost node back in this node's view reports what it runs: what it stopped
        # since it rejoined is known stopped (a clean stop, not only ground truth)
        view = self.sim.nodes[i].core.membership.view
        self.rejoined(view.nodeids if view is not None else ())
        for name, held in self.lost.items():
            if name != f"node{i}" and svc in held and not self._fenced(name):
                violated("recovery-before-fence", f"t={self.sim.now:.3f}: node {i} starts "
                         f"{svc}, which {name} may still hold, before {name} was fenced")

    def _fenced(self, name: str) -> bool:
        """Powered off by a fence since it last started."""
        if self.policy:
            return int(name.removeprefix("node")) in self.sim.powered_off
        return name in self.fencer.confirmed

    def _begin(self, i: int, svc: str, op: str, kind: str) -> None:
        part = self.nodes[i]
        self._token += 1
        token = part.ops[svc] = self._token
        # the executor's steps: the op is accepted (busy), then its start or stop begins
        begin = to.starting if kind == "start" else to.stopping
        part.local[svc] = begin(to.begun(part.local.get(svc, LocalService()), op))
        if kind == "start":
            part.truth.add(svc)
        f = self.faults
        hang = self.rng.random() < f.hangs
        took = OP_TIMEOUT if hang else self.rng.uniform(*(f.start if kind == "start"
                                                          else f.stop))
        fails = hang or self.rng.random() < (f.start_fails if kind == "start"
                                             else f.stop_fails)
        failure = "fake agent: timed out" if hang else "fake agent: failed" if fails else ""
        life = self.sim.nodes[i].life
        self.sim.at(self.sim.now + self.sim._node_delay(i, took),
                    lambda: self._finish(i, life, svc, op, kind, token, failure))

    def _finish(self, i: int, life: int, svc: str, op: str, kind: str, token: int,
                failure: str) -> None:
        """The fake agent's outcome (``failure``: its message, empty when it worked),
        turned into the service's state by the executor's own ``transitions``."""
        part = self.nodes.get(i)
        if part is None or self.sim.nodes[i].life != life or part.ops.get(svc) != token:
            return                                          # the node died meanwhile
        if self.sim.nodes[i].paused:                        # the daemon sees it on resume
            self.sim.at(self.sim.now + 0.1,
                        lambda: self._finish(i, life, svc, op, kind, token, failure))
            return
        del part.ops[svc]
        old = part.local.get(svc, LocalService())
        if kind == "start" and not failure:
            new = to.started(old)
        elif kind == "start":
            # rgmanager: a failed start stops what started; if that fails too: failed
            cleanup = ["fake agent: failed"] if self.rng.random() < self.faults.stop_fails \
                else []
            if not cleanup:
                part.truth.discard(svc)
            new = to.start_failed(old, failure, cleanup)
        elif failure:
            new = to.stop_failed(old, [failure])
        else:
            part.truth.discard(svc)
            if kind == "restart":                           # stopped: now the start
                part.local[svc] = to.stopped(old)
                self._begin(i, svc, op, "start")
                return
            new = to.stopped(old)
        part.local[svc] = to.finished(new, op)
        part.core.dirty = True

    def stop_all(self, i: int) -> None:
        """Quorum lost or dropped from the view: stop every local service (the daemon's
        ``stop_all``); a failed stop leaves it FAILED and possibly running."""
        part = self.nodes.get(i)
        if part is None:
            return
        for svc, ls in list(part.local.items()):
            if ls.state in (ServiceState.STARTED, ServiceState.STARTING) or svc in part.truth:
                part.ops.pop(svc, None)
                self._begin(i, svc, f"stop-all-{self._token}", "stop")

    # ------------------------------------------------------------------ invariants
    def one_node(self) -> str | None:
        holders: dict[str, list[int]] = {}
        for i, part in self.nodes.items():
            if self.sim.nodes[i].alive:
                for svc in part.truth:
                    holders.setdefault(svc, []).append(i)
        two = {svc: nodes for svc, nodes in holders.items() if len(nodes) > 1}
        return f"services running on two nodes at once: {two}" if two else None

    def running(self) -> dict[str, list[int]]:
        """Where each service is STARTED (live nodes)."""
        out: dict[str, list[int]] = {}
        for i, part in self.nodes.items():
            for svc, ls in part.local.items():
                if ls.state is ServiceState.STARTED and self.sim.nodes[i].alive:
                    out.setdefault(svc, []).append(i)
        return out

    def check_all_running(self) -> None:
        """Liveness: every service STARTED on exactly one live node."""
        names = [s.name for s in self.conf.services]
        running = self.running()
        bad = {svc: running.get(svc, []) for svc in names if len(running.get(svc, [])) != 1}
        if bad:
            violated("all-services-run", f"t={self.sim.now:.3f}: not running on exactly one "
                     f"node: {bad}")
