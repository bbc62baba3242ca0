"""The coordinator's policy for manual operations (pure): clusvcadm -e/-d/-s/-r/-R/-c,
-Z/-U (freeze), -l/-u (lock), -M (migrate), and node standby/active.

:func:`plan` reads the coordinator's state at the moment a request is executed (admin
state, coordinator state, merged rows, the last placement snapshot, live members) and
says what to do: answer at once (a refusal, or an operation that is done when applied),
or change the admin state and the coordinator's relocation targets, send commands, and
wait for the outcome, which :func:`outcome` reads from later states (and
:func:`timed_out` words when the wait ends first). ``services/ops.py`` only moves
requests and replies, applies a plan through the node's adapter and waits; the rules are
here, table-tested without a loop (``tests/unit/services/test_manual.py``).

Where a target goes (RG_E* codes, rgmanager's tolerance rules, relocation walks) is
``clusterd.placement.manual``; this module decides what a request does with it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from clusterd.placement.manual import (
    RgError,
    enable_target,
    relocate_target,
    relocate_walk,
)
from clusterd.placement.model import ServiceState, Snapshot
from clusterd.services.coordinator import CoordState, issue
from clusterd.services.merge import Row
from clusterd.services.model import AdminState, Command, CommandKind


def service_key(name: str) -> str:
    return name if ":" in name else f"service:{name}"


def result(code: RgError, service: str, detail: str = "", row: Any = None) -> dict[str, Any]:
    """The reply clusvcadm prints: ``{"code", "message", "detail", "service", "state",
    "owner"}``."""
    return {"code": int(code), "message": code.message, "detail": detail, "service": service,
            "state": row.shown_state.value if row is not None else None,
            "owner": row.status.owner if row is not None else None}


@dataclass(frozen=True)
class Situation:
    """What the coordinator knows when it plans or checks a manual operation."""

    admin: AdminState
    coord: CoordState
    rows: Mapping[str, Row]
    snapshot: Snapshot | None
    live: frozenset[str] = frozenset()          # members with a report, by name
    nodes: frozenset[str] = frozenset()         # configured nodes, by name
    now: float = 0.0                            # the coordinator's monotonic clock


class Wait(enum.Enum):
    NOW = "now"              # done once applied: the reply reads the rows after it
    SETTLED = "settled"      # enable/relocate: the target (or the walk) ran it, or not
    STOPPED = "stopped"      # disable/stop: nothing runs it any more
    OWNER = "owner"          # restart/convalesce on the owner: its command is done
    EVACUATED = "evacuated"  # standby: no service left on the node


@dataclass(frozen=True)
class Plan:
    """``reply``: the answer now (nothing else happens). Otherwise apply ``admin``, then
    ``coord``, send ``commands`` (node, command), log ``log`` (a warning), and wait:
    :func:`outcome` says when it is over and what to answer."""

    reply: dict[str, Any] | None = None
    admin: AdminState | None = None
    coord: CoordState | None = None
    commands: tuple[tuple[str, Command], ...] = ()
    log: str = ""
    wait: Wait = Wait.NOW
    action: str = ""                 # the svc.* action or node.* op
    service: str = ""
    node: str = ""                   # node.standby/active
    target: str | None = None        # enable/relocate: where it was sent
    reason: str = ""                 # enable/relocate: why there
    old_owner: str | None = None
    done: dict[str, Any] = field(default_factory=dict)   # Wait.NOW: the reply's words


def _answer(reply: dict[str, Any]) -> Plan:
    return Plan(reply=reply)


def plan(op: str, args: Mapping[str, Any], origin: str, s: Situation) -> Plan:
    """What ``op`` (``svc.*`` or ``node.*``, args as the control op takes them) does now,
    on the coordinator, for a request from ``origin``."""
    if op.startswith("node."):
        return _node(op, str(args["node"]), s)
    if op in ("svc.lock", "svc.unlock"):
        locked = op == "svc.lock"
        return Plan(admin=replace(s.admin, version=s.admin.version + 1, locked=locked),
                    log=f"services {op[4:]}ed by {origin}", action=op,
                    done={"detail": "services locked: nothing starts until clusvcadm -u"
                          if locked else "services unlocked"})
    svc = service_key(str(args["service"]))
    row = s.rows.get(svc)
    if s.snapshot is None or row is None:
        code = RgError.ENOSERVICE if row is None and s.snapshot is not None else RgError.EAGAIN
        return _answer(result(code, svc, "the coordinator has not evaluated the services "
                                         "yet" if code is RgError.EAGAIN
                              else f"{svc} is not in cluster.conf"))
    action = op.split(".", 1)[1]
    admin = s.admin
    if action == "migrate":
        # rgmanager migrates only migratory resources (<vm>, group_migratory()); we have
        # none, and a stop-then-start is what -r does
        return _answer(result(RgError.EINVAL, svc, f"{svc} cannot be migrated: it has no "
                              "migratory resources (only virtual machines migrate); use -r "
                              "to relocate it", row))
    if admin.locked and action in ("enable", "relocate", "restart"):
        return _answer(result(RgError.EAGAIN, svc, "services are locked (clusvcadm -l); "
                              "unlock them with clusvcadm -u", row))
    if action in ("freeze", "unfreeze"):
        frozen = admin.frozen | {svc} if action == "freeze" else admin.frozen - {svc}
        return Plan(admin=admin.change(frozen=frozen), action=action, service=svc,
                    done={"detail": f"{svc} {'frozen' if action == 'freeze' else 'unfrozen'}"})
    if row.status.frozen:
        return _answer(result(RgError.EFROZEN, svc, f"{svc} is frozen; unfreeze it first",
                              row))
    if action in ("disable", "stop"):
        return _stop(svc, action, row, s)
    if action == "restart" and row.status.state is ServiceState.STARTED:
        return _on_owner(svc, "restart", row, s)
    if action == "convalesce":
        if row.status.state is not ServiceState.STARTED:
            return _answer(result(RgError.EINVAL, svc, f"{svc} is not running", row))
        if not row.partial:
            return _answer(result(RgError.SUCCESS, svc, f"{svc} has nothing to convalesce",
                                  row))
        return _on_owner(svc, "convalesce", row, s)
    return _place(svc, action, args, origin, row, s)


def _place(svc: str, action: str, args: Mapping[str, Any], origin: str, row: Row,
           s: Situation) -> Plan:
    assert s.snapshot is not None
    member = args.get("member")
    relocating = action == "relocate" and row.status.state is ServiceState.STARTED
    if relocating:
        res = relocate_target(s.snapshot, svc, member)
    else:
        res = enable_target(s.snapshot, svc, member, local=origin,
                            follow_domain=bool(args.get("follow_domain")))
    if res.error is RgError.ERUN:
        return _answer(result(RgError.ERUN, svc, res.reason, row))
    if not res.ok:
        return _answer(result(res.error, svc, res.reason, row))
    old_owner = row.status.owner
    walk: tuple[str, ...] = ()
    if relocating:
        walk = relocate_walk(s.snapshot, svc, res.target, old_owner)
    coord = replace(s.coord, targets={**s.coord.targets, svc: res.target},
                    walks={**s.coord.walks, svc: walk}, gave_up=s.coord.gave_up - {svc})
    return Plan(admin=s.admin.change(disabled=s.admin.disabled - {svc},
                                     stopped=s.admin.stopped - {svc}),
                coord=coord, wait=Wait.SETTLED, action=action, service=svc,
                target=res.target, reason=res.reason, old_owner=old_owner)


def _stop(svc: str, action: str, row: Row, s: Situation) -> Plan:
    admin = s.admin
    if action == "disable":
        admin = admin.change(disabled=admin.disabled | {svc}, stopped=admin.stopped - {svc})
    else:
        admin = admin.change(stopped=admin.stopped | {svc})
    coord = replace(s.coord, targets={k: v for k, v in s.coord.targets.items() if k != svc})
    commands: tuple[tuple[str, Command], ...] = ()
    owner = row.status.owner
    if row.status.state is ServiceState.FAILED and owner in s.live:
        coord, cmd = issue(coord, admin, owner, svc, CommandKind.STOP, s.now)
        commands = ((owner, cmd),)
    return Plan(admin=admin, coord=coord, commands=commands, wait=Wait.STOPPED,
                action=action, service=svc)


def _on_owner(svc: str, action: str, row: Row, s: Situation) -> Plan:
    if svc in s.coord.pending or row.busy:
        return _answer(result(RgError.EAGAIN, svc, f"{svc} has an operation in progress",
                              row))
    owner = row.status.owner
    assert owner is not None
    kind = CommandKind.RESTART if action == "restart" else CommandKind.CONVALESCE
    coord, cmd = issue(s.coord, s.admin, owner, svc, kind, s.now)
    return Plan(coord=coord, commands=((owner, cmd),), wait=Wait.OWNER, action=action,
                service=svc)


def _node(op: str, node: str, s: Situation) -> Plan:
    if node not in s.nodes:
        return _answer(result(RgError.ENODE, "", f"'{node}' is not a cluster node"))
    standby = s.admin.standby | {node} if op == "node.standby" else s.admin.standby - {node}
    admin = s.admin.change(standby=standby)
    if op == "node.active":
        return Plan(admin=admin, action=op, node=node,
                    done={"detail": f"{node} takes services again"})
    return Plan(admin=admin, wait=Wait.EVACUATED, action=op, node=node)


# ------------------------------------------------------------------ outcomes
def outcome(p: Plan, s: Situation) -> dict[str, Any] | None:
    """The reply once the operation is over in ``s`` (None: not yet)."""
    if p.wait is Wait.NOW:
        return result(RgError.SUCCESS, p.service, p.done["detail"],
                      s.rows.get(p.service) if p.service else None)
    if p.wait is Wait.EVACUATED:
        c = s.coord
        if all(r.status.owner != p.node and not r.busy and svc not in c.targets
               and svc not in c.pending for svc, r in s.rows.items()):
            return result(RgError.SUCCESS, "", f"{p.node} is in standby and runs no service")
        return None
    row = s.rows.get(p.service)
    if row is None:
        return None
    if p.wait is Wait.STOPPED:
        if row.status.owner is None and not row.busy and p.service not in s.coord.pending:
            return result(RgError.SUCCESS, p.service, f"{p.service} {p.action}d", row)
        return None
    if p.wait is Wait.OWNER:
        if p.service in s.coord.pending or row.busy:
            return None
        return _owner_done(p, row)
    return _placed(p, row, s) if _settled(p.service, row, s.coord) else None


def timed_out(p: Plan, s: Situation, timeout: float) -> dict[str, Any]:
    """The reply when ``timeout`` seconds passed before :func:`outcome` had one."""
    row = s.rows.get(p.service) if p.service else None
    if p.wait is Wait.EVACUATED:
        return result(RgError.EFAIL, "", f"services still on {p.node} after {timeout:g}s")
    if p.wait is Wait.STOPPED:
        return result(RgError.EFAIL, p.service, f"{p.service} did not stop within "
                                                f"{timeout:g}s", row)
    if p.wait is Wait.OWNER:
        return result(RgError.EFAIL, p.service, "restart failed" if p.action == "restart"
                      else "still partial", row)
    return result(RgError.EFAIL, p.service, f"no outcome within {timeout:g}s", row)


def _settled(svc: str, row: Row, c: CoordState) -> bool:
    return (svc not in c.targets and svc not in c.walks and svc not in c.pending
            and not row.busy
            and row.status.state in (ServiceState.STARTED, ServiceState.FAILED,
                                     ServiceState.STOPPED, ServiceState.DISABLED)
            ) or svc in c.gave_up


def _placed(p: Plan, row: Row, s: Situation) -> dict[str, Any]:
    svc = p.service
    if row.status.state is ServiceState.STARTED:
        if p.action == "relocate" and row.status.owner == p.old_owner:
            return result(RgError.ERELO, svc, f"no other node could start {svc}; it runs "
                                              f"on {p.old_owner} again", row)
        if row.status.owner != p.target:
            return result(RgError.SUCCESS, svc, f"{p.target} could not start {svc}; it "
                                                f"went on to {row.status.owner}", row)
        return result(RgError.SUCCESS, svc, p.reason, row)
    return result(RgError.EFAIL, svc, row.why or f"{svc} is {row.shown_state.value}", row)


def _owner_done(p: Plan, row: Row) -> dict[str, Any]:
    svc = p.service
    if p.action == "restart":
        if row.status.state is ServiceState.STARTED:
            return result(RgError.SUCCESS, svc, f"{svc} restarted on {row.status.owner}", row)
        return result(RgError.EFAIL, svc, row.why or "restart failed", row)
    if row.status.state is ServiceState.STARTED and not row.partial:
        return result(RgError.SUCCESS, svc, f"{svc} convalesced on {row.status.owner}", row)
    return result(RgError.EFAIL, svc, row.why or "still partial", row)
