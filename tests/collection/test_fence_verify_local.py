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
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_daemon_local import BIN, COLLECTIONS, NODE, READY_DEADLINE_S, _free_port

PASSWORD = "Verify-Secret-42"
FENCE_AGENT = Path("/usr/sbin/fence_ipmilan")


@pytest.fixture
def fenced_daemon() -> Iterator[dict[str, str]]:
    if not FENCE_AGENT.exists():
        pytest.skip("fence_ipmilan is not installed (scripts/apt-packages.txt: fence-agents)")
    work = Path(tempfile.mkdtemp(prefix="rhc-verify-"))
    conf, key, sock = work / "cluster.conf", work / "authkey", work / "run/clusterd.sock"
    conf.write_text(
        '<?xml version="1.0"?>\n<cluster name="solo" config_version="1">\n'
        f'  <cman expected_votes="1" port="{_free_port()}"/>\n'
        f'  <clusternodes>\n    <clusternode name="{NODE}" nodeid="1">\n'
        '      <fence><method name="ipmi"><device name="bmc"/></method></fence>\n'
        "    </clusternode>\n  </clusternodes>\n"
        '  <fencedevices>\n    <fencedevice name="bmc" agent="fence_ipmilan" '
        f'ipaddr="127.0.0.1" login="admin" passwd="{PASSWORD}" lanplus="1" cipher="3"/>\n'
        "  </fencedevices>\n</cluster>\n")
    conf.chmod(0o640)
    key.write_bytes(os.urandom(256))
    key.chmod(0o400)
    log = (work / "clusterd.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "clusterd"), "--config", str(conf), "--authkey", str(key), "--node", NODE,
         "--foreground", "--control-socket", str(sock), "--state-dir", str(work / "state")],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_DEADLINE_S
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"clusterd did not open {sock} within {READY_DEADLINE_S:g}s "
                            f"(exit {proc.poll()}): {(work / 'clusterd.log').read_text()}")
            time.sleep(0.05)    # polling for the socket, not a wait for a state
        yield {"socket": str(sock), "log": str(work / "clusterd.log")}
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


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
