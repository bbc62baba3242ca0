"""Fence agents' metadata for validation: fake agents (small scripts in a root-owned
directory) that print metadata, fail, print garbage or hang; the caches in memory and on
disk; and the daemon's asynchronous read-ahead."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from clusterd.conf import validate_bytes
from clusterd.errors import AgentError
from clusterd.fencing.agent import AgentRunner
from clusterd.fencing.catalog import MetadataCatalog, prefetch

METADATA = """<?xml version="1.0" ?>
<resource-agent name="fence_meta" shortdesc="test agent">
<parameters>
  <parameter name="action" unique="0" required="1"><content type="string" default="reboot"/></parameter>
  <parameter name="ip" unique="0" required="0" obsoletes="ipaddr"><content type="string"/></parameter>
  <parameter name="ipaddr" unique="0" required="0" deprecated="1"><content type="string"/></parameter>
  <parameter name="lanplus" unique="0" required="0"><content type="boolean" default="0"/></parameter>
  <parameter name="ipport" unique="0" required="0"><content type="integer" default="623"/></parameter>
  <parameter name="power_wait" unique="0" required="0"><content type="second" default="2"/></parameter>
  <parameter name="method" unique="0" required="0"><content type="select" default="onoff">
    <option value="onoff"/><option value="cycle"/></content></parameter>
  <parameter name="plug" unique="0" required="0" obsoletes="port"><content type="string"/></parameter>
  <parameter name="port" unique="0" required="0" deprecated="1"><content type="string"/></parameter>
</parameters>
<actions><action name="on"/><action name="off"/><action name="reboot"/><action name="status"/>
<action name="metadata"/></actions>
</resource-agent>
"""


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    """A directory the runner trusts (root-owned 0755)."""
    if os.geteuid() != 0:
        pytest.skip("agent path checks need root-owned files (run the tests as root)")
    for parent in [tmp_path, *tmp_path.parents]:
        if parent.stat().st_uid != 0:
            pytest.skip(f"{parent} is not root-owned; the runner would refuse it")
    directory = tmp_path / "agents"
    directory.mkdir(mode=0o755)
    return directory


def write_agent(directory: Path, name: str, body: str) -> Path:
    """An agent that logs each run to ``<name>.runs`` and then runs ``body`` (sh)."""
    log = directory.parent / f"{name}.runs"
    path = directory / name
    path.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n{body}\n")
    os.chown(path, 0, 0)
    path.chmod(0o755)
    return path


def metadata_agent(directory: Path, name: str = "fence_meta") -> Path:
    return write_agent(directory, name, f"cat <<'EOF'\n{METADATA}EOF")


def runs(directory: Path, name: str = "fence_meta") -> int:
    log = directory.parent / f"{name}.runs"
    return len(log.read_text().splitlines()) if log.exists() else 0


def catalog(directory: Path, cache_file: str | None = None, timeout: float = 5.0
            ) -> MetadataCatalog:
    return MetadataCatalog(AgentRunner(search_dirs=[str(directory)]), cache_file=cache_file,
                           timeout=timeout)


def conf(dev: str, ref: str = "") -> bytes:
    return (f'<cluster name="c" config_version="1"><clusternodes><clusternode name="n1" '
            f'nodeid="1"><fence><method name="m"><device name="d" {ref}/></method></fence>'
            f'</clusternode></clusternodes><fencedevices><fencedevice name="d" '
            f'agent="fence_meta" {dev}/></fencedevices></cluster>').encode()


def reasons(data: bytes, source) -> list[str]:
    return [p.reason for p in validate_bytes(data, fence_agents=source)]


def test_declared_parameters_and_typed_values_are_accepted(agents):
    metadata_agent(agents)
    data = conf('ip="a" lanplus="on" ipport="6230" power_wait="0" method="CYCLE"',
                'port="node1" action="off" nodename="n1"')
    assert reasons(data, catalog(agents)) == []


def test_unknown_parameters_and_bad_values_are_refused_with_the_agent_named(agents):
    metadata_agent(agents)
    found = reasons(conf('ip="a" powr_wait="0" lanplus="2" ipport="x" power_wait="-1" '
                         'method="off"', 'plug="1" lanplus="yes please"'), catalog(agents))
    assert found == [
        ("lanplus=\"yes please\" is not valid for fence_meta (the agent of fence device 'd'): "
         "lanplus takes a boolean: 1 or 0 (also yes/no, on/off, true/false); the agent "
         "ignores any other value"),
        "ipport=\"x\" is not valid for fence_meta: ipport takes a whole number (default 623)",
        ("lanplus=\"2\" is not valid for fence_meta: lanplus takes a boolean: 1 or 0 (also "
         "yes/no, on/off, true/false); the agent ignores any other value"),
        ("method=\"off\" is not valid for fence_meta: method takes one of: onoff, cycle "
         "(default onoff)"),
        ("power_wait=\"-1\" is not valid for fence_meta: power_wait takes a whole number of "
         "seconds, 0 or more (default 2)"),
        ("fence_meta declares no parameter 'powr_wait' (did you mean 'power_wait'?): the "
         "agent would ignore it; remove or rename it. The agent's parameters are: action, "
         "ip, ipport, lanplus, method, plug, power_wait"),
    ]


@pytest.mark.parametrize("body, message", [
    ("echo 'Failed: no ipmitool' >&2; exit 1",
     "`fence_meta -o metadata` exited with rc=1: Failed: no ipmitool"),
    ("echo '<resource-agent name=\"fence_meta\">'", "metadata is not valid XML"),
    ("echo '<html>not metadata</html>'", "metadata root is <html>"),
])
def test_an_agent_that_does_not_answer_metadata_is_refused(agents, body, message):
    write_agent(agents, "fence_meta", body)
    [reason] = reasons(conf('ip="a"'), catalog(agents))
    assert reason.startswith("the parameters of fence device 'd' cannot be checked: ")
    assert message in reason
    assert reason.endswith("install a working fence_meta on this node (every node that may "
                           "fence needs it) or fix agent=")


def test_a_missing_agent_is_refused_naming_it(agents):
    [reason] = reasons(conf('ip="a"'), catalog(agents))
    assert reason.startswith("the parameters of fence device 'd' cannot be checked: fence "
                             f"agent fence_meta is not installed (looked in {agents})")


def test_a_hanging_agent_is_cut_off_after_the_timeout_with_its_process_group(agents, tmp_path):
    pidfile = tmp_path / "child.pid"
    write_agent(agents, "fence_meta", f"sleep 60 & echo $! > {pidfile}; wait")
    started = time.monotonic()
    [reason] = reasons(conf('ip="a"'), catalog(agents, timeout=1.0))
    assert time.monotonic() - started < 4.0
    assert "`fence_meta -o metadata` did not answer within 1s (its process group was " \
           "killed)" in reason
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}"):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}"), "the agent's child survived the timeout"


def test_metadata_is_read_once_per_version_of_the_agent_file(agents):
    path = metadata_agent(agents)
    source = catalog(agents)
    for _ in range(3):
        assert reasons(conf('ip="a"', 'port="1"'), source) == []
    assert runs(agents) == 1
    path.write_text(path.read_text() + "# upgraded\n")   # a new version: read again
    assert reasons(conf('ip="a"'), source) == []
    assert runs(agents) == 2


def test_the_cache_file_saves_the_next_process_a_run(agents, tmp_path):
    metadata_agent(agents)
    cache = str(tmp_path / "fence-metadata.json")
    assert catalog(agents, cache).metadata("fence_meta").parameter("power_wait")
    assert os.stat(cache).st_mode & 0o777 == 0o644
    assert catalog(agents, cache).metadata("fence_meta").agent == "fence_meta"
    assert runs(agents) == 1
    doc = json.loads(Path(cache).read_text())
    assert list(doc["agents"]) == [str(agents / "fence_meta")]


def test_a_cache_file_others_can_write_or_that_lies_is_not_used(agents, tmp_path):
    metadata_agent(agents)
    cache = tmp_path / "fence-metadata.json"
    catalog(agents, str(cache)).metadata("fence_meta")
    cache.chmod(0o666)
    catalog(agents, str(cache)).metadata("fence_meta")
    assert runs(agents) == 2
    cache.chmod(0o644)
    doc = json.loads(cache.read_text())
    entry = doc["agents"][str(agents / "fence_meta")]
    entry["metadata"]["parameters"] = "nonsense"
    cache.write_text(json.dumps(doc))
    assert catalog(agents, str(cache)).metadata("fence_meta").parameter("ipport")
    assert runs(agents) == 3


def test_no_cache_file_is_created_where_its_directory_does_not_exist(agents, tmp_path):
    metadata_agent(agents)
    catalog(agents, str(tmp_path / "absent" / "fence-metadata.json")).metadata("fence_meta")
    assert not (tmp_path / "absent").exists()


def test_prefetch_reads_each_agent_once_without_blocking_and_keeps_failures(agents):
    metadata_agent(agents)
    write_agent(agents, "fence_slow", "sleep 60")
    runner = AgentRunner(search_dirs=[str(agents)])

    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        found = await prefetch(["fence_meta", "fence_meta", "fence_slow", "fence_gone"],
                               runner, timeout=1.0)
        task.cancel()
        return found, ticks

    found, ticks = asyncio.run(scenario())
    assert ticks >= 10                     # the loop kept running while the agents ran
    assert found.metadata("fence_meta").parameter("method").choices == ("onoff", "cycle")
    with pytest.raises(AgentError, match="did not answer within 1s"):
        found.metadata("fence_slow")
    with pytest.raises(AgentError, match="fence_gone is not installed"):
        found.metadata("fence_gone")
    assert runs(agents) == 1
    assert MetadataCatalog(runner, cache_file=None).metadata("fence_meta")  # runner's cache
    assert runs(agents) == 1
