"""The BMCs' chassis script (render.chassis_script) and the Python half it hands over to,
without a lab or root: the state file is written by the lab's own state module into a
temporary directory, and a real sleeping child process stands in for the node's init."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterlab import bmc, node, state
from clusterlab.procs import ProcRef, wait_for
from clusterlab.render import chassis_script
from clusterlab.spec import LabSpec

# Names no lab uses: the script's `ip -n rhcu-nohost link del rhcu-noveth` must fail quietly.
SPEC = LabSpec.create(prefix="rhcu", node_count=2)
N1, N2 = SPEC.node(1), SPEC.node(2)

FAKE_SLOW = """#!/bin/sh
# Stands in for python -m clusterlab.power: records its arguments, answers, exits 3.
# A settle first waits (at most 20 s) for the test to create the file `go`.
here=$(dirname "$0")
if [ "$3" = settle ]; then
    i=0; while [ ! -e "$here/go" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
fi
echo "$*" >>"$here/slow.calls"
echo "slow-out $*"
exit 3
"""


@pytest.fixture()
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LabSpec.state_dir (normally /run/<prefix>-lab) moved into tmp_path."""
    d = tmp_path / "run"
    monkeypatch.setattr(LabSpec, "state_dir", property(lambda self: str(d)))
    return d


@pytest.fixture()
def init() -> Iterator[subprocess.Popen]:
    """A real process standing in for node1's container init."""
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def record(init: subprocess.Popen | None, flag: int = 1, start_shift: int = 0) -> ProcRef:
    """The state the lab keeps: node1's power flag and init, plus other nodes' entries."""
    other = ProcRef.of(os.getpid())
    ref = ProcRef.of(init.pid) if init else other
    ref = ProcRef(ref.pid, ref.start + start_shift)
    with state.locked(SPEC, create=True) as data:
        data.update(phase="up", prefix=SPEC.prefix, nodes=2, subnet=SPEC.subnet,
                    bmc_password="not-in-the-script")
        data["power"] = {N1.name: flag, N2.name: 1 - flag}
        state.set_proc(data, f"init:{N1.name}", ref.to_json())
        state.set_proc(data, f"nspawn:{N1.name}", other.to_json())
        state.set_proc(data, f"init:{N2.name}", other.to_json())
    return ref


def script(run_dir: Path, name: str = N1.name) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    slow = run_dir / "slow"
    slow.write_text(FAKE_SLOW)
    slow.chmod(0o755)
    marker = bmc.off_marker(SPEC, SPEC.find(name))
    marker.parent.mkdir(parents=True, exist_ok=True)  # the BMC's directory (lan.conf's)
    path = run_dir / f"chassis-{name}"
    path.write_text(chassis_script(
        node=name, state_file=str(state.state_path(SPEC)),
        marker=str(marker), log=str(run_dir / "power.log"),
        host_netns="rhcu-nohost", veth="rhcu-noveth", slow_command=f"{slow} rhcu 1"))
    path.chmod(0o755)
    return path


def chassis(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # capture_output waits for EOF on the pipes, as ipmi_sim does
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=20,
                          check=False)


def get_power(path: Path) -> str:
    proc = chassis(path, "get", "power")
    assert proc.returncode == 0 and proc.stderr == "", proc
    return proc.stdout


def test_on_means_flag_1_and_the_recorded_init_alive(run_dir: Path, init) -> None:
    record(init)
    assert get_power(script(run_dir)) == "power:1\n"
    assert get_power(script(run_dir, N2.name)) == "power:0\n"  # its flag is 0


def test_flag_0_reads_off_though_init_runs(run_dir: Path, init) -> None:
    record(init, flag=0)
    assert get_power(script(run_dir)) == "power:0\n"
    assert get_power(script(run_dir, N2.name)) == "power:1\n"  # flag 1, init = us


def test_a_reused_pid_reads_off(run_dir: Path, init) -> None:
    record(init, start_shift=1)  # same pid, another start time: not the recorded process
    assert get_power(script(run_dir)) == "power:0\n"


def test_a_dead_init_reads_off_zombie_or_reaped(run_dir: Path, init) -> None:
    record(init)
    path = script(run_dir)
    init.kill()
    stat_file = Path(f"/proc/{init.pid}/stat")
    wait_for(lambda: stat_file.read_text().rpartition(")")[2].split()[0] == "Z", 5,
             "the child to be a zombie")
    assert get_power(path) == "power:0\n"
    init.wait()
    assert get_power(path) == "power:0\n"


def test_no_state_file_reads_off(run_dir: Path) -> None:
    assert get_power(script(run_dir)) == "power:0\n"


def test_get_power_starts_no_python(run_dir: Path, init) -> None:
    record(init)
    assert get_power(script(run_dir)) == "power:1\n"
    assert not (run_dir / "slow.calls").exists()


def test_set_power_0_cuts_at_once_and_settles_detached(run_dir: Path, init) -> None:
    ref = record(init)
    path = script(run_dir)
    proc = chassis(path, "set", "power", "0")
    assert (proc.returncode, proc.stdout) == (0, ""), proc
    assert init.wait(timeout=5) == -9  # SIGKILLed before the script returned
    marker = bmc.off_marker(SPEC, N1)
    assert marker.read_text().split() == [str(ref.pid), str(ref.start)]
    # off at once: the marker counts, the flag is still 1 until the bookkeeping
    assert (state.read(SPEC) or {})["power"][N1.name] == 1
    assert get_power(path) == "power:0\n"
    assert not node.is_on(SPEC, N1)
    # the settle is still waiting for `go`: the pipes reached EOF without it (ipmi_sim
    # waits for that), so it kept neither stdout nor stderr
    calls = run_dir / "slow.calls"
    assert not calls.exists()
    (run_dir / "go").touch()
    wait_for(calls.exists, 20, "the detached settle to run")
    assert calls.read_text() == "rhcu 1 settle power\n"
    log = (run_dir / "power.log").read_text()
    assert f"node1: set power 0: init {ref.pid} killed" in log
    assert "not-in-the-script" not in path.read_text() + log


def test_set_power_0_spares_a_reused_pid(run_dir: Path, init) -> None:
    record(init, start_shift=1)
    (run_dir / "go").parent.mkdir(parents=True, exist_ok=True)
    (run_dir / "go").touch()
    assert chassis(script(run_dir), "set", "power", "0").returncode == 0
    wait_for((run_dir / "slow.calls").exists, 20, "the detached settle to run")
    assert init.poll() is None  # another process now: not killed
    assert bmc.off_marker(SPEC, N1).exists()


@pytest.mark.parametrize("args", [("set", "power", "1"), ("set", "reset", "1"),
                                  ("get", "boot")])
def test_everything_else_goes_to_the_python_program(run_dir: Path, init,
                                                    args: tuple[str, ...]) -> None:
    record(init)
    proc = chassis(script(run_dir), *args)
    assert (proc.returncode, proc.stdout) == (3, f"slow-out rhcu 1 {' '.join(args)}\n")
    assert init.poll() is None


def test_settle_records_off_and_drops_the_marker(run_dir: Path, init) -> None:
    record(init)
    assert node.is_on(SPEC, N1)
    assert not node.settle_power_off(SPEC, N1)  # nothing pending: nothing done
    assert node.is_on(SPEC, N1) and init.poll() is None
    marker = bmc.off_marker(SPEC, N1)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("1 2\n")
    assert not node.is_on(SPEC, N1)  # pending counts as off
    assert node.settle_power_off(SPEC, N1)
    assert init.wait(timeout=5) == -9  # init is killed if it still ran
    assert not marker.exists()
    assert (state.read(SPEC) or {})["power"] == {N1.name: 0, N2.name: 0}
    assert not node.is_on(SPEC, N1)


def test_write_chassis_script_is_executable_and_secret_free(run_dir: Path) -> None:
    record(None)
    path = bmc.write_chassis_script(SPEC, N1)
    assert path == bmc.chassis_path(SPEC, N1) == run_dir / "bmc" / "node1" / "chassis"
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "not-in-the-script" not in text
    assert f"state={run_dir}/state.json\n" in text
    assert f"{sys.executable} -m clusterlab.power rhcu 1 settle power" in text
    assert "veth=rhcu-n1-h\n" in text and "host_netns=rhcu-host\n" in text
    assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0
