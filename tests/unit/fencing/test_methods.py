"""Fence methods over the fake agent: order, all devices, dual PSU, reboot as off+on,
reconfiguration at execution time, unfencing, config validation from agent metadata."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from clusterd.errors import ConfigError
from clusterd.fencing.agent import AgentRunner
from clusterd.fencing.methods import check_fencing_config, fence_node, unfence_node
from clusterd.fencing.plan import fence_plan, unfence_plan
from fencing_builders import Conf, Dev, Method, Node, Ref


def conf_with(methods, devices, unfence=()) -> Conf:
    return Conf({d.name: d for d in devices}, (Node("node2", 2, tuple(methods), tuple(unfence)),))


def log_of(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    return [(e["name"], e["options"]["action"], e["options"].get("port", ""))
            for e in map(json.loads, path.read_text().splitlines())]


@pytest.fixture
def rig(agent_dir, tmp_path):
    log = tmp_path / "calls"
    runner = AgentRunner(search_dirs=[str(agent_dir)], timeout=10)
    return runner, log


def dev(name, agent="fence_fake", log=None, **params):
    return Dev(name, agent, {"fake_log": str(log), **params})


def fence(conf_provider, runner, events=None):
    async def confirmed(node, method):
        if events is not None:
            events.append(("off-confirmed", node, method))
    return asyncio.run(fence_node("node2", conf_provider, runner, confirmed))


def test_reboot_runs_as_off_then_reports_off_confirmed_then_on(rig):
    runner, log = rig
    events = []
    conf = conf_with([Method("ipmi", (Ref("d1", {"port": "2"}),))], [dev("d1", log=log)])
    out = fence(lambda: conf, runner, events)
    assert out.ok and out.method == "ipmi" and out.devices == ("d1",)
    assert log_of(log) == [("fence_fake", "off", "2"), ("fence_fake", "on", "2")]
    assert events == [("off-confirmed", "node2", "ipmi")]


def test_agent_without_reboot_is_only_turned_off(rig):
    runner, log = rig
    conf = conf_with([Method("scsi", (Ref("d1"),))], [dev("d1", "fence_fake_noreboot", log)])
    assert fence(lambda: conf, runner).ok
    assert [a for _, a, _ in log_of(log)] == ["off"]


def test_agent_with_only_reboot_runs_reboot(rig):
    runner, log = rig
    conf = conf_with([Method("m", (Ref("d1"),))], [dev("d1", "fence_fake_nooff", log)])
    assert fence(lambda: conf, runner).ok
    assert [a for _, a, _ in log_of(log)] == ["reboot"]


def test_failing_method_moves_to_the_next_and_all_failing_fails(rig):
    runner, log = rig
    conf = conf_with([Method("ipmi", (Ref("bad"),)), Method("pdu", (Ref("good", {"port": "7"}),))],
                     [dev("bad", log=log, fake_mode="fail"), dev("good", "fence_fake2", log)])
    out = fence(lambda: conf, runner)
    assert out.ok and out.method == "pdu"
    assert "method ipmi device bad" in out.errors[0]
    conf = conf_with([Method("ipmi", (Ref("bad"),)), Method("pdu", (Ref("bad2"),))],
                     [dev("bad", log=log, fake_mode="fail"), dev("bad2", log=log, fake_mode="rc=9")])
    out = fence(lambda: conf, runner)
    assert not out.ok and len(out.errors) == 2 and "unknown exit code 9" in out.errors[1]


def test_every_device_of_a_method_must_succeed(rig):
    runner, log = rig
    conf = conf_with([Method("both", (Ref("a"), Ref("b")))],
                     [dev("a", log=log), dev("b", log=log, fake_mode="crash")])
    out = fence(lambda: conf, runner)
    assert not out.ok and "signal SIGKILL" in out.error


def test_dual_power_supplies_run_all_offs_then_all_ons(rig):
    runner, log = rig
    refs = (Ref("psu1", {"port": "1", "action": "off"}), Ref("psu2", {"port": "2", "action": "off"}),
            Ref("psu1", {"port": "1", "action": "on"}), Ref("psu2", {"port": "2", "action": "on"}))
    conf = conf_with([Method("power", refs)], [dev("psu1", log=log), dev("psu2", log=log)])
    events = []
    assert fence(lambda: conf, runner, events).ok
    assert log_of(log) == [("fence_fake", "off", "1"), ("fence_fake", "off", "2"),
                           ("fence_fake", "on", "1"), ("fence_fake", "on", "2")]
    assert len(events) == 1


def test_power_on_failure_after_off_still_counts_as_fenced(rig):
    runner, log = rig
    conf = conf_with([Method("ipmi", (Ref("d1"),))], [dev("d1", log=log, fake_fail_actions="on")])
    out = fence(lambda: conf, runner)
    assert out.ok and out.on_errors and "power" not in out.error


def test_reconfigured_device_is_used_at_once_and_the_old_one_never_again(rig):
    runner, log = rig
    old = conf_with([Method("m", (Ref("dev"),))], [dev("dev", "fence_fake", log, fake_mode="fail")])
    new = conf_with([Method("m", (Ref("dev"),))], [dev("dev", "fence_fake2", log)])
    current = {"conf": old}
    assert not fence(lambda: current["conf"], runner).ok
    current["conf"] = new                          # config changes between two attempts
    assert fence(lambda: current["conf"], runner).ok
    names = [n for n, _, _ in log_of(log)]
    assert names == ["fence_fake", "fence_fake2", "fence_fake2"]   # old once, then only new


def test_node_params_win_over_device_params_and_nodename_is_passed(rig):
    _, log = rig
    conf = conf_with([Method("m", (Ref("d", {"port": "node-port", "ip": "198.18.0.9"}),))],
                     [dev("d", log=log, port="dev-port", ip="198.18.0.1", action="reboot")])
    (plan,) = fence_plan(conf, "node2")
    call = plan.calls[0]
    assert call.options["port"] == "node-port" and call.options["ip"] == "198.18.0.9"
    assert call.options["nodename"] == "node2" and "action" not in call.options
    assert "198.18" not in repr(call)


@pytest.mark.parametrize("conf, message", [
    (Conf({}, ()), "node node2 is not in cluster.conf"),
    (conf_with([], []), "node node2 has no fence method"),
    (conf_with([Method("m", (Ref("ghost"),))], []), "fence device 'ghost' is not defined"),
])
def test_plan_errors_name_what_is_wrong(conf, message):
    with pytest.raises(ConfigError, match=message):
        fence_plan(conf, "node2")


def test_a_method_naming_an_unknown_device_fails_the_attempt_clearly(rig):
    runner, _ = rig
    out = fence(lambda: conf_with([Method("m", (Ref("ghost"),))], []), runner)
    assert not out.ok and "fence device 'ghost' is not defined" in out.error


def test_unfence_uses_explicit_action_default_on(rig):
    runner, log = rig
    conf = conf_with([Method("m", (Ref("scsi"),))], [dev("scsi", "fence_fake_noreboot", log)],
                     unfence=(Ref("scsi"), Ref("scsi", {"action": "enable"})))
    assert [c.action for c in unfence_plan(conf, "node2")] == ["on", "enable"]
    out = asyncio.run(unfence_node("node2", conf, runner))
    assert out.ok and [a for _, a, _ in log_of(log)] == ["on", "on"]
    empty = conf_with([Method("m", (Ref("scsi"),))], [dev("scsi", log=log)])
    assert asyncio.run(unfence_node("node2", empty, runner)).devices == ()


def test_config_check_reports_missing_required_params_and_unknown_agents(rig):
    runner, _ = rig
    conf = Conf({"req": Dev("req", "fence_fake_required", {"ip": "198.18.0.1"}),
                 "gone": Dev("gone", "fence_not_installed", {})},
                (Node("node2", 2, (Method("m", (Ref("req"),)),)),
                 Node("node3", 3, (Method("m", (Ref("req", {"port": "3"}),)),))))
    problems = [str(p) for p in asyncio.run(check_fencing_config(conf, ["node2", "node3"], runner))]
    assert any("fence_not_installed is not installed" in p for p in problems)
    assert any("requires parameter plug (or port) for node node2" in p for p in problems)
    assert not any("node node3" in p for p in problems)
