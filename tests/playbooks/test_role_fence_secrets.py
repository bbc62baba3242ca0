"""The cluster_node role keeps BMC passwords out of cluster.conf (issue 13 item 7).

Three inventory hosts that are all this machine (connection local) run the role's
fence_secrets.yml and config_edit.yml at -vvv, each writing its own cluster.conf (file
mode, CLUSTERD_CONF_PATH) and its own secret directory (__cluster_node_secrets_dir, which
is /etc/cluster/secrets on real nodes). Then: every file holds only secret:// references,
each reference resolves through clusterd's own resolver to the right node's password on
every host, the files are 0400 root, the -vvv output holds no password, and a second run
changes nothing. No lab needed.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml
from clusterd.conf import load
from clusterd.fencing.secrets import resolve

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = ("node1", "node2", "node3")
PASSWORDS = {host: f"Bmc-{host}-Pw!{i}x" for i, host in enumerate(HOSTS, 1)}

BOOK = """\
- name: The role's fence secrets and config edits, on three local hosts
  hosts: cluster
  gather_facts: false
  environment:
    CLUSTERD_CONF_PATH: "{{ work }}/{{ inventory_hostname }}/cluster.conf"
  vars:
    __cluster_node_nodes: NODES
  tasks:
    - name: Write the fence secrets
      ansible.builtin.include_role:
        name: cluster_node
        tasks_from: fence_secrets.yml

    - name: Write the config
      ansible.builtin.include_role:
        name: cluster_node
        tasks_from: config_edit.yml
"""


def _run(tmp_path: Path, book: Path, inventory: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_STDOUT_CALLBACK="default",
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    env.pop("CLUSTERD_CONF_PATH", None)
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-vvv", "-i", str(inventory),
         "-e", f"work={tmp_path}",
         "-e", "__cluster_node_secrets_dir={{ work }}/{{ inventory_hostname }}/secrets",
         str(book)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        check=False)


def test_role_writes_secret_files_and_references(tmp_path: Path) -> None:
    hosts = {host: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                    "cluster_node_nodeid": i,
                    "cluster_node_bmc": {"address": f"198.18.1.{10 + i}", "user": "admin",
                                         "password": PASSWORDS[host]}}
             for i, host in enumerate(HOSTS, 1)}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"cluster": {"hosts": hosts}}}}))
    book = tmp_path / "book.yml"
    nodes = [{"name": host, "nodeid": i, "votes": 1} for i, host in enumerate(HOSTS, 1)]
    book.write_text(BOOK.replace("NODES", json.dumps(nodes)))  # what config.yml computes
    first = _run(tmp_path, book, inventory)
    output = first.stdout + first.stderr
    leaked = [h for h, pw in PASSWORDS.items() if pw in output]
    assert not leaked, f"BMC passwords of {leaked} appear in the -vvv output"
    assert first.returncode == 0, output[-6000:]
    assert "module_args" in first.stdout, "not a -vvv run"

    confs = [(tmp_path / h / "cluster.conf").read_bytes() for h in HOSTS]
    assert confs[0] == confs[1] == confs[2]
    text = confs[0].decode()
    assert not [h for h, pw in PASSWORDS.items() if pw in text], "a password is inline"
    conf = load(str(tmp_path / HOSTS[0] / "cluster.conf"))
    for on in HOSTS:                  # every host can resolve every node's reference
        secrets = tmp_path / on / "secrets"
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
        for node in HOSTS:
            passwd = conf.fencedevices[f"ipmi_{node}"].params["passwd"]
            assert passwd.startswith(f"secret://ipmi_{node}#sha256=")
            assert resolve("passwd", passwd, str(secrets)) == PASSWORDS[node]
            st = (secrets / f"ipmi_{node}").stat()
            assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o400, 0)

    again = _run(tmp_path, book, inventory)
    assert again.returncode == 0, (again.stdout + again.stderr)[-6000:]
    assert "changed=0" in again.stdout.split("PLAY RECAP", 1)[1], again.stdout[-3000:]
