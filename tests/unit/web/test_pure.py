"""The pure parts: sessions and the login limiter (injected clock), actions (input
checks, op, command line), the view and its events, PAM roles from groups."""

from __future__ import annotations

import pytest
from clusterd.web import actions, view
from clusterd.web.auth import PamAuth
from clusterd.web.sessions import LoginLimiter, SessionStore
from webfake import CANDIDATES, Clock, status_doc


def test_session_idle_and_absolute_expiry():
    clock = Clock(1000.0)
    store = SessionStore(idle=100, max_age=250, clock=clock)
    s = store.create("alice", "admin", "192.0.2.1")
    clock.now += 99
    assert store.lookup(s.id) == (s, False)
    clock.now += 101
    assert store.lookup(s.id) == (None, True)
    assert store.lookup(s.id) == (None, False)        # said once, then forgotten
    s = store.create("alice", "admin", "192.0.2.1")
    for _ in range(2):
        clock.now += 90
        assert store.lookup(s.id)[0] is s
    clock.now += 80
    assert store.alive(s) is False and store.lookup(s.id) == (None, True)
    assert store.lookup(None) == (None, False)


def test_login_limiter_per_user_and_per_address():
    clock = Clock(0.0)
    limiter = LoginLimiter(clock, limit=5, window=300)
    for i in range(5):
        assert limiter.wait("alice", f"192.0.2.{i}") == 0
        limiter.failed("alice", f"192.0.2.{i}")
    assert limiter.wait("alice", "198.51.100.9") == 300
    assert limiter.wait("bob", "192.0.2.1") == 0            # the address failed once only
    clock.now = 120
    assert limiter.wait("alice", "x") == 180
    clock.now = 300
    assert limiter.wait("alice", "x") == 0
    for _ in range(5):
        limiter.failed(f"u{_}", "203.0.113.7")                 # many names, one address
    assert limiter.wait("carol", "203.0.113.7") == 300


@pytest.mark.parametrize("form, op, args, command", [
    ({"action": "enable", "service": "service:web"}, "svc.enable", {"service": "service:web"},
     "clusvcadm -e web"),
    ({"action": "enable", "service": "service:web", "member": "node2"}, "svc.enable",
     {"service": "service:web", "member": "node2"}, "clusvcadm -e web -m node2"),
    ({"action": "disable", "service": "service:web", "member": "node2"}, "svc.disable",
     {"service": "service:web"}, "clusvcadm -d web"),
    ({"action": "restart", "service": "vm:guest one"}, "svc.restart",
     {"service": "vm:guest one"}, "clusvcadm -R 'vm:guest one'"),
    ({"action": "relocate", "service": "service:web", "member": "node3"}, "svc.relocate",
     {"service": "service:web", "member": "node3"}, "clusvcadm -r web -m node3"),
    ({"action": "freeze", "service": "service:web"}, "svc.freeze", {"service": "service:web"},
     "clusvcadm -Z web"),
    ({"action": "unfreeze", "service": "service:web"}, "svc.unfreeze",
     {"service": "service:web"}, "clusvcadm -U web"),
    ({"action": "standby", "node": "node2"}, "node.standby", {"node": "node2"},
     """echo '{"v": 1, "op": "node", "action": "standby", "node": "node2"}' | cluster_admin"""),
    ({"action": "active", "node": "node2"}, "node.active", {"node": "node2"},
     """echo '{"v": 1, "op": "node", "action": "active", "node": "node2"}' | cluster_admin"""),
])
def test_actions_op_args_and_command_line(form, op, args, command):
    act = actions.parse(form)
    assert (act.op, act.args, act.command) == (op, args, command)


def test_action_outcome_words():
    assert actions.outcome({"code": 0, "message": "Success"}) == (True, "Success")
    assert actions.outcome({"code": -10, "message": "Service is already running"})[0] is True
    assert actions.outcome({"code": -9, "message": "No quorum", "detail": "1 of 3"}) == \
        (False, "No quorum\n1 of 3")


def test_view_ignores_counters_and_words_the_events():
    old = view.project(status_doc(), CANDIDATES["services"])
    assert view.project(status_doc(wire={"accepted": 5}), CANDIDATES["services"]) == old
    doc = status_doc(quorum={"quorate": False, "votes": 1, "expected_votes": 3, "quorum": 2})
    doc["nodes"][1].update(state="offline")
    doc["nodes"][2].update(standby=True)
    doc["services"][0].update(state="stopped", owner=None, last_owner="node1")
    doc["fencing"] = [{"node": "node2", "state": "running", "op_id": "a1", "attempts": 1,
                       "since": 50, "executor": "node1"}]
    new = view.project(doc, None, old["fencing"])
    assert view.events(old, new) == [
        "Quorum lost: 1 of 3 votes, 2 needed", "node2 is now Offline",
        "node3 is now Online, Standby", "service:web is stopped", "Fencing node2: running"]
    doc["fencing"] = [{"node": "node2", "state": "done", "op_id": "a1", "method": "ipmi",
                       "since": 50, "finished": 60}]
    done = view.project(doc, None, new["fencing"])
    assert view.events(new, done) == ["node2 was fenced (method ipmi)"]
    assert len(done["fencing"]) == 1 and done["fencing"][0]["by"] == ""
    assert view.events(done, view.down("clusterd is not running", done)) == [
        "clusterd stopped answering: clusterd is not running"]


def test_qdisk_row_and_standby_wording():
    doc = status_doc(qdisk={"device": "/dev/sdq", "votes": 3, "granted": True,
                            "master": "node1", "score": 1, "max_score": 1})
    v = view.project(doc)
    from clusterd.web import render
    rows = render.members(v, "viewer")
    assert 'tr data-member="/dev/sdq" data-state="online" class="qdisk"' in rows
    assert "Online, Quorum Disk" in rows
    assert 'id="qdisk">Quorum disk /dev/sdq: 3 votes, counted, master node1' in render.summary(v)


def test_pam_role_from_groups(monkeypatch):
    class FakePam:
        def __init__(self) -> None:
            self.reason, self.code = "", 0

        def authenticate(self, user: str, password: str, service: str) -> bool:
            return password == "right" and service == "clusterd-web"

    class Module:
        pam = FakePam

    auth = PamAuth("clusterd-web", "hacluster-admin", "haclient", pam_module=Module)
    groups = {"ann": {"hacluster-admin"}, "val": {"haclient"}, "zed": {"users"}}
    monkeypatch.setattr("clusterd.web.auth.groups_of", lambda name: groups[name])
    assert auth.authenticate("ann", "right") == "admin"
    assert auth.authenticate("val", "right") == "viewer"
    assert auth.authenticate("zed", "right") is None
    assert auth.authenticate("ann", "wrong") is None
