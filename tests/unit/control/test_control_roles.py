"""Roles on the control socket: the registry, the role of a peer, refusals.

The socket cases fork children that drop to ``nobody`` with chosen supplementary groups
(os.setgroups/setgid/setuid) and talk to a real ControlServer: the groups reach the
daemon through SO_PEERGROUPS. They need root (skipped otherwise).
"""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import pwd
import re
import shutil
import tempfile
from contextlib import asynccontextmanager

import pytest
from clusterd.control import protocol as p
from clusterd.control.access import AccessPolicy, AdminGroup, describe_peer, refusal
from clusterd.control.client import ControlClient
from clusterd.control.server import ControlServer
from clusterd.errors import ControlError

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to setuid a child")
GROUP = next(g for g in grp.getgrall() if g.gr_gid not in (0, NOBODY))  # e.g. daemon (1)


async def _peer(args, peer):
    return {"uid": peer.uid, "groups": sorted(peer.groups)}


def _registry() -> p.OpRegistry:
    reg = p.OpRegistry()
    reg.register("look", _peer, role=p.Role.READ)
    reg.register("change", _peer, role=p.Role.ADMIN)
    reg.register("peek", _peer, (p.Arg("reveal", bool, False, role=p.Role.ROOT),),
                 role=p.Role.READ)
    return reg


# --- the registry --------------------------------------------------------------------------

def test_an_op_without_a_role_is_refused_at_registration():
    reg = p.OpRegistry()
    with pytest.raises(TypeError, match="role"):
        reg.register("status", _peer)                        # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"'x' must declare its role \(one of Role.READ, "
                                        r"Role.ADMIN, Role.ROOT\), got 'admin'"):
        reg.register("x", _peer, role="admin")               # type: ignore[arg-type]
    assert "status" not in reg and "x" not in reg


def test_roles_include_the_lesser_ones():
    assert [r.value for r in p.Role] == ["read", "admin", "root"]
    assert p.Role.ROOT.includes(p.Role.ADMIN) and p.Role.ADMIN.includes(p.Role.READ)
    assert not p.Role.ADMIN.includes(p.Role.ROOT) and not p.Role.READ.includes(p.Role.ADMIN)


def test_a_privileged_argument_raises_what_the_call_needs():
    spec = _registry().resolve(p.Request(1, "peek", {}))[0]
    assert spec.needs({}) == (p.Role.READ, "peek")
    assert spec.needs({"reveal": False}) == (p.Role.READ, "peek")
    assert spec.needs({"reveal": True}) == (p.Role.ROOT, "peek with reveal")
    assert _registry().roles() == {"change": p.Role.ADMIN, "look": p.Role.READ,
                                   "peek": p.Role.READ}


# --- the role of a peer ----------------------------------------------------------------------

def peer(uid: int = 1000, gid: int = 1000, *groups: int) -> p.Peer:
    return p.Peer(pid=42, uid=uid, gid=gid, groups=frozenset(groups))


ADMIN = AdminGroup("hacluster-admin", 990)
ROLES = [
    # (peer, allow-list, admin group, role)
    (peer(0, 0), AccessPolicy(), AdminGroup(), p.Role.ROOT),
    (peer(1000, 1000, 990), AccessPolicy(), ADMIN, p.Role.ADMIN),        # supplementary
    (peer(1000, 990), AccessPolicy(), ADMIN, p.Role.ADMIN),              # primary group
    (peer(1000, 1000, 990), AccessPolicy(), AdminGroup("gone"), None),   # not on this node
    (peer(1000, 1000), AccessPolicy(uids=frozenset({1000})), ADMIN, p.Role.READ),
    (peer(1000, 1000, 991), AccessPolicy(gids=frozenset({991})), ADMIN, p.Role.READ),
    (peer(1000, 1000, 991), AccessPolicy(gids=frozenset({992})), ADMIN, None),
    (peer(1000, 1000), AccessPolicy(), AdminGroup(), None),
]


@pytest.mark.parametrize("who, policy, admin, role", ROLES)
def test_role_of_a_peer(who, policy, admin, role):
    assert policy.role_of(who, admin) is role


def test_refusals_name_the_op_the_role_and_the_caller():
    who = describe_peer(peer(NOBODY, NOBODY))
    assert who == f"uid {NOBODY} ({pwd.getpwuid(NOBODY).pw_name}) in group {NOBODY} " \
                  f"({grp.getgrgid(NOBODY).gr_name})"
    assert refusal("conf.propose", p.Role.ADMIN, ADMIN, peer(NOBODY, NOBODY)) == (
        f"conf.propose needs the admin role (root or group 'hacluster-admin'); you are {who}")
    assert "(root only: cluster.conf names no admin group; set <clusterd admin_group=" \
           "\"GROUP\"/>)" in refusal("leave", p.Role.ADMIN, AdminGroup(), peer())
    assert "(root or group 'gone', which does not exist on this node)" in refusal(
        "leave", p.Role.ADMIN, AdminGroup("gone"), peer())
    assert "needs the root role (uid 0 only)" in refusal(
        "conf.get with reveal_secrets", p.Role.ROOT, ADMIN, peer())
    assert describe_peer(peer(4242, 4243, 4244)) == "uid 4242 in groups 4243, 4244"


def test_admin_group_lookup():
    assert AdminGroup.lookup(None) == AdminGroup()
    assert AdminGroup.lookup(GROUP.gr_name) == AdminGroup(GROUP.gr_name, GROUP.gr_gid)
    assert AdminGroup.lookup("no-such-group-here") == AdminGroup("no-such-group-here", None)


# --- over a real socket, as nobody ---------------------------------------------------------

@pytest.fixture
def sockdir():
    path = tempfile.mkdtemp(prefix="rhc-roles-")     # nobody must reach it (not tmp_path)
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def running(path, policy, admin_group):
    server = ControlServer(_registry(), path, policy=policy, socket_mode=0o666,
                           admin_group=lambda: admin_group)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _call_as(path: str, groups: list[int], op: str, args: dict,
             on_behalf: p.OnBehalf | None = None) -> dict:
    """Fork, become nobody in ``groups``, call ``op``: {"result": ...} or {"code", ...}."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups(groups)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                out = {"result": ControlClient(path, timeout=10).call(op, args, on_behalf)}
            except ControlError as exc:
                out = {"code": exc.code, "message": exc.message}
            os.write(wfd, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


async def as_nobody(path: str, groups: list[int], op: str, **args) -> dict:
    return await asyncio.to_thread(_call_as, path, groups, op, args)


@needs_root
def test_read_only_ops_for_the_allow_list_changes_for_the_admin_group(sockdir, caplog):
    path = os.path.join(sockdir, "c.sock")
    g = GROUP.gr_gid
    me = describe_peer(peer(NOBODY, NOBODY))

    async def scenario():
        async with running(path, AccessPolicy(uids=frozenset({NOBODY})), GROUP.gr_name) as srv:
            assert await as_nobody(path, [], "look") == {"result": {"uid": NOBODY,
                                                                     "groups": []}}
            refused = await as_nobody(path, [], "change")
            assert refused == {"code": p.E_DENIED, "message": (
                f"permission denied: change needs the admin role (root or group "
                f"'{GROUP.gr_name}'); you are {me}")}
            # the supplementary group, seen by the kernel at connect(), makes nobody admin
            assert await as_nobody(path, [g], "change") == {"result": {"uid": NOBODY,
                                                                        "groups": [g]}}
            secret = await as_nobody(path, [g], "peek", reveal=True)
            assert secret["code"] == p.E_DENIED
            assert secret["message"].startswith("permission denied: peek with reveal needs "
                                                "the root role (uid 0 only); you are uid "
                                                f"{NOBODY}")
            assert (await as_nobody(path, [g], "peek", reveal=False))["result"]["uid"] == NOBODY
            return srv.stats["denied"]

    with caplog.at_level(logging.WARNING, logger="clusterd.control.server"):
        assert asyncio.run(scenario()) == 2
    assert f"control op refused: change needs the admin role (root or group " \
           f"'{GROUP.gr_name}'); you are {me} (pid " in caplog.text
    assert "control op refused: peek with reveal needs the root role" in caplog.text


@needs_root
def test_admin_group_members_connect_without_the_allow_list_and_groups_allow_list(sockdir):
    path = os.path.join(sockdir, "c.sock")
    g = GROUP.gr_gid

    async def scenario():
        async with running(path, AccessPolicy(), GROUP.gr_name):
            assert (await as_nobody(path, [g], "change"))["result"]["groups"] == [g]
            assert (await as_nobody(path, [], "look"))["code"] == p.E_DENIED
        async with running(path, AccessPolicy(gids=frozenset({g})), None):
            assert (await as_nobody(path, [g], "look"))["result"]["groups"] == [g]
            refused = await as_nobody(path, [g], "change")
            assert refused["code"] == p.E_DENIED
            assert "needs the admin role (root only: cluster.conf names no admin group" in \
                   refused["message"]

    asyncio.run(scenario())


# --- the web service: a trusted proxy bounded by its user's role ---------------------------

def test_on_behalf_is_checked_when_the_request_is_read():
    line = p.encode_request("look", {}, p.OnBehalf("alice", "admin"))
    assert json.loads(line)["as"] == {"user": "alice", "role": "admin"}
    assert p.Request.from_line(line).on_behalf == p.OnBehalf("alice", "admin")
    assert p.OnBehalf("victor", "viewer").socket_role is p.Role.READ
    assert p.OnBehalf("alice", "admin").socket_role is p.Role.ADMIN
    for bad, words in ((["alice"], "'as' must be an object"),
                       ({"user": "alice", "role": "root"}, ("'as.role' must be one of viewer, "
                                                            "admin, not 'root'")),
                       ({"user": "al\x00ice", "role": "admin"}, "'as.user' must be"),
                       ({"user": "", "role": "admin"}, "'as.user' must be"),
                       ({"user": "a" * 65, "role": "admin"}, "'as.user' must be"),
                       ({"user": "alice", "role": "admin", "uid": 0},
                        "unknown field(s) in 'as': uid")):
        raw = json.dumps({"v": 1, "op": "look", "args": {}, "as": bad}).encode()
        with pytest.raises(ControlError, match=re.escape(words)) as err:
            p.Request.from_line(raw)
        assert err.value.code == p.E_BAD_REQUEST


def test_the_web_user_is_allowed_to_read_and_never_root():
    web = AccessPolicy(proxy_uid=NOBODY)
    assert web.role_of(peer(NOBODY, NOBODY), AdminGroup()) is p.Role.READ
    assert web.is_proxy(peer(NOBODY, NOBODY)) and not web.is_proxy(peer(1000, 1000))
    assert not AccessPolicy(proxy_uid=0).is_proxy(peer(0, 0))
    viewer = p.Peer(1, NOBODY, NOBODY, on_behalf=p.OnBehalf("victor", "viewer"))
    assert viewer.who == f"victor (viewer) via web, uid {NOBODY}"
    assert refusal("svc.relocate", p.Role.ADMIN, ADMIN, viewer) == (
        "svc.relocate needs the admin role; victor is logged in to the web page as a viewer "
        "(give victor the admin role in the web service's users, or use an admin account)")


@needs_root
def test_a_web_user_gets_exactly_its_role_and_only_the_web_service_may_say_so(sockdir,
                                                                            caplog):
    path = os.path.join(sockdir, "c.sock")
    alice, victor = p.OnBehalf("alice", "admin"), p.OnBehalf("victor", "viewer")

    async def scenario():
        async with running(path, AccessPolicy(proxy_uid=NOBODY), None):
            # the web service's own uid, on its own: read
            assert (await as_nobody(path, [], "look"))["result"]["uid"] == NOBODY
            assert (await as_nobody(path, [], "change"))["code"] == p.E_DENIED
            # for an admin: changes, never root
            assert (await asyncio.to_thread(_call_as, path, [], "change", {}, alice)
                    )["result"]["uid"] == NOBODY
            root = await asyncio.to_thread(_call_as, path, [], "peek", {"reveal": True}, alice)
            assert root["code"] == p.E_DENIED and "needs the root role" in root["message"]
            # for a viewer: reads only, refused by the daemon itself
            assert (await asyncio.to_thread(_call_as, path, [], "look", {}, victor)
                    )["result"]["uid"] == NOBODY
            refused = await asyncio.to_thread(_call_as, path, [], "change", {}, victor)
            assert refused == {"code": p.E_DENIED, "message": (
                "permission denied: change needs the admin role; victor is logged in to "
                "the web page as a viewer (give victor the admin role in the web "
                "service's users, or use an admin account)")}
        # any other uid, even an admin's, may not claim to act for someone
        async with running(path, AccessPolicy(uids=frozenset({NOBODY})), None):
            forged = await asyncio.to_thread(_call_as, path, [], "look", {}, alice)
            assert forged == {"code": p.E_DENIED, "message": (
                "permission denied: 'as' (acting for a web user) is accepted only from the "
                f"web service's user (clusterd --web-user); you are uid {NOBODY}")}

    with caplog.at_level(logging.INFO, logger="clusterd.control.server"):
        asyncio.run(scenario())
    assert f"control op change by alice (admin) via web, uid {NOBODY} pid " in caplog.text
    assert f"control op look with 'as' refused from uid {NOBODY}" in caplog.text
    assert "control op refused: change needs the admin role; victor is logged in" \
        in caplog.text
