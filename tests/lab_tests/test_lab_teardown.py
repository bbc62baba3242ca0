"""Teardown leaves nothing behind, also after `up` was killed midway. Uses its own small
lab (prefix rhck, subnet 198.18.1.0/24) next to the session lab, which it must not touch."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from clusterlab import Lab, disk
from clusterlab.procs import wait_for
from clusterlab.spec import LabSpec
from clusterlab.teardown import leftovers

pytestmark = pytest.mark.lab
CLI = str(Path(sys.executable).parent / "cluster-lab")
SPEC = LabSpec.create(prefix="rhck", node_count=2, subnet="198.18.1.0/24")


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _traces(prefix: str) -> list[str]:
    """Independent check with the system's own tools: anything named with the prefix."""
    found = []
    out = _out("ip", "netns", "list")
    found += [f"netns {line}" for line in out.splitlines() if line.startswith(prefix + "-")]
    out = _out("ip", "-o", "link")
    found += [f"link {line.split(':')[1].strip()}" for line in out.splitlines()
              if line.split(":")[1].strip().split("@")[0].startswith(prefix + "-")]
    out = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {line.split()[4]}" for line in out.splitlines()
              if f"/{prefix}-lab" in line.split()[4] or f"{prefix}-node" in line]
    out = _out("losetup", "-a")
    found += [f"loop {line}" for line in out.splitlines() if f"/{prefix}-lab" in line]
    out = _out("ps", "-eo", "pid,args")
    found += [f"process {line.strip()}" for line in out.splitlines()
              if (f"/run/{prefix}-lab/" in line and "ipmi_sim" in line)
              or f"--machine={prefix}-node" in line]
    found += [f"dir {d}" for d in (f"/run/{prefix}-lab", f"/var/lib/{prefix}-lab")
              if os.path.exists(d)]
    found += [f"cgroup {c}" for c in glob.glob(f"/sys/fs/cgroup/*/{prefix}-*")
              + glob.glob(f"/sys/fs/cgroup/{prefix}-*")]
    return found


def _up(*extra: str) -> subprocess.Popen:
    return subprocess.Popen([CLI, "--prefix", SPEC.prefix, "up", "-n", "2", "--subnet",
                             SPEC.subnet, *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _down() -> None:
    proc = subprocess.run([CLI, "--prefix", SPEC.prefix, "down"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def _bmc_listening() -> bool:
    return os.path.exists(f"/run/{SPEC.prefix}-lab/bmc/node1/lan.conf")


def _container_started() -> bool:
    return any(w.startswith("nspawn") for w in leftovers(SPEC)["processes"])


@pytest.mark.parametrize("stage", [_bmc_listening, _container_started],
                         ids=["after-first-bmc", "after-first-container"])
def test_down_after_up_was_killed_midway_leaves_nothing(lab: Lab, stage) -> None:
    # `lab` (the session lab) is up meanwhile: this also proves prefixes keep labs apart.
    _down()
    proc = _up()
    try:
        wait_for(stage, 120, f"up to reach stage {stage.__name__}", interval=0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _traces(SPEC.prefix), "the killed up should have left something to clean"
    _down()
    assert _traces(SPEC.prefix) == []
    assert not any(leftovers(SPEC).values())
    # The session lab is untouched.
    assert all(lab.ssh_ok(n.name) for n in lab.nodes)


def test_full_up_then_down_leaves_nothing(lab: Lab) -> None:
    _down()
    try:
        proc = _up()
        assert proc.wait(timeout=300) == 0
        small = Lab.load(SPEC.prefix)
        assert [n.address for n in small.nodes] == ["198.18.1.11", "198.18.1.12"]
        assert small.ssh_ok("node1") and small.ssh_ok("node2")
        # one shared disk, the same block device in every node, mounted nowhere yet; and the
        # quorum disk: one loop device per node on one file, each node its own
        assert len(leftovers(SPEC)["loops"]) == 1 + len(small.nodes)
        devices = {small.exec(n.name, ["stat", "-c", "%t:%T", disk.DEVICE]).stdout.strip()
                   for n in small.nodes}
        assert len(devices) == 1 and small.shared_disk_mounts() == {"node1": [], "node2": []}
        qdisks = {small.exec(n.name, ["stat", "-c", "%t:%T", disk.QDISK_DEVICE]).stdout.strip()
                  for n in small.nodes}
        assert len(qdisks) == len(small.nodes) and not qdisks & devices
        small.exec("node2", ["sh", "-c", f"mkdir -p /mnt/x && mount {disk.DEVICE} /mnt/x"])
        assert small.shared_disk_mounts() == {"node1": [], "node2": ["/mnt/x"]}
    finally:
        _down()      # also after a failed assertion: the lab never outlives the test
    assert _traces(SPEC.prefix) == []
    assert not any(leftovers(SPEC).values())
    assert all(lab.ssh_ok(n.name) for n in lab.nodes)
