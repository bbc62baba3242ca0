"""Masking never hides a name (conf/secrets.py): a fence device named like its password is
shown by its name in every path and message, while the password itself (the value of a
secret-named parameter) never shows."""

from __future__ import annotations

import pytest
from clusterd.conf import fence_agent_problems, parse, validate_bytes
from clusterd.conf.parse import parse_xml
from clusterd.conf.secrets import MASK, masked_copy, redact, redact_all, secret_values
from clusterd.errors import AgentError, ConfigError
from clusterd.fencing.metadata import AgentMetadata, ParameterSpec

APC = AgentMetadata("fence_apc", (
    ParameterSpec("action"), ParameterSpec("ipaddr"), ParameterSpec("login"),
    ParameterSpec("passwd", content_type="integer"), ParameterSpec("port")),
    frozenset({"on", "off", "reboot", "status"}))


class Agents:
    def metadata(self, agent: str) -> AgentMetadata:
        if agent != "fence_apc":
            raise AgentError(agent, "metadata", None, reason=f"{agent} is not installed")
        return APC


def conf(devices: str, node_fence: str = "") -> bytes:
    return (f'<cluster name="c" config_version="1"><clusternodes>'
            f'<clusternode name="n1" nodeid="1">{node_fence}</clusternode>'
            f'<clusternode name="n2" nodeid="2"/></clusternodes>'
            f"<fencedevices>{devices}</fencedevices></cluster>").encode()


DEVICE = '<fencedevice name="apc" agent="fence_apc" ipaddr="10.0.0.9" login="apc" passwd="apc"/>'


def test_a_device_named_like_its_password_keeps_its_name_in_paths_and_messages() -> None:
    data = conf(DEVICE + DEVICE)            # a duplicate name: a problem about "apc"
    text = " ".join(str(p) for p in validate_bytes(data))
    assert "/cluster/fencedevices/fencedevice[@name='apc'][2]" in text
    assert "duplicate fence device name 'apc': rename one" in text
    assert MASK not in text


def test_the_password_itself_never_shows_even_when_it_is_also_a_name() -> None:
    data = conf(DEVICE, '<fence><method name="m"><device name="apc" port="1"/></method></fence>')
    problems = fence_agent_problems(parse(data), Agents())
    reasons = [p.reason for p in problems]
    assert [p.where for p in problems] == ["/cluster/fencedevices/fencedevice[@name='apc']"]
    assert reasons == [(f'passwd="{MASK}" is not valid for fence_apc: passwd takes a whole '
                       "number")]
    with pytest.raises(ConfigError) as exc:
        parse(data, fence_agents=Agents())
    assert 'passwd="apc"' not in str(exc.value)
    assert "fencedevice[@name='apc']" in str(exc.value)


def test_exports_mask_the_secret_attribute_and_keep_the_name() -> None:
    masked = masked_copy(parse_xml(conf(DEVICE)))
    device = masked.find("fencedevices/fencedevice")
    assert (device.get("name"), device.get("login"), device.get("passwd")) == (
        "apc", "apc", MASK)


def test_a_secret_used_nowhere_else_is_masked_wherever_it_appears() -> None:
    root = parse_xml(conf(DEVICE.replace('passwd="apc"', 'passwd="hunter2-x"')))
    secrets = secret_values(root)
    assert set(secrets) == {"hunter2-x"}
    assert redact("agent printed hunter2-x back", secrets) == f"agent printed {MASK} back"
    assert redact_all(["a hunter2-x b", "fencedevice[@name='apc']"], secrets) == [
        f"a {MASK} b", "fencedevice[@name='apc']"]


@pytest.mark.parametrize("passwd", ["apc", "1", "n1", "10"])
def test_a_secret_shown_as_a_name_or_a_word_of_a_value_is_masked_only_where_assigned(
        passwd: str) -> None:
    # "1" is a nodeid, "n1" a node name, "10" a word of the device's ipaddr
    root = parse_xml(conf(DEVICE.replace('passwd="apc"', f'passwd="{passwd}"')))
    secrets = secret_values(root)
    assert set(secrets) == set() and secrets        # still true: assignments get masked
    line = f"node n1 nodeid 1 at 10.0.0.9 fenced by apc; passwd=\"{passwd}\""
    assert redact_all([line], secrets) == [
        f"node n1 nodeid 1 at 10.0.0.9 fenced by apc; passwd=\"{MASK}\""]


def test_a_tree_without_secrets_needs_no_redaction() -> None:
    secrets = secret_values(parse_xml(conf('<fencedevice name="m" agent="fence_apc"/>')))
    assert not secrets and set(secrets) == set()
