"""The local executor (edge): runs this node's services with the resource agents.

rgmanager order (``clusterd.resources.ordering.plan``): a start stops at the first failing
resource, then stops what it started in reverse; a stop runs through every resource even
after a failure. What each outcome makes of the service (``recovering``, ``failed``,
``status_failed``, ...) is decided in ``transitions`` (pure, shared with the simulator).
At most one action per service runs at a time (``busy``). Status checks run per resource
at their intervals (``schedule.due_checks``). ``probe`` re-adopts services that survived
a clusterd restart: all resources running = started (untouched).

Timeouts are always enforced, on purpose. rgmanager enforced an agent's action timeout
only for resources with ``__enforce_timeouts="1"`` and otherwise waited for the agent
forever, so a hung stop could pin a service in ``stopping`` with nothing to recover it.
Here every agent call has its deadline (the agent's meta-data default or the
``<action name="status" timeout=...>`` override) with or without the flag; a timed-out
start is a failed start, a timed-out stop a failed stop (fence, or blocked). The attribute
is accepted (the schema has it) and parsed (``ResourceNode.enforce_timeouts``) but
changes nothing, and it is never passed to an agent.

Independent subtrees (``__independent_subtree``) are recovered here, locally, as
rgmanager did (``resources.recovery.subtree_recovery``): the subtree restarts in place, or
a non-critical one is stopped and the service runs on as ``partial``; anything else (or an
exhausted ``__max_restarts``) escalates to the coordinator as a failed status check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Concatenate, ParamSpec

from clusterd.placement.model import ServiceState
from clusterd.resources import (
    ChangeKind,
    GroupChange,
    Op,
    ResourceNode,
    ResourceTree,
    SubtreeRecovery,
    Verdict,
    plan,
    subtree_recovery,
)
from clusterd.resources import reconfiguration as tree_delta
from clusterd.resources.agents import (
    Announcer,
    record_run,
)
from clusterd.resources.agents.base import AgentAction, AgentResult
from clusterd.resources.agents.registry import DEFAULT_ENV, AgentEnv
from clusterd.resources.agents.runner import kill_running
from clusterd.services import transitions as to
from clusterd.services.agentset import AgentFactory, Key, ServiceAgents, default_build
from clusterd.services.model import Command, CommandKind, LocalService

logger = logging.getLogger(__name__)
P = ParamSpec("P")

RUNNING = frozenset({ServiceState.STARTED, ServiceState.STARTING, ServiceState.STOPPING})


class Executor:
    def __init__(self, node: str, on_change: Callable[[], None], *,
                 env: AgentEnv = DEFAULT_ENV, wall: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic,
                 build: AgentFactory = default_build) -> None:
        self.node = node
        self.build = build
        self.on_change = on_change
        self.env = env
        self.wall = wall
        self.clock = clock
        self.services: dict[str, ServiceAgents] = {}
        self.tree = ResourceTree((), ())
        self.local: dict[str, LocalService] = {}
        self.frozen: frozenset[str] = frozenset()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._checks: dict[str, asyncio.Task[None]] = {}
        self._last: dict[str, dict[Key, dict[int, float]]] = {}  # svc, resource: depth -> ran
        self._subtree_restarts: dict[str, dict[Key, tuple[float, ...]]] = {}
        self._stopped: dict[str, set[Key]] = {}     # non-critical subtrees left stopped

    # ------------------------------------------------------------------ state
    def _move(self, svc: str, step: Callable[Concatenate[LocalService, P], LocalService],
              *args: P.args, **kwargs: P.kwargs) -> None:
        """Apply one ``transitions`` step (pure, the simulator's fake applies the same)."""
        self.local[svc] = step(self.local.get(svc) or LocalService(), *args, **kwargs)
        self.on_change()

    def running(self) -> int:
        return sum(1 for s, ls in self.local.items() if ls.state in RUNNING or s in self._tasks)

    def busy(self, svc: str) -> bool:
        return svc in self._tasks

    def in_flight(self) -> int:
        """Service operations running now (status checks are not counted)."""
        return len(self._tasks)

    # ------------------------------------------------------------------ config
    def load(self, tree: ResourceTree) -> None:
        """Install a (new) config: build agents; a service removed from the config that
        runs here is stopped, one whose resources changed is restarted (only the changed
        subtrees when the service itself is unchanged); the rest is untouched."""
        old_tree, old = self.tree, self.services
        new: dict[str, ServiceAgents] = {}
        for root in tree.roots:
            new[root.label] = ServiceAgents(root.label, root, self.env, self.build)
            if new[root.label].error:
                logger.error("node %s: %s cannot run here: %s", self.node, root.label,
                             new[root.label].error)
        self.tree, self.services = tree, new
        for change in tree_delta(old_tree, tree) if old else ():
            svc = change.group
            ls = self.local.get(svc)
            if ls is None or ls.state not in RUNNING | {ServiceState.FAILED}:
                continue
            if change.kind is ChangeKind.REMOVED:
                self._spawn(svc, "reconfig", self._stop_with(old[svc], svc, "removed from "
                                                             "cluster.conf"))
            elif change.kind in (ChangeKind.RESTART, ChangeKind.SUBTREES):
                self._spawn(svc, "reconfig", self._reconfigure(old[svc], new[svc], change))
        for svc in new:
            self.local.setdefault(svc, LocalService())
        for svc in [s for s in self.local if s not in new and s not in self._tasks]:
            if self.local[svc].state not in RUNNING:
                del self.local[svc]

    # ------------------------------------------------------------------ commands
    def execute(self, cmd: Command) -> None:
        s = self.services.get(cmd.service)
        if s is None:
            logger.warning("node %s: command %s %s for a service not in cluster.conf",
                           self.node, cmd.kind.value, cmd.service)
            return
        if cmd.kind is CommandKind.START:
            body = self._start(s, cmd.op_id)
        elif cmd.kind is CommandKind.STOP:
            body = self._stop_with(s, cmd.service, f"op {cmd.op_id}")
        elif cmd.kind is CommandKind.CONVALESCE:
            body = self._convalesce(s)
        else:
            body = self._restart(s, cmd.op_id, cmd.count)
        self._spawn(cmd.service, cmd.op_id, body)

    def _spawn(self, svc: str, op: str, body: Coroutine[object, object, object]) -> None:
        if svc in self._tasks:
            logger.warning("node %s: %s busy, %s ignored", self.node, svc, op)
            body.close()
            return
        self._move(svc, to.begun, op)
        task = asyncio.get_running_loop().create_task(self._run(svc, op, body),
                                                      name=f"svc:{svc}:{op}")
        self._tasks[svc] = task

    async def _run(self, svc: str, op: str, body: Coroutine[object, object, object]) -> None:
        try:
            await body
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not wedge the service: log, mark failed
            logger.exception("node %s: %s op %s crashed", self.node, svc, op)
            self._move(svc, to.crashed, str(exc))
        finally:
            self._tasks.pop(svc, None)
            self._move(svc, to.finished, op)

    async def _op(self, s: ServiceAgents, node: ResourceNode, action: AgentAction) -> AgentResult:
        """One resource's start or stop, logged with its duration (the bench timelines
        read these lines: the op began ``duration`` seconds before the line)."""
        agent = s.agents[node.index]
        res = await (agent.start() if action is AgentAction.START else agent.stop())
        logger.info("node %s: %s: %s %s: %s in %.3fs", self.node, s.name, action.value,
                    node.label, res.rc.value, res.duration)
        return res

    async def _start(self, s: ServiceAgents, op: str) -> bool:
        svc = s.name
        self._stopped.pop(svc, None)
        self._move(svc, to.starting)
        if s.error:
            self._move(svc, to.start_failed, s.error)
            return False
        logger.info("node %s: starting %s (op %s)", self.node, svc, op)
        started: list[ResourceNode] = []
        for st in plan(s.root, Op.START):
            res = await self._op(s, st.node, AgentAction.START)
            if not res.ok:
                logger.error("node %s: start of %s failed at %s: %s", self.node, svc,
                             st.node.label, res.message)
                failures = await self._stop_nodes(s, [n for n in reversed(started)])
                self._move(svc, to.start_failed, res.message, failures)
                return False
            started.append(st.node)
        await self._arm_checks(s, s.root.walk())
        self._move(svc, to.started)
        logger.info("node %s: %s started", self.node, svc)
        return True

    async def _stop_nodes(self, s: ServiceAgents, nodes: list[ResourceNode]) -> list[str]:
        failures = []
        for node in nodes:
            res = await self._op(s, node, AgentAction.STOP)
            if not res.ok:
                logger.error("node %s: stop of %s failed: %s", self.node, node.label,
                             res.message)
                failures.append(res.message)
        return failures

    async def _stop_with(self, s: ServiceAgents, svc: str, why: str) -> bool:
        self._move(svc, to.stopping)
        logger.info("node %s: stopping %s (%s)", self.node, svc, why)
        if s.error and not s.agents:
            self._move(svc, to.nothing_to_stop)
            return True
        failures = await self._stop_nodes(
            s, [st.node for st in plan(s.root, Op.STOP) if st.node.index in s.agents])
        if failures:
            self._move(svc, to.stop_failed, failures)
            return False
        self._stopped.pop(svc, None)
        self._move(svc, to.stopped)
        logger.info("node %s: %s stopped", self.node, svc)
        return True

    async def _restart(self, s: ServiceAgents, op: str, count: bool) -> None:
        if not await self._stop_with(s, s.name, f"restart op {op}"):
            return
        if count:
            self._move(s.name, to.restart_counted, self.wall())
        await self._start(s, op)

    async def _reconfigure(self, old: ServiceAgents, new: ServiceAgents,
                           change: GroupChange) -> None:
        svc = new.name
        if change.kind is ChangeKind.RESTART:
            if await self._stop_with(old, svc, "its definition changed"):
                await self._start(new, "reconfig")
            return
        stops = [n for label in change.stop for n in old.root.walk() if n.label == label]
        starts = [n for label in change.start for n in new.root.walk() if n.label == label]
        logger.info("node %s: %s: restarting changed resources only: stop %s, start %s",
                    self.node, svc, [n.label for n in stops], [n.label for n in starts])
        for root in stops:
            if await self._stop_nodes(old, [st.node for st in plan(root, Op.STOP)]):
                self._move(svc, to.part_stop_failed, "a changed resource")
                return
        for root in starts:
            for st in plan(root, Op.START):
                res = await self._op(new, st.node, AgentAction.START)
                if not res.ok:
                    self._move(svc, to.check_failed, res.message)
                    return
        await self._arm_checks(new, new.root.walk())

    async def _convalesce(self, s: ServiceAgents) -> None:
        """clusvcadm -c (rgmanager convalesce): start the non-critical subtrees that were
        left stopped, in start order; the service stays partial while any cannot start."""
        svc = s.name
        stopped = self._stopped.get(svc, set())
        if not stopped or self.local.get(svc, LocalService()).state is not ServiceState.STARTED:
            return
        for st in plan(s.root, Op.START):
            if st.node.index not in stopped:
                continue
            res = await self._op(s, st.node, AgentAction.START)
            if not res.ok:
                self._move(svc, to.convalesce_failed, res.message)
                return
            stopped.discard(st.node.index)
            await self._arm_checks(s, [st.node] if st.node.index in s.schedules else [])
        self._stopped.pop(svc, None)
        self._move(svc, to.convalesced)
        logger.info("node %s: %s convalesced: every non-critical resource runs again",
                    self.node, svc)

    async def _subtree(self, s: ServiceAgents, rec: SubtreeRecovery) -> None:
        """Independent subtree recovery in place (rgmanager restree.c): restart it, or stop
        a non-critical one and leave the service running as partial."""
        svc = s.name
        logger.warning("node %s: %s", self.node, rec.reason)
        if await self._stop_nodes(s, [st.node for st in rec.stop]):
            self._move(svc, to.part_stop_failed, rec.node.label)
            return
        if rec.verdict is Verdict.STOP_SUBTREE:
            self._stopped.setdefault(svc, set()).update(n.index for n in rec.node.walk())
            self._move(svc, to.subtree_left_stopped, rec.reason)
            return
        for st in rec.start:
            res = await self._op(s, st.node, AgentAction.START)
            if not res.ok:
                self._move(svc, to.check_failed, res.message)
                return
        hist = self._subtree_restarts.setdefault(svc, {})
        hist[rec.node.index] = to.remember(hist.get(rec.node.index, ()), self.wall())
        await self._arm_checks(s, rec.node.walk())

    async def _arm_running(self, s: ServiceAgents, nodes: list[ResourceNode]) -> None:
        try:                # a meta-data failure is a result, not an exception
            await self._arm_checks(s, nodes)
        finally:
            self._checks.pop(s.name, None)

    async def _arm_checks(self, s: ServiceAgents, nodes: Iterable[ResourceNode]) -> None:
        """``nodes`` just started (or were found running): their status checks are next
        due one interval from now (a schedule reads the agent's meta-data once)."""
        now = self.clock()
        for node in nodes:
            sched = await s.schedule(node)
            self._last.setdefault(s.name, {})[node.index] = {c.depth: now for c in sched.checks}

    # ------------------------------------------------------------------ probing
    async def probe(self) -> None:
        """Re-adopt what survived a clusterd restart (see the module docstring)."""
        for svc, s in self.services.items():
            if s.error:
                continue
            results = [await s.agents[n.index].status(0) for n in s.root.walk()
                       if n.type != "service"]
            if results and all(r.running for r in results):
                await self._arm_checks(s, s.root.walk())
                self._move(svc, to.started)
                logger.info("node %s: %s is running: re-adopted without a restart",
                            self.node, svc)
            elif not all(r.stopped_cleanly for r in results):
                logger.warning("node %s: %s is partly running here: stopping it", self.node,
                               svc)
                await self._stop_with(s, svc, "partly running at clusterd start")

    # ------------------------------------------------------------------ status checks
    def check_due(self) -> None:
        now = self.clock()
        for svc, ls in self.local.items():
            s = self.services.get(svc)
            if (s is None or ls.state is not ServiceState.STARTED or ls.status_failed
                    or svc in self._tasks or svc in self._checks or svc in self.frozen):
                continue
            unarmed, due = s.status_work(self._last.get(svc, {}), self._stopped.get(svc, set()),
                                         now)
            if unarmed or due:
                self._checks[svc] = asyncio.get_running_loop().create_task(
                    self._arm_running(s, unarmed) if unarmed else self._check(s, due),
                    name=f"check:{svc}")

    async def _check(self, s: ServiceAgents, due: list[tuple[ResourceNode, int]]) -> None:
        try:
            for node, depth in due:
                sched = s.schedules[node.index]
                check = sched.check(depth)
                res = await s.agents[node.index].status(depth, check.timeout if check else None)
                ran = self._last.setdefault(s.name, {})
                ran[node.index] = record_run(ran.get(node.index, {}), depth, self.clock(), sched)
                if not res.running and not self.busy(s.name):
                    logger.warning("node %s: %s: status check of %s failed: %s", self.node,
                                   s.name, node.label, res.message)
                    rec = subtree_recovery(s.root, node, self._subtree_restarts.get(
                        s.name, {}), self.wall())
                    if rec.verdict is Verdict.RECOVER_SERVICE:
                        self._move(s.name, to.check_failed, res.message)
                    else:
                        self._spawn(s.name, f"subtree:{rec.node.label}", self._subtree(s, rec))
                    return
        finally:
            self._checks.pop(s.name, None)

    # ------------------------------------------------------------------ safety
    async def stop_all(self, reason: str) -> None:
        """Stop every local service at once (quorum lost, dropped from the view, leave)."""
        busy = list(self._tasks.values())
        for t in [*self._checks.values(), *busy]:
            t.cancel()
        if busy:
            await asyncio.gather(*busy, return_exceptions=True)
        todo = [s for svc, s in self.services.items()
                if self.local.get(svc, LocalService()).state in RUNNING]
        if todo:
            logger.warning("node %s: stopping %s: %s", self.node,
                           ", ".join(s.name for s in todo), reason)
        await asyncio.gather(*(self._stop_with(s, s.name, reason) for s in todo))

    async def announce(self) -> None:
        for svc, ls in self.local.items():
            s = self.services.get(svc)
            if s is None or ls.state is not ServiceState.STARTED:
                continue
            for agent in s.agents.values():
                if isinstance(agent, Announcer):
                    await agent.announce()

    async def close(self) -> None:
        """Daemon exit: what still runs here no longer matters (status checks; a leave
        stopped the services, a restart waited for their operations): killed at once."""
        tasks = [*self._checks.values(), *self._tasks.values()]
        for t in tasks:
            t.cancel()
        if killed := kill_running():
            logger.info("node %s: killed agent process group(s) %s at exit", self.node, killed)
        await asyncio.gather(*tasks, return_exceptions=True)
