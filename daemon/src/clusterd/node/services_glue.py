"""Wire the services layer into the node (``clusterd.services``).

One background loop per node (woken by reports, commands and control ops, else every
``TICK``): status checks due on local services, this node's report broadcast when its
content changes (or the view does) and every ``REPORT_REFRESH`` seconds against loss,
and on the coordinator of a quorate view (once every member reported
ready) one :func:`clusterd.services.coordinator.step` whose commands go out on the
application channel. Local safety needs no coordinator: the daemon calls ``stop_all`` on
quorum loss or when dropped from the view (ServicesPort). Control ops: ``ops.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from clusterd import events as ev
from clusterd.conf.support import LOG_LIMIT
from clusterd.fencing.state import FenceRequested
from clusterd.membership.host import AppReceived
from clusterd.placement.model import ServiceState
from clusterd.services import coordinator as co
from clusterd.services.executor import Executor
from clusterd.services.merge import Known, Row, merge
from clusterd.services.model import (
    CH_COMMAND,
    CH_REPORT,
    CH_REQUEST,
    CH_RESPONSE,
    CLAIMS,
    AdminState,
    Command,
    Ghost,
    LocalService,
    NodeReport,
    accept_command,
)
from clusterd.services.ops import ServiceOps
from clusterd.services.store import load_admin, save_admin

if TYPE_CHECKING:
    from clusterd.conf import ClusterConf
    from clusterd.node.daemon import Daemon

logger = logging.getLogger(__name__)

TICK = 0.5
# A report goes out as soon as its content (or the view) changes; the periodic copy only
# repairs a lost datagram. Was token/2: an idle 8-node cluster spent a third of its CPU
# on unchanged reports. A lost report costs at most this much delay.
REPORT_REFRESH = 2.0


class ServicesGlue:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.name = daemon.name
        self.me = daemon.rt.local.nodeid
        self.admin = load_admin(daemon.opts.state_dir)
        self.executor = Executor(self.name, self._changed)
        self.defs: tuple = ()
        self.domains: tuple = ()
        self.services_version: int | None = None   # the config the services were loaded from
        self.known: dict[int, tuple[int, NodeReport]] = {}
        self.rows: dict[str, Row] = {}
        self.coord = co.CoordState()
        self.ready = False
        self.last_reason = ""
        self.history: dict[str, tuple[str, str | None, str | None, int]] = {}
        self.fenced_asked: set[tuple[int, str]] = set()
        self.wake = asyncio.Event()
        self.updated = asyncio.Event()
        self._dirty = True
        self._sent = 0.0
        self._sent_wire: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._view_key: tuple | None = None
        self.on_conf(daemon.rt.conf)
        self.ops = ServiceOps(self)
        self.ops.register(daemon.registry)
        daemon.sections["services"] = self.status_section

    # ------------------------------------------------------------------ ServicesPort
    def running(self) -> int:
        return self.executor.running()

    def operations(self) -> int:
        return self.executor.in_flight()

    async def stop_all(self, reason: str) -> None:
        await self.executor.stop_all(reason)

    # ------------------------------------------------------------------ inputs
    def on_conf(self, conf: ClusterConf) -> None:
        """Take in a config's services. ``conf`` carries them built and checked when it was
        parsed (off the event loop): definitions, domains and a complete resource tree
        (there is no ClusterConf with a partial one), so this only hands them over and
        never parses ``<rm>`` on the loop (8,000 services took over a token here)."""
        self.fence_nodes = tuple((n.name, n.nodeid, bool(n.fence_methods)) for n in conf.nodes)
        for warning in conf.tree_warnings[:LOG_LIMIT]:   # rgmanager logged them at each load
            logger.warning("node %s: resource tree: %s", self.name, warning)
        if len(conf.tree_warnings) > LOG_LIMIT:
            logger.warning("node %s: resource tree: %d more warnings; ccs_config_validate "
                           "lists them all", self.name, len(conf.tree_warnings) - LOG_LIMIT)
        self.defs, self.domains = conf.services, conf.domains
        self.services_version = conf.version
        self.executor.load(conf.resource_tree)
        self._changed()

    def on_events(self, events: Iterable[object]) -> None:
        """The daemon's cycle hands over every core event (app messages included)."""
        for e in events:
            if isinstance(e, AppReceived):
                self._on_app(e)
            elif isinstance(e, ev.ViewInstalled | ev.QuorumChanged | ev.ViewBacked):
                self.wake.set()
        view = self.daemon.rt.core.membership.view
        key = (view.vid if view else None, self._quorate())
        if not key[1] and self.admin.locked:
            # rgmanager: the lock is reset once quorum dissolves (no new version: the
            # quorate side's admin state stays authoritative)
            self.admin = replace(self.admin, locked=False)
            logger.warning("node %s: quorum lost: services unlocked here", self.name)
        if key != self._view_key:
            self._view_key = key
            self._dirty = True
            if view is not None and self.running() and not self._restarting():
                asyncio.get_running_loop().create_task(self.executor.announce())

    def _on_app(self, e: AppReceived) -> None:
        try:
            if e.channel == CH_REPORT:
                rep = NodeReport.from_wire(e.payload)
                if self.known.get(e.src) == (e.incarnation, rep):
                    return               # the periodic copy of what we have: nothing to do
                self.known[e.src] = (e.incarnation, rep)
                self._adopt_admin(rep.admin)
            elif e.channel == CH_COMMAND:
                self._on_command(Command.from_wire(e.payload), e.src)
            elif e.channel == CH_REQUEST:
                self.ops.on_request(e.src, e.payload)
            elif e.channel == CH_RESPONSE:
                self.ops.on_response(e.payload)
        except (TypeError, ValueError, KeyError) as exc:
            logger.warning("node %s: bad %s message from node %d ignored: %s", self.name,
                           e.channel, e.src, exc)
        self.wake.set()

    def _on_command(self, cmd: Command, src: int) -> None:
        view = self.daemon.rt.core.membership.view
        why = "restarting: the services wait for the next daemon" if self._restarting() \
            else accept_command(cmd, src, epoch=view.epoch if view else 0,
                                coordinator=view.coordinator if view else None,
                                quorate=self._quorate(), leaving=self._leaving(),
                                local=self.executor.local.get(cmd.service, LocalService()))
        if why:
            logger.info("node %s: %s %s (op %s) ignored: %s", self.name, cmd.kind.value,
                        cmd.service, cmd.op_id, why)
            return
        self.executor.execute(cmd)

    # ------------------------------------------------------------------ state
    def _quorate(self) -> bool:
        return bool(self.daemon.rt.core.membership.quorum.quorate)

    def _leaving(self) -> bool:
        return self.daemon.phase.value == "leaving"

    def _restarting(self) -> bool:   # exits keeping the services running, takes no command
        return self.daemon.phase.value == "restarting"

    def _changed(self) -> None:
        self._dirty = True
        self.wake.set()

    def set_admin(self, admin: AdminState) -> None:
        if admin.version <= self.admin.version:
            return
        self.admin = admin
        self.executor.frozen = admin.frozen
        try:
            save_admin(self.daemon.opts.state_dir, admin)
        except OSError as exc:
            logger.error("node %s: cannot persist the services admin state: %s", self.name,
                         exc)
        self._changed()

    def _adopt_admin(self, admin: AdminState) -> None:
        if admin.version > self.admin.version:
            self.set_admin(admin)

    def report(self) -> NodeReport:
        blocked, ghosts = self._outside()
        return NodeReport(self.ready, self._leaving(), self.admin, dict(self.executor.local),
                          blocked, ghosts)

    def _outside(self) -> tuple[frozenset[str], dict[str, Ghost]]:
        """The configured nodes outside my view whose recovery my fencer forbids, and the
        claims I last heard from them (possibly none): what a coordinator that never
        heard of them must respect."""
        view = self.daemon.rt.core.membership.view
        inside = view.nodeids if view is not None else frozenset()
        fencer = self.daemon.fencing
        blocked = frozenset(name for name, nid, _ in self.fence_nodes
                            if nid not in inside and nid != self.me
                            and fencer.recovery_blocked(name))
        ghosts = {}
        for nid, (inc, rep) in self.known.items():
            node = self.daemon.rt.conf.node_by_id(nid)
            if node is not None and node.name in blocked:
                ghosts[node.name] = Ghost(inc, {svc: ls.state for svc, ls in
                                                rep.services.items() if ls.state in CLAIMS})
        return blocked, ghosts

    def live(self) -> dict[str, NodeReport]:
        """Reports of live members (this node's own included), by node name."""
        view = self.daemon.rt.core.membership.view
        out: dict[str, NodeReport] = {}
        for k in self._known().values():
            if k.live:
                out[k.name] = k.report
        return out if view is not None else {}

    def _known(self) -> dict[int, Known]:
        conf = self.daemon.rt.conf
        view = self.daemon.rt.core.membership.view
        out: dict[int, Known] = {}
        for nid, (inc, rep) in self.known.items():
            node = conf.node_by_id(nid)
            live = view is not None and view.incarnation_of(nid) == inc
            out[nid] = Known(node.name if node else str(nid), rep, live)
        out[self.me] = Known(self.name, self.report(), view is not None)
        self._add_ghosts(out, view)
        return out

    def _add_ghosts(self, out: dict[int, Known], view: Any) -> None:
        """Claims that live members last heard from nodes outside the view, where they
        are newer than what I heard myself (a daemon that just started heard nothing)."""
        conf = self.daemon.rt.conf
        inside = view.nodeids if view is not None else frozenset()
        best: dict[int, Ghost] = {}
        for k in [k for k in out.values() if k.live]:
            for name, ghost in k.report.ghosts.items():
                node = conf.node_by_name(name)
                if node is None or node.nodeid == self.me or node.nodeid in inside:
                    continue
                mine = self.known.get(node.nodeid)
                if mine is not None and mine[0] >= ghost.incarnation:
                    continue
                if node.nodeid not in best or best[node.nodeid].incarnation < ghost.incarnation:
                    best[node.nodeid] = ghost
        for nid, ghost in best.items():
            name = conf.node_by_id(nid).name
            services = {svc: LocalService(st) for svc, st in ghost.services.items()}
            out[nid] = Known(name, NodeReport(ready=True, services=services), live=False)

    def is_coordinator(self) -> bool:
        view = self.daemon.rt.core.membership.view
        return view is not None and view.coordinator == self.me and self._quorate()

    # ------------------------------------------------------------------ the loop
    async def start(self) -> None:
        self.executor.frozen = self.admin.frozen
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="services")

    async def _loop(self) -> None:
        await self.executor.probe()
        self.ready = True
        self._changed()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK):
                    await self.wake.wait()
            self.wake.clear()
            try:
                self._cycle()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("node %s: services cycle failed; the next one runs",
                                 self.name)

    def _cycle(self) -> None:
        now = time.monotonic()
        self.executor.check_due()
        self._reset_recovering()
        wire = self.report().to_wire()
        if self._dirty or wire != self._sent_wire or now - self._sent >= REPORT_REFRESH:
            self._dirty = False
            self._sent = now
            self._sent_wire = wire
            self.send(None, CH_REPORT, wire)
        known = self._known()
        self.rows = merge([d.name for d in self.defs], known, self.admin,
                          self.coord.cleared)
        self._track(self.rows)
        if self.is_coordinator():
            self._coordinate(known, now)
        self.updated.set()
        self.updated = asyncio.Event()

    def _coordinate(self, known: Mapping[int, Known], now: float) -> None:
        view = self.daemon.rt.core.membership.view
        live = {k.name: k.report for k in known.values() if k.live}
        waiting = [k.name for n, k in known.items() if n in view.nodeids
                   and (not k.live or not k.report.ready)]
        missing = [n for n in view.nodeids if n not in known]
        if waiting or missing:
            self._say(f"waiting for service reports from {sorted(waiting) + missing}")
            return
        fencer = self.daemon.fencing
        names = {nid: name for name, nid, _ in self.fence_nodes}
        if fencer.members() != {names.get(n) for n in view.nodeids}:
            # this loop reads the core's view, which can be newer than the one the fencing
            # policy took in (the daemon's cycle feeds it): until it has, a node that just
            # left still looks settled there, and its services would start elsewhere
            # beside it (integration test: a restarted owner's web started on node 2)
            self._say(f"waiting for fencing to take in view {view.epoch}")
            return
        self.coord = self.coord.for_epoch(view.epoch)
        blockers = frozenset(n for rep in live.values() for n in rep.blocked)

        def allowed(node: str) -> bool:
            # every member's knowledge counts: one fresh daemon's ignorance never
            # outvotes another member that saw the node lost and not yet fenced
            return fencer.recovery_allowed(node) and node not in blockers

        outside = [(name, nid) for name, nid, _ in self.fence_nodes if nid not in view.nodeids]
        out = co.step(self.coord, co.Inputs(
            defs=self.defs, domains=self.domains, rows=self.rows, nodes=self.fence_nodes,
            live=live, admin=self.admin, recovery_allowed=allowed,
            now=now, wall=time.time(),
            unknown=frozenset(name for name, nid in outside
                              if nid not in known and not allowed(name)),
            unfit=frozenset(name for name in live if fencer.fence_open(name))))
        self.coord = out.state
        self.last_snapshot = out.snapshot
        self.set_admin(out.admin)
        for fence in out.fence:
            if (view.epoch, fence.node) not in self.fenced_asked:
                self.fenced_asked.add((view.epoch, fence.node))
                logger.warning("node %s: %s", self.name, fence.reason)
                fencer.fencer.handle(FenceRequested(fence.node, self.name, fence.reason))
        for node, cmd in out.commands:
            self.command(node, cmd)
        self._say(out.reason)

    def command(self, node: str, cmd: Command) -> None:
        logger.info("node %s: -> %s: %s %s (op %s)", self.name, node, cmd.kind.value,
                    cmd.service, cmd.op_id)
        if node == self.name:
            self._on_command(cmd, self.me)
            return
        target = self.daemon.rt.conf.node_by_name(node)
        if target is not None:
            self.send(target.nodeid, CH_COMMAND, cmd.to_wire())

    def send(self, dest: int | None, channel: str, payload: dict) -> None:
        endpoint = self.daemon.rt.endpoint
        if endpoint is None:
            return
        out = self.daemon.rt.core.send_app(dest, channel, payload, endpoint.clock())
        endpoint.send(out)

    def _say(self, reason: str) -> None:
        if reason != self.last_reason:
            self.last_reason = reason
            logger.info("node %s: services: %s", self.name, reason)

    def _reset_recovering(self) -> None:
        """A failed start here is forgotten once the service runs elsewhere."""
        for svc, ls in self.executor.local.items():
            row = self.rows.get(svc)
            if (ls.state is ServiceState.RECOVERING and not ls.busy and row is not None
                    and row.status.owner not in (None, self.name)):
                self.executor.local[svc] = LocalService(ServiceState.STOPPED, "", ls.done,
                                                        ls.restarts)
                self._dirty = True

    # ------------------------------------------------------------------ status
    def _track(self, rows: Mapping[str, Row]) -> None:
        for svc, row in rows.items():
            state = row.shown_state.value
            owner = row.status.owner
            old = self.history.get(svc)
            if old is None:
                self.history[svc] = (state, owner, None, int(time.time()))
            elif (old[0], old[1]) != (state, owner):
                last = old[1] if old[1] and old[1] != owner else old[2]
                self.history[svc] = (state, owner, last, int(time.time()))

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

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.executor.close()
