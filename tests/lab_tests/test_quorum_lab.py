"""Restoring quorum by hand on the lab (issue 16, item 4), with the real daemon on the
shared 3-node lab (the services test's deployment, SvcLab) and the real fence_ipmilan:

  web runs on node1; node2 and node3 are powered off through their BMCs: node1 alone is
  inquorate, stops web and fences nobody (no fencing without quorum);
  ``cman_tool expected -e 1`` on node1: it is quorate again, fences node2 and node3 (the
  off of each confirmed by its BMC) and web answers from node1 through the floating
  address again; ``cman_tool status`` shows expected votes 1 and quorum 1;
  node2 and node3 back, their daemons started: every node is a member of a quorate view;
  ``cman_tool expected -e 2`` on node1 reaches the two others (every member shows it,
  set by node1), and the next config change ends it everywhere (expected votes 3,
  quorum 2, no override line).

Polls with deadlines (SvcLab.wait), asserts no timings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from clusterlab import Lab
from test_services_lab import REMOTE, UNIT, SvcLab, deployed

pytestmark = pytest.mark.lab


def status(s: SvcLab, via: str) -> dict | None:
    out = s.cli(via, "clustat", "--format", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def quorate(s: SvcLab, via: str) -> bool | None:
    doc = status(s, via)
    return doc["quorum"]["quorate"] if doc else None


def fence_op(s: SvcLab, via: str, victim: str) -> dict:
    doc = status(s, via) or {}
    return next((f for f in doc.get("fencing", ()) if f["node"] == victim), {})


def cman_status(s: SvcLab, via: str) -> str:
    out = s.cli(via, "cman_tool", "status")
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def recover(s: SvcLab, name: str) -> None:
    """A node the cluster fenced (powered off, or rebooted: fence_ipmilan's default) back
    with the test's daemon, which does not start at boot (test_database_lab's pattern)."""
    if not s.lab.is_on(name):
        s.lab.power(name, "on")
    s.lab.heal(name)
    s.lab.wait_ready(name, timeout=120)
    active = s.lab.exec(name, ["systemctl", "is-active", "--quiet", UNIT], check=False)
    if active.returncode != 0:
        s.stop(name)                  # a failed unit of the earlier boot, if any
        s.start(name)


@pytest.fixture(scope="module")
def qsvc(lab: Lab) -> Iterator[SvcLab]:
    with deployed(lab, web_on_node1=True) as s:   # restore(lab) and stop on teardown
        yield s


def test_expected_1_on_the_survivor_restores_quorum_fencing_and_web(qsvc: SvcLab) -> None:
    s = qsvc
    n1, n2, n3 = s.names
    s.wait("web answering from node1", lambda: s.owner(n1) == n1 and s.answer() == n1,
           timeout=120)
    for name in (n2, n3):
        s.lab.power(name, "off")
    s.wait("node1 alone, inquorate, web stopped",
           lambda: (doc := status(s, n1)) is not None and doc["view"]["members"] == [1]
           and not doc["quorum"]["quorate"] and not s.holders() and s.answer() != n1,
           timeout=60)
    text = cman_status(s, n1)
    assert "Nodes: 1\nExpected votes: 3\nTotal votes: 1\n" in text
    assert "Quorum: 2 Activity blocked\n" in text
    assert fence_op(s, n1, n3).get("state") != "done", "fenced node3 without quorum"
    assert s.lab.power(n3, "status") == "off"

    set_at = time.time()
    out = s.cli(n1, "cman_tool", "expected", "-e", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Expected votes: 1 (was 3, cluster.conf 3); quorum 1")
    assert "WARNING" in out.stderr
    s.wait("node1 quorate", lambda: quorate(s, n1) is True, timeout=30)
    for victim in (n2, n3):
        s.wait(f"{victim} fenced by node1",
               lambda v=victim: fence_op(s, n1, v).get("state") == "done", timeout=90)
    # node3 went down last: only the override let it be fenced (the off confirmed by its
    # BMC is what makes fence_ipmilan succeed)
    assert fence_op(s, n1, n3)["finished"] >= set_at - 1

    def logged(needle: str) -> list[float]:
        return [t for t in s.journal_unix(n1, needle) if t >= set_at - 1]
    # the agent's line comes once the whole method ran (the power-on half of the reboot
    # too), after the fence counted as done; the journal may lag a little more
    s.wait(f"node1's journal: {n3} fenced", lambda: logged(f"fenced {n3} with method"))
    s.wait("web answering from node1 again", lambda: s.answer() == n1 and s.holders() == [n1],
           timeout=120)
    text = cman_status(s, n1)
    assert "Nodes: 1\nExpected votes: 1\nTotal votes: 1\nNode votes: 1\nQuorum: 1  \n" in text
    assert ("Expected votes override: 1 (cluster.conf: 3), set by uid 0 on node1, until the "
            "next config change\n") in text
    s.wait("node1's journal: the override, loudly", lambda: logged(
        "EXPECTED VOTES SET BY HAND to 1 by uid 0 on node1 (was 3, cluster.conf 3)"))


def test_back_to_three_members_agree_and_a_config_change_ends_the_override(
        qsvc: SvcLab) -> None:
    s = qsvc
    n1, n2, n3 = s.names
    for name in (n2, n3):
        recover(s, name)
    for name in s.names:
        s.wait(f"{name} a member of a quorate view of three",
               lambda v=name: len(s.members(v)) == 3 and quorate(s, v), timeout=120)

    out = s.cli(n1, "cman_tool", "expected", "-e", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Sent to the other members: node2, node3\n" in out.stdout

    def override(via: str) -> dict | None:
        doc = status(s, via)
        return doc["quorum"]["override"] if doc else None
    for name in s.names:
        s.wait(f"{name} runs expected votes 2 set on node1",
               lambda v=name: (override(v) or {}).get("expected_votes") == 2, timeout=30)
        text = cman_status(s, name)
        assert "Nodes: 3\nExpected votes: 2\nTotal votes: 3\nNode votes: 1\nQuorum: 2  \n" \
            in text
    assert override(n2)["origin"] == "uid 0 on node1 (via node 1)"
    s.wait("every member confirmed it", lambda: override(n1)["unconfirmed"] == [],
           timeout=30)

    # the next config change (the same file, config_version 2) brings expected votes 3
    # back on every member
    conf = s.conf.replace('config_version="1"', 'config_version="2"')
    s.lab.exec(n1, ["sh", "-c", f"cat > {REMOTE}/cluster.conf.v2"], input=conf)
    out = s.cli(n1, "clusterd", "conf", "propose", f"{REMOTE}/cluster.conf.v2")
    assert out.returncode == 0, out.stdout + out.stderr
    for name in s.names:
        s.wait(f"{name} back on cluster.conf's expected votes",
               lambda v=name: (d := status(s, v)) is not None
               and d["cluster"]["config_version"] == 2 and d["quorum"]["override"] is None
               and d["quorum"]["expected_votes"] == 3, timeout=60)
        text = cman_status(s, name)
        assert "Config Version: 2\n" in text and "Expected votes: 3\n" in text
        assert "Quorum: 2  \n" in text and "override" not in text
    nodes = s.cli(n1, "cman_tool", "nodes")
    assert nodes.returncode == 0 and nodes.stdout.startswith(
        "Node  Sts   Inc   Joined               Name\n")
    assert [line.split()[1] for line in nodes.stdout.splitlines()[1:]] == ["M", "M", "M"]
