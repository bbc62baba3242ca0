"""Control ops (pure handlers) and the fence_node / fence_ack_manual CLIs against a fake
daemon that applies the handlers to a policy state (no socket)."""

from __future__ import annotations

import io
import json

import pytest
from clusterd.cli import fence_ack_manual, fence_node
from clusterd.errors import ControlError
from clusterd.fencing.ops import (
    handle_fence_ack,
    handle_fence_node,
    handle_fence_status,
)
from clusterd.fencing.policy import recovery_allowed, step
from clusterd.fencing.state import FenceResult, RunFence
from fencing_builders import started, view

WALL0 = 1_764_100_000.0


class FakeDaemon:
    """Applies op handlers to a policy state; executes RunFence with scripted outcomes."""

    def __init__(self, outcomes=(), quorate=True):
        self.run = started()
        if not quorate:
            self.run.at(0.5, view("node1", quorate=False))
        self.now = 1.0
        self.outcomes = list(outcomes)      # per attempt: None = ok, str = error
        self.calls = []

    def _apply(self, result):
        self.run.state = result.state
        for action in result.actions:
            if isinstance(action, RunFence) and self.outcomes:
                error = self.outcomes.pop(0)
                res = step(self.run.state, FenceResult(action.node, action.op_id, error is None,
                                                       error or "", "ipmi"), self.now)
                self.run.state = res.state

    def call(self, op, args=None):
        args = dict(args or {})
        self.calls.append((op, args))
        self.now += 0.5
        if op == "fence.node":
            result, reply = handle_fence_node(self.run.state, args, self.now, WALL0 + self.now,
                                              "uid0")
            self._apply(result)
            return reply
        if op == "fence.ack":
            result, reply = handle_fence_ack(self.run.state, args, self.now, WALL0 + self.now,
                                             "root")
            self._apply(result)
            return reply
        if op == "fence.status":
            return handle_fence_status(self.run.state, args, self.now, WALL0 + self.now)
        raise ControlError("unknown_op", op)


def cli(module, argv, **kw):
    out, err = io.StringIO(), io.StringIO()
    rc = module.main(argv, out=out, err=err, **kw)
    return rc, out.getvalue(), err.getvalue()


def test_status_shows_operations_with_epoch_times_and_states():
    d = FakeDaemon(outcomes=["BMC did not answer"])
    d.call("fence.node", {"node": "node3"})
    doc = d.call("fence.status")
    (entry,) = doc["fencing"]
    assert entry["node"] == "node3" and entry["state"] == "failed" and entry["attempts"] == 1
    assert entry["last_error"] == "BMC did not answer"
    assert entry["since"] == round(WALL0 + 1.5) and entry["next_attempt"] >= entry["since"]
    with pytest.raises(ControlError, match="node 'node9' is not in cluster.conf"):
        d.call("fence.status", {"node": "node9"})


def test_fence_node_success_prints_rhcs_line():
    d = FakeDaemon(outcomes=[None])
    rc, out, _ = cli(fence_node, ["node3", "-v"], client=d, sleep=lambda s: None)
    assert rc == 0 and out.splitlines()[0] == "fence node3 success"
    assert "method: ipmi" in out
    assert d.run.state.ops["node3"].phase.value == "done"


def test_fence_node_failure_prints_failed_and_the_cluster_keeps_trying():
    d = FakeDaemon(outcomes=["method ipmi device bmc3: timed out"])
    rc, out, _ = cli(fence_node, ["node3", "-v"], client=d, sleep=lambda s: None)
    assert rc == 1 and out.splitlines()[0] == "fence node3 failed"
    assert "error: method ipmi device bmc3: timed out" in out
    assert "fence_ack_manual node3" in out
    assert d.run.state.ops["node3"].phase.value == "failed"


def test_fence_node_json_and_timeout_when_no_executor():
    d = FakeDaemon(quorate=False)
    clock = iter([0.0, 0.0, 1.0, 2.0, 3.0, 99.0])
    rc, out, err = cli(fence_node, ["node3", "--timeout", "5", "--format", "json"], client=d,
                       sleep=lambda s: None, clock=lambda: next(clock))
    assert rc == 1 and "not quorate" in err and "no outcome for node3 within 5s" in err
    assert json.loads(out)["state"] == "timeout"


def test_fence_node_unknown_node_and_daemon_down():
    rc, _, err = cli(fence_node, ["node9"], client=FakeDaemon(), sleep=lambda s: None)
    assert rc == 1 and "node 'node9' is not in cluster.conf" in err
    rc, _, err = cli(fence_node, ["node3", "--control-socket", "/nonexistent/clusterd.sock"],
                     sleep=lambda s: None)
    assert rc == 3 and "clusterd is not running" in err
    rc, _, err = cli(fence_node, [])
    assert rc == 2 and "NODE is required" in err


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("argv, answer, expect_rc, acked", [
    (["node3", "-y"], None, 0, True),
    (["node3"], "absolutely\n", 0, True),
    (["node3"], "yes\n", 6, False),          # only "absolutely" confirms, as RHCS
    (["node3"], "", 6, False),
])
def test_fence_ack_manual_asks_unless_yes(argv, answer, expect_rc, acked):
    d = FakeDaemon()
    d.run.at(1.2, view("node1", "node2"))                         # node3 lost
    stdin = Tty(answer or "")
    rc, out, err = cli(fence_ack_manual, argv, client=d, stdin=stdin)
    assert rc == expect_rc, err
    assert "Improper use of this command can cause severe file system" in err
    assert (d.run.state.ops["node3"].phase.value == "acked") is acked
    if acked:
        assert out.startswith("Done: fencing of node3 acknowledged (node3#1)")


def test_fence_ack_manual_refuses_without_terminal_or_pending_fence():
    d = FakeDaemon()
    rc, _, err = cli(fence_ack_manual, ["node3"], client=d, stdin=io.StringIO("absolutely\n"))
    assert rc == 2 and "refusing without a terminal" in err and d.calls == []
    rc, _, err = cli(fence_ack_manual, ["node3", "-y"], client=d)
    assert rc == 1 and "no pending fence operation for node3" in err
    d.call("fence.node", {"node": "node3"})                        # node3 is still a member
    rc, _, err = cli(fence_ack_manual, ["node3", "-y"], client=d)
    assert rc == 1 and "node3 is a member of the current view" in err


def test_ack_unblocks_recovery_of_a_lost_node_through_the_ops():
    d = FakeDaemon(outcomes=["dead BMC"] * 5)
    d.run.at(2.0, view("node1", "node2"))
    d.now = 2.0
    assert not recovery_allowed(d.run.state, "node3")
    rc, _, _ = cli(fence_ack_manual, ["node3", "-y"], client=d)
    assert rc == 0 and recovery_allowed(d.run.state, "node3")


UNFENCE_CONF = """<?xml version="1.0"?>
<cluster name="alpha" config_version="1">
  <clusternodes>
    <clusternode name="node1" nodeid="1"/>
    <clusternode name="node2" nodeid="2">
      <fence><method name="m"><device name="stor" port="2"/></method></fence>
      <unfence><device name="stor" port="2" action="on"/></unfence>
    </clusternode>
  </clusternodes>
  <fencedevices><fencedevice name="stor" agent="{agent}"/></fencedevices>
</cluster>
"""


@pytest.mark.parametrize("agent, expect_rc, expect", [
    ("fence_fake_noreboot", 0, "unfence node2 success"),
    ("fence_fake_nooff", 1, "does not support action on"),
])
def test_fence_node_unfence_runs_the_unfence_devices_locally(agent_dir, tmp_path, agent,
                                                             expect_rc, expect):
    conf = tmp_path / "cluster.conf"
    conf.write_text(UNFENCE_CONF.format(agent=agent))
    rc, out, err = cli(fence_node, ["-U", "node2", "-v", "--config", str(conf),
                                    "--agent-dir", str(agent_dir)])
    assert rc == expect_rc, err
    assert expect in out
    rc, out, _ = cli(fence_node, ["-U", "node1", "--config", str(conf),
                                  "--agent-dir", str(agent_dir)])
    assert rc == 0 and out == "unfence node1 success\n"      # no <unfence>: a no-op
    rc, _, err = cli(fence_node, ["-U", "node7", "--config", str(conf)])
    assert rc == 2 and "'node7' is not in cluster.conf" in err
