"""Control operations of the services layer: ``svc.*`` and ``node.standby|active``.

Any node accepts them; a node that is not the coordinator forwards the request over the
application channel (``svc.req``) and waits for the coordinator's answer (``svc.resp``).
The coordinator checks the request with ``clusterd.placement.manual`` (RG_E* codes and
rg_strerror texts), changes the admin state or its relocation targets, lets its next
cycle send the commands, and waits (bounded by ``timeout``) for the outcome. The result
is ``{"code", "message", "detail", "service", "state", "owner"}``; clusvcadm prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from clusterd.control.protocol import E_BAD_ARGS, E_TIMEOUT, Arg, Role
from clusterd.errors import ControlError
from clusterd.placement.manual import (
    RgError,
    enable_target,
    relocate_target,
    relocate_walk,
)
from clusterd.placement.model import ServiceState
from clusterd.services.coordinator import issue
from clusterd.services.model import CH_REQUEST, CH_RESPONSE, CommandKind

if TYPE_CHECKING:
    from clusterd.services.core import Facts, ServicesCore
    from clusterd.services.merge import Row
    from clusterd.services.model import AdminState, Command, NodeReport

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60
SVC_OPS = ("enable", "disable", "relocate", "restart", "stop", "freeze", "unfreeze",
           "convalesce")
_SVC_ARGS = (Arg("service", str, True, "service name (service:NAME or NAME)"),
             Arg("member", str, False, "target member (enable, relocate)"),
             Arg("follow_domain", bool, False, "enable per failover domain rules (-F)"),
             Arg("timeout", int, False, "seconds to wait for the outcome"))


def service_key(name: str) -> str:
    return name if ":" in name else f"service:{name}"


def result(code: RgError, service: str, detail: str = "", row: Any = None) -> dict[str, Any]:
    return {"code": int(code), "message": code.message, "detail": detail, "service": service,
            "state": row.shown_state.value if row is not None else None,
            "owner": row.status.owner if row is not None else None}


class Wake(Protocol):
    def set(self) -> None: ...          # a services cycle soon


class Host(Protocol):
    """What the control ops use of the node's services adapter (``node.services_glue``):
    the core's state and the adapter's actions, never the daemon behind it."""

    name: str
    me: int
    core: ServicesCore
    wake: Wake
    updated: asyncio.Event

    @property
    def admin(self) -> AdminState: ...
    @property
    def rows(self) -> dict[str, Row]: ...
    @property
    def coord(self) -> Any: ...
    @coord.setter
    def coord(self, state: Any) -> None: ...
    @property
    def last_snapshot(self) -> Any: ...

    def facts(self) -> Facts: ...
    def now(self) -> float: ...         # the node's monotonic clock
    def is_coordinator(self) -> bool: ...
    def set_admin(self, admin: AdminState) -> None: ...
    def live(self) -> dict[str, NodeReport]: ...
    def command(self, node: str, cmd: Command) -> None: ...
    def send(self, dest: int | None, channel: str, payload: dict) -> None: ...
    def status_section(self) -> Any: ...


MAX_FORWARDED_TIMEOUT = 86400.0  # seconds: a day is more than any manual operation waits


def _forwarded_args_problem(args: Mapping[str, Any]) -> str | None:
    """What is wrong with the arguments of a request a peer forwarded (None: nothing).
    The local control socket checks them with the op's ``Arg``s; a forwarded request
    comes from the wire and is checked again here before ``execute`` reads them."""
    for key in ("service", "node", "member"):
        if key in args and not isinstance(args[key], str):
            return f"argument {key!r} must be a string"
    if "timeout" in args:
        t = args["timeout"]
        if isinstance(t, bool) or not isinstance(t, int | float) \
                or not 0 < t <= MAX_FORWARDED_TIMEOUT:
            return f"argument 'timeout' must be a number of seconds in (0, {MAX_FORWARDED_TIMEOUT:g}]"
    return None


class ServiceOps:
    def __init__(self, glue: Host) -> None:
        self.glue = glue
        self._rid = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, registry: Any) -> None:
        """Reading (status, lock state) is ``Role.READ``; every change ``Role.ADMIN``."""
        for op in SVC_OPS:
            registry.register(f"svc.{op}", self._handler(f"svc.{op}"), _SVC_ARGS,
                              f"clusvcadm: {op} a service and wait for the outcome",
                              role=Role.ADMIN)
        registry.register("svc.status", self._status, (Arg("service", str, False),),
                          "state, owner and flags of the services (clustat rows)",
                          role=Role.READ)
        for op, what in (("lock", ("clusvcadm -l: no service starts anywhere (before a "
                                  "cluster shutdown)")),
                         ("unlock", "clusvcadm -u: services may start again")):
            registry.register(f"svc.{op}", self._handler(f"svc.{op}"),
                              (Arg("timeout", int, False),), what, role=Role.ADMIN)
        registry.register("svc.lock_state", self._lock_state, (),
                          "clusvcadm -S: whether services are locked", role=Role.READ)
        registry.register("svc.migrate", self._handler("svc.migrate"), _SVC_ARGS,
                          "clusvcadm -M: live migration (refused: nothing here migrates)",
                          role=Role.ADMIN)
        for op in ("standby", "active"):
            registry.register(f"node.{op}", self._handler(f"node.{op}"),
                              (Arg("node", str, True), Arg("timeout", int, False)),
                              f"node {op}: " + ("evacuate and take no service" if op ==
                                                "standby" else "take services again"),
                              role=Role.ADMIN)

    async def _status(self, args: Mapping[str, Any], peer: Any) -> Any:
        rows = self.glue.status_section()
        if "service" in args:
            key = service_key(args["service"])
            rows = tuple(r for r in rows if r["name"] == key)
            if not rows:
                raise ControlError(E_BAD_ARGS, f"{key}: no such service in cluster.conf")
        return {"services": list(rows)}

    async def _lock_state(self, args: Mapping[str, Any], peer: Any) -> Any:
        return {"locked": self.glue.admin.locked}

    def _handler(self, op: str) -> Callable[..., Any]:
        async def handle(args: Mapping[str, Any], peer: Any) -> Any:
            args = dict(args)
            timeout = args.get("timeout", DEFAULT_TIMEOUT)
            if timeout <= 0:
                raise ControlError(E_BAD_ARGS, f"op {op!r}: timeout must be positive")
            if self.glue.is_coordinator():
                return await self.execute(op, args, self.glue.name)
            return await self._forward(op, args, timeout)
        return handle

    # ------------------------------------------------------------------ forwarding
    async def _forward(self, op: str, args: dict[str, Any], timeout: int) -> dict[str, Any]:
        facts = self.glue.facts()
        if facts.view is None or not facts.quorate:
            return result(RgError.EQUORUM, args.get("service") or args.get("node", ""),
                          "this node is not in a quorate view")
        rid = f"{self.glue.me}.{next(self._rid)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        coordinator = facts.view.coordinator
        self.glue.send(coordinator, CH_REQUEST, {"rid": rid, "op": op, "args": args,
                                                 "from": self.glue.name})
        try:
            async with asyncio.timeout(timeout + 5):
                return await fut
        except TimeoutError:
            raise ControlError(E_TIMEOUT, f"the coordinator (node {coordinator}) did "
                                          f"not answer {op} within {timeout + 5}s") from None
        finally:
            self._waiting.pop(rid, None)

    def on_request(self, src: int, payload: Mapping[str, Any]) -> None:
        rid, op, args, origin = (payload["rid"], payload["op"], payload["args"],
                                 payload["from"])
        if not (isinstance(rid, str) and isinstance(op, str) and isinstance(args, dict)
                and isinstance(origin, str)):
            raise TypeError("malformed request")

        problem = _forwarded_args_problem(args)
        if problem is not None:
            # a peer runs the same code, so this is a bug or a hostile peer: answered, so
            # the requester's CLI does not wait out its timeout, and logged
            logger.warning("node %s: refused forwarded %s from node %d: %s", self.glue.name,
                           str(op)[:64], src, problem)
            self.glue.send(src, CH_RESPONSE, {"rid": rid, "result": result(
                RgError.EINVAL, "", f"malformed request from node {src}: {problem}")})
            return

        async def run() -> None:
            if not self.glue.is_coordinator():
                out = result(RgError.EAGAIN, str(args.get("service", "")),
                             f"{self.glue.name} is no longer the coordinator")
            else:
                try:
                    out = await self.execute(op, args, origin)
                except ControlError as exc:
                    out = result(RgError.EFAIL, str(args.get("service", "")), exc.message)
            self.glue.send(src, CH_RESPONSE, {"rid": rid, "result": out})
        task = asyncio.get_running_loop().create_task(run(), name=f"svc-req:{rid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_response(self, payload: Mapping[str, Any]) -> None:
        fut = self._waiting.get(payload["rid"])
        if fut is not None and not fut.done() and isinstance(payload["result"], dict):
            fut.set_result(payload["result"])

    # ------------------------------------------------------------------ on the coordinator
    async def execute(self, op: str, args: Mapping[str, Any], origin: str) -> dict[str, Any]:
        g = self.glue
        timeout = float(args.get("timeout", DEFAULT_TIMEOUT))
        if op.startswith("node."):
            return await self._node_op(op, args["node"], timeout)
        if op in ("svc.lock", "svc.unlock"):
            g.set_admin(replace(g.admin, version=g.admin.version + 1,
                                locked=op == "svc.lock"))
            logger.warning("node %s: services %s by %s", g.name, op[4:] + "ed", origin)
            return result(RgError.SUCCESS, "", ("services locked: nothing starts until "
                                                "clusvcadm -u") if op == "svc.lock"
                          else "services unlocked")
        svc = service_key(args["service"])
        if getattr(g, "last_snapshot", None) is None:   # just became coordinator: let it
            await self._wait_all(timeout, lambda: getattr(g, "last_snapshot", None)
                                 is not None)           # hear every member first
        snap = getattr(g, "last_snapshot", None)
        row = g.rows.get(svc)
        if snap is None or row is None:
            code = RgError.ENOSERVICE if row is None and snap is not None else RgError.EAGAIN
            return result(code, svc, "the coordinator has not evaluated the services yet"
                          if code is RgError.EAGAIN else f"{svc} is not in cluster.conf")
        action = op.split(".", 1)[1]
        admin = g.admin
        if action == "migrate":
            # rgmanager migrates only migratory resources (<vm>, group_migratory()); we
            # have none, and a stop-then-start is what -r does
            return result(RgError.EINVAL, svc, f"{svc} cannot be migrated: it has no "
                          "migratory resources (only virtual machines migrate); use -r to "
                          "relocate it", row)
        if admin.locked and action in ("enable", "relocate", "restart"):
            return result(RgError.EAGAIN, svc, "services are locked (clusvcadm -l); "
                          "unlock them with clusvcadm -u", row)
        if action in ("freeze", "unfreeze"):
            frozen = admin.frozen | {svc} if action == "freeze" else admin.frozen - {svc}
            g.set_admin(admin.change(frozen=frozen))
            return result(RgError.SUCCESS, svc, f"{svc} {action}d", g.rows.get(svc))
        if row.status.frozen:
            return result(RgError.EFROZEN, svc, f"{svc} is frozen; unfreeze it first", row)
        if action in ("disable", "stop"):
            return await self._stop(svc, action, row, timeout)
        if action == "restart" and row.status.state is ServiceState.STARTED:
            return await self._restart(svc, row, timeout)
        if action == "convalesce":
            return await self._convalesce(svc, row, timeout)
        member = args.get("member")
        if action == "relocate" and row.status.state is ServiceState.STARTED:
            res = relocate_target(snap, svc, member)
        else:
            res = enable_target(snap, svc, member, local=origin,
                                follow_domain=bool(args.get("follow_domain")))
        if res.error is RgError.ERUN:
            return result(RgError.ERUN, svc, res.reason, row)
        if not res.ok:
            return result(res.error, svc, res.reason, row)
        old_owner = row.status.owner
        walk: tuple[str, ...] = ()
        if action == "relocate" and row.status.state is ServiceState.STARTED:
            walk = relocate_walk(snap, svc, res.target, old_owner)
        g.set_admin(admin.change(disabled=admin.disabled - {svc},
                                 stopped=admin.stopped - {svc}))
        g.coord = replace(g.coord, targets={**g.coord.targets, svc: res.target},
                          walks={**g.coord.walks, svc: walk},
                          gave_up=g.coord.gave_up - {svc})
        row = await self._wait(svc, timeout, lambda r: self._settled(svc, r))
        if row is None:
            return result(RgError.EFAIL, svc, f"no outcome within {timeout:g}s",
                          g.rows.get(svc))
        if row.status.state is ServiceState.STARTED:
            if action == "relocate" and row.status.owner == old_owner:
                return result(RgError.ERELO, svc, f"no other node could start {svc}; it "
                                                  f"runs on {old_owner} again", row)
            if row.status.owner != res.target:
                return result(RgError.SUCCESS, svc, f"{res.target} could not start {svc}; "
                                                    f"it went on to {row.status.owner}", row)
            return result(RgError.SUCCESS, svc, res.reason, row)
        return result(RgError.EFAIL, svc, row.why or f"{svc} is {row.shown_state.value}", row)

    def _settled(self, svc: str, row: Any) -> bool:
        c = self.glue.coord
        return (svc not in c.targets and svc not in c.walks and svc not in c.pending
                and not row.busy
                and row.status.state in (ServiceState.STARTED, ServiceState.FAILED,
                                         ServiceState.STOPPED, ServiceState.DISABLED)
                ) or svc in c.gave_up

    async def _stop(self, svc: str, action: str, row: Any, timeout: float) -> dict[str, Any]:
        g = self.glue
        admin = g.admin
        if action == "disable":
            g.set_admin(admin.change(disabled=admin.disabled | {svc},
                                     stopped=admin.stopped - {svc}))
        else:
            g.set_admin(admin.change(stopped=admin.stopped | {svc}))
        g.coord = replace(g.coord, targets={k: v for k, v in g.coord.targets.items()
                                            if k != svc})
        if row.status.state is ServiceState.FAILED and row.status.owner in g.live():
            g.coord, cmd = issue(g.coord, g.admin, row.status.owner, svc, CommandKind.STOP,
                                 g.now())
            g.command(row.status.owner, cmd)
        g.wake.set()
        row = await self._wait(svc, timeout, lambda r: r.status.owner is None and not r.busy
                               and svc not in g.coord.pending)
        if row is None:
            return result(RgError.EFAIL, svc, f"{svc} did not stop within {timeout:g}s",
                          g.rows.get(svc))
        return result(RgError.SUCCESS, svc, f"{svc} {action}d", row)

    async def _on_owner(self, svc: str, row: Any, kind: CommandKind,
                        timeout: float) -> Any:
        """Send ``kind`` to the service's owner and wait until it is done (row or None)."""
        g = self.glue
        g.coord, cmd = issue(g.coord, g.admin, row.status.owner, svc, kind, g.now())
        g.command(row.status.owner, cmd)
        return await self._wait(svc, timeout, lambda r: svc not in g.coord.pending
                                and not r.busy)

    async def _restart(self, svc: str, row: Any, timeout: float) -> dict[str, Any]:
        g = self.glue
        if svc in g.coord.pending or row.busy:
            return result(RgError.EAGAIN, svc, f"{svc} has an operation in progress", row)
        row = await self._on_owner(svc, row, CommandKind.RESTART, timeout)
        if row is not None and row.status.state is ServiceState.STARTED:
            return result(RgError.SUCCESS, svc, f"{svc} restarted on {row.status.owner}", row)
        return result(RgError.EFAIL, svc, (row.why if row else "") or "restart failed",
                      row or g.rows.get(svc))

    async def _convalesce(self, svc: str, row: Any, timeout: float) -> dict[str, Any]:
        """clusvcadm -c: start the failed non-critical subtrees of a running service."""
        g = self.glue
        if row.status.state is not ServiceState.STARTED:
            return result(RgError.EINVAL, svc, f"{svc} is not running", row)
        if not row.partial:
            return result(RgError.SUCCESS, svc, f"{svc} has nothing to convalesce", row)
        if svc in g.coord.pending or row.busy:
            return result(RgError.EAGAIN, svc, f"{svc} has an operation in progress", row)
        row = await self._on_owner(svc, row, CommandKind.CONVALESCE, timeout)
        if row is not None and row.status.state is ServiceState.STARTED and not row.partial:
            return result(RgError.SUCCESS, svc, f"{svc} convalesced on {row.status.owner}",
                          row)
        return result(RgError.EFAIL, svc, (row.why if row else "") or "still partial",
                      row or g.rows.get(svc))

    async def _node_op(self, op: str, node: str, timeout: float) -> dict[str, Any]:
        g = self.glue
        if g.core.conf is None or g.core.conf.node_by_name(node) is None:
            return result(RgError.ENODE, "", f"'{node}' is not a cluster node")
        admin = g.admin
        standby = admin.standby | {node} if op == "node.standby" else admin.standby - {node}
        g.set_admin(admin.change(standby=standby))
        if op == "node.active":
            return result(RgError.SUCCESS, "", f"{node} takes services again")
        ok = await self._wait_all(timeout, lambda: all(
            r.status.owner != node and not r.busy and svc not in g.coord.targets
            and svc not in g.coord.pending for svc, r in g.rows.items()))
        if not ok:
            return result(RgError.EFAIL, "", f"services still on {node} after {timeout:g}s")
        return result(RgError.SUCCESS, "", f"{node} is in standby and runs no service")

    async def _wait(self, svc: str, timeout: float, done: Callable[[Any], bool]) -> Any:
        g = self.glue
        g.wake.set()
        ok = await self._wait_all(timeout, lambda: svc in g.rows and done(g.rows[svc]))
        return g.rows.get(svc) if ok else None

    async def _wait_all(self, timeout: float, done: Callable[[], bool]) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        first = True
        while True:
            if not first and done():
                return True
            first = False
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 1.0)):
                    await self.glue.updated.wait()
