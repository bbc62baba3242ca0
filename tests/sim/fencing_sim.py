"""Fencing on the deterministic simulator: the pure fencing policy of every node over the
simulated cores, the fence.state exchange on the real app channel, and a fake fence agent.

``FenceSim`` extends :class:`harness.SimNet` without changing it: each node runs
:func:`clusterd.fencing.policy.step` exactly as ``node/fencing_glue.py`` feeds it (views by
name and incarnation, quorum = reported flag and exact lease check via
:func:`clusterd.node.fencing_glue.quorate_now`, clean leaves, peers' ``fence.state``
messages through :class:`~clusterd.fencing.exchange.FenceStateMessage` wire form, periodic
resend). Intents are persisted on the node's simulated disk at every ``PersistIntents`` and
restored when it restarts (wall clock = virtual time + 1e9).

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

from clusterd.events import NodeLeft
from clusterd.fencing.exchange import (
    CH_FENCE,
    RESEND,
    FenceStateMessage,
    digest,
    peer_behind,
)
from clusterd.fencing.intents import restore, to_record
from clusterd.fencing.policy import next_wakeup, recovery_allowed, step
from clusterd.fencing.state import (
    Event,
    FenceAcked,
    FenceRequested,
    FenceResult,
    FencingState,
    PeerFenceState,
    PersistIntents,
    PolicyConfig,
    RunFence,
    ServicesRunning,
    Tick,
    ViewChanged,
    ViewLost,
)
from clusterd.membership.host import AppReceived, HostOutput
from clusterd.node.fencing_glue import REPLY_GAP, quorate_now
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
        self.fstate: dict[int, FencingState] = {}
        self.fdisk: dict[int, dict] = {}
        self.keys: dict[int, tuple] = {}
        self.sent: dict[int, tuple[tuple, float]] = {}
        self.runs: list[FenceRun] = []
        self.powered_off: set[int] = set()
        self.violations: list[str] = []
        super().__init__(n, seed, start=False, **kw)
        if start:
            for i in self.nodes:
                self.start(i)

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
            self.fstate[i] = FencingState.initial(name(i), self.pcfg())
        else:
            self.fstate[i] = restore(name(i), self.pcfg(), record, self.now, WALL0 + self.now)
        self.keys.pop(i, None)
        self.sent.pop(i, None)
        if self.services:
            self.feed(i, ServicesRunning(dict(self.services)))

    def crash(self, i: int) -> None:
        super().crash(i)
        self.fstate.pop(i, None)

    # ------------------------------------------------------------------ the glue
    def _sync(self, i: int, left: set[int] | frozenset[int] = frozenset()) -> bool:
        """As ``FencingGlue._sync_view``: a new view or a change of exact quorum goes to
        the policy (also right before any other event: leases lapse between cycles)."""
        m = self.nodes[i].core.membership
        if m.view is not None:
            quorate = quorate_now(m, self.now)
            key = (m.view.vid, quorate)
            if key != self.keys.get(i) or left:
                self.keys[i] = key
                names = {j: name(j) for j in self.nodes}
                self._step(i, ViewChanged.from_membership(m.view, names, quorate,
                                                          left_clean=left))
                return True
        elif self.keys.get(i) is not None and self.keys[i][1]:
            self.keys[i] = (None, False)            # dropped while alive: not quorate
            self._step(i, ViewLost("dropped from the view while alive"))
        return False

    def feed(self, i: int, event: Event) -> None:
        node = self.nodes[i]
        if i not in self.fstate or not node.alive or node.core is None:
            return
        m = node.core.membership
        key = self.keys.get(i)
        if m.view is None or key is None or key[0] == m.view.vid:
            self._sync(i)        # quorum lapsed or returned in the known view (not a new view)
        self._step(i, event)

    def _step(self, i: int, event: Event) -> None:
        state = self.fstate.get(i)
        node = self.nodes[i]
        if state is None or not node.alive or node.core is None:
            return
        result = step(state, event, self.now)
        self.fstate[i] = result.state
        if result.reason != "no change":       # the policy's own words, for the trace
            self.trace.append(f"{self.now:.3f} node {i} fencing: {result.reason}")
        for action in result.actions:
            if isinstance(action, RunFence):
                self._run_agent(i, action)
            elif isinstance(action, PersistIntents):
                self.fdisk[i] = to_record(result.state, self.now, WALL0 + self.now)
        if digest(result.state) != self.sent.get(i, ((), 0.0))[0]:
            self._broadcast(i)

    def _broadcast(self, i: int) -> None:
        node, state = self.nodes[i], self.fstate.get(i)
        view = node.core.membership.view if node.core else None
        if state is None or view is None or not state.ops or node.paused:
            return
        msg = FenceStateMessage.build(state, view.epoch, self.now, WALL0 + self.now)
        self.sent[i] = (digest(state), self.now)
        super()._send(i, node.core.send_app(None, CH_FENCE, msg.to_wire(), self.now))

    def _observe(self, i: int, out: HostOutput) -> None:
        node = self.nodes[i]
        if i not in self.fstate or node.core is None:
            return
        m = node.core.membership
        left = {e.nodeid for e in out.events if isinstance(e, NodeLeft)}
        if self._sync(i, left):
            self._broadcast(i)                  # a new view: tell (new) members
        for e in out.events:
            if isinstance(e, AppReceived) and e.channel == CH_FENCE and m.view is not None \
                    and m.view.incarnation_of(e.src) in (None, e.incarnation):
                msg = FenceStateMessage.from_wire(e.payload)
                self.feed(i, PeerFenceState(name(e.src), msg))
                if i in self.fstate and peer_behind(self.fstate[i], msg) and \
                        self.now - self.sent.get(i, ((), float("-inf")))[1] >= REPLY_GAP:
                    self._broadcast(i)
        state = self.fstate.get(i)
        if state is None:
            return
        due = next_wakeup(state)
        if due is not None and due <= self.now:
            self.feed(i, Tick())
        if state.open_ops() and self.now - self.sent.get(i, ((), float("-inf")))[1] >= RESEND:
            self._broadcast(i)

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
        if not m.is_quorate(self.now):          # exact, independent of the glue's rule
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
