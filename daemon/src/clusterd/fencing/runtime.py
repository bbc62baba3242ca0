"""Fencer: the asyncio adapter around the pure policy (edge).

It feeds events to :func:`clusterd.fencing.policy.step`, logs each step's reason, runs
``RunFence`` actions as tracked tasks (one per victim; a busy victim is a value, not an
exception), reports **off confirmed** as a successful FenceResult at once (recovery starts
while a rebooting victim is powered back on), writes the intents record on
``PersistIntents``, and arms one timer (``loop.call_at``) for the next due attempt. It also
offers the control ops (``fence.node``, ``fence.ack``, ``fence.status``) for the node's
registry and the ``fencing`` section of the status document.

What the policy is told and when (views, quorum, peers' state, broadcasts) is the sans-IO
:class:`~clusterd.fencing.core.FencingCore`, which the simulator drives too; the node's
glue hands this adapter the membership's facts (``facts``) and a way to broadcast
(``broadcast``). Placement asks :meth:`recovery_allowed`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from clusterd.control.protocol import Role
from clusterd.fencing import ops
from clusterd.fencing.agent import AgentRunner
from clusterd.fencing.core import FencingCore, FencingOut, ViewFacts
from clusterd.fencing.intents import DEFAULT_PATH, IntentsError, restore, to_record
from clusterd.fencing.methods import FenceOutcome, fence_node
from clusterd.fencing.plan import ConfLike
from clusterd.fencing.policy import (
    next_wakeup,
    recovery_allowed,
    recovery_blocked,
)
from clusterd.fencing.progress import AgentStep, Progress
from clusterd.fencing.state import (
    Event,
    FenceResult,
    FenceStep,
    FencingState,
    PersistIntents,
    PolicyConfig,
    RunFence,
    Tick,
)
from clusterd.fencing.store import read_intents, write_intents

logger = logging.getLogger(__name__)


class Fencer:
    def __init__(self, local: str, config: PolicyConfig, conf_provider: Callable[[], ConfLike],
                 runner: AgentRunner | None = None, intents_path: str | None = DEFAULT_PATH,
                 attempt_timeout: float = 300.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 names: Mapping[int, str] | None = None) -> None:
        self.local = local
        self.conf_provider = conf_provider
        self.runner = runner or AgentRunner()
        self.intents_path = intents_path
        self.attempt_timeout = attempt_timeout
        self.clock = clock
        self.wall = wall
        self.core = FencingCore(FencingState.initial(local, config), names or {})
        self.last_reason = ""
        self.outcomes: dict[str, FenceOutcome] = {}
        self.progress: dict[str, Progress] = {}     # victim -> this node's running attempt
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._queued: dict[str, RunFence] = {}
        self._dirty = False
        self._writer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # the membership's facts at an instant (None: no membership, as in unit tests:
        # events go to the policy as they are), and where broadcasts go
        self.facts: Callable[[float], ViewFacts] | None = None
        self.broadcast: Callable[[dict[str, Any]], None] | None = None
        self.listeners: list[Callable[[FenceStep], None]] = []   # after every applied step

    @property
    def state(self) -> FencingState:
        return self.core.state

    @state.setter
    def state(self, state: FencingState) -> None:
        self.core.state = state

    # ------------------------------------------------------------------ state in/out
    def load(self) -> None:
        """Restore intents persisted by a previous run (missing file: nothing to do).
        A corrupt file raises IntentsError: never forget intents silently."""
        if self.intents_path is None:
            return
        record = read_intents(self.intents_path)
        if record is not None:
            self.state = restore(self.local, self.state.config, record, self.clock(),
                                 self.wall())
            logger.info("node %s: restored %d fence operation(s) from %s", self.local,
                        len(self.state.ops), self.intents_path)

    def recovery_allowed(self, node: str) -> bool:
        return recovery_allowed(self.state, node)

    def recovery_blocked(self, node: str) -> bool:
        return recovery_blocked(self.state, node)

    def fence_open(self, node: str) -> bool:
        """An operation against ``node`` is pending, running or retrying."""
        op = self.state.ops.get(node)
        return op is not None and op.phase.open

    def status_section(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(ops.fence_status(self.state, self.clock(), self.wall(),
                                      progress=self.progress))

    # ------------------------------------------------------------------ events
    def _facts(self, now: float) -> ViewFacts:
        return self.facts(now) if self.facts is not None else ViewFacts(None, False)

    def handle(self, event: Event) -> FenceStep:
        """Feed one event (a result, a request, a tick) through the core; the last step
        is the event's own."""
        now = self.clock()
        return self.carry_out(self.core.handle(event, now, self.wall(), self._facts(now)))[-1]

    def carry_out(self, out: FencingOut) -> tuple[FenceStep, ...]:
        """Log and act on every step the core took, then send its broadcast."""
        for result in out.steps:
            self._act(result)
        for line in out.warnings:
            logger.warning("node %s: %s", self.local, line)
        if out.broadcast is not None and self.broadcast is not None:
            self.broadcast(out.broadcast)
        return out.steps

    def _apply(self, result: FenceStep) -> FenceStep:
        """A step computed outside the core (control ops) on the current state."""
        now = self.clock()
        self.carry_out(self.core.take(result, now, self.wall(), self._facts(now)))
        return result

    def _act(self, result: FenceStep) -> None:
        if result.reason != "no change":
            logger.info("node %s: fencing: %s", self.local, result.reason)
        self.last_reason = result.reason
        for action in result.actions:
            if isinstance(action, RunFence):
                self._start(action)
            elif isinstance(action, PersistIntents):
                self._persist()
        self._arm()
        for listener in self.listeners:
            listener(result)

    def _persist(self) -> None:
        """Mark the record dirty; one writer task writes the latest state off the loop
        (fsync must not block heartbeats). Peers hold the same intents meanwhile."""
        if self.intents_path is None:
            return
        self._dirty = True
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._write_loop(), name="fence-intents-writer")

    async def _write_loop(self) -> None:
        assert self.intents_path is not None
        while self._dirty:
            self._dirty = False
            record = to_record(self.state, self.clock(), self.wall())
            try:
                await asyncio.to_thread(write_intents, record, self.intents_path)
            except OSError as exc:
                logger.error("node %s: cannot write fence intents to %s: %s", self.local,
                             self.intents_path, exc)

    async def flush(self) -> None:
        """Wait until the latest intents are on disk."""
        while self._writer is not None and not self._writer.done():
            await self._writer

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = next_wakeup(self.state)
        if due is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, due - self.clock())
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.handle(Tick())

    # ------------------------------------------------------------------ execution
    def busy(self) -> dict[str, str]:
        return {node: task.get_name() for node, task in self._tasks.items() if not task.done()}

    def _start(self, action: RunFence) -> None:
        current = self._tasks.get(action.node)
        if current is not None and not current.done():
            logger.warning("node %s: busy: fencing %s already running; %s waits for it",
                           self.local, action.node, action.op_id)
            self._queued[action.node] = action
            return
        task = asyncio.get_running_loop().create_task(
            self._execute(action), name=f"fence:{action.node}:{action.attempt}")
        self._tasks[action.node] = task

    async def _execute(self, action: RunFence) -> None:
        reported = False

        async def off_confirmed(node: str, method: str) -> None:
            nonlocal reported
            reported = True
            self.handle(FenceResult(node, action.op_id, True, method=method))

        try:
            async with asyncio.timeout(self.attempt_timeout):
                outcome = await fence_node(action.node, self.conf_provider, self.runner,
                                           off_confirmed, lambda s: self._step(action, s))
        except TimeoutError:
            outcome = FenceOutcome(action.node, False, errors=(
                f"fencing attempt exceeded {self.attempt_timeout:g}s",))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not stop retries: report it as a failure
            logger.exception("node %s: fencing %s crashed", self.local, action.node)
            outcome = FenceOutcome(action.node, False, errors=(f"internal error: {exc!r}",))
        self.outcomes[action.node] = outcome
        self.progress.pop(action.node, None)
        if not reported:
            self.handle(FenceResult(action.node, action.op_id, outcome.ok,
                                    error=outcome.error, method=outcome.method))
        queued = self._queued.pop(action.node, None)
        if queued is not None:
            self._tasks.pop(action.node, None)
            self._start(queued)

    def _step(self, action: RunFence, step: AgentStep) -> None:
        """An agent call of ``action`` started or ended: shown at once in the status
        section (``current``) and logged with the op id."""
        p = self.progress.get(action.node)
        p = p.after(step) if p is not None and p.op_id == action.op_id else \
            Progress(action.op_id, action.attempt, step)
        self.progress[action.node] = p
        logger.log(logging.WARNING if step.error else logging.INFO, "node %s: %s: %s",
                   self.local, p.prefix, step.line())

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        await self.flush()
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            try:
                await task
            except asyncio.CancelledError:
                pass

    # ------------------------------------------------------------------ control ops
    def register(self, registry: Any) -> None:
        """Add fence.node / fence.ack / fence.status / fence.verify to a control OpRegistry."""
        specs = ops.register_args()

        async def fence_node_op(args: Mapping[str, Any], peer: Any) -> Any:
            result, reply = ops.handle_fence_node(self.state, dict(args), self.clock(),
                                                  self.wall(), peer.who)
            self._apply(result)
            return reply

        async def fence_ack_op(args: Mapping[str, Any], peer: Any) -> Any:
            result, reply = ops.handle_fence_ack(self.state, dict(args), self.clock(),
                                                 self.wall(), peer.who)
            self._apply(result)
            return reply

        async def fence_status_op(args: Mapping[str, Any], peer: Any) -> Any:
            return ops.handle_fence_status(self.state, dict(args), self.clock(), self.wall(),
                                           self.progress)

        async def fence_verify_op(args: Mapping[str, Any], peer: Any) -> Any:
            from clusterd.fencing.verify import verify_nodes
            targets = ops.verify_targets(self.state, dict(args))
            results = await verify_nodes(self.conf_provider(), targets, self.runner)
            return ops.verify_reply(results)

        # fence.verify changes nothing, but it logs in to every BMC with the cluster's
        # credentials: an admin's call, like the ones that power nodes.
        registry.register(ops.OP_NODE, fence_node_op, specs[ops.OP_NODE],
                          "fence a node by hand (fence_node)", role=Role.ADMIN)
        registry.register(ops.OP_ACK, fence_ack_op, specs[ops.OP_ACK],
                          "acknowledge a manual fence (fence_ack_manual)", role=Role.ADMIN)
        registry.register(ops.OP_STATUS, fence_status_op, specs[ops.OP_STATUS],
                          "pending, running, failed and completed fence operations",
                          role=Role.READ)
        registry.register(ops.OP_VERIFY, fence_verify_op, specs[ops.OP_VERIFY],
                          "check every node's fence path with status/monitor (no power "
                          "change)", role=Role.ADMIN)


__all__ = ["Fencer", "IntentsError"]
