"""Fence device parameters against the agents' own metadata (conf/fenceparams.py), with a
metadata source built from data: what is accepted, what is refused and how it is worded."""

from __future__ import annotations

import pytest
from clusterd.conf import fence_agent_problems, parse, rng, validate_bytes
from clusterd.errors import AgentError, ConfigError
from clusterd.fencing.metadata import AgentMetadata, ParameterSpec
from lxml import etree

IPMI = AgentMetadata(
    agent="fence_ipmi",
    parameters=(
        ParameterSpec("action", required=True, default="reboot"),
        ParameterSpec("ip", obsoletes="ipaddr"), ParameterSpec("ipaddr", deprecated=True),
        ParameterSpec("passwd", deprecated=True), ParameterSpec("password", obsoletes="passwd"),
        ParameterSpec("port", deprecated=True), ParameterSpec("plug", obsoletes="port"),
        ParameterSpec("lanplus", content_type="boolean", default="0"),
        ParameterSpec("ipport", content_type="integer", default="623"),
        ParameterSpec("power_wait", content_type="second", default="2"),
        ParameterSpec("privlvl", content_type="select", default="administrator",
                      choices=("callback", "user", "operator", "administrator")),
    ),
    actions=frozenset({"on", "off", "reboot", "status", "metadata"}))
SCSI = AgentMetadata(agent="fence_storage", actions=frozenset({"off", "on", "metadata"}),
                     parameters=(ParameterSpec("devices"), ParameterSpec("key")))
DEV = "/cluster/fencedevices/fencedevice[@name='{}']"
REF = "/cluster/clusternodes/clusternode[@name='n1']/fence/method[@name='m']/device[@name='{}']"
SECRET = "hunter2-x"


class Agents:
    """A metadata source from a table; unknown agents are "not installed"; counts asks."""

    def __init__(self, **table: AgentMetadata | str) -> None:
        self.table = table
        self.asked: list[str] = []

    def metadata(self, agent: str) -> AgentMetadata:
        self.asked.append(agent)
        found = self.table.get(agent, f"fence agent {agent} is not installed")
        if isinstance(found, str):
            raise AgentError(agent, "metadata", None, reason=found)
        return found


AGENTS = Agents(fence_ipmi=IPMI, fence_storage=SCSI)


def conf(devices: str, ref: str = 'name="bmc"') -> bytes:
    return (f'<cluster name="c" config_version="1"><clusternodes><clusternode name="n1" '
            f'nodeid="1"><fence><method name="m"><device {ref}/></method></fence>'
            f'</clusternode></clusternodes><fencedevices>{devices}</fencedevices>'
            f'</cluster>').encode()


def bmc(params: str = "") -> str:
    return f'<fencedevice name="bmc" agent="fence_ipmi" {params}/>'


def found(data: bytes, agents=AGENTS) -> list[tuple[str, str]]:
    return [(p.where, p.reason) for p in validate_bytes(data, fence_agents=agents)]


@pytest.mark.parametrize("device, ref", [
    ('ip="a" power_wait="0" lanplus="1" ipport="623" privlvl="OPERATOR" action="off"',
     'name="bmc" port="3"'),
    ('ipaddr="a" passwd="x" lanplus="TRUE" power-wait="12"', 'name="bmc" plug="3" nodename="n1"'),
    ('ip="a" passwd_script="/usr/local/sbin/bmc-pw"', 'name="bmc" power_wait="0" lanplus="no"'),
])
def test_what_the_agent_declares_is_accepted(device, ref):
    assert found(conf(bmc(device), ref)) == []


CASES = {
    "a name the agent does not declare, with a close match": (
        bmc('ip="a" powr_wait="0"'),
        [(DEV.format("bmc"), ("fence_ipmi declares no parameter 'powr_wait' (did you mean "
                              "'power_wait'?): the agent would ignore it; remove or rename it. "
                              "The agent's parameters are: action, ip, ipport, lanplus, "
                              "password, plug, power_wait, privlvl"))]),
    "a boolean": (
        bmc('lanplus="maybe"'),
        [(DEV.format("bmc"), ("lanplus=\"maybe\" is not valid for fence_ipmi: lanplus takes a "
                              "boolean: 1 or 0 (also yes/no, on/off, true/false); the agent "
                              "ignores any other value"))]),
    "an integer": (
        bmc('ipport="six"'),
        [(DEV.format("bmc"), ("ipport=\"six\" is not valid for fence_ipmi: ipport takes a whole "
                              "number (default 623)"))]),
    "seconds, fractional": (
        bmc('power_wait="0.5"'),
        [(DEV.format("bmc"), ("power_wait=\"0.5\" is not valid for fence_ipmi: power_wait takes "
                              "a whole number of seconds, 0 or more (default 2)"))]),
    "a select": (
        bmc('privlvl="admin"'),
        [(DEV.format("bmc"), ("privlvl=\"admin\" is not valid for fence_ipmi: privlvl takes one "
                              "of: callback, user, operator, administrator (default "
                              "administrator)"))]),
    "a node's device, judged by the agent of the device it names": (
        bmc('ip="a"'), [(REF.format("bmc"), ("fence_ipmi (the agent of fence device 'bmc') "
                                             "declares no parameter 'prot' (did you mean "
                                             "'port'?): the agent would ignore it; remove or "
                                             "rename it. The agent's parameters are: action, "
                                             "ip, ipport, lanplus, password, plug, power_wait, "
                                             "privlvl"))]),
}


@pytest.mark.parametrize("name", CASES)
def test_what_the_agent_does_not_take_is_refused_naming_agent_and_parameter(name):
    devices, expected = CASES[name]
    ref = 'name="bmc" prot="3"' if "node's device" in name else 'name="bmc"'
    assert found(conf(devices, ref)) == expected


def test_an_action_the_agent_lacks_is_refused():
    storage = '<fencedevice name="disk" agent="fence_storage" devices="/dev/sdb"/>'
    assert found(conf(storage, 'name="disk" action="reboot"')) == []   # reboot = off only
    nothing = Agents(fence_storage=AgentMetadata("fence_storage", SCSI.parameters,
                                                 frozenset({"status", "metadata"})))
    assert found(conf(storage, 'name="disk" action="on"'), nothing) == [
        (REF.format("disk"), ("action=\"on\" cannot be used with fence_storage (the agent of "
                              "fence device 'disk'): the agent does not support action on (per "
                              "its metadata); fix or remove it"))]


def test_an_agent_that_cannot_be_asked_is_reported_once_per_device_and_asked_once():
    agents = Agents(fence_ipmi=IPMI)
    data = conf('<fencedevice name="a" agent="fence_gone" x="1"/>'
                '<fencedevice name="bmc" agent="fence_gone" y="2"/>', 'name="bmc" z="3"')
    assert found(data, agents) == [
        (DEV.format(name), (f"the parameters of fence device '{name}' cannot be checked: fence "
                            "agent fence_gone is not installed; install a working fence_gone on "
                            "this node (every node that may fence needs it) or fix agent="))
        for name in ("a", "bmc")]
    assert agents.asked == ["fence_gone"]


def test_without_agents_any_parameter_passes_the_schema():
    data = conf(bmc('ip="a" power_wait="0" method="onoff" whatever="1"'),
                'name="bmc" port="3" ipport="6230"')
    assert validate_bytes(data) == ()
    schema = etree.RelaxNG(etree.fromstring(rng.schema_text().encode()))
    assert schema.validate(etree.fromstring(data))


def test_agent_on_a_nodes_device_is_refused_with_or_without_agents():
    data = conf(bmc('ip="a"'), 'name="bmc" agent="fence_ipmi"')
    expected = [(REF.format("bmc"), ("agent=\"fence_ipmi\" does not belong on a node's "
                                     "<device>: the agent is set on <fencedevice name=\"bmc\">; "
                                     "remove it here"))]
    assert found(data) == expected
    assert [(p.where, p.reason) for p in validate_bytes(data)] == expected


def test_a_built_config_is_checked_the_same_and_secrets_stay_out():
    data = conf(bmc(f'ip="a" passwd="{SECRET}" ipport="many" bogus="1"'))
    config = parse(data)                               # no agents: the model accepts it
    problems = fence_agent_problems(config, AGENTS)
    assert [p.where for p in problems] == [DEV.format("bmc")] * 2
    with pytest.raises(ConfigError) as exc:
        parse(data, fence_agents=AGENTS)
    assert exc.value.problems == problems
    assert SECRET not in repr(problems) and SECRET not in str(exc.value)
