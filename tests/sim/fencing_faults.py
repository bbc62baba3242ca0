"""Fencing under combined faults (issue 11 item 6): daemon restarts that keep or lose the
state dir, hung owners, dead BMCs, power off/on, quorum loss and regain, in random
schedules drawn from one seed, checked against an oracle of ground truth.

``FaultSim`` extends :class:`fencing_sim.FenceSim` (which runs the real fencing policy of
every node over the simulated membership and exchanges ``fence.state`` on the app
channel) with the faults the lab showed:

* ``restart(i, keep_state)``: the daemon dies and starts again with a new incarnation
  (the node stays powered: its services keep running). With ``keep_state`` its persisted
  intents record (``intents.to_record``/``restore``, what ``fencing/store.py`` writes)
  is restored; without, the state dir is gone (intents and the peers' incarnations).
* ``hang(i)``: SIGSTOP of the daemon: heartbeats stop, services keep running.
* ``bmc_dead(i)`` / ``bmc_revive(i)``: the fake agent's runs against ``i`` never answer
  (the 5 s attempt timeout ends them) until revived.
* ``power_off(i)`` / ``power_on(i)``: the node's power (a later power-on boots a new
  incarnation that restores its state dir). A fake-agent success powers the victim off.
* ``manual_fence(victim, at)``: the operator powers the victim off and runs
  ``fence_ack_manual`` on member ``at``.

The oracle (``holds``) is kept apart from every policy state: a node *may run services*
from the moment one of its incarnations is quorate in a view that every member of it has
installed (the coordinator places services only once every member reported in that
view) until its power is cut by a fence (fake-agent success), an accepted manual
acknowledgement (after the operator cut the power), or a clean leave (which stops its
services). A daemon crash, a hang or a plain power loss does not clear it: nothing in the
cluster can tell those from a hang. After every simulator step, on top of the
harness's, F1 and F2 (``fencing_sim``):

* **F1'** (the product's rule): in every view that some member believes quorate, the
  recovery decision for a node outside the view allows recovery only of a node that may
  not run services. The decision (``decision``) is the view coordinator's: its own
  ``recovery_allowed`` and no member blocking it (``policy.recovery_blocked``, as
  ``services_glue`` asks every member since issue 11); hung members cast no vote
  (stricter). ``rule="coordinator"`` checks the rule before issue 11 (the coordinator's
  ``recovery_allowed`` alone).

At the end of a schedule (faults stop, links heal, BMCs revive, hung daemons resume,
every node is powered and started):

* **liveness**: within ``LIVENESS_BOUND`` virtual seconds every open intent closes, every
  node is in one quorate view and all members show the same operations.
* **no escape**: a node incarnation dropped from a view while alive (paused or
  partitioned; it may come back with the same incarnation), or named by an intent about
  that very incarnation (also a fence_node of a member), is fenced or acknowledged if an
  intent for the node about that incarnation is open while someone still knows the
  loss: a node that saw it
  dropped and has not restarted since, or one holding an intent about that incarnation
  whose state dir survived. The incarnation may also end (daemon crash, clean leave,
  power loss: a new incarnation rejoining legitimately cancels the intent).

The figures of a run (``exercised``: which fault kinds a schedule really exercised
during its faults, e.g. a dead BMC only if a fence attempt hit it) feed ``run_batch``,
``stats_line`` and ``markdown`` (for a tests/bench section).

Replay one schedule: ``RHC_SIM_SEED=<n> .venv/bin/pytest tests/sim -k fault_schedules``.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from clusterd.fencing import policy as _policy
from clusterd.fencing.policy import recovery_allowed
from clusterd.fencing.state import FencePhase, FencingState
from fencing_sim import FakeAgent, FenceSim, name

# The coordinator's vote of every member (issue 11 fix e); recovery_allowed-only fallback.
recovery_blocked = getattr(_policy, "recovery_blocked", None)

LIVENESS_BOUND = 90.0   # backoff cap 30 s + attempt timeout 5 s + post_join_delay 6 s + views
KINDS = ("restart_with_state", "restart_without_state", "hung_owner", "dead_bmc",
         "quorum_loss_regain", "power_cycle")
EXTRA = ("stale_record", "same_incarnation_return", "manual_ack", "conjunction_needed",
         "two_node")
STATS_PREFIX = "RHC-SIM-STATS"


def node_id(victim: str) -> int:
    return int(victim.removeprefix("node"))


def decision(states: list[FencingState], victim: str, rule: str = "every_member") -> bool:
    """The recovery decision of one view for ``victim``, from the fencing states of its
    members that can report (alive, not hung). Only the view's coordinator decides, while
    its fencer believes it quorate; ``every_member`` (the product's rule since issue 11,
    ``services_glue``): its ``recovery_allowed`` and no member blocks (each member's
    ``recovery_blocked``, whatever its own quorum flag says); ``coordinator`` (the rule
    before): its own ``recovery_allowed`` alone."""
    coordinator = next((s for s in states if s.local == s.coordinator), None)
    if coordinator is None or not recovery_allowed(coordinator, victim):
        return False
    if rule == "coordinator":
        return True
    if recovery_blocked is not None:
        return not any(recovery_blocked(s, victim) for s in states)
    return all(recovery_allowed(s, victim) for s in states if s.quorate)


@dataclass
class FaultAgent(FakeAgent):
    """FakeAgent with BMCs that can die: runs against a victim in ``dead`` never answer."""

    dead: set[str] = field(default_factory=set)
    dead_runs: int = 0

    def outcome(self, victim: str) -> str:
        if victim in self.dead:
            self.dead_runs += 1
            return "dead"
        return super().outcome(victim)


class FaultSim(FenceSim):
    def __init__(self, n: int, seed: int, *, agent: FakeAgent | None = None,
                 start: bool = True, rule: str = "every_member", **kw: Any) -> None:
        self.rule = rule
        self.holds: dict[int, bool] = {i: False for i in range(1, n + 1)}
        # (node, incarnation) -> (since, keepers): an open intent for a node whose
        # running incarnation is known (by the keepers) to have been lost alive
        self.escapes: dict[tuple[int, int], tuple[float, set[tuple[int, str]]]] = {}
        # per node: (daemon life, the (node, incarnation) pairs it has seen in its views)
        self.seen_alive: dict[int, tuple[int | None, set[tuple[int, int]]]] = {}
        self.exercised: set[str] = set()
        self.ran: set[int] = set()
        self.wiped: set[int] = set()
        self.installed: dict[Any, set[int]] = {}   # view id -> nodes that installed it
        self._quorate_views: set[Any] = set()
        self.last_view: dict[int, tuple[Any, int, Any]] = {}  # node -> (vid, life, members)
        # (node, inc) -> who knows that incarnation was lost alive: (k, "memory") saw it
        # dropped (forgotten when k's daemon dies), (k, "intent") holds an intent about it
        # (forgotten only with k's state dir)
        self.keepers: dict[tuple[int, int], set[tuple[int, str]]] = {}
        self.acks = 0
        self.winding = False                 # wind_down: starts are not faults
        self._quorum: tuple[bool, float | None] = (False, None)  # (was quorate, lost since)
        super().__init__(n, seed, agent=agent or FaultAgent(), start=start, **kw)
        if n == 2:
            self.exercised.add("two_node")

    def note(self, text: str) -> None:
        self.trace.append(f"{self.now:.3f} {text}")

    # ------------------------------------------------------------------ faults
    def start(self, i: int) -> None:
        if i in self.ran and not self.winding:
            record = self.fdisk.get(i)
            if record and record.get("ops"):
                self.exercised.add("restart_with_state")
                if any(op["phase"] in ("done", "acked") and self.holds[node_id(op["node"])]
                       and node_id(op["node"]) != i for op in record["ops"]):
                    self.exercised.add("stale_record")   # issue 11's precondition
            elif i in self.wiped:
                self.exercised.add("restart_without_state")
            if i in self.powered_off:
                self.exercised.add("power_cycle")
        self.ran.add(i)
        self.wiped.discard(i)
        super().start(i)

    def crash(self, i: int) -> None:
        node = self.nodes[i]
        if node.alive and node.core is not None:
            self._ended(i, node.core.membership.inc, "its daemon died")
        super().crash(i)

    def stop(self, i: int) -> None:
        node = self.nodes[i]
        if node.alive and node.core is not None and not node.paused:
            self.holds[i] = False             # a clean leave stops the node's services
            self.note(f"oracle: node {i} leaves cleanly (its services stopped)")
        super().stop(i)

    def restart(self, i: int, keep_state: bool = True, delay: float = 0.0) -> None:
        """The daemon dies and is started again ``delay`` later (the node stays powered)."""
        if not self.nodes[i].alive or i in self.powered_off:
            return
        self.crash(i)
        if not keep_state:
            self.lose_state_dir(i)
        self.note(f"restart {i} {'keeping' if keep_state else 'losing'} its state dir "
                  f"in {delay:.2f}s")
        if delay <= 0:
            self.start(i)
        else:
            self.at(self.now + delay, lambda: self._start_if_down(i))

    def lose_state_dir(self, i: int) -> None:
        self._forget(i, ("memory", "intent"), "state dir")
        self.fdisk.pop(i, None)
        if hasattr(self, "lose_state"):       # the membership part of the state dir
            self.lose_state(i, 0)
        self.wiped.add(i)

    def _start_if_down(self, i: int) -> None:
        if not self.nodes[i].alive and i not in self.powered_off:
            self.start(i)

    def hang(self, i: int, duration: float = 1e6) -> None:
        if self.nodes[i].alive and not self.nodes[i].paused:
            self.pause(i, duration)

    def resume(self, i: int) -> None:
        node = self.nodes[i]
        if node.alive and node.paused:
            self._resume(i, node.life)

    def bmc_dead(self, i: int) -> None:
        self.agent.dead.add(name(i))
        self.note(f"BMC of node {i} dies")

    def bmc_revive(self, i: int) -> None:
        if name(i) in self.agent.dead:
            self.agent.dead.discard(name(i))
            self.note(f"BMC of node {i} revives")

    def power_off(self, i: int) -> None:
        """Power cut (not a fence: the oracle still counts the node as possibly running)."""
        if self.nodes[i].alive:
            self.crash(i)
        self.powered_off.add(i)
        self.note(f"power off {i}")

    def power_on(self, i: int) -> None:
        if i in self.powered_off and not self.nodes[i].alive:
            self.note(f"power on {i}")
            self.start(i)

    def _power_off(self, victim: int) -> None:       # a fake-agent success
        self.holds[victim] = False
        self.note(f"oracle: node {victim} fenced (power off)")
        self._resolve(victim, "fenced")
        super()._power_off(victim)

    def request(self, i: int, victim: int, who: str = "admin") -> None:
        """fence_node on node ``i`` (a hung daemon does not answer: nothing happens; the
        sim's glue refreshes the quorum flag before every event it feeds, so a request
        queued during the hang and served first after SIGCONT is not modelled)."""
        if self.nodes[i].alive and not self.nodes[i].paused:
            super().request(i, victim, who)

    def ack(self, i: int, victim: int) -> None:
        state = self.fstate.get(i)
        before = state.ops.get(name(victim)) if state else None
        super().ack(i, victim)
        after = self.fstate[i].ops.get(name(victim)) if i in self.fstate else None
        if after is not None and after.phase is FencePhase.ACKED and after is not before:
            self.acks += 1
            self.exercised.add("manual_ack")
            self.holds[victim] = False
            self.note(f"oracle: node {victim} acknowledged on node {i}")
            self._resolve(victim, "acknowledged")

    def manual_fence(self, victim: int, at: int) -> None:
        """The operator cuts the victim's power, then runs fence_ack_manual on ``at``."""
        if not (self.nodes[at].alive and not self.nodes[at].paused and at in self.fstate):
            return
        self.power_off(victim)
        self.ack(at, victim)

    # ------------------------------------------------------------------ oracle
    def _ended(self, i: int, inc: int, why: str) -> None:
        self.keepers.pop((i, inc), None)
        if self.escapes.pop((i, inc), None) is not None:
            self.note(f"oracle: node {i} incarnation {inc} ended ({why}) with an intent open")
        self._forget(i, ("memory",), "daemon")

    def _forget(self, k: int, kinds: tuple[str, ...], what: str) -> None:
        """Node ``k`` lost its daemon's memory (or its state dir too)."""
        for key, keepers in list(self.keepers.items()):
            keepers.difference_update({(k, kind) for kind in kinds})
            if not keepers:
                del self.keepers[key]
                if self.escapes.pop(key, None) is not None:
                    self.note(f"oracle: nobody knows any more that node {key[0]} "
                              f"incarnation {key[1]} was lost alive (node {k}'s {what})")

    def _resolve(self, i: int, why: str) -> None:
        for key in [k for k in self.keepers if k[0] == i]:
            del self.keepers[key]
        for key in [k for k in self.escapes if k[0] == i]:
            del self.escapes[key]
            self.note(f"oracle: the intent about node {i} incarnation {key[1]} ends: {why}")

    def check_safety(self) -> None:
        self._oracle()
        super().check_safety()       # harness, F1, F2, and every violation noted above

    def _oracle(self) -> None:
        now = self.now
        any_quorate = False
        groups: dict[Any, list[FencingState]] = {}
        for i, node in self.nodes.items():
            if not node.alive or node.core is None:
                continue
            view = node.core.membership.view
            if view is not None:
                self.installed.setdefault(view.vid, set()).add(i)
                last = self.last_view.get(i)
                if last is None or last[0] != view.vid:
                    self.last_view[i] = (view.vid, node.life, view.members)
                    life, seen = self.seen_alive.get(i, (None, set()))
                    if life != node.life:                 # a new daemon remembers nothing
                        seen = set()
                    self.seen_alive[i] = (node.life, seen | set(view.members))
            if node.paused:
                continue
            state = self.fstate.get(i)
            exact = node.core.membership.is_quorate(now)
            any_quorate = any_quorate or exact
            if state is None:
                continue
            if (exact or state.quorate) and not self.holds[i] and view is not None \
                    and self.installed[view.vid] >= view.nodeids:
                self.holds[i] = True
                self.note(f"oracle: node {i} may run services (quorate in {view.vid}, "
                          f"which every member installed)")
            key = self.keys.get(i)
            if key is not None and key[0] is not None:
                groups.setdefault(key[0], []).append(state)
        self._track_quorum(any_quorate)
        for vid, states in groups.items():
            if not any(s.quorate for s in states):
                continue
            members = states[0].members
            if vid not in self._quorate_views:          # a view's members never change
                self._quorate_views.add(vid)
                for victim, inc in members.items() if len(members) > 1 else ():
                    if (node_id(victim), int(inc)) in self.escapes:
                        self.exercised.add("same_incarnation_return")   # back, same inc
            for j, other in self.nodes.items():
                victim = name(j)
                if victim in members:
                    continue
                if not self.holds[j]:
                    continue
                if other.alive and other.core is not None:
                    # a quorate group goes on without an incarnation that may still run
                    # services: it was dropped alive, and this group's members know it (a
                    # loss seen only while inquorate, with no quorate group in between,
                    # is no drop: RHCS does not fence a node back before quorum is)
                    inc = other.core.membership.inc
                    for k, st in self.fstate.items():
                        life, seen = self.seen_alive.get(k, (None, set()))
                        if st.local in members and self.nodes[k].alive \
                                and life == self.nodes[k].life and (j, inc) in seen:
                            self.keepers.setdefault((j, inc), set()).add((k, "memory"))
                if other.paused and other.alive:
                    self.exercised.add("hung_owner")
                if decision(states, victim, self.rule):
                    self.violations.append(
                        f"F1' t={now:.3f}: the view of {sorted(members)} allows recovery "
                        f"of {victim}, which may still run services (not fenced, acked or "
                        f"left cleanly since it was last quorate; alive={other.alive}, "
                        f"hung={other.paused}); members' ops: "
                        f"{[(s.local, s.ops.get(victim)) for s in states]}")
                elif self.rule != "coordinator" and decision(states, victim, "coordinator"):
                    self.exercised.add("conjunction_needed")   # another member blocks
        # no escape: while a member that saw an incarnation dropped alive remembers it,
        # or one holds an intent about that very incarnation, any open intent for the
        # node must end in a fence (or an ack) unless the incarnation ends
        intents: dict[int, set[int]] = {}
        for i, state in self.fstate.items():
            if not state.ops:
                continue
            for op in state.open_ops():
                j = node_id(op.node)
                other = self.nodes.get(j)
                if other is None or not other.alive or other.core is None:
                    continue
                inc = other.core.membership.inc
                if op.incarnation != str(inc):
                    # about an earlier incarnation (its restart ends it), or a startup
                    # intent about none (cancelled by any join): a member that knows the
                    # loss makes it an intent about that incarnation (policy._specific)
                    continue
                intents.setdefault(j, set()).add(i)
                if op.incarnation == str(inc):
                    self.keepers.setdefault((j, inc), set()).add((i, "intent"))
        for (j, inc), keepers in self.keepers.items():
            if j in intents and keepers and (j, inc) not in self.escapes:
                self.escapes[(j, inc)] = (now, keepers)
                self.note(f"oracle: an intent for node {j} is open at {sorted(intents[j])} "
                          f"while {sorted(keepers)} know incarnation {inc} was lost alive")

    def _track_quorum(self, quorate: bool) -> None:
        """Quorum loss and regain: no node quorate for at least a token after some node
        was, then some node quorate again (a view change's lease round trip is shorter)."""
        was, since = self._quorum
        if quorate:
            if since is not None and self.now - since >= self.cfg.token:
                self.exercised.add("quorum_loss_regain")
            self._quorum = (True, None)
        elif was and since is None:
            self._quorum = (True, self.now)

    # ------------------------------------------------------------------ end of schedule
    def wind_down(self, bound: float = LIVENESS_BOUND) -> float:
        """Faults stop: links heal, BMCs revive, hung daemons resume, every node is powered
        and started (again after each fence). Liveness: within ``bound`` every open
        intent closes and all nodes agree in one quorate view. Then no escape."""
        if getattr(self.agent, "dead_runs", 0):
            self.exercised.add("dead_bmc")
        self.note("faults stop: heal, BMCs revive, hung daemons resume, power on")
        self.winding = True
        self.heal()
        for i in self.nodes:
            self.bmc_revive(i)
            self.resume(i)
        start = self.now
        last = "never checked"
        while True:
            for i, node in self.nodes.items():
                if not node.alive:
                    self.powered_off.discard(i)
                    self.start(i)
            self.run_for(0.5)
            last = self._unsettled()
            if not last:
                break
            if self.now - start > bound:
                raise AssertionError(f"liveness: not settled {bound:g}s (virtual) after "
                                     f"the faults stopped: {last}")
        for (j, inc), (since, keepers) in sorted(self.escapes.items()):
            node = self.nodes[j]
            if node.alive and node.core is not None and node.core.membership.inc == inc:
                raise AssertionError(
                    f"no escape: node {j} incarnation {inc} still runs, never fenced or "
                    f"acknowledged, though a fence intent for it was open from "
                    f"t={since:.3f} while {sorted(keepers)} knew it was lost alive")
        return self.now - start

    def describe(self, op: Any) -> str:
        """An operation as the liveness message shows it: a running one says whether an
        agent run of it is still in flight anywhere (none: nobody will ever finish it)."""
        text = f"{op.op_id} {op.phase.value}"
        if op.phase is FencePhase.RUNNING:
            flying = any(r.op_id == op.op_id and not r.outcome for r in self.runs)
            text += f" by {op.executor or '?'} ({'in flight' if flying else 'no run in flight'})"
        return text

    def _unsettled(self) -> str:
        if any(not n.alive or n.paused for n in self.nodes.values()):
            return "a node is not running"
        try:
            self.check_converged()
        except AssertionError as exc:
            return f"membership: {exc}"
        open_ops = {i: [self.describe(op) for op in s.open_ops()]
                    for i, s in self.fstate.items() if s.open_ops()}
        if open_ops:
            return f"open intents {open_ops}"
        shown = {i: tuple(sorted((v, op.generation, op.phase.value)
                                 for v, op in s.ops.items()))
                 for i, s in self.fstate.items()}
        if len(set(shown.values())) > 1:
            return f"members show different operations {shown}"
        return ""


# ---------------------------------------------------------------------- random schedules
@dataclass
class Outcome:
    seed: int
    exercised: frozenset[str]
    virtual: float
    error: str = ""


def fault_schedule(seed: int, *, faults: int = 8, horizon: float = 30.0,
                   test: str = "fault_schedules") -> FaultSim:
    """One random schedule: 2-5 nodes, ``faults`` faults in ``horizon`` virtual seconds
    (each with its own undo, some of which never come), then ``wind_down``. A failure is
    an AssertionError naming the seed, the invariant and the last steps."""
    rng = random.Random(seed)
    n = rng.choice([2, 3, 3, 3, 4, 5, 5])
    actions = frozenset({"off", "on", "reboot", "status"}) if rng.random() < 0.7 \
        else frozenset({"reboot", "status"})
    outcomes = {name(i): rng.choice(["ok", "ok", "ok", ["fail", "ok"]])
                for i in range(1, n + 1)}
    agent = FaultAgent(outcomes=outcomes, delay=rng.uniform(0.1, 1.5), actions=actions,
                       boot=rng.uniform(1.0, 6.0))
    services = {name(i): rng.randint(0, 2) for i in range(1, n + 1)}
    late = rng.choice([None, None, None, rng.randint(1, n)])
    sim = FaultSim(n, seed, agent=agent, two_node=n == 2, services=services, start=False,
                   loss=rng.choice([0.0, 0.0, 0.0, 0.02]),
                   policy={"post_join_delay": rng.choice([3.0, 6.0])})
    for i in sim.nodes:
        if i != late:
            sim.start(i)
    if late is not None:                       # startup fencing, or a join in time
        sim.at(rng.uniform(1.0, 10.0), lambda: sim._start_if_down(late))
    try:
        _inject(sim, rng, faults, horizon)
        sim.wind_down()
    except AssertionError as exc:
        err = AssertionError(fail_message(sim, test, exc))
        err.sim = sim                        # for run_batch's figures
        raise err from None
    return sim


def fail_message(sim: FaultSim, test: str, exc: BaseException) -> str:
    """Seed, invariant, replay command and the last steps (all of them when replaying)."""
    steps = sim.trace if os.environ.get("RHC_SIM_SEED") else sim.trace[-60:]
    tail = "\n  ".join(steps)
    return (f"SEED={sim.seed}: {exc}\nreplay (prints every step): RHC_SIM_SEED={sim.seed} "
            f".venv/bin/pytest tests/sim -k {test}\nlast steps:\n  {tail}")


def _inject(sim: FaultSim, rng: random.Random, faults: int, horizon: float) -> None:
    nodes = list(sim.nodes)
    n = len(nodes)
    ops = (["hang"] * 3 + ["bmc_dead"] * 2 + ["restart_keep"] * 2 + ["restart_lose"] * 2
           + ["power"] * 2 + ["split"] * 2 + ["partition", "heal", "stop", "crash",
                                               "request", "ack", "issue11", "issue11"])
    for t in sorted(rng.uniform(1.0, horizon) for _ in range(faults)):
        sim.run_until(t)
        op, a = rng.choice(ops), rng.choice(nodes)
        b = rng.choice([x for x in nodes if x != a])
        later = sim.now + rng.uniform(0.5, 12.0)
        if op == "hang":
            sim.hang(a, rng.choice([rng.uniform(1.0, 8.0), 1e6]))
        elif op == "bmc_dead":
            sim.bmc_dead(a)
            if rng.random() < 0.5:
                sim.at(later, lambda a=a: sim.bmc_revive(a))
        elif op in ("restart_keep", "restart_lose"):
            sim.restart(a, keep_state=op == "restart_keep",
                        delay=rng.choice([0.0, rng.uniform(0.5, 8.0)]))
        elif op == "power":
            sim.power_off(a)
            if rng.random() < 0.8:
                sim.at(later, lambda a=a: sim.power_on(a))
        elif op == "split":                   # no group keeps a majority: quorum lost
            order = rng.sample(nodes, n)
            groups = [set(order[k:k + max(1, (n - 1) // 2)])
                      for k in range(0, n, max(1, (n - 1) // 2))]
            sim.partition(*groups)
            if rng.random() < 0.7:
                sim.at(later, sim.heal)
        elif op == "partition":
            left = set(rng.sample(nodes, rng.randint(1, max(1, n - 1))))
            sim.partition(left, set(nodes) - left)
        elif op == "heal":
            sim.heal()
        elif op == "stop" and sim.nodes[a].alive:
            sim.stop(a)
            if rng.random() < 0.7:
                sim.at(later, lambda a=a: sim._start_if_down(a))
        elif op == "crash" and sim.nodes[a].alive:
            sim.crash(a)                     # the daemon dies; the node stays powered
            if rng.random() < 0.7:
                sim.at(later, lambda a=a: sim._start_if_down(a))
        elif op == "request" and sim.nodes[a].alive:
            sim.request(a, b)
        elif op == "ack":
            holders = [(i, op.node) for i, s in sim.fstate.items() for op in s.open_ops()
                       if op.node not in s.members and not sim.nodes[i].paused]
            if holders:
                at, victim = rng.choice(sorted(holders))
                sim.manual_fence(node_id(victim), at)
        elif op == "issue11":                # the lab's: hung owner without a BMC, and
            sim.bmc_dead(a)                  # a peer power-cycled while it hangs
            sim.hang(a)
            sim.power_off(b)
            sim.at(sim.now + rng.uniform(2.0, 9.0), lambda b=b: sim.power_on(b))
    sim.run_until(horizon)


# ---------------------------------------------------------------------- batches
def fresh_seeds() -> Iterator[int]:
    """RHC_SIM_SEED replays one schedule; otherwise new seeds at every run (from
    os.urandom), consecutive from a random base so a run is easy to describe."""
    env = os.environ.get("RHC_SIM_SEED")
    if env:
        yield int(env)
        return
    base = int.from_bytes(os.urandom(4), "big") * 1000
    k = 0
    while True:
        yield base + k
        k += 1


def run_batch(seeds: Iterator[int] | list[int], budget: float, *, max_count: int = 10**9,
              test: str = "fault_schedules") -> dict[str, Any]:
    """Run schedules until ``budget`` CPU seconds of this process passed (or the seeds or
    ``max_count`` run out: one core, whatever else the machine runs); returns the
    figures, every failing seed with its first line, and the first three failure
    messages in full."""
    t0 = time.process_time()
    w0 = time.perf_counter()
    shares: Counter[str] = Counter()
    failures: list[str] = []
    failed: list[int] = []
    count = 0
    virtual = 0.0
    ran: list[int] = []
    for seed in seeds:
        if count >= max_count or (count and time.process_time() - t0 >= budget):
            break
        count += 1
        ran.append(seed)
        try:
            sim = fault_schedule(seed, test=test)
        except AssertionError as exc:
            failures.append(str(exc))
            failed.append(seed)
            sim = getattr(exc, "sim", None)
            if sim is None:
                continue
        shares.update(sim.exercised)
        virtual += sim.now
    elapsed = time.process_time() - t0
    return {"schedules": count, "failures": len(failures), "seconds": round(elapsed, 2),
            "wall_seconds": round(time.perf_counter() - w0, 2),
            "per_second": round(count / elapsed, 2) if elapsed else 0.0,
            "virtual_seconds": round(virtual, 1),
            "seeds": f"{ran[0]}..{ran[-1]}" if ran else "",
            "failed_seeds": failed,
            "shares": {k: round(shares[k] / max(1, count), 3) for k in (*KINDS, *EXTRA)},
            "first_failures": failures[:3],
            "failure_lines": [f.splitlines()[0][:200] for f in failures]}


def stats_line(stats: dict[str, Any]) -> str:
    """One line for logs and tests/bench: ``RHC-SIM-STATS fencing_faults {json}``."""
    public = {k: v for k, v in stats.items() if k not in ("first_failures", "failure_lines")}
    return f"{STATS_PREFIX} fencing_faults {json.dumps(public, sort_keys=True)}"


def markdown(stats: dict[str, Any]) -> str:
    """A benchmarks.md section (for a future tests/bench/bench_<topic>.py ``main``)."""
    shares = ", ".join(f"{k.replace('_', ' ')} {100 * v:.0f} %"
                       for k, v in stats["shares"].items())
    return ("## Fencing fault schedules (simulator)\n\n"
            f"- {stats['schedules']} random schedules in {stats['seconds']} CPU s of one core: "
            f"{stats['per_second']} schedules/s ({stats['virtual_seconds']} s virtual), "
            f"{stats['failures']} failed\n"
            f"- Share of schedules that exercised each fault: {shares}\n")


def main(budget: float = 60.0) -> str:
    stats = run_batch(fresh_seeds(), budget)
    print(stats_line(stats), flush=True)
    return markdown(stats)


if __name__ == "__main__":
    print(main(float(os.environ.get("RHC_SIM_FAULT_BUDGET", "60"))))


__all__ = ["FaultAgent", "FaultSim", "decision", "fault_schedule", "fresh_seeds",
           "main", "markdown", "run_batch", "stats_line"]
