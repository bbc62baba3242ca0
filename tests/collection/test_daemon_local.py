"""The collection's daemon_mode target against a real one-node clusterd on 127.0.0.1.

The daemon (started here, stopped by its PID) listens on a free loopback port and a
control socket in a temporary directory; modules reach it through cluster_admin's daemon
mode (conf.get / conf.propose), RHC_CONTROL_SOCKET pointing at that socket.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections"
TARGETS = COLLECTIONS / "ansible_collections/redhat/cluster/tests/integration/targets"
CLUSTER_RNG = REPO / "daemon/src/clusterd/conf/schema/cluster.rng"
BIN = Path(sys.executable).parent
NODE = "127.0.0.1"
READY_DEADLINE_S = 30.0


def _free_port() -> int:
    """A port free for both UDP and TCP on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((NODE, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((NODE, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port for UDP and TCP")


@contextmanager
def one_node_daemon(prefix: str, node_xml: str, extra_xml: str = "") -> Iterator[dict[str, str]]:
    """A real one-node clusterd in a temporary directory (cluster ``solo``, ``node_xml`` the
    clusternode element, ``extra_xml`` anything after clusternodes); stopped by its PID."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    conf, key, sock = work / "cluster.conf", work / "authkey", work / "run/clusterd.sock"
    conf.write_text(
        '<?xml version="1.0"?>\n<cluster name="solo" config_version="1">\n'
        f'  <cman expected_votes="1" port="{_free_port()}"/>\n'
        f"  <clusternodes>\n    {node_xml}\n  </clusternodes>\n{extra_xml}</cluster>\n")
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
        yield {"conf": str(conf), "socket": str(sock), "log": str(work / "clusterd.log")}
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


@pytest.fixture
def daemon() -> Iterator[dict[str, str]]:
    with one_node_daemon("rhc-daemon-", f'<clusternode name="{NODE}" nodeid="1"/>') as d:
        yield d


@pytest.mark.slow
def test_daemon_mode_target(daemon: dict[str, str], tmp_path: Path) -> None:
    book = tmp_path / "daemon_mode.yml"
    book.write_text(
        "- name: Integration target daemon_mode on localhost\n"
        "  hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Run the target\n"
        f"      ansible.builtin.include_tasks: {TARGETS / 'daemon_mode/tasks/main.yml'}\n")
    env = {k: v for k, v in os.environ.items() if k != "CLUSTERD_CONF_PATH"}
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        "RHC_CONTROL_SOCKET": daemon["socket"],
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
    })
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}",
           "-e", f"daemon_conf={daemon['conf']}", "-e", f"cluster_rng={CLUSTER_RNG}",
           "-e", f"local_node={NODE}", str(book)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, (proc.stdout[-6000:] + proc.stderr[-2000:] +
                                  Path(daemon["log"]).read_text()[-3000:])
