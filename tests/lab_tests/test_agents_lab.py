"""Resource agents on real lab nodes: the real resource-agents package (ocf:heartbeat:nginx,
IPaddr2), the built-in ``ip`` agent with the node's own pyroute2, and a floating address
reached from the lab's client namespace, including after it moves to another node.

The agent package is copied into each node under /opt/rhc-agents-test (the daemon's
install role will do this for real); everything a test starts is stopped in a finally.
Addresses used: the top two of the lab's floating range; nginx runs from its own config
on port 8099 so the node's system nginx is never touched.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterlab.disk import DEVICE

pytestmark = pytest.mark.lab

SRC = Path(__file__).resolve().parents[2] / "daemon" / "src" / "clusterd"
REMOTE = "/opt/rhc-agents-test"
# the agents and what they import: metadata.py takes its parameter and action types from
# resources/rules.py (one agent meta-data model), which needs lxml (python3-lxml is in
# the node image)
FILES = ["__init__.py", "atomicfile.py", "errors.py", "trust.py", "truth.py",
         "resources/rules.py",
         *(f"resources/agents/{p.name}"
           for p in sorted((SRC / "resources" / "agents").glob("*.py")))]
DRIVER = """
import asyncio, json, sys
from clusterd.resources.agents import build_agent
rtype, attrs, steps = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
async def main():
    agent = build_agent(rtype, attrs)
    out = []
    for step in steps:
        if step == "meta_data":
            loaded = await agent.meta_data()
            meta = loaded.meta
            out.append({"step": step, "rc": loaded.result.rc.name,
                        "required": [p.name for p in meta.params if p.required] if meta else None,
                        "monitor": [[a.depth, a.interval] for a in meta.status_actions()]
                        if meta else None})
        else:
            result = await getattr(agent, step)()
            out.append({"step": step, "rc": result.rc.name, "message": result.message})
    if hasattr(agent, "close"):
        await agent.close()
    print(json.dumps(out))
asyncio.run(main())
"""
NGINX_CONF = """pid /run/rhc-agents-test-nginx.pid;
error_log /var/log/nginx/error.log;
events {}
http {
    access_log off;
    server { listen 8099; location / { return 200 "agents-test $hostname\\n"; } }
}
"""


@pytest.fixture(scope="module")
def agents_lab(lab):
    for node in lab.nodes:
        for rel in FILES:
            target = f"{REMOTE}/clusterd/{rel}"
            lab.exec(node.name, ["sh", "-c", f"mkdir -p {Path(target).parent} && cat > {target}"],
                     input=(SRC / rel).read_text())
        lab.exec(node.name, ["sh", "-c", f"cat > {REMOTE}/driver.py"], input=DRIVER)
        lab.exec(node.name, ["sh", "-c", f"cat > {REMOTE}/nginx.conf"], input=NGINX_CONF)
    return lab


def run_agent(lab, node: str, rtype: str, attrs: dict[str, str], *steps: str) -> list[dict]:
    done = lab.exec(node, ["env", f"PYTHONPATH={REMOTE}", "python3", f"{REMOTE}/driver.py",
                           rtype, json.dumps(attrs), *steps], timeout=120)
    return json.loads(done.stdout)


def rcs(results: list[dict]) -> list[str]:
    return [r["rc"] for r in results]


def floating(lab, offset: int) -> str:
    return str(ipaddress.ip_address(lab.spec.floating_range[1]) - offset)


def client(lab, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", lab.spec.client_netns, *argv],
                          capture_output=True, text=True, timeout=30, check=False)


def reachable(lab, address: str) -> bool:
    return client(lab, "ping", "-c", "1", "-W", "1", address).returncode == 0


def neighbour_mac(lab, address: str) -> str:
    out = client(lab, "ip", "neigh", "show", address).stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else ""


@pytest.fixture
def cleanup(agents_lab) -> Iterator[list[tuple[str, str, dict[str, str]]]]:
    started: list[tuple[str, str, dict[str, str]]] = []
    yield started
    for node, rtype, attrs in reversed(started):
        run_agent(agents_lab, node, rtype, attrs, "stop")


def test_real_nginx_agent_lifecycle_and_metadata(agents_lab, cleanup):
    attrs = {"name": "web", "agent": "heartbeat:nginx", "configfile": f"{REMOTE}/nginx.conf",
             "port": "8099"}
    cleanup.append(("node1", "ocf", attrs))
    results = run_agent(agents_lab, "node1", "ocf", attrs, "meta_data", "status", "stop",
                        "start", "status", "stop", "stop", "status")
    assert results[0]["rc"] == "OK" and results[0]["monitor"]
    assert rcs(results[1:]) == ["NOT_RUNNING", "OK", "OK", "OK", "OK", "OK", "NOT_RUNNING"]


def test_real_nginx_killed_is_not_running_or_failed_never_ok(agents_lab, cleanup):
    attrs = {"name": "web", "agent": "heartbeat:nginx", "configfile": f"{REMOTE}/nginx.conf",
             "port": "8099"}
    cleanup.append(("node1", "ocf", attrs))
    assert rcs(run_agent(agents_lab, "node1", "ocf", attrs, "start")) == ["OK"]
    agents_lab.exec("node1", ["sh", "-c", "kill -9 $(cat /run/rhc-agents-test-nginx.pid)"])
    [status] = run_agent(agents_lab, "node1", "ocf", attrs, "status")
    assert status["rc"] in ("NOT_RUNNING", "FAILED")


def test_ipaddr2_floating_address_reachable_from_the_client(agents_lab, cleanup):
    address = floating(agents_lab, 1)
    attrs = {"name": "vip2", "agent": "heartbeat:IPaddr2", "ip": address, "cidr_netmask": "24"}
    cleanup.append(("node1", "ocf", attrs))
    assert rcs(run_agent(agents_lab, "node1", "ocf", attrs, "start", "status")) == ["OK", "OK"]
    agents_lab.wait_for(lambda: reachable(agents_lab, address), 10, f"{address} to answer")
    assert rcs(run_agent(agents_lab, "node1", "ocf", attrs, "stop", "stop", "status")) == [
        "OK", "OK", "NOT_RUNNING"]
    client(agents_lab, "ip", "neigh", "flush", address)
    assert not reachable(agents_lab, address)


def test_builtin_ip_moves_between_nodes_and_the_client_follows(agents_lab, cleanup):
    address = floating(agents_lab, 0)
    attrs = {"address": address}
    cleanup.append(("node1", "ip", attrs))
    cleanup.append(("node2", "ip", attrs))
    assert rcs(run_agent(agents_lab, "node1", "ip", attrs, "start", "status")) == ["OK", "OK"]
    agents_lab.wait_for(lambda: reachable(agents_lab, address), 10, f"{address} on node1")
    assert neighbour_mac(agents_lab, address) == agents_lab.node("node1").mac
    assert rcs(run_agent(agents_lab, "node1", "ip", attrs, "stop")) == ["OK"]
    assert rcs(run_agent(agents_lab, "node2", "ip", attrs, "start")) == ["OK"]
    # The gratuitous ARP from node2 must have replaced node1's MAC in the client's cache.
    agents_lab.wait_for(lambda: neighbour_mac(agents_lab, address) == agents_lab.node("node2").mac,
                        10, f"the client to learn {address} at node2's MAC")
    assert reachable(agents_lab, address)


def test_fs_self_fence_reboots_a_node_that_cannot_unmount_the_shared_disk(agents_lab,
                                                                         lab_clean):
    """fs.sh's force_fsck and self_fence on the lab's shared disk: the start checks the
    filesystem; then a process the agent may not kill (force_unmount=0) keeps it busy, so
    a stop fails; with self_fence the node reboots itself at once (sync; reboot -f -n).
    A node of the lab that reboots itself stays off until its BMC powers it on, as the
    cluster's fence would."""
    node, mp = "node3", "/srv/selffence"
    attrs = {"name": "shared", "device": DEVICE, "mountpoint": mp, "fstype": "ext4",
             "force_fsck": "1"}
    started = run_agent(agents_lab, node, "fs", attrs, "start")
    assert rcs(started) == ["OK"] and "(fsck -p: clean)" in started[0]["message"]
    assert agents_lab.shared_disk_mounts()[node] == [mp]
    agents_lab.exec(node, ["systemd-run", "--unit=rhc-busy-disk", f"--working-directory={mp}",
                           "sleep", "600"])
    refused = run_agent(agents_lab, node, "fs", attrs, "stop")
    assert rcs(refused) == ["FAILED"] and "(force_unmount=0)" in refused[0]["message"]
    assert agents_lab.is_on(node) and agents_lab.shared_disk_mounts()[node] == [mp]
    # the driver dies with the node: no answer expected
    agents_lab.exec(node, ["env", f"PYTHONPATH={REMOTE}", "python3", f"{REMOTE}/driver.py",
                           "fs", json.dumps({**attrs, "self_fence": "1"}), "stop"],
                    check=False, timeout=60)
    agents_lab.wait_for(lambda: not agents_lab.is_on(node), 60, f"{node} to reboot itself")
    # and no other node holds the disk meanwhile
    assert all(m == [] for m in agents_lab.shared_disk_mounts().values())


def test_builtin_ip_outside_every_subnet_is_refused(agents_lab):
    [start] = run_agent(agents_lab, "node1", "ip", {"address": "198.19.250.1"}, "start")
    assert start["rc"] == "INVALID_ARGS" and "no interface has a subnet" in start["message"]


# ---------------------------------------------------------------- RHCS types (issue 15)
VALIDATE = """
import asyncio, json, sys
from clusterd.resources.agents import validate_with_metadata
rtype, attrs = sys.argv[1], json.loads(sys.argv[2])
where = f"{rtype}[{attrs['name']}]"
print(json.dumps([p.reason for p in asyncio.run(validate_with_metadata(rtype, attrs, where))]))
"""
# every attribute cluster.rng allows on each type, as an RHCS file would set them
RHCS_RESOURCES = [
    ("apache", {"name": "web", "server_root": "/etc/httpd", "config_file": "conf/httpd.conf",
                "httpd_options": "-DSSL", "shutdown_wait": "20", "service_name": "websvc"}),
    ("mysql", {"name": "db", "config_file": "/etc/mysql/my.cnf",
               "listen_address": "198.18.0.50", "mysqld_options": "--skip-name-resolve",
               "startup_wait": "30", "shutdown_wait": "30", "service_name": "dbsvc"}),
    ("postgres-8", {"name": "pg", "config_file": "/etc/postgresql/postgresql.conf",
                    "postmaster_user": "postgres",
                    "postmaster_options": "-D /var/lib/postgresql/data -p 5433",
                    "shutdown_wait": "30", "service_name": "pgsvc"}),
    ("netfs", {"name": "home", "mountpoint": "/mnt/home", "host": "filer",
               "export": "/export/home", "fstype": "nfs", "no_unmount": "0",
               "force_unmount": "1", "options": "rw,hard"}),
    ("lvm", {"name": "halvm", "vg_name": "vg_data", "lv_name": "lv_data", "self_fence": "0",
             "nfslock": "1"}),
]


def validate_on_node(lab, rtype: str, attrs: dict[str, str]) -> list[str]:
    done = lab.exec("node1", ["env", f"PYTHONPATH={REMOTE}", "python3", "-c", VALIDATE,
                              rtype, json.dumps(attrs)], timeout=120)
    return json.loads(done.stdout)


@pytest.mark.parametrize("rtype, attrs", RHCS_RESOURCES, ids=[r for r, _ in RHCS_RESOURCES])
def test_rhcs_types_translate_to_what_the_real_agents_accept(agents_lab, rtype, attrs):
    """The translated parameters are known to the installed agent's meta-data, and every
    parameter it requires is there (validate_with_metadata reads the real agent)."""
    assert validate_on_node(agents_lab, rtype, attrs) == []


def test_a_parameter_the_real_agent_does_not_know_is_refused(agents_lab):
    """The check above can fail: the same meta-data refuses a parameter mysql lacks."""
    [problem] = validate_on_node(agents_lab, "ocf", {"name": "db", "agent": "heartbeat:mysql",
                                                     "listen_address": "198.18.0.50"})
    assert "listen_address" in problem
