"""Lab figures: image build, lab up (3 nodes, cached image), idle memory per node,
power-off -> unreachable and power-on -> sshd answering through the BMC.

Runnable alone (root): .venv/bin/python tests/bench/bench_lab.py
`main()` returns a markdown section for docs/benchmarks.md and prints the figures. It uses
its own lab (prefix rhcb, subnet 198.18.2.0/24) so a lab that is up is left alone.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from clusterlab import Lab
from clusterlab import image as lab_image
from clusterlab.net import ssh_banner
from clusterlab.spec import LabSpec
from clusterlab.teardown import teardown

PREFIX, SUBNET, NODES = "rhcb", "198.18.2.0/24", 3
RUNS = 3


def _fmt(values: list[float], unit: str = "s") -> str:
    return (f"{statistics.median(values):.2f} {unit} (min {min(values):.2f}, "
            f"max {max(values):.2f}, n={len(values)})")


def _time_until(predicate: Callable[[], bool], timeout: float = 120.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise RuntimeError("timed out")
        time.sleep(0.01)
    return time.monotonic() - start


def _power_cycle(lab: Lab, name: str) -> tuple[float, float]:
    address = lab.node(name).address
    start = time.monotonic()
    lab.power(name, "off", wait=False)
    off = time.monotonic() - start + _time_until(lambda: not ssh_banner(address, 0.2))
    start = time.monotonic()
    lab.power(name, "on", wait=False)
    on = time.monotonic() - start + _time_until(lambda: ssh_banner(address, 0.5))
    return off, on


def _fence_off_seconds(lab: Lab) -> float:
    """fence_ipmilan off with power_wait=0, run on node1 against node3's BMC."""
    stdin = lab.bmc("node3").fence_stdin("off", power_wait="0")
    start = time.monotonic()
    proc = lab.exec("node1", ["fence_ipmilan"], input=stdin, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"fence_ipmilan off failed: rc {proc.returncode}")
    lab.power("node3", "on")
    return seconds


def main() -> str:
    spec = LabSpec.create(PREFIX, NODES, SUBNET)
    teardown(spec)
    built_now = lab_image.cached_image() is None
    start = time.monotonic()
    lab_image.ensure_image()
    build_s = time.monotonic() - start if built_now else lab_image.image_meta()["build_seconds"]
    up_times, rss, offs, ons, fences = [], [], [], [], []
    try:
        for run in range(RUNS):
            start = time.monotonic()
            lab = Lab.up(nodes=NODES, prefix=PREFIX, subnet=SUBNET, progress=lambda _m: None)
            up_times.append(time.monotonic() - start)
            if run < RUNS - 1:
                lab.down()
        time.sleep(10)  # let the nodes settle before measuring idle memory (a measurement)
        rss = [lab.node_rss_mb(n.name) for n in lab.nodes]
        for _ in range(RUNS):
            off, on = _power_cycle(lab, "node2")
            offs.append(off)
            ons.append(on)
            lab.wait_for(lambda: lab.ssh_ok("node2"), 60, "node2 back")
        for _ in range(RUNS):
            fences.append(_fence_off_seconds(lab))
    finally:
        teardown(spec)
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    lines = [
        "## Lab",
        "",
        (f"Measured by `tests/bench/bench_lab.py` on this host ({cores} cores), "
        f"{NODES} nodes."),
        "",
        "| figure | value | target |",
        "|---|---|---|",
        (f"| first image build (debootstrap + pinned packages) | {build_s:.1f} s"
        f"{' (this run)' if built_now else ' (recorded at build)'} | < 180 s |"),
        (f"| lab up, {NODES} nodes, cached image (to every sshd answering) | "
        f"{_fmt(up_times)} | < 30 s |"),
        (f"| idle RSS per node (all processes of the container) | "
        f"{_fmt(rss, 'MB')} | < 80 MB |"),
        f"| power off via BMC (ipmitool) -> sshd unreachable | {_fmt(offs)} | |",
        f"| power on via BMC (ipmitool) -> sshd answering | {_fmt(ons)} | |",
        f"| fence_ipmilan off (power_wait=0), run on a node | {_fmt(fences)} | |",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    return section


if __name__ == "__main__":
    main()
    sys.exit(0)
