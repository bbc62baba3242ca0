"""The coordinator's policy for manual operations (services.manual, pure), as tables: what
each request does at once (refusals, freeze, lock, node active), what it changes and
sends (admin state, relocation targets and walks, commands to the owner), and how its
outcome is read from later states or worded when the wait times out."""

from __future__ import annotations

from dataclasses import replace

import pytest
from clusterd.placement.manual import RgError
from clusterd.placement.model import (
    DomainMember,
    FailoverDomain,
    NodeInfo,
    ServiceDef,
    ServiceState,
    ServiceStatus,
    Snapshot,
)
from clusterd.services import manual
from clusterd.services.coordinator import CoordState
from clusterd.services.merge import Row
from clusterd.services.model import AdminState, CommandKind

S = ServiceState
WEB = "service:web"
NODES = ("n1", "n2", "n3")
DOM = FailoverDomain("d", tuple(DomainMember(n, i + 1) for i, n in enumerate(NODES)),
                     ordered=True)


def row(state: S = S.STARTED, owner: str | None = "n1", **kw) -> Row:
    extra = {k: kw.pop(k) for k in ("busy", "why", "partial") if k in kw}
    return Row(ServiceStatus(WEB, state, owner, **kw), **extra)


def situation(r: Row | None = None, *, admin: AdminState | None = None,
              coord: CoordState | None = None, snapshot: bool = True) -> manual.Situation:
    r = r if r is not None else row()
    admin = admin if admin is not None else AdminState()
    coord = coord if coord is not None else CoordState()
    snap = Snapshot(True, tuple(NodeInfo(n, i + 1) for i, n in enumerate(NODES)),
                    (ServiceDef(WEB, "d"),), (DOM,), (r.status,)) if snapshot else None
    return manual.Situation(admin=admin, coord=coord, rows={WEB: r}, snapshot=snap,
                            live=frozenset(NODES), nodes=frozenset(NODES), now=10.0)


def plan(op: str, s: manual.Situation, **args) -> manual.Plan:
    return manual.plan(op, {"service": "web", **args}, "n2", s)


@pytest.mark.parametrize(("op", "s", "code", "words"), [
    ("svc.migrate", situation(), RgError.EINVAL, "cannot be migrated"),
    ("svc.enable", situation(admin=AdminState(locked=True)), RgError.EAGAIN, "locked"),
    ("svc.relocate", situation(admin=AdminState(locked=True)), RgError.EAGAIN, "locked"),
    ("svc.restart", situation(row(frozen=True)), RgError.EFROZEN, "unfreeze it first"),
    ("svc.enable", situation(snapshot=False), RgError.EAGAIN, "not evaluated"),
    ("svc.restart", situation(row(busy=(("n1", "3.1"),))), RgError.EAGAIN, "in progress"),
    ("svc.convalesce", situation(row(S.STOPPED, None)), RgError.EINVAL, "is not running"),
    ("svc.convalesce", situation(), RgError.SUCCESS, "nothing to convalesce"),
    ("svc.enable", situation(), RgError.ERUN, ""),
])
def test_answered_at_once(op, s, code, words) -> None:
    p = plan(op, s)
    assert p.reply is not None and p.reply["code"] == int(code)
    assert words in p.reply["detail"]
    assert p.admin is None and p.coord is None and not p.commands


def test_an_unknown_service_and_node_are_named() -> None:
    p = manual.plan("svc.enable", {"service": "db"}, "n2", situation())
    assert p.reply["code"] == int(RgError.ENOSERVICE) and "service:db" in p.reply["detail"]
    p = manual.plan("node.standby", {"node": "n9"}, "n2", situation())
    assert p.reply["code"] == int(RgError.ENODE) and "'n9'" in p.reply["detail"]


def test_relocate_sets_the_target_and_the_walk_and_reads_the_outcome() -> None:
    s = situation(coord=CoordState(gave_up=frozenset({WEB})))
    p = plan("svc.relocate", s, member="n3")
    assert p.reply is None and p.target == "n3" and p.old_owner == "n1"
    assert p.coord.targets == {WEB: "n3"} and p.coord.walks[WEB][-1] == "n1"
    assert WEB not in p.coord.gave_up and p.wait is manual.Wait.SETTLED
    busy = situation(row(S.STARTED, "n1"), coord=p.coord)
    assert manual.outcome(p, busy) is None                     # the target is still set
    done = situation(row(S.STARTED, "n3"))
    assert manual.outcome(p, done)["code"] == int(RgError.SUCCESS)
    back = manual.outcome(p, situation(row(S.STARTED, "n1")))
    assert back["code"] == int(RgError.ERELO) and "runs on n1 again" in back["detail"]
    other = manual.outcome(p, situation(row(S.STARTED, "n2")))
    assert other["code"] == int(RgError.SUCCESS) and "went on to n2" in other["detail"]
    failed = manual.outcome(p, situation(row(S.FAILED, "n3", why="start failed: x")))
    assert failed["code"] == int(RgError.EFAIL) and failed["detail"] == "start failed: x"
    late = manual.timed_out(p, busy, 30)
    assert late["code"] == int(RgError.EFAIL) and "no outcome within 30s" in late["detail"]


def test_enable_clears_disabled_and_stopped() -> None:
    admin = AdminState(disabled=frozenset({WEB}))
    p = plan("svc.enable", situation(row(S.DISABLED, None), admin=admin), member="n2")
    assert p.target == "n2" and WEB not in p.admin.disabled and p.admin.version > 0
    assert p.coord.walks == {WEB: ()}


@pytest.mark.parametrize(("action", "field"), [("disable", "disabled"), ("stop", "stopped")])
def test_disable_and_stop_mark_the_admin_state_and_wait_for_nothing_to_run(action, field):
    s = situation(coord=CoordState(targets={WEB: "n2"}))
    p = plan(f"svc.{action}", s)
    assert WEB in getattr(p.admin, field) and p.coord.targets == {} and not p.commands
    assert manual.outcome(p, s) is None
    done = manual.outcome(p, situation(row(S.STOPPED, None)))
    assert done["code"] == int(RgError.SUCCESS) and done["detail"] == f"{WEB} {action}d"
    assert "did not stop within 5s" in manual.timed_out(p, s, 5)["detail"]


def test_disabling_a_failed_service_sends_its_owner_a_stop() -> None:
    p = plan("svc.disable", situation(row(S.FAILED, "n1")))
    (node, cmd), = p.commands
    assert node == "n1" and cmd.kind is CommandKind.STOP and cmd.service == WEB
    assert WEB in p.coord.pending


@pytest.mark.parametrize(("action", "kind", "after", "words"), [
    ("restart", CommandKind.RESTART, row(), "restarted on n1"),
    ("convalesce", CommandKind.CONVALESCE, row(), "convalesced on n1"),
])
def test_restart_and_convalesce_go_to_the_owner(action, kind, after, words) -> None:
    s = situation(row(partial=True))
    p = plan(f"svc.{action}", s)
    (node, cmd), = p.commands
    assert node == "n1" and cmd.kind is kind and p.wait is manual.Wait.OWNER
    assert manual.outcome(p, replace(s, coord=p.coord)) is None       # still pending
    assert manual.outcome(p, situation(after))["detail"] == f"{WEB} {words}"
    still = manual.outcome(p, situation(row(partial=True, why="")))
    if action == "convalesce":
        assert still["code"] == int(RgError.EFAIL) and still["detail"] == "still partial"


def test_freeze_lock_and_node_active_are_done_when_applied() -> None:
    s = situation()
    p = plan("svc.freeze", s)
    assert WEB in p.admin.frozen and p.wait is manual.Wait.NOW
    assert manual.outcome(p, s)["detail"] == f"{WEB} frozen"      # was "freezed"
    p = manual.plan("svc.lock", {}, "uid 0", s)
    assert p.admin.locked and p.log == "services locked by uid 0"
    assert "nothing starts until clusvcadm -u" in manual.outcome(p, s)["detail"]
    p = manual.plan("node.active", {"node": "n2"}, "uid 0",
                    situation(admin=AdminState(standby=frozenset({"n2"}))))
    assert "n2" not in p.admin.standby
    assert manual.outcome(p, s)["detail"] == "n2 takes services again"


def test_standby_waits_until_the_node_runs_nothing() -> None:
    p = manual.plan("node.standby", {"node": "n1"}, "uid 0", situation())
    assert "n1" in p.admin.standby and p.wait is manual.Wait.EVACUATED
    assert manual.outcome(p, situation()) is None                     # web still on n1
    moved = manual.outcome(p, situation(row(S.STARTED, "n2")))
    assert moved["detail"] == "n1 is in standby and runs no service"
    assert "services still on n1 after 9s" in manual.timed_out(p, situation(), 9)["detail"]
