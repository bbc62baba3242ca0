"""Pure parts of the services layer as tables: wire forms, command filtering by epoch and
coordinator, report merge (owners, ghosts, duplicates, admin overlay), the coordinator's
snapshot and its commands (fence before recovery, relocation in two steps, lost commands)."""

from __future__ import annotations

import pytest
from clusterd.placement.model import (
    DomainMember,
    FailoverDomain,
    Fence,
    Recovery,
    ServiceDef,
    ServiceState,
)
from clusterd.services import coordinator as co
from clusterd.services.merge import Known, build_snapshot, merge
from clusterd.services.model import (
    AdminState,
    Command,
    CommandKind,
    LocalService,
    NodeReport,
    accept_command,
)

S = ServiceState
WEB = "service:web"
DOM = FailoverDomain("d", (DomainMember("n1", 1), DomainMember("n2", 2), DomainMember("n3", 3)),
                     ordered=True)
DEFS = (ServiceDef(WEB, "d", recovery=Recovery.RESTART, max_restarts=1),)
NODES = (("n1", 1, True), ("n2", 2, True), ("n3", 3, False))


def rep(state: S = S.STOPPED, **kw) -> NodeReport:
    return NodeReport(True, False, AdminState(), {WEB: LocalService(state, **kw)})


def known(**reports) -> dict[int, Known]:
    """n1=(report, live) ..."""
    return {int(name[1:]): Known(name, r, live) for name, (r, live) in reports.items()}


# ------------------------------------------------------------------ wire forms
def test_reports_commands_and_admin_roundtrip() -> None:
    r = NodeReport(True, True, AdminState(3, frozenset({WEB}), frozenset(), frozenset(),
                                          frozenset({"n2"})),
                   {WEB: LocalService(S.STARTED, "1.2", "1.1", (5.0, 6.5), True, "bad")})
    assert NodeReport.from_wire(r.to_wire()) == r
    c = Command(4, "4.7", WEB, CommandKind.RESTART, True, S.DISABLED)
    assert Command.from_wire(c.to_wire()) == c


@pytest.mark.parametrize("payload", [
    {"s": {WEB: {"st": "disabled"}}, "r": True, "l": False},        # not a local state
    {"s": {WEB: {"st": "started", "rs": ["x"]}}, "r": True, "l": False},
    {"s": [], "r": True, "l": False},
    {"s": {}, "r": "yes", "l": False},
    {"s": {}, "r": True, "l": False, "adm": {"ver": -1}},
])
def test_bad_reports_are_refused(payload) -> None:
    with pytest.raises((TypeError, ValueError)):
        NodeReport.from_wire(payload)


def test_admin_change_bumps_the_version_only_when_something_changes() -> None:
    a = AdminState()
    assert a.change(disabled=frozenset()) is a
    b = a.change(disabled=frozenset({WEB}))
    assert (b.version, b.disabled) == (1, {WEB})


# ------------------------------------------------------------------ command filter
CMD = Command(7, "7.1", WEB, CommandKind.START)


@pytest.mark.parametrize("kw,why", [
    ({}, None),
    ({"epoch": 8}, "stale command from view 7 (current view 8)"),
    ({"coordinator": 2}, "node 1 is not the coordinator of view 7"),
    ({"quorate": False}, "this node is not in a quorate view"),
    ({"leaving": True}, "this node is leaving the cluster"),
    ({"local": LocalService(done="7.1")}, "op 7.1 already done"),
    ({"local": LocalService(busy="7.1")}, "op 7.1 already running"),
    ({"local": LocalService(busy="6.9")}, "busy with op 6.9"),
])
def test_only_the_current_coordinator_commands(kw, why) -> None:
    args = {"epoch": 7, "coordinator": 1, "quorate": True, "leaving": False,
            "local": LocalService(), **kw}
    assert accept_command(CMD, 1, **args) == why


# ------------------------------------------------------------------ merge
def test_merge_owner_ghost_duplicate_recovering_and_admin() -> None:
    rows = merge([WEB], known(n1=(rep(S.STARTED, restarts=(1.0,)), True),
                              n2=(rep(S.STARTED), True), n3=(rep(), True)), AdminState())
    row = rows[WEB]
    assert (row.status.state, row.status.owner, row.duplicates) == (S.STARTED, "n1", ("n2",))
    assert row.status.restarts == (1.0,)
    # the owner left the view: a ghost claim keeps it owned (offline) until cleared
    rows = merge([WEB], known(n1=(rep(S.STARTED), False), n2=(rep(), True)), AdminState())
    assert (rows[WEB].status.state, rows[WEB].status.owner) == (S.STARTED, "n1")
    rows = merge([WEB], known(n1=(rep(S.STARTED), False), n2=(rep(), True)), AdminState(),
                 cleared=frozenset({("n1", WEB)}))
    assert (rows[WEB].status.state, rows[WEB].status.owner) == (S.STOPPED, None)
    # a live claim beats a ghost
    rows = merge([WEB], known(n1=(rep(S.STARTED), False), n2=(rep(S.STARTING), True)),
                 AdminState())
    assert (rows[WEB].status.owner, rows[WEB].duplicates) == ("n2", ())
    rows = merge([WEB], known(n1=(rep(S.RECOVERING, why="boom"), True), n2=(rep(), True)),
                 AdminState(1, frozenset({WEB}), frozenset(), frozenset({WEB})))
    row = rows[WEB]
    assert (row.status.state, row.status.start_failed, row.why) == (S.RECOVERING, ("n1",),
                                                                    "boom")
    assert (row.shown_state, row.status.frozen) == (S.DISABLED, True)


def test_snapshot_maps_fencing_standby_and_admin() -> None:
    rows = merge([WEB], known(n1=(rep(S.STARTED), False), n2=(rep(), True),
                              n3=(rep(), True)), AdminState())
    live = {"n2": rep(), "n3": NodeReport(True, True)}
    snap = build_snapshot(defs=DEFS, domains=(DOM,), rows=rows, nodes=NODES, live=live,
                          admin=AdminState(standby=frozenset({"n2"})), quorate=True,
                          recovery_allowed=lambda n: False, pending=(), now=0.0)
    n1, n2, n3 = snap.nodes
    assert (n1.online, n1.fence, n2.standby, n3.standby, n3.fencing_configured) == (
        False, Fence.PENDING, True, True, False)
    admin = AdminState(1, frozenset({WEB}))
    rows = merge([WEB], known(n2=(rep(), True)), admin)
    snap = build_snapshot(defs=DEFS, domains=(DOM,), rows=rows, nodes=NODES, live={"n2": rep()},
                          admin=admin, quorate=True, recovery_allowed=lambda n: True,
                          pending=(), now=0.0)
    assert snap.state(WEB).state is S.DISABLED


# ------------------------------------------------------------------ coordinator step
def step(reports: dict[str, tuple[NodeReport, bool]], *, allowed=lambda n: False,
         cs: co.CoordState | None = None, admin: AdminState | None = None, now: float = 10.0):
    admin = admin or AdminState()
    k = known(**reports)
    rows = merge([WEB], k, admin, (cs or co.CoordState()).cleared)
    live = {x.name: x.report for x in k.values() if x.live}
    return co.step(cs or co.CoordState(epoch=5), co.Inputs(
        DEFS, (DOM,), rows, NODES, live, admin, allowed, now, 1000.0))


def cmds(out: co.CoordinatorOutcome) -> list[tuple[str, str, str]]:
    return [(node, c.kind.value, c.op_id) for node, c in out.commands]


def test_first_start_goes_to_the_best_domain_member_with_an_epoch_tagged_op() -> None:
    out = step({"n1": (rep(), True), "n2": (rep(), True), "n3": (rep(), True)})
    assert cmds(out) == [("n1", "start", "5.1")]
    assert out.state.pending[WEB].node == "n1"
    # acknowledged through the report: busy keeps it pending, done clears it
    again = step({"n1": (rep(S.STARTING, busy="5.1"), True), "n2": (rep(), True),
                  "n3": (rep(), True)}, cs=out.state, now=20.0)
    assert cmds(again) == [] and WEB in again.state.pending
    done = step({"n1": (rep(S.STARTED, done="5.1"), True), "n2": (rep(), True),
                 "n3": (rep(), True)}, cs=again.state)
    assert cmds(done) == [] and not done.state.pending


def test_a_lost_command_is_forgotten_and_decided_again() -> None:
    out = step({"n1": (rep(), True), "n2": (rep(), True)})
    later = step({"n1": (rep(), True), "n2": (rep(), True)}, cs=out.state,
                 now=10.0 + co.ACK_TIMEOUT + 0.1)
    assert cmds(later) == [("n1", "start", "5.2")]
    assert "was not acknowledged" in later.reason


def test_recovery_waits_for_fencing_then_starts_on_the_next_member() -> None:
    reports = {"n1": (rep(S.STARTED), False), "n2": (rep(), True), "n3": (rep(), True)}
    out = step(reports)
    assert cmds(out) == [] and "recovery waits until it is fenced" in out.reason
    out = step(reports, allowed=lambda n: n == "n1")
    assert cmds(out) == [("n2", "start", "5.1")]


def test_stop_failure_asks_for_fencing_or_blocks_without_it() -> None:
    out = step({"n1": (rep(S.FAILED), True), "n2": (rep(), True), "n3": (rep(), True)})
    assert [f.node for f in out.fence] == ["n1"] and cmds(out) == []
    out = step({"n3": (rep(S.FAILED), True), "n2": (rep(), True), "n1": (rep(), True)})
    assert out.fence == () and cmds(out) == [] and "is blocked" in out.reason


def test_status_failure_restarts_then_relocates_in_two_steps() -> None:
    out = step({"n1": (rep(S.STARTED, status_failed=True), True), "n2": (rep(), True)})
    assert cmds(out) == [("n1", "restart", "5.1")]
    assert out.commands[0][1].count
    out = step({"n1": (rep(S.STARTED, status_failed=True, restarts=(999.0,)), True),
                "n2": (rep(), True)})
    assert cmds(out) == [("n1", "stop", "5.1")] and out.state.targets == {WEB: "n2"}
    nxt = step({"n1": (rep(S.STOPPED, done="5.1"), True), "n2": (rep(), True)},
               cs=out.state)
    assert cmds(nxt) == [("n2", "start", "5.2")] and not nxt.state.targets


def test_admin_disable_stops_a_running_service_and_duplicates_are_stopped() -> None:
    admin = AdminState(1, frozenset({WEB}))
    out = step({"n1": (rep(S.STARTED), True), "n2": (rep(), True)}, admin=admin)
    assert cmds(out) == [("n1", "stop", "5.1")]
    assert out.commands[0][1].final is S.DISABLED
    out = step({"n1": (rep(S.STARTED), True), "n2": (rep(S.STARTED), True)})
    assert cmds(out) == [("n2", "stop", "5.1")] and "stopping the duplicate" in out.reason


def test_a_new_view_forgets_commands_of_the_old_one() -> None:
    cs = co.CoordState(5, 3, {WEB: co.Pending("5.3", "n1", CommandKind.START, 0.0)},
                       {WEB: "n2"}, frozenset(), frozenset({WEB}))
    nxt = cs.for_epoch(6)
    assert (nxt.epoch, nxt.seq, dict(nxt.pending), dict(nxt.targets), nxt.gave_up) == (
        6, 0, {}, {WEB: "n2"}, frozenset())
    assert cs.for_epoch(5) is cs


def _relocations(out: co.CoordinatorOutcome) -> list[tuple[str, str]]:
    return [(node, c.kind.value) for node, c in out.commands]


def test_failback_follows_a_node_up_event_not_a_standing_rule() -> None:
    """rgmanager fails back on a better member's node-up event: a relocation the
    coordinator saw happen while node1 was up sticks; node1 coming back pulls it home;
    a coordinator that has no history (it just joined, or took over) lets it fail back."""
    up = {"n1": (rep(), True), "n3": (rep(), True)}
    first = step({**up, "n2": (rep(S.STARTED), True)}, now=10.0)      # fresh coordinator
    assert _relocations(first) == [("n2", "stop")]
    # web was started on n1, then relocated by hand to n2 while n1 stayed up
    on_n1 = step({"n1": (rep(S.STARTED), True), "n2": (rep(), True), "n3": (rep(), True)},
                 cs=co.CoordState(epoch=5), now=10.0)
    assert _relocations(on_n1) == []
    moved = step({"n1": (rep(), True), "n2": (rep(S.STARTED), True), "n3": (rep(), True)},
                 cs=on_n1.state, now=20.0)
    assert _relocations(moved) == []
    # n1 leaves and comes back: that is the node-up event that fails web back
    gone = step({"n1": (rep(), False), "n2": (rep(S.STARTED), True), "n3": (rep(), True)},
                cs=moved.state, allowed=lambda n: True, now=30.0)
    assert _relocations(gone) == []
    back = step({"n1": (rep(), True), "n2": (rep(S.STARTED), True), "n3": (rep(), True)},
                cs=gone.state, now=40.0)
    assert _relocations(back) == [("n2", "stop")]


# ------------------------------------------------------------------ relocation walk
def _drive(fails: set[str], target: str = "n2", walk: tuple[str, ...] = ("n3", "n1"),
           owner: str = "n1") -> tuple[list[tuple[str, str]], str | None]:
    """Run the coordinator over a relocation where the nodes in ``fails`` cannot start
    web (their start fails cleanly: RECOVERING). Every command is executed at once and
    reported back. Returns the commands sent and where web ended; checks after every
    step that web is claimed by at most one node and that a start is sent only while
    no node claims or runs an op on it."""
    state = {n: S.STOPPED for n in ("n1", "n2", "n3")}
    state[owner] = S.STARTED
    done = {n: "" for n in state}
    cs = co.CoordState(epoch=5, targets={WEB: target}, walks={WEB: walk})
    sent: list[tuple[str, str]] = []
    for _ in range(20):
        out = step({n: (rep(state[n], done=done[n]), True) for n in state}, cs=cs)
        cs = out.state
        claims = [n for n, st in state.items() if st in (S.STARTED, S.STARTING, S.STOPPING)]
        for node, cmd in out.commands:
            sent.append((node, cmd.kind.value))
            if cmd.kind is CommandKind.START:
                assert claims == [], f"start on {node} while {claims} claim web"
                state[node] = S.RECOVERING if node in fails else S.STARTED
            elif cmd.kind is CommandKind.STOP:
                state[node] = S.STOPPED
            done[node] = cmd.op_id
        assert sum(st is S.STARTED for st in state.values()) <= 1
        if not out.commands and WEB not in cs.walks and WEB not in cs.targets:
            break
    ended = next((n for n, st in state.items() if st is S.STARTED), None)
    return sent, ended


def test_relocation_target_fails_to_start_the_next_candidate_gets_it() -> None:
    sent, ended = _drive({"n2"})
    assert sent == [("n1", "stop"), ("n2", "start"), ("n3", "start")]
    assert ended == "n3"


def test_relocation_everywhere_failing_ends_back_on_the_original_owner() -> None:
    sent, ended = _drive({"n2", "n3"})
    assert sent == [("n1", "stop"), ("n2", "start"), ("n3", "start"), ("n1", "start")]
    assert ended == "n1"


def test_relocation_to_a_working_target_does_not_walk() -> None:
    sent, ended = _drive(set())
    assert sent == [("n1", "stop"), ("n2", "start")] and ended == "n2"


def test_relocation_walk_skips_nodes_that_left_and_stops_on_admin_disable() -> None:
    reports = {"n1": (rep(S.STOPPED, done="5.1"), True), "n2": (rep(S.RECOVERING), True),
               "n3": (rep(), False)}
    cs = co.CoordState(epoch=5, seq=2, walks={WEB: ("n3", "n1")})
    out = step(reports, cs=cs)
    assert cmds(out) == [("n1", "start", "5.3")] and "previous target" in out.reason
    admin = AdminState(1, frozenset({WEB}))
    out = step(reports, cs=cs, admin=admin)
    assert cmds(out) == [] and WEB not in out.state.walks


def test_a_walk_survives_a_new_view() -> None:
    cs = co.CoordState(epoch=5, walks={WEB: ("n1",)})
    assert dict(cs.for_epoch(6).walks) == {WEB: ("n1",)}


# ------------------------------------------------------------------ clusvcadm -l
def test_locked_services_start_nowhere_but_still_stop() -> None:
    locked = AdminState(3, locked=True)
    assert AdminState.from_wire(locked.to_wire()) == locked
    assert AdminState.from_wire({"ver": 1}).locked is False      # older peers
    with pytest.raises(TypeError, match="'lk'"):
        AdminState.from_wire({"ver": 1, "lk": "yes"})
    idle = {"n1": (rep(), True), "n2": (rep(), True), "n3": (rep(), True)}
    out = step(idle, admin=locked)
    assert cmds(out) == [] and "services are locked: start of service:web held back" \
        in out.reason
    assert cmds(step(idle)) == [("n1", "start", "5.1")]
    # an admin stop still runs; a status failure is not restarted while locked
    out = step({"n1": (rep(S.STARTED), True), "n2": (rep(), True)},
               admin=AdminState(4, disabled=frozenset({WEB}), locked=True))
    assert cmds(out) == [("n1", "stop", "5.1")]
    out = step({"n1": (rep(S.STARTED, status_failed=True), True), "n2": (rep(), True)},
               admin=locked)
    assert cmds(out) == []
    # a relocation under way stops walking while locked
    cs = co.CoordState(epoch=5, targets={WEB: "n2"}, walks={WEB: ("n1",)})
    out = step({"n1": (rep(S.STOPPED), True), "n2": (rep(), True)}, cs=cs, admin=locked)
    assert cmds(out) == [] and WEB not in out.state.targets


def test_the_lock_is_not_read_back_after_a_restart(tmp_path) -> None:
    from clusterd.services.store import load_admin, save_admin
    save_admin(str(tmp_path), AdminState(7, frozen=frozenset({WEB}), locked=True))
    got = load_admin(str(tmp_path))
    assert (got.version, got.frozen, got.locked) == (7, frozenset({WEB}), False)
