"""ccs_config_validate: RHCS-style output and exit status, called as main(argv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clusterd.cli import ccs_config_validate
from clusterd.errors import AgentError
from clusterd.fencing.metadata import AgentMetadata, ParameterSpec

REFERENCE = Path("/work/shared/reference")
GOOD = REFERENCE / "clufter-tests" / "test1.conf"
BAD = REFERENCE / "pcs-test-cluster.conf"
FENCED = """<cluster name="c" config_version="1"><clusternodes><clusternode name="a" nodeid="1">
<fence><method name="m"><device name="d" port="1" power_wait="{ref}"/></method></fence>
</clusternode></clusternodes><fencedevices><fencedevice name="d" agent="fence_ipmilan"
 ipaddr="x" {params}/></fencedevices></cluster>"""


TABLE = {"fence_pcmk": AgentMetadata("fence_pcmk", (ParameterSpec("port"),),
                                     frozenset({"off", "reboot"})),
         "fence_ipmilan": AgentMetadata("fence_ipmilan", (
             ParameterSpec("ipaddr"), ParameterSpec("passwd"), ParameterSpec("port"),
             ParameterSpec("power_wait", content_type="second", default="2")),
             frozenset({"on", "off", "reboot", "status"}))}


class Agents:
    """This machine's fence agents, from TABLE; ``asked`` records the calls."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def metadata(self, agent: str) -> AgentMetadata:
        self.asked.append(agent)
        if agent not in TABLE:
            raise AgentError(agent, "metadata", None, reason=f"{agent} is not installed")
        return TABLE[agent]


def main(argv: list[str], agents: Agents | None = None) -> int:
    return ccs_config_validate.main(argv, fence_agents=agents or Agents())


def test_valid_file(capsys):
    assert main(["-f", str(GOOD)]) == 0
    out, err = capsys.readouterr()
    assert out == "Configuration validates\n"
    assert err == (f"{GOOD}: warning: accepted but not used by clusterd: "  # still valid
                   "/cluster/rm/service[@name='nfs1']/@nfslock (clusterd does no NFS lock "
                   "reclaim: serve NFS with <ocf agent=\"heartbeat:nfsserver\">, which "
                   "notifies the clients)\n")


def test_invalid_file_lists_each_problem_then_fails(capsys):
    assert main(["-f", str(BAD)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if ": warning: " not in line]  # cman@broadcast
    assert lines[-1] == "Configuration fails to validate"
    assert lines[0].startswith(f"{BAD}: /cluster/cman: attribute 'transport' is not allowed")
    assert len(lines) == 2


def test_quiet_prints_nothing(capsys):
    assert main(["-q", "-f", str(BAD)]) == 1
    assert main(["-q", "-f", str(GOOD)]) == 0
    assert capsys.readouterr() == ("", "")


def test_unreadable_file_is_exit_2(tmp_path, capsys):
    assert main(["-f", str(tmp_path / "missing.conf")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_usage_error_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == 2


def test_json_format(capsys):
    assert main(["-f", str(BAD), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and doc["problems"][0]["where"] == "/cluster/cman"


def test_secrets_never_printed(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_text('<cluster name="c" config_version="1"><clusternodes><clusternode name="a" '
                    'nodeid="1"/></clusternodes><fencedevices><fencedevice name="d" '
                    'agent="fence_ipmilan" ipaddr="x" passwd="Sup3r-Secret" bogus="Sup3r-Secret"/>'
                    "</fencedevices></cluster>")
    assert main(["-f", str(conf)]) == 1
    out, err = capsys.readouterr()
    assert "Sup3r-Secret" not in out + err


def test_fence_parameters_are_checked_against_the_agent(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_text(FENCED.format(ref="0", params='power_wait="0" passwd="Sup3r-Secret"'))
    assert main(["-f", str(conf)]) == 0
    conf.write_text(FENCED.format(ref="soon", params='powr_wait="0" passwd="Sup3r-Secret"'))
    capsys.readouterr()
    assert main(["-f", str(conf)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (f"{conf}: /cluster/clusternodes/clusternode[@name='a']/fence/"
                        "method[@name='m']/device[@name='d']: power_wait=\"soon\" is not valid "
                        "for fence_ipmilan (the agent of fence device 'd'): power_wait takes "
                        "a whole number of seconds, 0 or more (default 2)")
    assert lines[1].startswith(f"{conf}: /cluster/fencedevices/fencedevice[@name='d']: "
                               "fence_ipmilan declares no parameter 'powr_wait' (did you mean "
                               "'power_wait'?): the agent would ignore it; remove or rename "
                               "it. The agent's parameters are: ipaddr, passwd, port, "
                               "power_wait")
    assert len(lines) == 3 and "Sup3r-Secret" not in "".join(lines)


def test_skip_fence_agents_runs_no_agent(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_text(FENCED.format(ref="0", params='powr_wait="0" agent_only_here="1"'))
    agents = Agents()
    assert main(["--skip-fence-agents", "-f", str(conf)], agents) == 0
    assert agents.asked == []
    assert main(["-q", "-f", str(conf)], agents) == 1 and agents.asked == ["fence_ipmilan"]


def test_malformed_xml_names_line(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_text('<cluster name="c" config_version="1">\n<clusternodes>\n</cluster>\n')
    assert main(["-f", str(conf)]) == 1
    assert ": line 3, column " in capsys.readouterr().err


SYSTEMD_CONF = """<?xml version="1.0"?>
<cluster name="alpha" config_version="1">
  <clusternodes><clusternode name="node1" nodeid="1"/></clusternodes>
  <rm><service name="web"><systemd name="web_nginx" unit="nginx.service"/></service></rm>
</cluster>
"""


def test_print_schema_lets_xmllint_check_extension_resources(tmp_path, capsys):
    assert main(["--print-schema"]) == 0
    schema = tmp_path / "cluster.rng"
    schema.write_text(capsys.readouterr().out)
    conf = tmp_path / "cluster.conf"
    conf.write_text(SYSTEMD_CONF)
    import subprocess

    def xmllint(rng: Path) -> int:
        return subprocess.run(["xmllint", "--noout", "--relaxng", str(rng), str(conf)],
                              check=False, capture_output=True).returncode

    assert xmllint(schema) == 0  # the printed schema knows systemd
    assert xmllint(REFERENCE / "cluster.rng") != 0  # RHCS's own schema does not
    assert main(["-q", "-f", str(conf)]) == 0
