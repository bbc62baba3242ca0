"""cluster-lab's command line against the running lab: output, exit codes and one-line
errors for bad input (0 ok, 1 failure, 2 bad usage)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from clusterlab import Lab
from clusterlab.state import state_path

pytestmark = pytest.mark.lab
CLI = [str(Path(sys.executable).parent / "cluster-lab")]


def cli(lab: Lab, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
    argv = CLI + ["--prefix", lab.spec.prefix, *args]
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def one_line_error(proc: subprocess.CompletedProcess, rc: int, *words: str) -> None:
    assert proc.returncode == rc, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(("args", "rc", "words"), [
    (("power", "node9", "status"), 2, ("unknown node 'node9'", "node1, node2, node3")),
    (("exec", "node7", "--", "true"), 2, ("unknown node 'node7'",)),
    (("partition", "node1", "--direction", "sideways"), 2, ("invalid choice: 'sideways'",)),
    (("partition", "node1", "--peers", "node1"), 2, ("from itself",)),
    (("partition", "node1", "--peers", "nodeX"), 2, ("unknown node 'nodeX'",)),
    (("power", "node1", "reboot"), 2, ("invalid choice: 'reboot'",)),
    (("exec", "node1"), 2, ("give a command",)),
    (("frobnicate",), 2, ("invalid choice",)),
    (("up", "--subnet", "10.1.2.0/24"), 2, ("outside the allowed range",)),
    (("up", "-n", "0"), 2, ("bad node count",)),
])
def test_bad_input_gets_one_clear_line(lab: Lab, args: tuple, rc: int, words: tuple) -> None:
    one_line_error(cli(lab, *args), rc, *words)


def test_up_when_up_refuses_and_changes_nothing(lab: Lab) -> None:
    before = state_path(lab.spec).read_text()
    one_line_error(cli(lab, "up"), 1, "already up", "cluster-lab down")
    assert state_path(lab.spec).read_text() == before
    assert all(lab.ssh_ok(n.name) for n in lab.nodes)


def test_not_root_is_refused(lab: Lab) -> None:
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed")
    proc = cli(lab, "--prefix", "rhcnr", "up", "--subnet", "198.18.7.0/24", user="65534")
    if proc.returncode != 1 or "needs root" not in proc.stderr:
        # The venv may be unreadable for nobody; then python itself fails: check that.
        assert proc.returncode != 0
        pytest.skip(f"nobody cannot run the venv here: {proc.stderr.strip()[:120]}")
    one_line_error(proc, 1, "needs root")
    assert not os.path.exists("/run/rhcnr-lab")


def test_status_json_and_table(lab: Lab) -> None:
    proc = cli(lab, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert [n["name"] for n in status["nodes"]] == ["node1", "node2", "node3"]
    for node in status["nodes"]:
        assert node["power"] == "on" and node["ssh"] and node["bmc_alive"]
        assert node["system"] in ("running", "degraded")
    table = cli(lab, "status")
    assert table.returncode == 0 and "198.18.0.12" in table.stdout


def test_exec_passes_output_and_exit_code(lab: Lab) -> None:
    proc = cli(lab, "exec", "node2", "--", "sh", "-c", "hostname; exit 3")
    assert (proc.returncode, proc.stdout) == (3, "node2\n")


def test_power_status_through_the_bmc(lab: Lab) -> None:
    proc = cli(lab, "power", "node1", "status")
    assert (proc.returncode, proc.stdout) == (0, "node1: on\n")


def test_inventory_file_is_private_and_complete(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "inv.yml"
    assert cli(lab, "inventory", "-o", str(out)).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    inv = yaml.safe_load(out.read_text())
    hosts = inv["all"]["children"]["cluster"]["hosts"]
    assert hosts["node1"]["cluster_lab_bmc_password"] == lab.bmc("node1").password
    assert "password" not in repr(lab.bmc("node1")).replace("password='***'", "")


def test_ssh_hint_works(lab: Lab) -> None:
    hint = cli(lab, "ssh", "node3").stdout.split()
    proc = subprocess.run(hint + ["-o", "BatchMode=yes", "hostname"], capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.stdout.strip() == "node3", proc.stderr


def test_missing_tool_is_refused_before_anything_is_made(lab: Lab, tmp_path: Path) -> None:
    from clusterlab.lab import REQUIRED_TOOLS

    for tool in REQUIRED_TOOLS:
        if tool != "ipmi_sim":
            (tmp_path / tool).symlink_to(shutil.which(tool))
    proc = subprocess.run(CLI + ["--prefix", "rhcm", "up", "--subnet", "198.18.6.0/24"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PATH": str(tmp_path)})
    one_line_error(proc, 1, "missing tools: ipmi_sim")
    assert not os.path.exists("/run/rhcm-lab") and not os.path.exists("/var/lib/rhcm-lab")


def test_inventory_on_stdout_hides_the_bmc_password(lab: Lab) -> None:
    password = lab.bmc("node1").password
    shown = cli(lab, "inventory")
    assert shown.returncode == 0 and "cluster_lab_bmc_password" in shown.stdout
    assert password not in shown.stdout
    revealed = cli(lab, "inventory", "--show-secrets")
    assert password in revealed.stdout
    status = cli(lab, "status", "--json")
    assert password not in status.stdout + status.stderr
