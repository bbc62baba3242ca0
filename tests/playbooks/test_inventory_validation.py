"""Inconsistent inventories fail before any node is touched, with a message that says what
to fix. The nodes point at 127.0.0.1 port 9 (nothing listens): had a play reached them, the
recap would list them (unreachable). No lab needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def node(nodeid: object = None, bmc: bool = True) -> dict:
    host: dict = {"ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "nobody"}
    if nodeid is not None:
        host["cluster_node_nodeid"] = nodeid
    if bmc:
        host["cluster_node_bmc"] = {"address": "198.18.0.101", "user": "admin",
                                    "password": "s3cret-bmc-pw"}
    return host


def run(tmp_path: Path, playbook: str, hosts: dict, **group_vars: object
        ) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(
        {"all": {"children": {"cluster": {"hosts": hosts, "vars": group_vars}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    # -e wins over playbooks/group_vars/all (the lab mapping and the web example)
    extra = ["-e", yaml.safe_dump(group_vars, default_flow_style=True).strip()] if group_vars else []
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory),
                           f"playbooks/{playbook}", *extra], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def assert_no_node_touched(done: subprocess.CompletedProcess[str]) -> None:
    recap = done.stdout.split("PLAY RECAP", 1)[-1]
    assert done.returncode != 0
    assert "localhost" in recap and "failed=1" in recap
    for name in ("node1", "node2", "node3"):
        assert name not in recap, f"{name} was reached:\n{done.stdout}"


def test_duplicate_nodeids_fail_naming_both_nodes(tmp_path: Path) -> None:
    done = run(tmp_path, "bootstrap.yml",
               {"node1": node(1), "node2": node(2), "node3": node(2)})
    assert_no_node_touched(done)
    assert ("node3: cluster_node_nodeid 2 is also the node id of node2: give every node its "
            "own node id") in done.stdout


def test_missing_nodeid_and_missing_bmc_are_reported_together(tmp_path: Path) -> None:
    done = run(tmp_path, "bootstrap.yml",
               {"node1": node(1), "node2": node(None), "node3": node(3, bmc=False)})
    assert_no_node_touched(done)
    assert ("node2: cluster_node_nodeid is not set: set it to a unique positive integer in "
            "the host vars") in done.stdout
    assert ("node3: cluster_node_bmc lacks address, user, password while fencing is required: "
            "give the node its BMC (address, user, password) or set "
            "cluster_node_fencing_required: false") in done.stdout
    assert "s3cret-bmc-pw" not in done.stdout + done.stderr


def test_a_bmc_password_a_secret_file_cannot_hold(tmp_path: Path) -> None:
    two_lines = node(2)
    two_lines["cluster_node_bmc"]["password"] = "first-line\nsecond-line"
    done = run(tmp_path, "bootstrap.yml",
               {"node1": node(1), "node2": two_lines, "node/3": node(3)})
    assert_no_node_touched(done)
    assert ("node2: cluster_node_bmc.password is empty or spans several lines, and a secret "
            "file holds one line: fix the password in the vault") in done.stdout
    assert ("node/3: the host name cannot name a secret file (letters, digits, _ . -, at most "
            "123 characters): rename the host or set cluster_node_fence_secret_files: false"
            ) in done.stdout
    assert "first-line" not in done.stdout + done.stderr


def test_no_bmc_is_fine_when_fencing_is_not_required(tmp_path: Path) -> None:
    done = run(tmp_path, "bootstrap.yml",
               {"node1": node(1, bmc=False), "node2": node(2, bmc=False)},
               cluster_node_fencing_required=False)
    # validation passes, so the node play starts and finds the nodes unreachable
    assert "Inventory problems" not in done.stdout
    assert "UNREACHABLE" in done.stdout or "unreachable=1" in done.stdout


def test_service_naming_an_unknown_domain(tmp_path: Path) -> None:
    done = run(tmp_path, "services.yml", {"node1": node(1), "node2": node(2), "node3": node(3)},
               cluster_services_domains=[{"name": "web_nodes", "members": [{"name": "node1"}]}],
               cluster_services_services=[{"name": "web", "domain": "web_nodse"}])
    assert_no_node_touched(done)
    assert ("service web names failover domain web_nodse, which is not in "
            "cluster_services_domains: define it there or fix the name (defined: web_nodes)"
            ) in done.stdout


def test_domain_member_that_is_not_a_node(tmp_path: Path) -> None:
    done = run(tmp_path, "services.yml", {"node1": node(1), "node2": node(2), "node3": node(3)},
               cluster_services_domains=[{"name": "d", "members": [{"name": "node9"}]}],
               cluster_services_services=[{"name": "web", "domain": "d"}])
    assert_no_node_touched(done)
    assert ("failover domain d names member node9, which is not a host of group cluster: use "
            "one of node1, node2, node3") in done.stdout


def test_quorum_disk_without_device_or_label_and_other_problems(tmp_path: Path) -> None:
    hosts = {"node1": node(1), "node2": node(2)}
    hosts["node2"]["cluster_node_votes"] = 2
    done = run(tmp_path, "bootstrap.yml", hosts, cluster_node_quorum_disk={
        "initialize": True, "votes": 1, "heuristics": [{"score": 1}], "size": 10})
    assert_no_node_touched(done)
    for said in ("cluster_node_quorum_disk names neither a device nor a label",
                 "cluster_node_quorum_disk.initialize needs device",
                 "cluster_node_quorum_disk.heuristics[0] has no program",
                 "cluster_node_quorum_disk: unknown key(s) size",
                 "node2: cluster_node_votes is 2 but beside a quorum disk every node has one vote"):
        assert said in done.stdout, (said, done.stdout[-2000:])


def test_quorum_disk_absent_or_complete_passes_validation(tmp_path: Path) -> None:
    for disk in ({"state": "absent"}, {"device": "/dev/sdq", "initialize": True, "heuristics": [
            {"program": "/usr/local/sbin/qd-check", "score": 1}]}):
        done = run(tmp_path, "bootstrap.yml", {"node1": node(1), "node2": node(2)},
                   cluster_node_quorum_disk=disk)
        assert "Inventory problems" not in done.stdout, done.stdout[-2000:]
        assert "UNREACHABLE" in done.stdout or "unreachable=1" in done.stdout


@pytest.mark.parametrize("playbook", ["bootstrap.yml", "rolling_upgrade.yml"])
def test_bad_inventory_stops_every_node_playbook(tmp_path: Path, playbook: str) -> None:
    done = run(tmp_path, playbook, {"node1": node(1), "node2": node(1), "node3": node(3)})
    assert_no_node_touched(done)
    assert "cluster_node_nodeid 1 is also the node id of node1" in done.stdout
