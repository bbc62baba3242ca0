"""The refusals of the life-cycle playbooks (issue 16), without a lab.

The role's pure checks run on the controller against made-up clusters (cluster_info's
result as a quorate member returns it): remove_check.yml (what removing a node does, why it
may not be done) and running_check.yml (the inventory against the running cluster, before
bootstrap.yml touches anything). The playbooks' own argument checks run for real against
nodes that point at 127.0.0.1 port 9 (nothing listens): a refused run must not reach them.
Every playbook passes ansible-playbook --syntax-check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted(p.name for p in (REPO / "playbooks").glob("*.yml"))

CHECK_BOOK = """\
- name: Run one of the role's pure checks on the controller
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: The check
      ansible.builtin.include_role:
        name: cluster_node
        tasks_from: {tasks}
    - name: Keep what it decided
      ansible.builtin.copy:
        dest: "{{{{ out }}}}"
        content: "{{{{ {facts} | to_json }}}}"
        mode: "0600"
"""


def _env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}:{os.environ.get('PATH', '')}")


def _inventory(tmp_path: Path, hosts: dict, group: str = "cluster") -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {group: {"hosts": hosts}}}}))
    return path


def run_check(tmp_path: Path, tasks: str, facts: list[str], extra: dict,
              hosts: dict | None = None) -> dict:
    book = tmp_path / "check.yml"
    mapping = "{" + ", ".join(f"'{f}': {f}" for f in facts) + "}"
    book.write_text(CHECK_BOOK.format(tasks=tasks, facts=mapping))
    out = tmp_path / "out.json"
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps({**extra, "out": str(out)}))
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(_inventory(tmp_path, hosts or {})),
         str(book), "-e", f"@{extra_file}"], cwd=REPO, env=_env(), capture_output=True,
        text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def node(name: str, nodeid: int, state: str = "online", votes: int = 1) -> dict:
    return {"name": name, "nodeid": nodeid, "state": state, "votes": votes}


def view(members: list[dict], quorum: int, domains: list[dict] | None = None,
         services: list[dict] | None = None, status_services: list[dict] | None = None,
         fencing: list[dict] | None = None) -> dict:
    """cluster_info's result as a quorate member returns it (what remove_check.yml reads)."""
    return {
        "cluster_name": "alpha", "config_version": 7, "quorate": True,
        "quorum": {"quorate": True, "quorum": quorum,
                   "votes": sum(m["votes"] for m in members if m["state"] == "online"),
                   "expected_votes": sum(m["votes"] for m in members)},
        "members": members, "services": status_services or [], "fencing": fencing or [],
        "export": {
            "cluster_conf": {"name": "alpha", "nodes": [
                {"name": m["name"], "nodeid": m["nodeid"], "votes": m["votes"]} for m in members]},
            "failover_domains": domains or [],
            "services": services or [],
            "fence_devices": [{"name": f"ipmi_{m['name']}", "agent": "fence_ipmilan"}
                              for m in members],
            "node_fences": [{"node": m["name"], "unfence": [], "methods": [
                {"name": "ipmi", "devices": [{"name": f"ipmi_{m['name']}", "params": {}}]}]}
                for m in members],
        },
    }


REMOVE_FACTS = ["__cluster_node_remove_problems", "__cluster_node_remove_gone",
                "__cluster_node_remove_nodes", "__cluster_node_remove_domains",
                "__cluster_node_remove_devices", "__cluster_node_remove_services",
                "__cluster_node_remove_quorum"]


def remove(tmp_path: Path, name: str, cluster: dict) -> dict:
    return run_check(tmp_path, "remove_check.yml", REMOVE_FACTS,
                     {"cluster_node_remove_name": name, "__cluster_node_view": cluster})


FOUR = [node("node1", 1), node("node2", 2), node("node3", 3), node("node4", 4)]


def test_removing_a_draining_node_plans_domains_nodes_and_devices(tmp_path: Path) -> None:
    cluster = view(FOUR, 3, domains=[
        {"name": "web_nodes", "ordered": True, "restricted": False,
         "members": [{"name": "node4", "priority": 1}, {"name": "node1", "priority": 2}]},
        {"name": "db_nodes", "members": [{"name": "node2", "priority": 1}]}],
        status_services=[{"name": "service:web", "state": "started", "owner": "node4"},
                         {"name": "service:db", "state": "started", "owner": "node2"}])
    got = remove(tmp_path, "node4", cluster)
    assert got["__cluster_node_remove_problems"] == []
    assert got["__cluster_node_remove_gone"] is False
    assert [n["name"] for n in got["__cluster_node_remove_nodes"]] == ["node1", "node2", "node3"]
    assert got["__cluster_node_remove_domains"] == [
        {"name": "web_nodes", "members": [{"name": "node1", "priority": 2}]}]
    assert got["__cluster_node_remove_devices"] == ["ipmi_node4"]
    assert got["__cluster_node_remove_services"] == ["service:web"]
    assert got["__cluster_node_remove_quorum"] == {
        "online": ["node1", "node2", "node3"], "offline": [], "votes": 3, "now": 3,
        "after": 2, "expected_after": 3}


def test_three_to_two_nodes_is_two_node_mode(tmp_path: Path) -> None:
    got = remove(tmp_path, "node3", view(FOUR[:3], 2))
    assert got["__cluster_node_remove_problems"] == []
    assert got["__cluster_node_remove_quorum"]["after"] == 1
    assert got["__cluster_node_remove_quorum"]["expected_after"] == 1


def test_a_removal_that_loses_quorum_is_refused(tmp_path: Path) -> None:
    members = [node("node1", 1), node("node2", 2), node("node3", 3, "offline"),
               node("node4", 4, "offline")]
    got = remove(tmp_path, "node2", view(members, 3))
    assert got["__cluster_node_remove_problems"] == [
        ("removing node2 would leave 1 vote(s) online (node1) but the cluster needs 3 for "
         "quorum (now 3, after the removal 2): it would lose quorum; bring node3, node4 back "
         "online first")]


def test_the_last_node_is_refused(tmp_path: Path) -> None:
    got = remove(tmp_path, "node1", view([node("node1", 1)], 1))
    assert got["__cluster_node_remove_problems"] == [
        ("node1 is the last node of cluster alpha: removing it would leave no cluster; tear "
         "the cluster down with playbooks/destroy.yml -e cluster_destroy_confirm=alpha")]


def test_the_only_member_of_a_restricted_domain_is_refused(tmp_path: Path) -> None:
    cluster = view(FOUR, 3, domains=[
        {"name": "db_only4", "restricted": True, "members": [{"name": "node4", "priority": 1}]},
        {"name": "spare", "restricted": True, "members": [{"name": "node4"}]}],
        services=[{"name": "db", "domain": "db_only4"}, {"name": "web"}])
    got = remove(tmp_path, "node4", cluster)
    # the unused restricted domain "spare" just loses its member
    assert got["__cluster_node_remove_problems"] == [
        ("service db may run only in restricted failover domain db_only4, whose only member "
         "is node4: removing node4 would leave it no node; add another member to db_only4 "
         "(cluster_services_domains) or give the service another domain first")]


def test_an_offline_node_that_still_owns_services_is_refused(tmp_path: Path) -> None:
    members = FOUR[:3] + [node("node4", 4, "offline")]
    cluster = view(members, 3, status_services=[
        {"name": "service:web", "state": "started", "owner": "node4"}],
        fencing=[{"node": "node4", "state": "pending"}])
    got = remove(tmp_path, "node4", cluster)
    assert got["__cluster_node_remove_problems"] == [
        ("node4 is offline and still owns service:web: wait until clustat shows it fenced (or "
         "acknowledge with fence_ack_manual node4 once you made sure it is off)")]


def test_a_node_already_gone_is_no_problem(tmp_path: Path) -> None:
    got = remove(tmp_path, "node4", view(FOUR[:3], 2))
    assert got["__cluster_node_remove_gone"] is True
    assert got["__cluster_node_remove_problems"] == []
    assert got["__cluster_node_remove_devices"] == []


def running(tmp_path: Path, group: dict[str, int], running_nodes: list[dict],
            name: str = "alpha", new_hosts: list[str] | None = None,
            live: dict | None = None) -> list[str]:
    """``new_hosts``: hosts that never ran clusterd; ``live``: members, services and fence
    operations as a running member sees them (running.yml's __cluster_node_running_view)."""
    nodes = [{"name": h, "nodeid": i, "votes": 1} for h, i in group.items()]
    extra = {} if new_hosts is None else {"__cluster_node_new_hosts": new_hosts,
                                          "__cluster_node_running_view": live or {}}
    got = run_check(tmp_path, "running_check.yml", ["__cluster_node_running_problems"],
                    {"__cluster_node_nodes": nodes, "cluster_node_cluster_name": "alpha",
                     "cluster_node_group": "cluster", **extra,
                     "__cluster_node_running": {"name": name, "nodes": running_nodes}},
                    hosts={h: {"ansible_host": "127.0.0.1", "ansible_port": 9} for h in group})
    return got["__cluster_node_running_problems"]


RUNNING = [{"name": "node1", "nodeid": 1, "votes": 1}, {"name": "node2", "nodeid": 2, "votes": 1},
           {"name": "node3", "nodeid": 3, "votes": 1}]


def test_adding_a_node_with_a_free_id_is_fine(tmp_path: Path) -> None:
    assert running(tmp_path, {"node1": 1, "node2": 2, "node3": 3, "node4": 4}, RUNNING) == []


def test_a_new_node_taking_a_running_nodes_id_is_refused(tmp_path: Path) -> None:
    # node3 left the inventory and node4 took its id: both are reported
    assert running(tmp_path, {"node1": 1, "node2": 2, "node4": 3}, RUNNING) == [
        ("node4: cluster_node_nodeid 3 is the node id of node3 in the running cluster alpha: "
         "give the new node a free node id (in use: 1, 2, 3)"),
        ("node3 is a node of the running cluster alpha but not a host of group cluster: add "
         "it back to the inventory, or remove it from the cluster with "
         "playbooks/remove_node.yml -e node=node3")]


GROUP = {"node1": 1, "node2": 2, "node3": 3}


def live(node3: str, services: list[dict] | None = None,
         fencing: list[dict] | None = None) -> dict:
    return {"members": [node("node1", 1), node("node2", 2), node("node3", 3, node3)],
            "services": services or [], "fencing": fencing or []}


def test_a_new_server_replacing_a_fenced_node_joins(tmp_path: Path) -> None:
    # node3 died, was fenced (the operation is done) and its service runs on node1
    done = [{"node": "node3", "state": "done", "method": "ipmi"}]
    moved = [{"name": "service:web", "state": "started", "owner": "node1"}]
    assert running(tmp_path, GROUP, RUNNING, new_hosts=["node3"],
                   live=live("offline", moved, done)) == []


def test_a_replacement_waits_for_the_fence_of_the_dead_node(tmp_path: Path) -> None:
    failing = [{"node": "node3", "state": "failed", "method": "ipmi"}]
    owned = [{"name": "service:web", "state": "started", "owner": "node3"}]
    assert running(tmp_path, GROUP, RUNNING, new_hosts=["node3"],
                   live=live("offline", owned, failing)) == [
        ("node3 is replaced by a new server, but the old one is offline and still owns "
         "service:web: wait until clustat shows it fenced (or acknowledge with "
         "fence_ack_manual node3 once you made sure it is off), then run the playbook again")]
    assert running(tmp_path, GROUP, RUNNING, new_hosts=["node3"],
                   live=live("offline", [], failing))[0].startswith(
        "node3 is replaced by a new server, but the old one is offline and has a fence "
        "operation in progress: ")


def test_a_replacement_is_refused_while_the_old_server_runs(tmp_path: Path) -> None:
    assert running(tmp_path, GROUP, RUNNING, new_hosts=["node3"], live=live("online")) == [
        ("node3 never ran clusterd on this host, but a node node3 is online in the running "
        "cluster alpha: the server it replaces still runs; power the old server off (the "
        "cluster fences it) before its replacement joins")]


def test_a_running_nodes_id_cannot_change_nor_the_clusters_name(tmp_path: Path) -> None:
    assert running(tmp_path, {"node1": 1, "node2": 2, "node3": 9}, RUNNING, name="beta") == [
        ("the nodes run cluster beta, cluster_node_cluster_name is alpha: a running cluster "
         "cannot be renamed; set cluster_node_cluster_name: beta"),
        ("node3: cluster_node_nodeid is 9 but node3 runs as node id 3 in cluster beta: a node "
         "id cannot change while the cluster runs; set cluster_node_nodeid: 3")]


def test_a_new_cluster_has_nothing_to_contradict(tmp_path: Path) -> None:
    nodes = [{"name": "node1", "nodeid": 1, "votes": 1}]
    got = run_check(tmp_path, "running_check.yml", ["__cluster_node_running_problems"],
                    {"__cluster_node_nodes": nodes, "cluster_node_cluster_name": "alpha",
                     "cluster_node_group": "cluster", "__cluster_node_running": {}},
                    hosts={"node1": {"ansible_host": "127.0.0.1", "ansible_port": 9}})
    assert got["__cluster_node_running_problems"] == []


# ------------------------------------------------------------ the playbooks' own refusals
NODES = {f"node{i}": {"ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "nobody",
                      "cluster_node_nodeid": i} for i in (1, 2, 3)}


def run_playbook(tmp_path: Path, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(_inventory(tmp_path, NODES)),
                           f"playbooks/{playbook}", *extra], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=300, check=False)


def assert_refused_on_the_controller(done: subprocess.CompletedProcess[str]) -> None:
    recap = done.stdout.split("PLAY RECAP", 1)[-1]
    assert done.returncode != 0
    assert "localhost" in recap and "failed=1" in recap
    for name in NODES:
        assert name not in recap, f"{name} was reached:\n{done.stdout}"


@pytest.mark.parametrize("extra", [(), ("-e", "cluster_destroy_confirm=beta")])
def test_destroy_needs_the_clusters_name(tmp_path: Path, extra: tuple[str, ...]) -> None:
    done = run_playbook(tmp_path, "destroy.yml", *extra)
    assert_refused_on_the_controller(done)
    assert ("destroy.yml removes cluster alpha from node1, node2, node3 for good (services "
            "stopped, clusterd removed, config, key, fence secrets and state deleted); nothing "
            "was changed. To go ahead: -e cluster_destroy_confirm=alpha") in done.stdout


@pytest.mark.parametrize(("extra", "says"), [
    ((), ("usage: -e node=NAME, NAME an inventory host (the playbook stops clusterd there); "
          "the nodes of group cluster are node1, node2, node3")),
    (("-e", "node=node9"), ("node node9 is not in the inventory; the nodes of group cluster "
                           "are node1, node2, node3")),
])
def test_remove_node_needs_an_inventory_host(tmp_path: Path, extra: tuple[str, ...],
                                             says: str) -> None:
    done = run_playbook(tmp_path, "remove_node.yml", *extra)
    assert_refused_on_the_controller(done)
    assert says in done.stdout


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_playbook_passes_the_syntax_check(playbook: str) -> None:
    done = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                           f"playbooks/{playbook}"], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
