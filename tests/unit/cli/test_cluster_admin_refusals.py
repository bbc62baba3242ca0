"""cluster_admin refusals: a NUL or control character anywhere in a request is a clear
JSON refusal (exit 0, ok false, naming the field), never a traceback; renaming a running
cluster is refused in check mode and for real before anything is proposed; node names that
resolve to one address are refused (resolved as the daemon resolves them)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from clusterd.cli import cluster_admin as ca
from clusterd.conf.refusals import literal_address
from clusterd.errors import ControlError

BASE = b"""<?xml version="1.0"?>
<cluster name="alpha" config_version="1">
  <clusternodes>
    <clusternode name="node1" nodeid="1"/>
    <clusternode name="node2" nodeid="2"/>
  </clusternodes>
</cluster>
"""
NODES = [{"name": "node1", "nodeid": 1}, {"name": "node2", "nodeid": 2}]


class Daemon:
    """conf.get / conf.propose with the daemon's own acceptance rules (check_proposal)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.conf = model.parse(BASE)
        self.proposed: list[str] = []

    def call(self, op: str, args: dict[str, Any] | None = None) -> Any:
        from clusterd.node.proposal import check_proposal
        if op == "conf.get":
            return {"config_version": self.conf.version,
                    "conf": self.conf.canonical_bytes().decode()}
        if op == "conf.propose":
            self.proposed.append(args["conf"])
            verdict = check_proposal(self.conf, args["conf"].encode(), local_name="node1",
                                     parse=self.model.parse)
            self.conf = verdict.conf
            return {"config_version": self.conf.version}
        raise ControlError("unknown_op", op)


@pytest.fixture
def model() -> Any:
    return ca._default_model()


def run_cli(request: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    rc = ca.main([], stdin=io.StringIO(request), stdout=out)
    return rc, json.loads(out.getvalue())


@pytest.mark.parametrize(("args", "where", "shown"), [
    ({"name": "al\u0000pha", "nodes": NODES}, "args.name", '"al\\x00pha" holds U+0000 (NUL)'),
    ({"name": "alpha", "nodes": [{"name": "node\u00851"}]}, "args.nodes[0].name",
     '"node\\x851" holds U+0085 (a control character): a name cannot hold control'),
])
def test_a_nul_or_control_character_in_the_arguments_is_a_clear_refusal(
        tmp_path, args, where, shown) -> None:
    path = tmp_path / "cluster.conf"
    request = json.dumps({"v": 1, "op": "edit", "edit": "set_cluster", "args": args,
                          "conf_path": str(path)})
    rc, reply = run_cli(request)
    assert rc == ca.EXIT_OK and reply["ok"] is False
    assert reply["error"]["code"] == ca.E_INVALID
    [problem] = reply["error"]["problems"]
    assert problem["where"] == where and problem["reason"].startswith(shown)
    assert reply["error"]["message"].startswith(f"request is invalid: {where}: {shown}")
    assert not path.exists()


def test_a_secret_with_a_nul_is_refused_without_showing_it(tmp_path) -> None:
    path = tmp_path / "cluster.conf"
    path.write_bytes(BASE)
    request = json.dumps({"v": 1, "op": "edit", "edit": "set_fence_device", "conf_path":
                          str(path), "args": {"name": "apc", "agent": "fence_apc",
                                              "params": {"passwd": "hunter\u00002"}}})
    rc, reply = run_cli(request)
    assert rc == 0 and reply["error"]["problems"] == [{
        "where": "args.params.passwd",
        "reason": "(value not shown: a secret) holds U+0000 (NUL): cluster.conf (XML 1.0) "
                  "cannot hold it; remove it"}]
    assert "hunter" not in json.dumps(reply)
    assert path.read_bytes() == BASE


def test_a_nul_in_a_path_or_a_service_name_is_refused_too(tmp_path) -> None:
    rc, reply = run_cli(json.dumps({"v": 1, "op": "export",
                                    "conf_path": f"{tmp_path}/clu\u0000ster.conf"}))
    assert rc == 0 and reply["error"]["problems"][0]["where"] == "conf_path"
    rc, reply = run_cli(json.dumps({"v": 1, "op": "service", "action": "enable",
                                    "service": "w\u0000eb"}))
    assert rc == 0 and reply["error"]["problems"][0]["where"] == "service"


@pytest.mark.parametrize("check", [True, False])
def test_renaming_a_running_cluster_is_refused_before_proposing(model, check) -> None:
    daemon = Daemon(model)
    reply = ca.handle({"v": 1, "op": "edit", "edit": "set_cluster", "check": check,
                       "args": {"name": "beta"}}, model=model, client=daemon, environ={},
                      resolve=literal_address)
    assert reply["ok"] is False and reply["error"]["code"] == ca.E_INVALID
    assert reply["error"]["message"] == (
        'cluster_admin: /cluster/@name: the running cluster "alpha" cannot be renamed to '
        '"beta": its cluster id (in every heartbeat) and every node\'s membership derive from '
        'the name, so the nodes would stop recognising each other; keep name="alpha", or stop '
        "clusterd on every node, tear the cluster down and bootstrap a new one named "
        '"beta" (a cluster is named only at bootstrap)')
    assert daemon.proposed == [] and daemon.conf.name == "alpha"


def test_the_daemon_refuses_a_rename_with_the_same_sentence(model) -> None:
    daemon = Daemon(model)
    renamed = BASE.replace(b'name="alpha" config_version="1"', b'name="beta" config_version="2"')
    with pytest.raises(ControlError) as exc:
        daemon.call("conf.propose", {"conf": renamed.decode()})
    assert exc.value.message.startswith('proposed cluster.conf: /cluster/@name: the running '
                                        'cluster "alpha" cannot be renamed to "beta"')


def test_a_bootstrap_file_may_still_be_renamed(tmp_path, model) -> None:
    path = tmp_path / "cluster.conf"
    path.write_bytes(BASE)
    reply = ca.handle({"v": 1, "op": "edit", "edit": "set_cluster", "args": {"name": "beta"},
                       "conf_path": str(path)}, model=model, environ={},
                      resolve=literal_address)
    assert reply["ok"] and model.load(str(path)).name == "beta"


@pytest.mark.parametrize("check", [True, False])
def test_nodes_resolving_to_one_address_are_refused(tmp_path, model, check) -> None:
    path = tmp_path / "cluster.conf"
    path.write_bytes(BASE)
    same = {"node1": "198.51.100.1", "node2": "198.51.100.2", "node3": "198.51.100.1"}.get
    nodes = [*NODES, {"name": "node3", "nodeid": 3}]
    reply = ca.handle({"v": 1, "op": "edit", "edit": "set_cluster", "check": check,
                       "args": {"nodes": nodes}, "conf_path": str(path)},
                      model=model, environ={}, resolve=same)
    assert reply["ok"] is False and reply["error"]["code"] == ca.E_INVALID
    assert reply["error"]["message"].startswith(
        f"{path}: /cluster/clusternodes/clusternode[@name='node3']: node \"node3\" resolves to "
        "198.51.100.1, the address of node \"node1\"")
    assert path.read_bytes() == BASE


def test_edits_that_keep_the_nodes_do_not_resolve_them(tmp_path, model) -> None:
    path = tmp_path / "cluster.conf"
    path.write_bytes(BASE)

    def resolve(name: str) -> str | None:
        raise AssertionError(f"resolved {name}")

    reply = ca.handle({"v": 1, "op": "edit", "edit": "set_cluster", "args": {"token": 5000},
                       "conf_path": str(path)}, model=model, environ={}, resolve=resolve)
    assert reply["ok"] and reply["changed"]
