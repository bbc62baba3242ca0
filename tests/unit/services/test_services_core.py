"""ServicesCore (sans-IO): fed facts and messages, it returns what to do. No daemon, no
event loop, no patched clock: time is an argument."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from clusterd.conf import parse
from clusterd.placement.model import ServiceState
from clusterd.services import core as sc
from clusterd.services.model import (
    CH_COMMAND,
    CH_REPORT,
    AdminState,
    Command,
    CommandKind,
    LocalService,
    NodeReport,
)
from clusterd.wire.messages import View, ViewId

NAMES = ("n1", "n2", "n3")
RM = ('<rm><service name="web" autostart="1" recovery="relocate">'
      '<script name="w" file="/bin/true"/></service></rm>')
CONF = parse((f'<?xml version="1.0"?><cluster name="alpha" config_version="1">'
              f'<clusternodes>{"".join(f"<clusternode name={n!r} nodeid={str(i)!r}/>" for i, n in enumerate(NAMES, 1))}'
              f"</clusternodes>{RM}</cluster>").encode())
VIEW = View(ViewId(3, 1, 9), ((1, 9), (2, 5), (3, 7)))


@dataclass
class Fencing:
    """What the fencing policy answers (all settled unless told otherwise)."""
    blocked: set[str] = field(default_factory=set)
    open_: set[str] = field(default_factory=set)
    view: View | None = VIEW

    def recovery_blocked(self, node: str) -> bool:
        return node in self.blocked

    def recovery_allowed(self, node: str) -> bool:
        return node not in self.blocked

    def fence_open(self, node: str) -> bool:
        return node in self.open_

    def members(self) -> frozenset[str]:
        ids = self.view.nodeids if self.view else frozenset()
        return frozenset(NAMES[i - 1] for i in ids)


def facts(view: View | None = VIEW, quorate: bool = True, **kw) -> sc.Facts:
    base = {"view": view, "quorate": quorate, "leaving": False, "restarting": False,
            "fencing": Fencing(view=view), "local": {}, "ready": True, "running": 0}
    base.update(kw)
    return sc.Facts(**base)


def core(me: int = 1) -> sc.ServicesCore:
    c = sc.ServicesCore(NAMES[me - 1], me, AdminState())
    c.load(CONF)
    return c


def of(outputs, kind):
    return [o for o in outputs if isinstance(o, kind)]


def ready_report(**services) -> dict:
    return NodeReport(ready=True, services={k: LocalService(v) for k, v in services.items()}
                      ).to_wire()


def test_a_new_report_is_kept_and_asks_for_a_wake_its_copy_does_not() -> None:
    c = core()
    assert of(c.on_report(2, 5, ready_report()), sc.Wake)
    assert c.known[2][0] == 5
    assert c.on_report(2, 5, ready_report()) == []


def test_a_newer_admin_state_in_a_report_is_taken_an_older_one_is_not() -> None:
    c = core()
    newer = NodeReport(ready=True, admin=AdminState(version=4, frozen=frozenset({"service:web"})))
    out = c.on_report(2, 5, newer.to_wire())
    assert [o.admin.version for o in of(out, sc.AdminChanged)] == [4]
    older = NodeReport(ready=False, admin=AdminState(version=2))
    assert not of(c.on_report(3, 7, older.to_wire()), sc.AdminChanged)
    assert c.admin.version == 4


def test_the_report_goes_out_on_change_and_on_refresh_only() -> None:
    c = core(me=2)
    f = facts()
    assert len(of(c.step(100.0, 1e9, f), sc.Send)) == 1
    assert not of(c.step(100.0 + sc.REPORT_REFRESH / 2, 1e9, f), sc.Send)
    changed = replace(f, local={"service:web": LocalService(ServiceState.STARTED)})
    sent = of(c.step(100.0 + sc.REPORT_REFRESH / 2, 1e9, changed), sc.Send)
    assert [s.channel for s in sent] == [CH_REPORT] and sent[0].dest is None
    assert of(c.step(100.0 + 2 * sc.REPORT_REFRESH, 1e9, changed), sc.Send)


def test_the_coordinator_starts_a_service_once_every_member_reported() -> None:
    c = core(me=1)
    out = c.step(100.0, 1e9, facts())
    assert not of(out, sc.Execute) and "waiting for service reports" in c.last_reason
    c.on_report(2, 5, ready_report())
    c.on_report(3, 7, ready_report())
    out = c.step(101.0, 1e9, facts())
    starts = [o.cmd for o in of(out, sc.Execute)] + [
        Command.from_wire(o.payload) for o in of(out, sc.Send) if o.channel == CH_COMMAND]
    assert [(cmd.kind, cmd.service) for cmd in starts] == [(CommandKind.START,
                                                            "service:web")]


def test_a_coordinator_waits_for_fencing_to_take_in_the_view() -> None:
    c = core(me=1)
    c.on_report(2, 5, ready_report())
    c.on_report(3, 7, ready_report())
    behind = facts(fencing=Fencing(view=View(ViewId(2, 1, 9), ((1, 9), (2, 5)))))
    out = c.step(101.0, 1e9, behind)
    assert not of(out, sc.Execute) and not [o for o in of(out, sc.Send)
                                            if o.channel == CH_COMMAND]
    assert c.last_reason == "waiting for fencing to take in view 3"


def test_only_a_quorate_coordinator_decides() -> None:
    c = core(me=1)
    c.on_report(2, 5, ready_report())
    c.on_report(3, 7, ready_report())
    assert not c.is_coordinator(facts(quorate=False))
    out = c.step(101.0, 1e9, facts(quorate=False))
    assert not of(out, sc.Execute) and not of(out, sc.Fence)
    assert not core(me=2).is_coordinator(facts())


def test_a_command_from_someone_not_the_coordinator_is_ignored() -> None:
    c = core(me=2)
    cmd = Command(epoch=3, op_id="1.1", service="service:web", kind=CommandKind.START)
    assert of(c.on_command(1, cmd.to_wire(), facts()), sc.Execute)
    assert not of(c.on_command(3, cmd.to_wire(), facts()), sc.Execute)
    assert not of(c.on_command(1, cmd.to_wire(), facts(restarting=True)), sc.Execute)


def test_quorum_loss_resets_the_lock_here_and_a_view_change_announces() -> None:
    c = core()
    c.set_admin(AdminState(version=2, locked=True))
    out = c.on_facts(facts(quorate=False, running=1))
    assert not c.admin.locked and of(out, sc.Announce)
    assert c.on_facts(facts(quorate=False, running=1)) == []      # nothing new


def test_a_failed_start_is_forgotten_once_the_service_runs_elsewhere() -> None:
    c = core(me=1)
    c.on_report(2, 5, ready_report(**{"service:web": ServiceState.STARTED}))
    c.on_report(3, 7, ready_report())
    local = {"service:web": LocalService(ServiceState.RECOVERING)}
    c.step(100.0, 1e9, facts(local=local))              # rows now say n2 runs it
    out = c.step(101.0, 1e9, facts(local=local))
    assert [(o.service, o.local.state) for o in of(out, sc.SetLocal)] == [
        ("service:web", ServiceState.STOPPED)]


def test_a_failed_start_is_kept_while_the_next_nodes_start_is_in_flight() -> None:
    """Forgotten at STARTING, every node's failure record was gone by the time the last
    one failed: the service went round the nodes for ever instead of being stopped."""
    c = core(me=1)
    c.on_report(2, 5, ready_report(**{"service:web": ServiceState.STARTING}))
    c.on_report(3, 7, ready_report())
    local = {"service:web": LocalService(ServiceState.RECOVERING)}
    c.step(100.0, 1e9, facts(local=local))              # rows now say n2 is starting it
    out = c.step(101.0, 1e9, facts(local=local))
    assert of(out, sc.SetLocal) == []


def test_a_departed_nodes_claim_is_forgotten_once_a_live_member_runs_the_service() -> None:
    """web ran on n2; n2 left (fenced) and web runs on n3 now. When n3 dies unfenced
    too, the owner to wait for is n3, not n2's stale claim (found by the simulator:
    the row named the long-fenced n2 and web started a second time beside n3)."""
    c = core(me=1)
    c.on_report(2, 5, ready_report(**{"service:web": ServiceState.STARTED}))
    c.on_report(3, 7, ready_report())
    without_2 = View(ViewId(4, 1, 9), ((1, 9), (3, 7)))
    c.on_report(3, 7, {**ready_report(**{"service:web": ServiceState.STARTED}), "ep": 4})
    c.step(100.0, 1e9, facts(view=without_2))
    assert "service:web" not in c.known[2][1].services
    alone = View(ViewId(5, 1, 9), ((1, 9),))
    lost_3 = facts(view=alone, fencing=Fencing(blocked={"node3", "n3"}, view=alone))
    out = c.step(101.0, 1e9, lost_3)
    assert c.rows["service:web"].status.owner == "n3"
    assert not of(out, sc.Execute)


def test_the_coordinator_decides_only_on_reports_written_in_its_view() -> None:
    c = core(me=1)
    c.on_report(2, 5, {**ready_report(), "ep": 2})       # written in the view before
    c.on_report(3, 7, {**ready_report(), "ep": 3})
    out = c.step(100.0, 1e9, facts())
    assert not of(out, sc.Execute) and "waiting for service reports from ['n2']" in c.last_reason
    c.on_report(2, 5, {**ready_report(), "ep": 3})
    c.step(101.0, 1e9, facts())
    assert "waiting" not in c.last_reason
