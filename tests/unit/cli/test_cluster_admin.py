"""cluster_admin: the JSON admin interface the collection calls.

Runs against the real config model (clusterd.conf); the daemon is a fake control client
with the contract of clusterd.control.client.ControlClient (call(op, args) -> result or
ControlError with a code).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterd.cli import cluster_admin as ca
from clusterd.errors import AgentError, ControlError
from clusterd.fencing.metadata import AgentMetadata, ParameterSpec

BASE = b"""<?xml version="1.0"?>
<cluster name="alpha" config_version="1">
  <clusternodes>
    <clusternode name="node1" nodeid="1"/>
    <clusternode name="node2" nodeid="2"/>
  </clusternodes>
</cluster>
"""
PASSWORD = "s3cr3t-Pw"
NODES = [{"name": "node1", "nodeid": 1}, {"name": "node2", "nodeid": 2}]
IPMILAN = AgentMetadata("fence_ipmilan", (
    ParameterSpec("action"), ParameterSpec("ipaddr"), ParameterSpec("login"),
    ParameterSpec("passwd"), ParameterSpec("port"), ParameterSpec("lanplus", content_type="boolean"),
    ParameterSpec("power_wait", content_type="second", default="2")),
    frozenset({"on", "off", "reboot", "status"}))


class AgentTable:
    """This node's fence agents, from a table (conf.fenceparams.FenceAgents)."""

    def metadata(self, agent: str) -> AgentMetadata:
        if agent != IPMILAN.agent:
            raise AgentError(agent, "metadata", None, reason=f"fence agent {agent} is not "
                                                             "installed")
        return IPMILAN


AGENTS = AgentTable()


@pytest.fixture
def model() -> Any:
    return ca._default_model()


class FakeDaemon:
    """The control client contract: call(op, args) -> result or ControlError."""

    def __init__(self, model: Any, conf: bytes | None = BASE) -> None:
        self.model = model
        self.conf = None if conf is None else model.parse(conf)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: dict[str, ControlError] = {}

    def call(self, op: str, args: dict[str, Any] | None = None) -> Any:
        self.calls.append((op, dict(args or {})))
        if op in self.fail_next:
            raise self.fail_next.pop(op)
        if op == "conf.get":
            return {"config_version": self.conf.version,
                    "conf": self.conf.canonical_bytes().decode()}
        if op == "conf.propose":
            new = self.model.parse(args["conf"].encode())
            if new.version <= self.conf.version:
                raise ControlError("stale_version", "not newer")
            self.conf = new
            return {"config_version": new.version}
        if op == "status":
            return {"cluster": {"name": "alpha", "config_version": self.conf.version}}
        raise ControlError("unknown_op", f"unknown op {op!r}")


def edit(path: str, edit_name: str, args: dict[str, Any], model: Any, check: bool = False,
         **extra: Any) -> dict[str, Any]:
    req = {"v": 1, "op": "edit", "edit": edit_name, "args": args, "check": check,
           "conf_path": path, **extra}
    return ca.handle(req, model=model, environ={}, fence_agents=AGENTS)


@pytest.fixture
def conf_path(tmp_path: Any) -> str:
    path = tmp_path / "cluster.conf"
    path.write_bytes(BASE)
    return str(path)


# --- file mode ---------------------------------------------------------------------


def test_bootstrap_creates_the_file_0640_then_is_idempotent(tmp_path: Any, model: Any) -> None:
    path = str(tmp_path / "cluster.conf")
    first = edit(path, "set_cluster", {"name": "alpha", "nodes": NODES}, model)
    assert first["ok"] and first["changed"] and first["source"] == "file"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    data = Path(path).read_bytes()
    assert model.load(path).name == "alpha"
    assert first["diff"]["before"] == "" and first["diff"]["before_header"] == \
        "cluster.conf (absent)"
    second = edit(path, "set_cluster", {"name": "alpha", "nodes": NODES}, model)
    assert second["ok"] and not second["changed"]
    assert second["config_version"] == first["config_version"]
    assert Path(path).read_bytes() == data
    assert [p for p in os.listdir(tmp_path) if p.startswith(".cluster.conf.")] == []


def test_idempotence_quad_in_file_mode(conf_path: str, model: Any) -> None:
    args = {"name": "alpha", "nodes": NODES, "token": 5000}
    replies = [edit(conf_path, "set_cluster", args, model, check=check)
               for check in (True, False, True, False)]
    assert [r["changed"] for r in replies] == [True, True, False, False]
    assert [r["config_version"] for r in replies] == [2, 2, 2, 2]
    assert model.load(conf_path).token_ms == 5000
    assert replies[0]["diff"]["after_header"] == "cluster.conf (version 2)"
    assert replies[0]["diff"]["before_header"] == "cluster.conf (version 1)"


def test_check_mode_writes_nothing(conf_path: str, model: Any) -> None:
    reply = edit(conf_path, "set_cluster", {"token": 3000}, model, check=True)
    assert reply["changed"] and 'token="3000"' in reply["diff"]["after"]
    assert Path(conf_path).read_bytes() == BASE


def test_edit_without_config_and_without_daemon_is_refused(tmp_path: Any, model: Any) -> None:
    reply = edit(str(tmp_path / "none.conf"), "set_fence_device",
                 {"name": "d", "agent": "fence_ipmilan", "params": {}}, model)
    assert reply["ok"] is False and reply["error"]["code"] == "no_config"
    assert "create the cluster first" in reply["error"]["message"]


def test_invalid_change_names_element_and_reason_and_writes_nothing(conf_path: str,
                                                                    model: Any) -> None:
    bad = [{"name": "node1", "nodeid": 1}, {"name": "node2", "nodeid": 1}]
    reply = edit(conf_path, "set_cluster", {"nodes": bad}, model)
    assert reply["ok"] is False and reply["error"]["code"] == "invalid"
    problem = reply["error"]["problems"][0]
    assert problem["where"] == "/cluster/clusternodes/clusternode[@name='node2']"
    assert "duplicate nodeid 1" in problem["reason"]
    assert Path(conf_path).read_bytes() == BASE


def test_secrets_are_masked_in_the_diff_but_written_to_the_file(conf_path: str,
                                                                 model: Any) -> None:
    args = {"name": "ipmi1", "agent": "fence_ipmilan",
            "params": {"ipaddr": "198.18.1.1", "login": "admin", "passwd": PASSWORD}}
    reply = edit(conf_path, "set_fence_device", args, model)
    assert reply["changed"]
    text = json.dumps(reply)
    assert PASSWORD not in text and f'passwd="{ca.MASK}"' in reply["diff"]["after"]
    assert PASSWORD.encode() in Path(conf_path).read_bytes()


def test_fence_parameters_are_checked_against_the_agent_in_check_mode_too(
        conf_path: str, model: Any) -> None:
    good = {"name": "ipmi1", "agent": "fence_ipmilan",
            "params": {"ipaddr": "198.18.1.1", "lanplus": True, "power_wait": 0}}
    bad = {**good, "params": {"ipaddr": "198.18.1.1", "powr_wait": "0"}}
    for check in (True, False):
        reply = edit(conf_path, "set_fence_device", bad, model, check=check)
        assert reply["ok"] is False and reply["error"]["code"] == "invalid"
        [problem] = reply["error"]["problems"]
        assert problem["where"] == "/cluster/fencedevices/fencedevice[@name='ipmi1']"
        assert problem["reason"].startswith("fence_ipmilan declares no parameter 'powr_wait' "
                                            "(did you mean 'power_wait'?)")
    missing = edit(conf_path, "set_fence_device", {**good, "agent": "fence_nope"}, model)
    assert "fence agent fence_nope is not installed" in missing["error"]["message"]
    assert Path(conf_path).read_bytes() == BASE
    assert edit(conf_path, "set_fence_device", good, model, check=True)["changed"]
    assert edit(conf_path, "set_fence_device", good, model)["changed"]
    assert 'lanplus="1" power_wait="0"' in Path(conf_path).read_text()


def test_daemon_mode_checks_a_nodes_device_parameters_before_proposing(model: Any) -> None:
    daemon = FakeDaemon(model)
    daemon.conf = model.edit.set_fence_device(daemon.conf, "ipmi", "fence_ipmilan",
                                              {"ipaddr": "198.18.1.1"})
    methods = [{"name": "ipmi", "devices": [{"name": "ipmi", "params": {"power_wait": "soon"}}]}]
    for check in (True, False):
        reply = daemon_edit(daemon, "set_node_fence", {"node": "node1", "methods": methods},
                            check=check)
        assert reply["error"]["code"] == "invalid"
        [problem] = reply["error"]["problems"]
        assert problem["where"].endswith("/fence/method[@name='ipmi']/device[@name='ipmi']")
        assert problem["reason"] == (
            "power_wait=\"soon\" is not valid for fence_ipmilan (the agent of fence device "
            "'ipmi'): power_wait takes a whole number of seconds, 0 or more (default 2)")
    assert "conf.propose" not in [op for op, _ in daemon.calls]
    methods[0]["devices"][0]["params"] = {"port": "3", "power_wait": 0}
    assert daemon_edit(daemon, "set_node_fence", {"node": "node1", "methods": methods})["changed"]


def test_export_masks_secrets_unless_asked(conf_path: str, model: Any) -> None:
    edit(conf_path, "set_fence_device", {"name": "ipmi1", "agent": "fence_ipmilan",
                                         "params": {"passwd": PASSWORD}}, model)
    req = {"v": 1, "op": "export", "conf_path": conf_path}
    masked = ca.handle(req, model=model, environ={})
    assert masked["ok"] and masked["source"] == "file" and masked["status"] is None
    assert PASSWORD not in json.dumps(masked)
    assert masked["export"]["fence_devices"][0]["params"]["passwd"] == ca.MASK
    plain = ca.handle({**req, "secrets": True}, model=model, environ={})
    assert plain["export"]["fence_devices"][0]["params"]["passwd"] == PASSWORD


def test_conf_path_from_environment(conf_path: str, model: Any) -> None:
    req = {"v": 1, "op": "edit", "edit": "set_cluster", "args": {"token": 4000}}
    reply = ca.handle(req, model=model, environ={ca.CONF_PATH_ENV: conf_path})
    assert reply["ok"] and reply["changed"] and model.load(conf_path).token_ms == 4000


@pytest.mark.parametrize(("req", "code", "words"), [
    ({"op": "edit"}, "unsupported_version", "request version must be 1"),
    ({"v": 1, "op": "nope"}, "bad_request", "unknown op 'nope'"),
    ({"v": 1, "op": "edit", "edit": "set_everything", "args": {}}, "bad_request",
     "unknown edit 'set_everything'"),
    ({"v": 1, "op": "edit", "edit": "set_cluster", "args": {"colour": "red"}}, "bad_request",
     "colour"),
    ({"v": 1, "op": "edit", "edit": "set_cluster", "args": [], "check": False}, "bad_request",
     "'args' must be an object"),
    ({"v": 1, "op": "status"}, "not_running", "needs the running clusterd"),
    ({"v": 1, "op": "service", "action": "explode", "service": "web"}, "bad_request",
     "action must be one of enable, disable"),
    ({"v": 1, "op": "node", "action": "standby"}, "bad_request", "needs a node name"),
])
def test_refused_requests_have_a_code_and_a_sentence(conf_path: str, model: Any,
                                                     req: dict, code: str, words: str) -> None:
    reply = ca.handle({**req, "conf_path": conf_path}, model=model, environ={})
    assert reply["ok"] is False
    assert reply["error"]["code"] == code
    assert words in reply["error"]["message"]


# --- daemon mode -------------------------------------------------------------------


def daemon_edit(daemon: FakeDaemon, edit_name: str, args: dict, check: bool = False) -> dict:
    req = {"v": 1, "op": "edit", "edit": edit_name, "args": args, "check": check}
    return ca.handle(req, model=daemon.model, client=daemon, environ={}, fence_agents=AGENTS)


def test_daemon_mode_proposes_once_and_never_writes_a_file(model: Any,
                                                            monkeypatch: Any) -> None:
    monkeypatch.setattr(ca, "write_atomic", lambda *a: pytest.fail("wrote a file"))
    daemon = FakeDaemon(model)
    replies = [daemon_edit(daemon, "set_cluster", {"token": 7000}, check=check)
               for check in (True, False, True, False)]
    assert [r["changed"] for r in replies] == [True, True, False, False]
    assert {r["source"] for r in replies} == {"daemon"}
    assert [op for op, _ in daemon.calls].count("conf.propose") == 1
    assert daemon.conf.version == 2 and daemon.conf.token_ms == 7000


def test_stale_proposal_is_redone_on_the_newer_config(model: Any) -> None:
    daemon = FakeDaemon(model)
    # Another node makes the same change between our read and our proposal.
    daemon.fail_next["conf.propose"] = ControlError("stale_version", "config is now 2")
    daemon.conf = model.edit.set_cluster(daemon.conf, token=7000)
    original_call = daemon.call
    reads = []

    def call(op: str, args: dict | None = None) -> Any:
        if op == "conf.get" and not reads:
            reads.append(op)
            return {"conf": BASE.decode()}
        return original_call(op, args)

    daemon.call = call  # type: ignore[method-assign]
    reply = daemon_edit(daemon, "set_cluster", {"token": 7000})
    assert reply["ok"] and reply["changed"] is False and reply["config_version"] == 2


def test_daemon_refusal_is_reported_as_invalid(model: Any) -> None:
    daemon = FakeDaemon(model)
    daemon.fail_next["conf.propose"] = ControlError("invalid_config", "cluster.conf is "
                                                    "invalid: /cluster: no quorum possible")
    reply = daemon_edit(daemon, "set_cluster", {"token": 7000})
    assert reply["error"]["code"] == "invalid"
    assert "no quorum possible" in reply["error"]["message"]


def test_falls_back_to_the_file_when_the_daemon_is_not_running(conf_path: str, model: Any,
                                                               monkeypatch: Any) -> None:
    daemon = FakeDaemon(model)
    daemon.fail_next["conf.get"] = ControlError("not_running", "clusterd is not running")
    monkeypatch.setattr(ca, "DEFAULT_CONF_PATH", conf_path)
    reply = daemon_edit(daemon, "set_cluster", {"token": 4500})
    assert reply["ok"] and reply["source"] == "file"
    assert model.load(conf_path).token_ms == 4500


def test_service_op_not_known_to_the_daemon_is_not_supported(model: Any) -> None:
    daemon = FakeDaemon(model)
    req = {"v": 1, "op": "service", "action": "relocate", "service": "web", "member": "node2"}
    reply = ca.handle(req, model=model, client=daemon, environ={})
    assert reply["error"]["code"] == "not_supported"
    assert reply["error"]["message"] == "clusterd on this node does not support " \
                                        "'svc.relocate' yet"
    assert daemon.calls[-1] == ("svc.relocate", {"service": "web", "member": "node2"})


def test_enable_per_domain_rules_reaches_the_daemon(model: Any) -> None:
    """clusvcadm -e -F through the modules (redhat.cluster.service_state follow_domain)."""
    daemon = FakeDaemon(model)
    req = {"v": 1, "op": "service", "action": "enable", "service": "web", "follow_domain": True}
    ca.handle(req, model=model, client=daemon, environ={})
    assert daemon.calls[-1] == ("svc.enable", {"service": "web", "follow_domain": True})


@pytest.mark.parametrize("extra", [{"follow_domain": "yes"}, {"member": "node2"},
                                   {"action": "relocate"}])
def test_follow_domain_goes_with_enable_alone(model: Any, extra: dict) -> None:
    req = {"v": 1, "op": "service", "action": "enable", "service": "web",
           "follow_domain": True, **extra}
    reply = ca.handle(req, model=model, client=FakeDaemon(model), environ={})
    assert reply["error"]["code"] == "bad_request"
    assert reply["error"]["message"] == ("op 'service': 'follow_domain' is true or absent, and "
                                         "goes with action enable without a member")


def test_status_and_export_through_the_daemon(model: Any) -> None:
    daemon = FakeDaemon(model)
    status = ca.handle({"v": 1, "op": "status"}, model=model, client=daemon, environ={})
    assert status["status"]["cluster"]["name"] == "alpha"
    export = ca.handle({"v": 1, "op": "export"}, model=model, client=daemon, environ={})
    assert export["source"] == "daemon" and export["status"]["cluster"]["config_version"] == 1
    assert export["export"]["cluster"]["name"] == "alpha"


# --- main: stdin/stdout and exit codes ------------------------------------------------


def run_main(data: str) -> tuple[int, dict]:
    out = io.StringIO()
    rc = ca.main([], stdin=io.StringIO(data), stdout=out)
    return rc, json.loads(out.getvalue())


@pytest.mark.parametrize("data", ["not json", "[1, 2]", ""])
def test_unparseable_input_exits_2_with_a_json_error(data: str) -> None:
    rc, reply = run_main(data)
    assert rc == 2 and reply["ok"] is False and reply["error"]["code"] == "bad_request"


def test_refused_request_exits_0(conf_path: str, monkeypatch: Any) -> None:
    monkeypatch.setenv(ca.CONF_PATH_ENV, conf_path)
    rc, reply = run_main(json.dumps({"v": 1, "op": "status"}))
    assert rc == 0 and reply["error"]["code"] == "not_running"


# --- through the real control socket (ControlServer + core ops, fake node behind) -----


class SocketNode:
    """The NodeControl side of clusterd.node.ops: a running config that proposals replace."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.conf = model.parse(BASE)
        self.proposals = 0

    def status_document(self) -> dict[str, Any]:
        return {"cluster": {"name": self.conf.name, "config_version": self.conf.version}}

    def running_conf(self) -> Any:
        return self.conf

    async def propose(self, data: bytes, origin: str) -> dict[str, Any]:
        new = self.model.parse(data)
        if new.version <= self.conf.version:
            raise ControlError("stale_version", f"version {new.version} is not newer")
        self.proposals += 1
        self.conf = new
        return {"config_version": new.version}

    async def reload(self) -> dict[str, Any]:
        return {}

    def request_leave(self, reason: str) -> None:
        pass


@contextlib.contextmanager
def control_socket(node: SocketNode) -> Iterator[str]:
    from clusterd.control.server import ControlServer
    from clusterd.node.ops import build_registry

    sockdir = tempfile.mkdtemp(prefix="rhc-admin-")
    path = os.path.join(sockdir, "clusterd.sock")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ControlServer(build_registry(node), path)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield path
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        shutil.rmtree(sockdir, ignore_errors=True)


def test_edits_through_the_real_control_socket(model: Any) -> None:
    from clusterd.control.client import ControlClient

    node = SocketNode(model)
    with control_socket(node) as path:
        client = ControlClient(path, timeout=10)
        replies = [ca.handle({"v": 1, "op": "edit", "edit": "set_cluster",
                              "args": {"token": 6000}, "check": check},
                             model=model, client=client, environ={})
                   for check in (True, False, True, False)]
        service = ca.handle({"v": 1, "op": "service", "action": "enable", "service": "web"},
                            model=model, client=client, environ={})
        status = ca.handle({"v": 1, "op": "status"}, model=model, client=client, environ={})
    assert [r["changed"] for r in replies] == [True, True, False, False]
    assert {r["source"] for r in replies} == {"daemon"}
    assert node.proposals == 1 and node.conf.token_ms == 6000 and node.conf.version == 2
    assert service["error"]["code"] == "not_supported"
    assert status["status"]["cluster"]["config_version"] == 2


@pytest.mark.parametrize(("args", "words"), [
    ({"name": "a", "nodes": NODES, "colour": "red"}, "unexpected keyword argument 'colour'"),
    ({"name": "a"}, "missing a required argument: 'nodes'"),
])
def test_bootstrap_arguments_are_checked(tmp_path: Any, model: Any, args: dict,
                                         words: str) -> None:
    reply = edit(str(tmp_path / "new.conf"), "set_cluster", args, model)
    assert reply["error"]["code"] == "bad_request" and words in reply["error"]["message"]
    assert not (tmp_path / "new.conf").exists()


def test_control_client_waits_longer_than_the_service_timeout() -> None:
    assert ca._default_client({"timeout": 120}).timeout == 150.0
    assert ca._default_client({"timeout": True}).timeout == 30.0
    assert ca._default_client({}).timeout == 30.0


def test_concurrent_local_edits_are_serialized(conf_path: str, model: Any) -> None:
    """Several cluster_admin processes at once on one file: every edit lands, each bumps
    the version once (the directory lock makes read-edit-write atomic)."""
    import subprocess
    import sys

    count = 6
    procs = [subprocess.Popen([sys.executable, "-m", "clusterd.cli.cluster_admin"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, ca.CONF_PATH_ENV: conf_path})
             for _ in range(count)]
    for i, proc in enumerate(procs):
        proc.stdin.write(json.dumps({"v": 1, "op": "edit", "edit": "set_fence_device",
                                     "args": {"name": f"dev{i}", "agent": "fence_ipmilan",
                                              "params": {"ipaddr": f"198.18.1.{i + 1}"}}}))
        proc.stdin.close()
    replies = [json.loads(proc.stdout.read()) for proc in procs]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    assert all(r["ok"] and r["changed"] for r in replies), replies
    final = model.load(conf_path)
    assert sorted(final.fencedevices) == [f"dev{i}" for i in range(count)]
    assert final.version == 1 + count
    assert sorted(r["config_version"] for r in replies) == list(range(2, 2 + count))


def test_root_edits_keep_the_secrets_through_the_masking_socket(model: Any) -> None:
    """conf.get masks secrets; cluster_admin, which the collection runs as root, asks for
    them in clear, so an edit writes the real password back and never the mask."""
    from clusterd.control.client import ControlClient

    node = SocketNode(model)
    node.conf = model.edit.set_fence_device(node.conf, "ipmi", "fence_ipmilan", {
        "ipaddr": "198.18.1.1", "login": "admin", "passwd": PASSWORD})
    with control_socket(node) as path:
        client = ControlClient(path, timeout=10)
        reply = ca.handle({"v": 1, "op": "edit", "edit": "set_cluster",
                           "args": {"token": 6000}}, model=model, client=client, environ={})
        masked = client.call("conf.get", {"text": True})
    assert reply["ok"] and reply["changed"] and node.conf.token_ms == 6000
    assert node.conf.fencedevices["ipmi"].params["passwd"] == PASSWORD
    assert PASSWORD not in masked["conf"] and f'passwd="{ca.MASK}"' in masked["conf"]
    assert PASSWORD not in json.dumps(reply)


def test_an_edit_accepted_with_rgmanagers_warning_returns_the_warning(conf_path: str,
                                                                      model: Any) -> None:
    """Issue 12: a global ip referenced by a second service validates as rgmanager accepted
    it (the extra reference left out of the tree, with a warning): the reply names it, so
    the modules show it; the first service's tree is untouched."""
    ip = {"address": "198.18.0.50/24"}
    assert edit(conf_path, "set_resource", {"type": "ip", "attrs": ip}, model)["ok"]
    ref = [{"type": "ip", "ref": "198.18.0.50/24"}]
    first = edit(conf_path, "set_service", {"name": "web", "resources": ref}, model)
    assert first["ok"] and first["tree_warnings"] == []
    second = edit(conf_path, "set_service", {"name": "db", "resources": ref}, model)
    assert second["ok"] and second["changed"]
    assert len(second["tree_warnings"]) == 1
    assert "service[@name='db']" in second["tree_warnings"][0]


def test_file_mode_on_a_node_that_ran_says_the_file_is_a_pending_proposal(
        conf_path: str, model: Any, tmp_path: Any) -> None:
    """Issue 12 item 5: with an accepted copy in the state dir (the node ran in a cluster),
    a file written while clusterd is stopped is only a pending proposal: the reply says
    so (version, the accepted one, where clusterd will keep it, how to propose it)."""
    state = tmp_path / "state"
    state.mkdir()
    accepted = model.load(conf_path)
    (state / "cluster.conf.accepted").write_bytes(accepted.canonical_bytes())

    def run(check: bool) -> dict[str, Any]:
        req = {"v": 1, "op": "edit", "edit": "set_cluster", "check": check,
               "args": {"name": accepted.name, "token": 4321}, "conf_path": conf_path}
        return ca.handle(req, model=model, environ={"CLUSTERD_STATE_DIR": str(state)},
                         fence_agents=AGENTS)

    dry = run(True)
    assert dry["ok"] and dry["changed"] and "would hold" in dry["pending"]["message"]
    reply = run(False)
    pending = reply["pending"]
    version = reply["config_version"]
    assert pending["version"] == version > accepted.version == pending["accepted_version"]
    assert pending["path"] == f"{conf_path}.pending-{version}"
    assert f"clusterd conf propose {conf_path}.pending-{version}" in pending["message"]
    assert "now holds" in pending["message"]
    assert edit(conf_path, "set_cluster", {"name": accepted.name}, model)["pending"] is None


def test_file_mode_on_a_first_start_is_not_pending(conf_path: str, model: Any,
                                                   tmp_path: Any) -> None:
    req = {"v": 1, "op": "edit", "edit": "set_cluster", "check": False,
           "args": {"name": model.load(conf_path).name, "token": 4321}, "conf_path": conf_path}
    reply = ca.handle(req, model=model, environ={"CLUSTERD_STATE_DIR": str(tmp_path / "none")},
                      fence_agents=AGENTS)
    assert reply["ok"] and reply["changed"] and reply["pending"] is None
