"""The modules' code path (module run() -> JSON -> clusterd's cluster_admin -> the config
model -> the daemon's acceptance rules) refuses with clusterd's sentence, in check mode
and for real: renaming a running cluster, and a NUL in any argument (secrets included,
never shown). No patching: the module's runner answers with cluster_admin.handle()."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from clusterd.cli import cluster_admin as ca
from clusterd.conf.refusals import literal_address
from clusterd.errors import ControlError
from clusterd.node.proposal import check_proposal

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections"


@pytest.fixture(scope="module")
def coll() -> Any:
    """The collection's admin client and modules, imported from this tree."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(COLLECTIONS))
        base = "ansible_collections.redhat.cluster.plugins."
        admin = importlib.import_module(base + "module_utils._clusterd.admin")
        yield SimpleNamespace(
            AdminClient=admin.AdminClient, AdminError=admin.AdminError,
            cluster_conf=importlib.import_module(base + "modules.cluster_conf"),
            fence_device=importlib.import_module(base + "modules.fence_device"))


BASE = b"""<cluster name="alpha" config_version="3"><clusternodes>
<clusternode name="node1" nodeid="1"/><clusternode name="node2" nodeid="2"/>
</clusternodes></cluster>"""
NODES = [{"name": "node1", "nodeid": 1, "votes": None},
         {"name": "node2", "nodeid": 2, "votes": None}]


class Daemon:
    """A running clusterd as cluster_admin sees it: conf.get, and conf.propose judged by
    the daemon's own check_proposal."""

    def __init__(self) -> None:
        self.model = ca._default_model()
        self.conf = self.model.parse(BASE)
        self.proposed = 0

    def call(self, op: str, args: dict[str, Any] | None = None) -> Any:
        if op == "conf.get":
            return {"config_version": self.conf.version,
                    "conf": self.conf.canonical_bytes().decode()}
        if op == "conf.propose":
            self.proposed += 1
            self.conf = check_proposal(self.conf, args["conf"].encode(), local_name="node1",
                                       parse=self.model.parse).conf
            return {"config_version": self.conf.version}
        raise ControlError("unknown_op", op)


def client_for(coll: Any, daemon: Daemon) -> Any:
    def runner(argv: list[str], data: str) -> tuple[int, str, str]:
        reply = ca.handle(json.loads(data), model=daemon.model, client=daemon, environ={},
                          resolve=literal_address)
        return 0, json.dumps(reply), ""
    return coll.AdminClient(runner, "cluster_admin")


def cluster_params(**over: Any) -> dict[str, Any]:
    params = {"name": "alpha", "nodes": NODES, "two_node": None, "expected_votes": None,
              "token": None, "post_join_delay": None, "post_fail_delay": None,
              "clean_start": None, "state": "present"}
    params.update(over)
    return params


@pytest.mark.parametrize("check", [True, False])
def test_cluster_conf_refuses_to_rename_a_running_cluster(coll: Any, check: bool) -> None:
    daemon = Daemon()
    with pytest.raises(coll.AdminError) as exc:
        coll.cluster_conf.run(client_for(coll, daemon), cluster_params(name="beta"), check_mode=check)
    assert exc.value.code == "invalid"
    message = str(exc.value)
    assert message.startswith('cluster_admin: /cluster/@name: the running cluster "alpha" '
                              'cannot be renamed to "beta"')
    assert "tear the cluster down and bootstrap a new one named \"beta\"" in message
    assert daemon.proposed == 0 and daemon.conf.name == "alpha"


def test_cluster_conf_with_the_running_name_still_works(coll: Any) -> None:
    daemon = Daemon()
    result = coll.cluster_conf.run(client_for(coll, daemon), cluster_params(token=5000), check_mode=False)
    assert result["changed"] and daemon.conf.token_ms == 5000 and daemon.proposed == 1


@pytest.mark.parametrize("check", [True, False])
def test_a_nul_in_a_secret_is_refused_clearly_and_never_shown(coll: Any, check: bool) -> None:
    daemon = Daemon()
    params = {"name": "apc", "agent": "fence_apc", "params": {"ipaddr": "198.18.0.9"},
              "secret_params": {"passwd": "hun\x00ter2"}, "state": "present", "node": None,
              "methods": None, "unfence": None, "verify": False}
    with pytest.raises(coll.AdminError) as exc:
        coll.fence_device.run(client_for(coll, daemon), params, check_mode=check)
    assert exc.value.code == "invalid"
    assert exc.value.problems == [{
        "where": "args.params.passwd",
        "reason": "(value not shown: a secret) holds U+0000 (NUL): cluster.conf (XML 1.0) "
                  "cannot hold it; remove it"}]
    assert "hun" not in str(exc.value) and daemon.proposed == 0


def test_a_control_character_in_a_node_name_is_refused_clearly(coll: Any) -> None:
    daemon = Daemon()
    nodes = [*NODES, {"name": "node\x1b[31m3", "nodeid": 3, "votes": None}]
    with pytest.raises(coll.AdminError) as exc:
        coll.cluster_conf.run(client_for(coll, daemon), cluster_params(nodes=nodes), check_mode=True)
    assert exc.value.problems == [{
        "where": "args.nodes[2].name",
        "reason": '"node\\x1b[31m3" holds U+001B (ESCAPE): cluster.conf (XML 1.0) cannot '
                  "hold it; remove it"}]
