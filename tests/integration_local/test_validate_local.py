"""Three real clusterd processes on loopback: proposing a 1 MiB cluster.conf never
delays heartbeats (issue 12, item 6: validation runs off the event loop).

Capabilities, with deadlines (never fixed sleeps, no timing assertions):
  When a 1 MiB config with 20,000 problems is proposed on one node, Then it is refused
  with every problem listed, the running config stays, and no node's membership changes
  (same view epoch, members and incarnations on every node, all quorate).
  When a valid config of about 1 MiB is proposed, Then every node pulls, validates and
  applies it (same sha256 everywhere), and again no membership changes. (Its bulk is
  failover domains; with 8,000 services instead, 8x the tested limit, loading them and
  the services cycles on the loop can still hold it past the token on a loaded machine:
  that test is marked xfail, with the reason.)
The token is 1 s: a loop held for longer would make peers suspect the proposing node.
The longest control-socket round trip during each proposal is printed (``LoopProbe``).
Needs root (the daemon requires a root-owned authkey), not the lab.
"""

from __future__ import annotations

import os

import pytest
from bigconf import MAX_BYTES, LoopProbe, big_conf
from localcluster_harness import LocalCluster, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusterd needs root (authkey "
                                "owned by root, control socket)")

PROBLEMS = 20_000


def formed(c: LocalCluster) -> None:
    c.start_all()
    for node in c.nodes:
        wait_until(f"{node.addr}: clustat shows 3 members Online and Quorate",
                   lambda node=node: c.members_online(node))


def membership(c: LocalCluster) -> list[tuple]:
    """Per node: view epoch, members, quorate, and every node's incarnation."""
    out = []
    for node in c.nodes:
        doc = node.status()
        out.append((doc["view"]["epoch"], tuple(doc["view"]["members"]),
                    doc["quorum"]["quorate"], doc["local"]["incarnation"]))
    return out


def settled(c: LocalCluster) -> list[tuple]:
    """The membership once every node agrees on one view of all three, quorate."""
    def agreed():
        seen = membership(c)
        ok = len({(e, m) for e, m, _q, _i in seen}) == 1 and all(
            len(m) == 3 and q for _e, m, q, _i in seen)
        return ok and seen
    return wait_until("one quorate view of 3 members on every node", agreed)


def test_a_1mib_proposal_with_20000_problems_is_refused_without_a_membership_change(cluster):
    c = cluster
    formed(c)
    n1 = c.nodes[0]
    before = settled(c)
    bad = big_conf(2, c.addrs, c.port, size=MAX_BYTES, problems=PROBLEMS)
    assert MAX_BYTES - 4096 < len(bad) <= MAX_BYTES
    path = c.root / "bad.conf"
    path.write_bytes(bad)

    with LoopProbe(n1.sock) as probe:
        out = n1.admin("conf", "propose", str(path))
    print(f"refused 1 MiB / {PROBLEMS} problems: longest control round trip on the "
          f"proposing node {probe.longest:.3f}s over {probe.count} probes")

    assert out.returncode == 5, out.stderr[:500]
    assert "proposed cluster.conf is invalid" in out.stderr
    assert out.stderr.count("attribute 'bogus' is not allowed on <service>") == PROBLEMS
    assert probe.error is None and probe.count > 0
    assert membership(c) == before, "a node's membership changed during the proposal"
    for node in c.nodes:
        assert node.status()["cluster"]["config_version"] == 1
        assert b'config_version="1"' in node.conf.read_bytes()


def propose_valid(c: LocalCluster, bulk: str) -> tuple[list[tuple], LoopProbe]:
    """Propose a valid ~1 MiB config_version 2 on node 1 and wait until every node runs
    it; the membership before, and the probe of node 1's loop during all of it."""
    formed(c)
    n1 = c.nodes[0]
    before = settled(c)
    path = c.root / "good.conf"
    path.write_bytes(big_conf(2, c.addrs, c.port, size=MAX_BYTES - 1024, bulk=bulk))

    def all_hold_v2():
        docs = [n.status()["cluster"] for n in c.nodes]
        same = {(d["config_version"], d["config_sha256"]) for d in docs}
        files = {n.conf.read_bytes() for n in c.nodes}
        return (len(same) == 1 and docs[0]["config_version"] == 2 and len(files) == 1
                and b'config_version="2"' in files.pop() and docs)

    with LoopProbe(n1.sock) as probe:
        out = n1.admin("conf", "propose", str(path))
        assert out.returncode == 0, out.stderr[:2000]
        assert "config_version 1 -> 2 accepted" in out.stdout
        wait_until("every node pulled, validated and applied config_version 2",
                   all_hold_v2, timeout=120, interval=0.5)
    print(f"applied ~1 MiB of {bulk}: longest control round trip on the proposing node "
          f"{probe.longest:.3f}s over {probe.count} probes")
    assert probe.error is None and probe.count > 0
    return before, probe


def test_a_valid_1mib_proposal_is_applied_everywhere_without_a_membership_change(cluster):
    """The bulk is failover domains, which the services layer applies in well under a
    token: what is measured is proposing, pulling and validating 1 MiB."""
    before, _probe = propose_valid(cluster, "domains")
    assert membership(cluster) == before, "a node's membership changed during the proposal"


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason=(
    "8,000 services is 8x the tested 1,000 (conf/limits.py): on a quiet machine this "
    "passes (longest control round trip 0.86-1.1 s, no membership change, 2026-12-07), "
    "but under a CI load the loop can still be held past the 1 s token: loading 8,000 "
    "services' agents (ServicesGlue.on_conf, Executor.load, about 0.5 s of CPU) and each "
    "services cycle (0.1-0.3 s of CPU at 8,000 services; a cycle of 20 ms or more now "
    "rests as long before the next) run on the loop; not validation"))
def test_a_valid_1mib_proposal_of_services_changes_no_membership(cluster):
    before, _probe = propose_valid(cluster, "services")
    assert membership(cluster) == before, "a node's membership changed during the proposal"
