"""redhat.cluster.fence_device verify: true against a real one-node clusterd on 127.0.0.1
whose fence device (the real fence_ipmilan) points at a loopback port where no BMC
answers: the module fails naming the node, or only warns with fail_on_missing: false;
the BMC password appears nowhere in the output.

The daemon (started here, stopped by its PID) uses a temporary directory; the module
reaches it through cluster_admin (RHC_CONTROL_SOCKET).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_daemon_local import BIN, COLLECTIONS, NODE, one_node_daemon

PASSWORD = "Verify-Secret-42"
FENCE_AGENT = Path("/usr/sbin/fence_ipmilan")


@pytest.fixture
def fenced_daemon() -> Iterator[dict[str, str]]:
    if not FENCE_AGENT.exists():
        pytest.skip("fence_ipmilan is not installed (scripts/apt-packages.txt: fence-agents)")
    node = (f'<clusternode name="{NODE}" nodeid="1">'
            '<fence><method name="ipmi"><device name="bmc"/></method></fence></clusternode>')
    devices = ('  <fencedevices>\n    <fencedevice name="bmc" agent="fence_ipmilan" '
               f'ipaddr="127.0.0.1" login="admin" passwd="{PASSWORD}" lanplus="1" '
               'cipher="3"/>\n  </fencedevices>\n')
    with one_node_daemon("rhc-verify-", node, devices) as d:
        yield d


BOOK = """\
- name: Verify fence paths
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Verify, only warn
      redhat.cluster.fence_device:
        verify: true
        fail_on_missing: false
      register: warned

    - name: Verify, fail on a node without a working fence path
      redhat.cluster.fence_device:
        verify: true
      register: failed
      ignore_errors: true

    - name: Show both results
      ansible.builtin.debug:
        msg: "RESULT {{ {'warned': warned, 'failed': failed} | to_json }}"
"""


@pytest.mark.slow
def test_verify_fails_naming_the_unfenceable_node_or_warns(fenced_daemon, tmp_path):
    book = tmp_path / "verify.yml"
    book.write_text(BOOK)
    env = {k: v for k, v in os.environ.items() if k != "CLUSTERD_CONF_PATH"}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        "RHC_CONTROL_SOCKET": fenced_daemon["socket"],
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "default",
    })
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-v",
           "-e", f"ansible_python_interpreter={sys.executable}", str(book)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    everything = proc.stdout + proc.stderr
    assert proc.returncode == 0, everything[-6000:] + Path(fenced_daemon["log"]).read_text()
    line = next(ln for ln in proc.stdout.splitlines() if '"msg": "RESULT ' in ln)
    results = json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"][7:])
    warned, failed = results["warned"], results["failed"]
    assert not warned.get("failed") and warned["unfenceable_nodes"] == [NODE]
    assert any(NODE in w for w in warned.get("warnings", ()))
    assert failed["failed"] and failed["unfenceable_nodes"] == [NODE]
    assert failed["msg"].startswith(f"no working fence path for node(s) {NODE} ({NODE}: "
                                    f"method ipmi: fence_ipmilan status: ")
    entry = failed["fence_verify"][0]
    assert entry["node"] == NODE and entry["ok"] is False and entry["methods"][0]["name"] == "ipmi"
    assert PASSWORD not in everything
    assert PASSWORD not in Path(fenced_daemon["log"]).read_text()
