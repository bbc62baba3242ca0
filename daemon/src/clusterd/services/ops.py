"""Control operations of the services layer: ``svc.*`` and ``node.standby|active``.

Any node accepts them; a node that is not the coordinator forwards the request over the
application channel (``svc.req``) and waits for the coordinator's answer (``svc.resp``).
The coordinator plans the request with ``clusterd.services.manual`` (pure: refusals with
RG_E* codes and rg_strerror texts, the admin state, relocation targets and commands, and
when the outcome is known), applies the plan through the node's adapter and waits
(bounded by ``timeout``) for the outcome. The result is ``{"code", "message", "detail",
"service", "state", "owner"}``; clusvcadm prints it. This module only moves requests,
replies and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from clusterd.control.protocol import E_BAD_ARGS, E_TIMEOUT, E_TOO_LARGE, Arg, Role
from clusterd.errors import ControlError
from clusterd.placement import candidates as placement_candidates
from clusterd.placement.domains import explain_reasons
from clusterd.placement.manual import RgError
from clusterd.services import manual
from clusterd.services.manual import result, service_key
from clusterd.services.model import CH_REQUEST, CH_RESPONSE
from clusterd.wire.limit import RefusalLog, oversize
from clusterd.wire.messages import MAX_APP_PAYLOAD

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
    if "brief" in args and not isinstance(args["brief"], bool):
        return "argument 'brief' must be true or false"
    if "start" in args:
        start = args["start"]
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < 1 << 31:
            return "argument 'start' must be a service index (an integer from 0)"
    if "timeout" in args:
        t = args["timeout"]
        if isinstance(t, bool) or not isinstance(t, int | float) \
                or not 0 < t <= MAX_FORWARDED_TIMEOUT:
            return f"argument 'timeout' must be a number of seconds in (0, {MAX_FORWARDED_TIMEOUT:g}]"
    return None


CANDIDATES_BUDGET = MAX_APP_PAYLOAD - 2048  # one page's services, encoded; the rest of
# the limit is the reply's envelope (rid, result, next)


BRIEF_NODES = 8   # brief: the best nodes of a service listed, the rest summarised


def _candidates(snapshot: Any, start: int = 0, service: str | None = None,
                budget: int = CANDIDATES_BUDGET, brief: bool = False) -> dict[str, Any]:
    """``svc.candidates``: for each service, every node, best first, with its placement
    score and the reason (``placement.candidates``); empty before the coordinator's first
    placement (it has no snapshot yet). One page: the services from index ``start`` (of
    cluster.conf's order) that fit ``budget`` encoded bytes, so that a forwarded reply
    fits one cluster message at 1,000 services on 300 nodes; ``next`` is where the next
    page starts (None: this was the last), ``total`` the number of services. A service
    whose nodes alone are over the budget keeps the best of them and counts the rest in
    ``more`` (service -> nodes left out). ``service``: just that one. ``brief`` (the web
    page): only the ``BRIEF_NODES`` best nodes of each service, the others counted in
    ``more`` and their reasons grouped in ``rest`` (service -> text), so that a page
    holds about twenty services of a 300-node cluster rather than one."""
    if start < 0:
        raise ControlError(E_BAD_ARGS, f"argument 'start' must be 0 or more, not {start}")
    if snapshot is None:
        return {"services": {}, "ready": False, "next": None, "total": 0}
    if service is not None:
        key = service_key(service)
        if snapshot.service(key) is None:
            raise ControlError(E_BAD_ARGS, f"{key}: no such service in cluster.conf")
        names = [key]
    else:
        names = [svc.name for svc in snapshot.services]
    out: dict[str, list[dict[str, Any]]] = {}
    more: dict[str, int] = {}
    rest: dict[str, str] = {}
    used, i = 0, min(start, len(names))
    while i < len(names):
        name = names[i]
        full = placement_candidates(snapshot, name)
        rows = [{"node": node, "candidate": score > 0, "score": score.name.lower(),
                 "why": why} for node, score, why in full[:BRIEF_NODES if brief else None]]
        if brief and len(full) > BRIEF_NODES:
            more[name] = len(full) - BRIEF_NODES
            rest[name] = explain_reasons([(node, why) for node, _s, why in full[BRIEF_NODES:]])
        sizes = [len(json.dumps(r, separators=(",", ":")).encode()) + 1 for r in rows]
        cost = (len(json.dumps(name).encode()) + 4 + sum(sizes)
                + (len(json.dumps(rest[name]).encode()) + 2 * len(name) + 24
                   if name in rest else 0))
        if used + cost > budget:
            if out:
                more.pop(name, None)
                rest.pop(name, None)
                break   # the next page starts here
            keep, room = 0, budget - len(json.dumps(name).encode()) - 64
            while keep < len(rows) and room - sizes[keep] >= 0:
                room -= sizes[keep]
                keep += 1
            more[name] = more.get(name, 0) + len(rows) - keep
            rest.pop(name, None)
            rows, cost = rows[:keep], budget
        out[name] = rows
        used += cost
        i += 1
    page: dict[str, Any] = {"services": out, "ready": True,
                            "next": i if i < len(names) else None, "total": len(names)}
    if more:
        page["more"] = more
    if rest:
        page["rest"] = rest
    return page


class ServiceOps:
    def __init__(self, glue: Host) -> None:
        self.glue = glue
        self._rid = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.refusals = RefusalLog(logger, glue.name, level=logging.WARNING)

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
        registry.register("svc.candidates", self._handler("svc.candidates"),
                          (Arg("timeout", int, False),
                           Arg("service", str, False, "just this service"),
                           Arg("start", int, False, "the page from this service index "
                               "(the previous page's next)"),
                           Arg("brief", bool, False, "the best nodes of each service, the "
                               "other nodes' reasons grouped")),
                          "per service, every node with whether it may run the service "
                          "and why (the coordinator's placement explainer)",
                          role=Role.READ)
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
        request = {"rid": rid, "op": op, "args": args, "from": self.glue.name}
        size = oversize(request)
        if size is not None:    # refused where it is built, to the CLI (nothing sent)
            self._waiting.pop(rid, None)
            self.refusals.refuse(self.glue.now(), CH_REQUEST, size, f"{op} is answered "
                                 f"with a {E_TOO_LARGE} error to its client", what="request")
            raise ControlError(E_TOO_LARGE, f"{op}: the request is {size} bytes encoded, "
                               f"over the {MAX_APP_PAYLOAD}-byte limit of one cluster "
                               f"message; it was not forwarded to the coordinator (node "
                               f"{coordinator})")
        self.glue.send(coordinator, CH_REQUEST, request)
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
            self.glue.send(src, CH_RESPONSE, self._reply(rid, op, out, src))
        task = asyncio.get_running_loop().create_task(run(), name=f"svc-req:{rid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reply(self, rid: str, op: str, out: dict[str, Any], src: int) -> dict[str, Any]:
        """The ``svc.resp`` payload, checked where it is built: a reply over the wire
        limit (``svc.candidates`` for 1,000 services) becomes an error the requester's
        CLI shows (``too_large``; an older requester shows ``result``'s detail)."""
        reply = {"rid": rid, "result": out}
        size = oversize(reply)
        if size is None:
            return reply
        why = (f"{str(op)[:64]}: the coordinator's reply is {size} bytes encoded, over the "
               f"{MAX_APP_PAYLOAD}-byte limit of one cluster message; run it on the "
               f"coordinator ({self.glue.name}) instead")
        self.refusals.refuse(self.glue.now(), CH_RESPONSE, size, f"node {src} is sent an "
                             f"error its client shows ({E_TOO_LARGE})", what="reply")
        return {"rid": rid, "error": why,
                "result": result(RgError.EFAIL, str(out.get("service", ""))[:256], why)}

    def on_response(self, payload: Mapping[str, Any]) -> None:
        fut = self._waiting.get(payload["rid"])
        if fut is None or fut.done():
            return
        error = payload.get("error")
        if isinstance(error, str):
            fut.set_exception(ControlError(E_TOO_LARGE, error[:1024]))
        elif isinstance(payload["result"], dict):
            fut.set_result(payload["result"])

    # ------------------------------------------------------------------ on the coordinator
    def situation(self) -> manual.Situation:
        g = self.glue
        conf = g.core.conf
        return manual.Situation(
            admin=g.admin, coord=g.coord, rows=g.rows,
            snapshot=getattr(g, "last_snapshot", None), live=frozenset(g.live()),
            nodes=frozenset(n.name for n in conf.nodes) if conf is not None else frozenset(),
            now=g.now())

    async def execute(self, op: str, args: Mapping[str, Any], origin: str) -> dict[str, Any]:
        """Plan the request (``services.manual``, pure), apply the plan through the
        adapter and wait (bounded by ``timeout``) for its outcome."""
        g = self.glue
        timeout = float(args.get("timeout", DEFAULT_TIMEOUT))
        if op == "svc.candidates":
            # scoring and explaining every node of a page's services takes up to a tenth
            # of a second at 300 nodes: off the loop (the snapshot is immutable)
            return await asyncio.to_thread(
                _candidates, getattr(g, "last_snapshot", None), int(args.get("start", 0)),
                args.get("service"), brief=bool(args.get("brief")))
        if op.startswith("svc.") and op not in ("svc.lock", "svc.unlock") \
                and getattr(g, "last_snapshot", None) is None:
            # just became coordinator: let it hear every member first
            await self._wait_all(timeout, lambda: getattr(g, "last_snapshot", None)
                                 is not None)
        p = manual.plan(op, args, origin, self.situation())
        if p.reply is not None:
            return p.reply
        if p.admin is not None:
            g.set_admin(p.admin)
        if p.coord is not None:
            g.coord = p.coord
        for node, cmd in p.commands:
            g.command(node, cmd)
        if p.log:
            logger.warning("node %s: %s", g.name, p.log)
        if p.wait is manual.Wait.NOW:
            return manual.outcome(p, self.situation()) or {}
        g.wake.set()
        reply: dict[str, Any] | None = None

        def over() -> bool:
            nonlocal reply
            reply = manual.outcome(p, self.situation())
            return reply is not None
        if await self._wait_all(timeout, over) and reply is not None:
            return reply
        return manual.timed_out(p, self.situation(), timeout)

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
