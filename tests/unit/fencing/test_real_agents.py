"""The real fence-agents on this host (fence_ipmilan, fence_apc) and a real cluster.conf."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path

import pytest
import yaml
from clusterd.conf import validate_bytes
from clusterd.fencing.agent import AgentRunner, PowerState
from clusterd.fencing.catalog import MetadataCatalog
from clusterd.fencing.metadata import fence_steps
from clusterd.fencing.methods import check_fencing_config
from clusterd.fencing.plan import fence_plan, unfence_plan
from clusterd.fencing.state import PolicyConfig

IPMILAN = "/usr/sbin/fence_ipmilan"
CONF = Path(__file__).with_name("data") / "two_methods.conf"
SECRET = "Wr0ng-BMC-pass!"
ROLE_TASKS = Path(__file__).resolve().parents[3] / "roles/cluster_node/tasks/config_edit.yml"
# What the role's templated parameters become for a typical inventory.
ROLE_SAMPLES = {"ipaddr": "198.18.0.11", "login": "admin", "ipport": "623", "cipher": "3",
                "passwd": SECRET}

needs_agents = pytest.mark.skipif(not os.path.exists(IPMILAN),
                                  reason="fence-agents is not installed on this host")


def unused_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_agents
def test_fence_ipmilan_metadata_parses_with_capabilities():
    meta = asyncio.run(AgentRunner().metadata("fence_ipmilan"))
    assert {"on", "off", "reboot", "status", "monitor"} <= meta.actions
    assert {"ip", "ipaddr", "username", "password", "lanplus", "ipport"} <= meta.parameter_names
    assert meta.missing_required({}) == ()            # only `action`, which clusterd supplies
    assert fence_steps(meta, None) == ("off", True)   # reboot = off (confirmed) + on


def ipmilan_conf(params: dict[str, str]) -> bytes:
    attrs = " ".join(f'{k}="{v}"' for k, v in params.items())
    return (f'<cluster name="c" config_version="1"><clusternodes><clusternode name="n1" '
            f'nodeid="1"><fence><method name="ipmi"><device name="bmc"/></method></fence>'
            f'</clusternode></clusternodes><fencedevices><fencedevice name="bmc" '
            f'agent="fence_ipmilan" {attrs}/></fencedevices></cluster>').encode()


@needs_agents
def test_fence_ipmilan_metadata_takes_power_wait_0_and_refuses_a_misspelt_one():
    agents = MetadataCatalog(cache_file=None)
    fast = {"ip": "198.18.0.11", "power_wait": "0", "method": "onoff", "ipport": "623",
            "lanplus": "1", "privlvl": "operator", "power_timeout": "20", "cipher": "3"}
    assert validate_bytes(ipmilan_conf(fast), fence_agents=agents) == ()
    [fraction, typo] = validate_bytes(ipmilan_conf({"powr_wait": "0", "power_wait": "0.5"}),
                                      fence_agents=agents)
    assert fraction.reason == ("power_wait=\"0.5\" is not valid for fence_ipmilan: power_wait "
                               "takes a whole number of seconds, 0 or more (default 2)")
    assert typo.reason.startswith("fence_ipmilan declares no parameter 'powr_wait' (did you "
                                  "mean 'power_wait'?): the agent would ignore it")
    assert "power_wait, privlvl" in typo.reason


@needs_agents
def test_the_roles_fence_device_is_what_fence_ipmilan_declares():
    tasks = yaml.safe_load(ROLE_TASKS.read_text())
    [device] = [t["redhat.cluster.fence_device"] for t in tasks
                if t.get("redhat.cluster.fence_device", {}).get("agent") == "fence_ipmilan"]
    params = {k: ROLE_SAMPLES[k] if "{{" in str(v) else str(v)
              for k, v in {**device["params"], **device["secret_params"]}.items()}
    assert params["power_wait"] == "0"          # no blind sleep; the BMC confirms off
    assert validate_bytes(ipmilan_conf(params),
                          fence_agents=MetadataCatalog(cache_file=None)) == ()


@needs_agents
def test_fence_apc_required_parameters_are_computed_with_aliases():
    meta = asyncio.run(AgentRunner().metadata("fence_apc"))
    assert sorted(meta.missing_required({})) == ["ip (or ipaddr)", "plug (or port)",
                                                 "username (or login)"]
    assert meta.missing_required({"ipaddr": "x", "port": "1", "login": "apc"}) == ()


@needs_agents
def test_fence_ipmilan_against_a_silent_address_fails_cleanly_without_the_password():
    options = {"ip": "127.0.0.1", "ipport": str(unused_udp_port()), "username": "admin",
               "password": SECRET, "lanplus": "1", "ipmitool_timeout": "1",
               "login_timeout": "2", "power_timeout": "2", "verbose": "1"}
    runner = AgentRunner(timeout=30)
    state, detail = asyncio.run(runner.status("fence_ipmilan", options))
    assert state is PowerState.UNKNOWN
    assert "the agent reported failure (rc=1)" in detail
    result = asyncio.run(runner.run("fence_ipmilan", "status", options))
    text = result.stdout + result.stderr + detail
    assert "Connection timed out" in text
    assert SECRET not in text and base64.b64encode(SECRET.encode()).decode() not in text


@needs_agents
def test_plans_from_a_real_cluster_conf():
    from clusterd.conf import load
    conf = load(str(CONF))
    power, ipmi = fence_plan(conf, "node2")
    assert [(c.device, c.options["port"], c.action) for c in power.calls] == [
        ("psu", "2a", "off"), ("psu", "2b", "off"), ("psu", "2a", "on"), ("psu", "2b", "on")]
    assert ipmi.calls[0].agent == "fence_ipmilan" and ipmi.calls[0].options["passwd"] == "pw2"
    assert [(c.device, c.action) for c in unfence_plan(conf, "node2")] == [("psu", "on")]
    pc = PolicyConfig.from_conf(conf)
    assert (pc.post_fail_delay, pc.post_join_delay, pc.clean_start, pc.two_node) == \
        (2.0, 10.0, False, False)
    assert dict(pc.nodeids) == {"node1": 1, "node2": 2}


@needs_agents
def test_real_cluster_conf_validation_against_agent_metadata():
    from clusterd.conf import parse
    conf = parse(CONF.read_bytes())
    runner = AgentRunner()
    assert asyncio.run(check_fencing_config(conf, ["node1", "node2"], runner)) == []
    broken = parse(CONF.read_bytes().replace(b'<device name="bmc1" port="1"/>',
                                             b'<device name="psu"/>'))
    problems = [str(p) for p in asyncio.run(check_fencing_config(broken, ["node1", "node2"],
                                                                 runner))]
    assert problems == [("/cluster/fencedevices/fencedevice[@name='psu']: fence_apc requires "
                         "parameter plug (or port) for node node1; set it on the fencedevice "
                         "or the node's device")]
