"""clusvcadm targets (enable -m / -F, relocate -m), RG_E* codes, the candidate explainer,
and service definitions read from <rm>."""

from __future__ import annotations

import json

import pytest
from clusterd.errors import ConfigError
from clusterd.placement import (
    DependMode,
    Recovery,
    RgError,
    Score,
    candidates,
    enable_target,
    relocate_target,
    services_from_rm,
)
from clusterd.placement.manual import (
    relocate_walk,
)
from lxml import etree
from placement_builder import snapshot_from

BASE = {
    "nodes": {"node1": {"id": 1}, "node2": {"id": 2}, "node3": {"id": 3}, "node4": {"id": 4, "online": False}},
    "domains": {"pref": {"ordered": 1, "members": {"node2": 1, "node3": 2}},
                "only3": {"restricted": 1, "members": {"node3": 1}}},
    "services": {"web": {"domain": "pref"}, "locked": {"domain": "only3"}, "excl": {"exclusive": 1},
                 "db": {}, "app": {"depend": "db"}},
    "states": {"web": {"state": "started", "owner": "node2"}, "locked": {"state": "disabled"},
               "excl": {"state": "stopped"}, "db": {"state": "stopped"}, "app": {"state": "stopped"}},
}


def snap(**over):
    case = {**BASE, **over}
    return snapshot_from(case)


# (operation, args, expected error, expected target)
TABLE = [
    ("enable", {"service": "service:locked", "member": "node1"}, RgError.EDOMAIN, None),
    ("enable", {"service": "service:locked", "member": "node3"}, RgError.SUCCESS, "node3"),
    ("enable", {"service": "service:locked", "local": "node1"}, RgError.SUCCESS, "node3"),  # falls back like relocate
    ("enable", {"service": "service:locked", "follow_domain": True}, RgError.SUCCESS, "node3"),
    ("enable", {"service": "service:db", "member": "node1"}, RgError.SUCCESS, "node1"),
    ("enable", {"service": "service:db", "member": "node4"}, RgError.ENODE, None),
    ("enable", {"service": "service:db", "member": "nodeX"}, RgError.ENODE, None),
    ("enable", {"service": "service:web", "member": "node1"}, RgError.ERUN, "node2"),
    ("enable", {"service": "service:nope"}, RgError.ENOSERVICE, None),
    ("enable", {"service": "service:app", "member": "node1"}, RgError.EDEPEND, None),
    ("enable", {"service": "service:excl", "member": "node2"}, RgError.EEXCL, None),
    ("enable", {"service": "service:excl", "member": "node1"}, RgError.SUCCESS, "node1"),
    ("relocate", {"service": "service:web"}, RgError.SUCCESS, "node3"),
    ("relocate", {"service": "service:web", "member": "node1"}, RgError.SUCCESS, "node1"),  # user: GOOD ok
    ("relocate", {"service": "service:web", "member": "node2"}, RgError.ERUN, "node2"),
    ("relocate", {"service": "service:web", "member": "node4"}, RgError.ENODE, None),
]


@pytest.mark.parametrize(("op", "args", "error", "target"), TABLE)
def test_manual_table(op, args, error, target):
    fn = enable_target if op == "enable" else relocate_target
    res = fn(snap(), **args)
    assert (res.error, res.target) == (error, target), res.reason
    assert res.reason


def test_user_enable_accepts_good_but_follow_domain_needs_best():
    s = snap(states={**BASE["states"], "web": {"state": "stopped"}})
    assert enable_target(s, "service:web", member="node1").target == "node1"  # GOOD (non-member)
    assert enable_target(s, "service:web", follow_domain=True).target == "node2"  # BEST only


def test_quorum_frozen_and_failed():
    assert enable_target(snap(quorate=False), "service:db", member="node1").error is RgError.EQUORUM
    frozen = snap(states={**BASE["states"], "db": {"state": "stopped", "frozen": True}})
    assert enable_target(frozen, "service:db", member="node1").error is RgError.EFROZEN
    failed = snap(states={**BASE["states"], "db": {"state": "failed", "owner": "node1"}})
    assert enable_target(failed, "service:db", member="node1").error is RgError.EINVAL


def test_relocate_with_nowhere_to_go_is_erelo():
    s = snapshot_from({"nodes": {"node1": {"id": 1}}, "services": {"web": {}},
                       "states": {"web": {"state": "started", "owner": "node1"}}})
    res = relocate_target(s, "service:web")
    assert res.error is RgError.ERELO and res.target == "node1"


def test_error_codes_messages_and_exit_codes():
    assert RgError.EFAIL.exit_code == 255
    assert RgError.ERUN.exit_code == 0
    assert RgError.EQUORUM.message == "Operation requires quorum"
    assert RgError.ENODE.message == "Target node dead / nonexistent"
    assert RgError.EEXCL.message == "Service not runnable: cannot run exclusive"
    assert [e.value for e in RgError] == list(range(0, -19, -1))


def test_candidates_explain_every_node():
    got = candidates(snap(), "service:web")
    assert [(n, s) for n, s, _ in got] == [
        ("node2", Score.BEST), ("node3", Score.BETTER), ("node1", Score.GOOD), ("node4", Score.ILLEGAL)]
    assert got[3][2] == "offline"
    assert "not a member of unrestricted domain pref" in got[2][2]
    with pytest.raises(KeyError):
        candidates(snap(), "service:nope")


RM = """<rm><failoverdomains><failoverdomain name="d" ordered="1" restricted="1" nofailback="0">
<failoverdomainnode name="node1" priority="1"/><failoverdomainnode name="node2" priority="2"/>
</failoverdomain></failoverdomains>
<resources><service name="shared" recovery="relocate"/></resources>
<service name="web" domain="d" autostart="0" exclusive="1" recovery="restart-disable"
 max_restarts="3" restart_expire_time="10m" depend="db" depend_mode="soft"/>
<service name="db"/><service ref="shared"/><vm name="guest"/></rm>"""


def test_services_from_rm():
    services, domains = services_from_rm(etree.fromstring(RM))
    web, db, shared, guest = services
    assert (web.name, web.domain, web.autostart, web.exclusive, web.recovery, web.max_restarts,
            web.restart_expire_time, web.depend, web.depend_mode) == (
        "service:web", "d", False, True, Recovery.RESTART_DISABLE, 3, 600, "service:db", DependMode.SOFT)
    assert (db.autostart, db.recovery, db.depend_mode) == (True, Recovery.RESTART, DependMode.HARD)
    assert shared.recovery is Recovery.RELOCATE and guest.name == "vm:guest"
    (d,) = domains
    assert d.ordered and d.restricted and not d.nofailback and d.priority("node2") == 2


@pytest.mark.parametrize(("attr", "fragment"), [
    ('recovery="sometimes"', "recovery='sometimes' is not one of"),
    ('autostart="maybe"', 'autostart="maybe" is not 1 or 0'),
    # rgmanager read autostart with atoi(): "yes" meant 0 there (clusterd.truth)
    ('autostart="yes"', 'autostart="yes" is not 1 or 0: RHCS read this attribute as a number'),
    ('max_restarts="-1"', "must not be negative"),
    ('domain="nosuch"', "domain 'nosuch' is not a failoverdomain"),
    ('depend="service:ghost"', "names no service"),
    ('depend_mode="medium"', "is not hard or soft"),
])
def test_services_from_rm_bad_values(attr, fragment):
    with pytest.raises(ConfigError) as exc:
        services_from_rm(etree.fromstring(f'<rm><service name="x" {attr}/></rm>'))
    assert any(fragment in str(p) and "service[@name='x']" in str(p) for p in exc.value.problems)


def test_services_from_rm_odd_names_do_not_break_lookups():
    services, _ = services_from_rm(etree.fromstring(
        """<rm><resources><service name="it's"/></resources><service ref="it's"/>"""
        """<service ref="missing']"/></rm>"""))
    assert [s.name for s in services] == ["service:it's"]


def test_relocate_walk_is_every_other_permissible_node_best_first_then_the_owner():
    # web runs on node2 (domain pref: node2, node3); -r -m node1: then node3, then node2
    assert relocate_walk(snap(), "service:web", "node1", "node2") == ("node3", "node2")
    # -r without -m picked node3: then node1 (GOOD, unrestricted), then the owner
    assert relocate_walk(snap(), "service:web", "node3", "node2") == ("node1", "node2")
    # restricted to node3 and offline nodes: nothing but the owner
    assert relocate_walk(snap(), "service:locked", "node3", None) == ()
    assert relocate_walk(snap(), "service:nope", "node1", "node2") == ()


def test_the_candidates_op_gives_every_service_every_node_with_its_reason():
    from clusterd.services.ops import _candidates
    assert _candidates(None) == {"services": {}, "ready": False, "next": None, "total": 0}
    out = _candidates(snap())
    assert out["ready"] is True and out["next"] is None and out["total"] == 5
    assert set(out["services"]) == {f"service:{n}" for n in ("web", "locked", "excl", "db",
                                                             "app")}
    web = out["services"]["service:web"]
    assert [(r["node"], r["score"], r["candidate"]) for r in web] == [
        ("node2", "best", True), ("node3", "better", True), ("node1", "good", True),
        ("node4", "illegal", False)]
    assert web[3]["why"] == "offline"
    locked = {r["node"]: r for r in out["services"]["service:locked"]}
    assert not locked["node1"]["candidate"] and "restricted" in locked["node1"]["why"]
    json.dumps(out)     # the control socket sends it as it is
