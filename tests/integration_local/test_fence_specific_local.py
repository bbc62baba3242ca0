"""Issue 11 regressions on three real clusterd processes on loopback (no lab).

1. A stale fence record never starts a service its hung owner still runs: web on node 1,
   node 1 was fenced once before (a completed record in every survivor's state dir); then
   node 1's BMC dies and its clusterd hangs (SIGSTOP: the service keeps "running"), node 2
   goes down (node 3 alone is inquorate) and comes back with its state dir. The service
   must stay on node 1 alone until a fence issued for *this* failure succeeds; then it
   comes back on a survivor, after that fence.
2. No escape from a fence: a node paused past the token while its BMC is dead is dropped,
   reappears with the same incarnation, and is still fenced once the BMC answers.

The "run" directory is the ground truth of where the service runs (the test LSB script
writes it; the fake fence agent's ``off`` removes the victim's files, as a power cut
would). Sampled on every poll: never two holders.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from localcluster_harness import wait_until
from test_services_local import ServiceCluster, cluster, formed  # noqa: F401 - fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusterd needs root (authkey "
                                "owned by root, control socket)")


class Holders:
    """Samples the service's holders on every probe; remembers every sample."""

    def __init__(self, c: ServiceCluster) -> None:
        self.c = c
        self.samples: list[tuple[float, list[str]]] = []

    def sample(self) -> list[str]:
        now = self.c.running_on()
        self.samples.append((time.time(), now))
        return now

    def doubled(self) -> list[tuple[float, list[str]]]:
        return [s for s in self.samples if len(s[1]) > 1]

    def watch(self, seconds: float) -> None:
        """Sample for ``seconds`` (observing, not waiting for a state)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sample()
            time.sleep(0.05)


def _dead_bmc(c: ServiceCluster, addr: str, dead: bool) -> None:
    flag = c.root / f"deadbmc.{addr}"
    if dead:
        flag.touch()
    else:
        flag.unlink(missing_ok=True)


def _fence_calls(c: ServiceCluster, addr: str) -> list[dict]:
    return [f for f in c.fence_log() if f["port"] == addr and f["action"] in ("off", "reboot")]


def _node1_fenced_once_then_owner_again(c: ServiceCluster) -> None:
    n1, n2, n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    c.signal(n1, signal.SIGKILL)
    wait_until("web on node 2 after node 1's fence", lambda: c.started_on(n3, n2.addr),
               timeout=30)
    assert _fence_calls(c, n1.addr), "node 1 was never fenced"
    c.start(n1)
    wait_until("node 1 back", lambda: c.members_online(n2))
    # right after a rejoin the coordinator may answer "try again" until every member
    # reported: retried like an operator would
    wait_until("relocation to node 1 accepted",
               lambda: c.clusvcadm(n2, "-r", "web", "-m", n1.addr).returncode == 0,
               timeout=30, interval=1.0)
    wait_until("web back on node 1", lambda: c.started_on(n3, n1.addr), timeout=30)


def test_a_stale_fence_record_never_starts_a_service_its_hung_owner_runs(cluster):  # noqa: F811
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, n3 = c.nodes
    _node1_fenced_once_then_owner_again(c)
    holders = Holders(c)
    try:
        _dead_bmc(c, n1.addr, True)
        c.signal(n1, signal.SIGSTOP)            # hung: its service keeps running
        c.signal(n2, signal.SIGKILL)            # node 2 goes down; node 3 is alone
        n2.proc.wait(timeout=10)
        wait_until("node 3 inquorate", lambda: "Inquorate" in n3.clustat().stdout
                   or n3.clustat().returncode != 0, timeout=15)
        holders.watch(2.0)
        c.start(n2)                             # same state dir: the old record is read
        wait_until("node 2 and node 3 quorate together",
                   lambda: "Member Status: Quorate" in n2.clustat().stdout, timeout=30)
        dead_before = len([f for f in _fence_calls(c, n1.addr) if f.get("dead_bmc")])
        wait_until("a fence of node 1 tried through the dead BMC",
                   lambda: len([f for f in _fence_calls(c, n1.addr)
                                if f.get("dead_bmc")]) > dead_before, timeout=30)
        holders.watch(8.0)                      # longer than post_join_delay (6 s)
        assert holders.doubled() == [], holders.doubled()[:5]
        assert c.running_on() == [n1.addr], "web moved while its hung owner was unfenced"
        s = c.service(n2)
        assert s is not None and s["owner"] in (n1.addr, None), s
        _dead_bmc(c, n1.addr, False)            # the BMC answers again
        wait_until("web recovered on a survivor after node 1's fence",
                   lambda: holders.sample() in ([n2.addr], [n3.addr]), timeout=60)
    finally:
        c.signal(n1, signal.SIGCONT)
    fenced = [f["t"] for f in _fence_calls(c, n1.addr) if not f.get("dead_bmc")]
    assert fenced
    # the agent logs its start after the service answers: poll for the line, then check
    # that no survivor started web between the earlier fence and this failure's fence
    wait_until("the survivor's start in the app log", lambda: [
        t for t, what, node in c.app_log() if what == "start" and node != n1.addr
        and t > fenced[-1]], timeout=30)
    log = c.app_log()
    back = max(t for t, what, node in log if what == "start" and node == n1.addr)
    early = [t for t, what, node in log if what == "start" and node != n1.addr
             and back < t < fenced[-1]]       # after web was node 1's again, before its fence
    assert early == [], (fenced, early)
    assert holders.doubled() == [], holders.doubled()[:5]


def test_a_paused_node_that_reappears_unreset_is_still_fenced(cluster):  # noqa: F811
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    _dead_bmc(c, n3.addr, True)
    c.signal(n3, signal.SIGSTOP)
    try:
        wait_until("a fence of node 3 tried through the dead BMC",
                   lambda: any(f.get("dead_bmc") for f in _fence_calls(c, n3.addr)),
                   timeout=30)
    finally:
        c.signal(n3, signal.SIGCONT)            # back, never reset: same incarnation
    wait_until("node 3 back as a member", lambda: c.members_online(n1), timeout=30)
    _dead_bmc(c, n3.addr, False)
    wait_until("node 3 fenced although it came back",
               lambda: any(not f.get("dead_bmc") for f in _fence_calls(c, n3.addr)),
               timeout=60)
    text = n1.log.read_text() + n2.log.read_text()
    assert "rejoined with a new incarnation" not in text, text[-3000:]
