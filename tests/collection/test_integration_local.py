"""Run the collection's integration targets on localhost against temporary cluster.conf
files (cluster_admin's file mode through CLUSTERD_CONF_PATH; no daemon, no lab).

Each target runs the idempotence quad and its negative tests itself (asserts in YAML);
this test fails when ansible-playbook reports a failed task.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections"
TARGETS = COLLECTIONS / "ansible_collections/redhat/cluster/tests/integration/targets"
CLUSTER_RNG = REPO / "daemon/src/clusterd/conf/schema/cluster.rng"
BIN = Path(sys.executable).parent

# Targets that run without a daemon (file mode); the action modules assert their
# "not running" messages here, their real runs need the lab. daemon_mode needs a running
# clusterd: tests/collection/test_daemon_local.py runs it.
DAEMON_TARGETS = {"daemon_mode"}
LOCAL_TARGETS = sorted(p.name for p in TARGETS.iterdir()
                       if (p / "tasks/main.yml").exists() and p.name not in DAEMON_TARGETS)


def _playbook(tmp: Path, target: str) -> Path:
    book = tmp / f"{target}.yml"
    tasks = TARGETS / target / "tasks/main.yml"
    book.write_text(
        f"- name: Integration target {target} on localhost\n"
        "  hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Run the target\n"
        f"      ansible.builtin.include_tasks: {tasks}\n")
    return book


@pytest.mark.slow
@pytest.mark.parametrize("target", LOCAL_TARGETS)
def test_integration_target_on_localhost(tmp_path: Path, target: str) -> None:
    if not shutil.which("xmllint"):
        pytest.fail("xmllint is missing (apt package libxml2-utils, scripts/apt-packages.txt)")
    conf_dir = tmp_path / "etc-cluster"
    conf_dir.mkdir()
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    })
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}",
           "-e", f"conf_dir={conf_dir}", "-e", f"cluster_rng={CLUSTER_RNG}",
           str(_playbook(tmp_path, target))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "failed=0" in proc.stdout
