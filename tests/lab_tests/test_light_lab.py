"""Light lab nodes (a network namespace plus one clusterd, docs/lab-light.md): 10 come up and
form one view; a node powered off (its daemon SIGKILLed) leaves a view the rest agree on and
comes back; a partitioned node is cut off and heals; `cluster-lab down` leaves nothing, also
after an `up` killed midway. A slow test brings 100 up and waits for one agreed view.

Own lab: prefix rhcx, subnet 198.18.24.0/24 (RHC_LIGHT_PREFIX / RHC_LIGHT_SUBNET move it);
every other lab on the host is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterlab import LabError
from clusterlab.light import LightLab, LightSpec
from clusterlab.procs import ProcRef, wait_for
from clusterlab.teardown import leftovers

pytestmark = pytest.mark.lab
CLI = str(Path(sys.executable).parent / "cluster-lab")
PREFIX = os.environ.get("RHC_LIGHT_PREFIX", "rhcx")
SUBNET = os.environ.get("RHC_LIGHT_SUBNET", "198.18.24.0/24")
NODES = 10


def _cli(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "--prefix", PREFIX, *argv], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _traces(prefix: str) -> list[str]:
    """Independent check with the system's tools: anything of the lab still there."""
    found = []
    out = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True).stdout
    found += [f"netns {x.split()[0]}" for x in out.splitlines() if x.startswith(prefix + "-")]
    out = subprocess.run(["ip", "-o", "link"], check=False, capture_output=True, text=True).stdout
    found += [f"link {x.split(':')[1].strip()}" for x in out.splitlines()
              if x.split(":")[1].strip().startswith(prefix + "-")]
    out = subprocess.run(["ps", "-wweo", "pid,args"], check=False, capture_output=True, text=True).stdout
    found += [f"process {x.strip()}" for x in out.splitlines() if f"/run/{prefix}-lab/" in x]
    found += [f"dir {d}" for d in (f"/run/{prefix}-lab",) if os.path.exists(d)]
    return found


@pytest.fixture(scope="module")
def light() -> Iterator[LightLab]:
    if os.geteuid() != 0:
        pytest.skip("the light lab needs root (network namespaces)")
    _cli("down")
    proc = _cli("up", "--light", "-n", str(NODES), "--subnet", SUBNET)
    try:
        assert proc.returncode == 0, proc.stderr
        assert "one view (epoch" in proc.stdout and f"of all {NODES} nodes" in proc.stdout
        yield LightLab.load(PREFIX)
    finally:
        _cli("down")


def test_ten_light_nodes_form_one_view(light: LightLab) -> None:
    view = light.agreed()
    assert view is not None and view[1] == tuple(range(1, NODES + 1))
    pids = [light.pid(n.name) for n in light.nodes]
    assert all(pids) and len(set(pids)) == NODES
    # each daemon lives in its own namespace, with the node's address
    for n in light.nodes[:3]:
        ns = os.stat(f"/run/netns/{n.netns}").st_ino
        assert os.stat(f"/proc/{light.pid(n.name)}/ns/net").st_ino == ns
        assert n.address in light.exec(n.name, ["ip", "-br", "addr"]).stdout
    status = _cli("status", "--json")
    assert status.returncode == 0 and f'"members": {NODES}' in status.stdout


def test_power_off_is_a_crash_and_the_rest_agree(light: LightLab) -> None:
    victim = light.node("l7")
    pid = light.pid(victim.name)
    assert pid
    ref = ProcRef.of(pid)
    out = _cli("power", victim.name, "off")
    assert out.returncode == 0 and out.stdout.strip() == "l7: off"
    assert not ref.alive()
    assert _cli("power", victim.name, "status").stdout.strip() == "l7: off"
    rest = [n.name for n in light.nodes if n.index != victim.index]
    view = light.wait_agreed(rest, timeout=20)
    assert victim.index not in view[1] and len(view[1]) == NODES - 1
    out = _cli("power", victim.name, "on")
    assert out.returncode == 0, out.stderr
    assert light.pid(victim.name) not in (None, pid)
    light.wait_agreed(timeout=30)


def test_partition_and_heal(light: LightLab) -> None:
    out = _cli("partition", "l3")
    assert out.returncode == 0 and f"from {NODES - 1} nodes" in out.stdout
    rest = [n.name for n in light.nodes if n.name != "l3"]
    view = light.wait_agreed(rest, timeout=20)
    assert 3 not in view[1]
    wait_for(lambda: light.view("l3") and light.view("l3")[1] == (3,), 20,
             "l3 to see itself alone")
    assert _cli("heal", "l3").stdout.strip() == "l3: healed"
    light.wait_agreed(timeout=30)


def test_bmc_commands_are_refused_on_light_nodes(light: LightLab) -> None:
    out = _cli("bmc", "l1", "status")
    assert out.returncode == 2 and "no BMC" in out.stderr


def test_down_removes_everything(light: LightLab) -> None:
    pids = [light.pid(n.name) for n in light.nodes]
    out = _cli("down")
    assert out.returncode == 0, out.stderr
    assert not [p for p in pids if p and os.path.exists(f"/proc/{p}")
                and Path(f"/proc/{p}/cmdline").read_bytes()]
    assert _traces(PREFIX) == []
    assert not any(leftovers(LightSpec.create(PREFIX, 1, SUBNET).base).values())


def test_down_after_an_up_killed_midway() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    _cli("down")
    up = subprocess.Popen([CLI, "--prefix", PREFIX, "up", "--light", "-n", "6", "--subnet",
                           SUBNET], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        # killed once some daemons run, before `up` waited for them
        wait_for(lambda: any("clusterd.cli.clusterd" in x and f"/run/{PREFIX}-lab/" in x
                             for x in subprocess.run(["ps", "-wweo", "args"], check=False,
                                                     capture_output=True, text=True
                                                     ).stdout.splitlines()),
                 30, "a light daemon to start", interval=0.02)
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait(10)
    assert _traces(PREFIX), "nothing was made before the kill"
    out = _cli("down")
    assert out.returncode == 0, out.stderr
    assert _traces(PREFIX) == []


@pytest.mark.slow
def test_hundred_light_nodes_form_one_view() -> None:
    """100 daemons run side by side and answer; one agreed view of all of them is expected
    once membership's per-node load stops growing with the cluster (issue 18 item 1). With
    today's all-to-all heartbeats and the default token both cores saturate and views churn
    (docs/benchmarks.md, Scale), or the daemons started last cannot even answer their
    control socket: then the test xfails with what it saw."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    _cli("down")
    started = time.monotonic()
    try:
        try:
            lab = LightLab.up(100, PREFIX, SUBNET)
        except LabError as exc:  # the daemons running starve the ones starting
            if "control sockets to answer" not in str(exc):
                raise
            pytest.xfail(f"100 daemons could not all start: {exc}")
        assert all(lab.pid(n.name) for n in lab.nodes)
        print(f"100 light daemons answering after {time.monotonic() - started:.1f} s")
        try:
            view = lab.wait_agreed(timeout=120)
        except LabError:
            seen = Counter((v[0], len(v[1])) if v else None for v in lab.views().values())
            pytest.xfail(f"no agreed view of 100 within 120 s: (epoch, size) -> daemons "
                         f"{dict(seen.most_common(5))}")
        assert len(view[1]) == 100
        print(f"100 light nodes: one agreed view (epoch {view[0]}) after "
              f"{time.monotonic() - started:.1f} s")
    finally:
        _cli("down", timeout=300)
        assert _traces(PREFIX) == []
