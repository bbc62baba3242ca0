"""fence.verify: every node's fence path asked with status (or monitor), nothing powered,
no secret in the reply; the control op and fence_node --verify."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from clusterd.cli import fence_node as cli
from clusterd.errors import ControlError
from clusterd.fencing import ops
from clusterd.fencing.agent import AgentRunner
from clusterd.fencing.state import FencingState
from clusterd.fencing.verify import verify_nodes
from fencing_builders import Conf, Dev, Method, Node, Ref, cfg

SECRET = "s3cr3t-Pa55"


def conf_for(tmp_path, off_state: bool = False) -> Conf:
    state = tmp_path / "node2.power"
    if off_state:
        state.write_text("off")
    devices = {
        "good": Dev("good", "fence_fake", {"passwd": SECRET, "fake_echo_password": "1"}),
        "state": Dev("state", "fence_fake", {"fake_state_file": str(state)}),
        "dead": Dev("dead", "fence_fake", {"fake_mode": "fail", "passwd": SECRET,
                                           "fake_echo_password": "1"}),
        "mon": Dev("mon", "fence_fake_nostatus", {}),
    }
    nodes = (
        Node("node1", 1, (Method("ipmi", (Ref("good", {"port": "1"}),)),)),
        Node("node2", 2, (Method("ipmi", (Ref("dead", {"port": "2"}),)),
                          Method("pdu", (Ref("state", {"port": "2"}),
                                         Ref("mon", {"port": "2"}))))),
        Node("node3", 3, (Method("ipmi", (Ref("dead", {"port": "3"}),)),)),
        Node("node4", 4),
    )
    return Conf(devices, nodes)


@pytest.fixture
def runner(agent_dir):
    return AgentRunner(search_dirs=[str(agent_dir)], timeout=10)


def test_each_node_reports_a_working_method_or_why_none_works(tmp_path, runner):
    conf = conf_for(tmp_path, off_state=True)
    results = asyncio.run(verify_nodes(conf, ["node1", "node2", "node3", "node4"], runner))
    by = {r["node"]: r for r in results}
    assert by["node1"]["ok"] and by["node1"]["method"] == "ipmi"
    assert by["node1"]["methods"][0]["devices"][0]["power"] == "on"
    # node2: first method fails, the second works (status says off: still an answer;
    # the nostatus agent is asked with monitor)
    assert by["node2"]["ok"] and by["node2"]["method"] == "pdu"
    pdu = by["node2"]["methods"][1]["devices"]
    assert [(d["device"], d["action"], d["ok"]) for d in pdu] == [
        ("state", "status", True), ("mon", "monitor", True)]
    assert pdu[0]["power"] == "off"
    assert not by["node3"]["ok"] and "method ipmi: fence_fake status" in by["node3"]["error"]
    assert not by["node4"]["ok"] and "has no fence method" in by["node4"]["error"]
    assert SECRET not in json.dumps(results)
    assert list(by) == ["node1", "node2", "node3", "node4"]


def test_an_agent_not_installed_is_named(runner):
    broken = Conf({"x": Dev("x", "fence_not_here", {})},
                  (Node("node1", 1, (Method("m", (Ref("x"),)),)),))
    result = asyncio.run(verify_nodes(broken, ["node1"], runner))[0]
    assert not result["ok"] and "fence_not_here is not installed" in result["error"]


def test_verify_targets_default_to_every_node_and_refuse_unknown_names():
    state = FencingState.initial("node1", cfg())
    assert ops.verify_targets(state, {}) == ["node1", "node2", "node3"]
    assert ops.verify_targets(state, {"node": "node2"}) == ["node2"]
    assert ops.verify_targets(state, {"nodes": ["node3", "node3"]}) == ["node3"]
    with pytest.raises(ControlError) as info:
        ops.verify_targets(state, {"nodes": ["node9", "node1"]})
    assert info.value.code == "unknown_node" and "node9" in info.value.message
    reply = ops.verify_reply([{"node": "node1", "ok": True}, {"node": "node2", "ok": False}])
    assert reply["unfenceable"] == ["node2"]


class FakeClient:
    def __init__(self, reply):
        self.reply = reply
        self.calls = []

    def call(self, op, args):
        self.calls.append((op, args))
        return self.reply


REPLY = {"nodes": [
    {"node": "node1", "ok": True, "method": "ipmi", "methods": [
        {"name": "ipmi", "ok": True, "devices": [
            {"device": "ipmi_node1", "agent": "fence_ipmilan", "action": "status",
             "ok": True, "power": "on"}]}]},
    {"node": "node2", "ok": False, "method": "", "error": "method ipmi: fence_ipmilan "
     "status: timed out after 30s", "methods": []}],
    "unfenceable": ["node2"]}


def test_fence_node_verify_prints_each_node_and_exits_1_when_one_is_unfenceable():
    out, err = io.StringIO(), io.StringIO()
    client = FakeClient(REPLY)
    rc = cli.main(["--verify"], client=client, out=out, err=err)
    assert rc == 1 and client.calls == [("fence.verify", {})]
    text = out.getvalue()
    assert "node1 ok: method ipmi (ipmi_node1 power on)" in text
    assert "node2 UNFENCEABLE: method ipmi: fence_ipmilan status: timed out" in text
    out = io.StringIO()
    rc = cli.main(["--verify", "node1", "--format", "json"], client=FakeClient(
        {"nodes": REPLY["nodes"][:1], "unfenceable": []}), out=out, err=err)
    assert rc == 0 and json.loads(out.getvalue())["unfenceable"] == []
