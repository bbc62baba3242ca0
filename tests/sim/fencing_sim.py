"""Fencing on the deterministic simulator: every node's fencing core
(:class:`clusterd.fencing.core.FencingCore`, the code ``node/fencing_glue.py`` drives in the
daemon: views by name and incarnation, quorum = reported flag and exact lease check,
clean leaves and restarts, peers' ``fence.state`` messages through their wire form,
broadcasts on change, on a new view, periodically and to stale peers) over the simulated
cores, with a fake fence agent. Intents are persisted on the node's simulated disk at
every ``PersistIntents`` and restored when it restarts (wall clock = virtual time + 1e9).

``FakeAgent`` is Pacemaker's fence_dummy in simulator form: per victim outcomes (``ok``,
``fail``, a list consumed in order, ``dead`` = BMC never answers), a run time, and the
supported actions: with ``off`` the victim's power goes off (its process dies) when the
agent succeeds; a ``reboot``-only agent also boots it again ``boot`` seconds later (it
rejoins with a new incarnation). The result reaches the executor only if it is still the
same running process (a crashed coordinator never hears back; the BMC acted anyway).

Invariants (after every simulator step, on top of the harness's):
* F1 no recovery before fence: no quorate node allows recovery of a node that is outside
  its view while that node's process still runs the incarnation it last saw there.
* F2 inquorate partitions never fence: every agent run starts on a node that is quorate
  at that instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clusterd.fencing.core import FencingCore, FencingOut, ViewFacts
from clusterd.fencing.exchange import CH_FENCE
from clusterd.fencing.intents import restore, to_record
from clusterd.fencing.policy import recovery_allowed
from clusterd.fencing.state import (
    Event,
    FenceAcked,
    FenceRequested,
    FenceResult,
    FencingState,
    PersistIntents,
    PolicyConfig,
    RunFence,
    ServicesRunning,
    Tick,
)
from clusterd.membership.host import HostOutput
from harness import SimNet

WALL0 = 1_000_000_000.0


@dataclass
class FakeAgent:
    outcomes: dict[str, Any] = field(default_factory=dict)   # victim -> "ok"|"fail"|"dead"|[...]
    delay: float = 0.5
    actions: frozenset[str] = frozenset({"off", "on", "reboot", "status"})
    boot: float = 1.0

    def outcome(self, victim: str) -> str:
        spec = self.outcomes.get(victim, "ok")
        if isinstance(spec, list):
            return spec.pop(0) if len(spec) > 1 else spec[0]
        return spec


@dataclass
class FenceRun:
    at: float
    executor: str
    victim: str
    op_id: str
    attempt: int
    outcome: str = ""


def name(i: int) -> str:
    return f"node{i}"


class FenceSim(SimNet):
    def __init__(self, n: int, seed: int, *, agent: FakeAgent | None = None,
                 services: dict[str, int] | None = None, start: bool = True,
                 policy: dict[str, Any] | None = None, **kw: Any) -> None:
        self.agent = agent or FakeAgent()
        self.policy_overrides = policy or {}
        self.services = services or {}
        self.fcore: dict[int, FencingCore] = {}
        self.fdisk: dict[int, dict] = {}
        self.runs: list[FenceRun] = []
        self.powered_off: set[int] = set()
        self.violations: list[str] = []
        super().__init__(n, seed, start=False, **kw)
        if start:
            for i in self.nodes:
                self.start(i)

    @property
    def fstate(self) -> dict[int, FencingState]:
        """Each running node's fencing policy state."""
        return {i: core.state for i, core in self.fcore.items()}

    @property
    def keys(self) -> dict[int, tuple]:
        """The (view id, quorate) each running node's fencing last took in."""
        return {i: core.view_key for i, core in self.fcore.items()
                if core.view_key is not None}

    # ------------------------------------------------------------------ config
    def pcfg(self) -> PolicyConfig:
        base = {"nodeids": {name(i): i for i in self.nodes}, "post_fail_delay": 0.0,
                "post_join_delay": 6.0, "two_node": self.cfg.two_node,
                "two_node_delay": 5.0}
        base.update(self.policy_overrides)
        return PolicyConfig(**base)

    # ------------------------------------------------------------------ lifecycle
    def start(self, i: int) -> None:
        self.powered_off.discard(i)
        super().start(i)
        record = self.fdisk.get(i)
        if record is None:
            state = FencingState.initial(name(i), self.pcfg())
        else:
            state = restore(name(i), self.pcfg(), record, self.now, WALL0 + self.now)
        self.fcore[i] = FencingCore(state, {j: name(j) for j in self.nodes})
        if self.services:
            self.feed(i, ServicesRunning(dict(self.services)))

    def crash(self, i: int) -> None:
        super().crash(i)
        self.fcore.pop(i, None)

    # ------------------------------------------------------------------ the driver
    # What node/fencing_glue.py and fencing/runtime.py do around the same core.
    def _facts(self, i: int) -> ViewFacts:
        return ViewFacts.of(self.nodes[i].core.membership, self.node_now(i))

    def feed(self, i: int, event: Event) -> None:
        node = self.nodes[i]
        if i not in self.fcore or not node.alive or node.core is None:
            return
        self._carry(i, self.fcore[i].handle(event, self.now, WALL0 + self.now,
                                            self._facts(i)))

    def _carry(self, i: int, out: FencingOut) -> None:
        node = self.nodes[i]
        for result in out.steps:
            if result.reason != "no change":   # the policy's own words, for the trace
                self.trace.append(f"{self.now:.3f} node {i} fencing: {result.reason}")
            for action in result.actions:
                if i not in self.fcore:
                    return                      # an action ended this node
                if isinstance(action, RunFence):
                    self._run_agent(i, action)
                elif isinstance(action, PersistIntents):
                    self.fdisk[i] = to_record(self.fcore[i].state, self.now, WALL0 + self.now)
        for line in out.warnings:
            self.trace.append(f"{self.now:.3f} node {i} fencing: {line}")
        if out.broadcast is not None and node.alive and node.core is not None \
                and not node.paused:
            super()._send(i, node.core.send_app(None, CH_FENCE, out.broadcast,
                                                self.node_now(i)))

    def _observe(self, i: int, out: HostOutput) -> None:
        node = self.nodes[i]
        core = self.fcore.get(i)
        if core is None or node.core is None:
            return
        self._carry(i, core.on_cycle(out.events, None, self.now, WALL0 + self.now,
                                     self._facts(i)))
        core = self.fcore.get(i)
        if core is not None and core.due(self.now):
            self.feed(i, Tick())

    def _send(self, i: int, out: HostOutput) -> None:
        super()._send(i, out)
        self._observe(i, out)

    def _tick(self, i: int, life: int, reschedule: bool = True) -> None:
        super()._tick(i, life, reschedule)
        node = self.nodes[i]
        if node.alive and node.life == life and not node.paused:
            self._observe(i, HostOutput())

    # ------------------------------------------------------------------ fake agent
    def _run_agent(self, i: int, action: RunFence) -> None:
        m = self.nodes[i].core.membership
        if not m.is_quorate(self.node_now(i)):  # exact, independent of the glue's rule
            self.violations.append(f"t={self.now:.3f}: node {i} runs a fence of "
                                   f"{action.node} while not quorate (F2)")
        run = FenceRun(self.now, name(i), action.node, action.op_id, action.attempt)
        self.runs.append(run)
        life = self.nodes[i].life
        victim = int(action.node.removeprefix("node"))

        def finish() -> None:
            run.outcome = outcome = self.agent.outcome(action.node)
            ok = outcome == "ok"
            if ok:
                self._power_off(victim)
            self.trace.append(f"{self.now:.3f} agent: {action.op_id} by node {i}: {outcome}")
            if outcome == "dead":   # the BMC never answers: the attempt timeout ends it
                self.at(self.now + 5.0, lambda: self._timeout(i, life, action))
                return
            self._result(i, life, FenceResult(action.node, action.op_id, ok,
                                              error="" if ok else "fake agent: failed",
                                              method="fake"))
        self.at(self.now + self.agent.delay, finish)

    def _timeout(self, i: int, life: int, action: RunFence) -> None:
        self._result(i, life, FenceResult(action.node, action.op_id, False,
                                          error="fencing attempt exceeded 5s"))

    def _result(self, i: int, life: int, event: FenceResult) -> None:
        """The executor hears its agent only if it is the same process, and only once it
        runs: a paused (hung) daemon gets the result after it resumes."""
        node = self.nodes[i]
        if not node.alive or node.life != life:
            return
        if node.paused:
            self.at(self.now + 0.25, lambda: self._result(i, life, event))
            return
        self.feed(i, event)

    def _power_off(self, victim: int) -> None:
        if self.nodes[victim].alive:
            self.crash(victim)
        self.powered_off.add(victim)
        if "off" not in self.agent.actions and "reboot" in self.agent.actions:
            self.at(self.now + self.agent.boot, lambda: self._boot(victim))

    def _boot(self, victim: int) -> None:
        if not self.nodes[victim].alive:
            self.start(victim)

    # ------------------------------------------------------------------ admin
    def request(self, i: int, victim: int, who: str = "admin") -> None:
        self.feed(i, FenceRequested(name(victim), who, "fence_node by hand"))

    def ack(self, i: int, victim: int) -> None:
        self.feed(i, FenceAcked(name(victim), "admin"))

    # ------------------------------------------------------------------ invariants
    def check_safety(self) -> None:
        super().check_safety()
        for i, state in self.fstate.items():
            node = self.nodes[i]
            if not node.alive or node.core is None or not state.quorate:
                continue
            for j, other in self.nodes.items():
                if j == i or name(j) in state.members:
                    continue
                seen = state.nodes.get(name(j))
                if seen is None or seen.incarnation is None or seen.left_clean:
                    continue
                if other.alive and str(other.incarnation) == seen.incarnation \
                        and recovery_allowed(state, name(j)):
                    self.violations.append(
                        f"t={self.now:.3f}: node {i} allows recovery of node {j} whose "
                        f"incarnation {seen.incarnation} still runs (F1)")
        assert not self.violations, self.violations[0]

    # ------------------------------------------------------------------ queries
    def fenced(self, victim: int) -> list[FenceRun]:
        return [r for r in self.runs if r.victim == name(victim) and r.outcome == "ok"]

    def op(self, i: int, victim: int):
        return self.fstate[i].ops.get(name(victim))

    def allowed(self, i: int, victim: int) -> bool:
        return recovery_allowed(self.fstate[i], name(victim))

    def run_while(self, cond: Callable[[], bool], limit: float, dt: float = 0.05) -> float:
        start = self.now
        while cond():
            assert self.now - start < limit, f"condition still true after {limit}s virtual"
            self.run_for(dt)
        return self.now - start


__all__ = ["FakeAgent", "FenceRun", "FenceSim", "name"]
