"""A four-node cluster split 2|2 with a quorum disk (issue 16 item 5), on a lab of its own
(4 nodes, prefix rhcw, 198.18.12.0/24; RHC_QDISK4_PREFIX/SUBNET move it): every node one
vote, the disk three (expected 7, quorum 4), one heuristic per node (fit unless
/run/qd-fail exists), web on an ordered domain, the real daemon and fence_ipmilan:

  split {node1, node2} | {node3, node4}: the half with the disk's master (node1, the
  lowest fit node) stays quorate (2 + 3 votes), fences node3 and node4 and runs web; the
  other half fences nobody;
  node1's and node2's heuristics fail: node3 takes the disk; split again: now
  {node3, node4} wins, fences node1 and node2 and runs web.

Polls with deadlines; asserts no timings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from clusterlab import Lab
from test_qdisk_lab import CHECK, DEVICE, QdiskLab
from test_services_lab import PORT, SvcLab

pytestmark = pytest.mark.lab

PREFIX = os.environ.get("RHC_QDISK4_PREFIX", "rhcw")
SUBNET = os.environ.get("RHC_QDISK4_SUBNET", "198.18.12.0/24")


class Qdisk4Lab(QdiskLab):
    def __init__(self, lab: Lab) -> None:
        SvcLab.__init__(self, lab)            # all four nodes
        prefix = int(lab.spec.subnet.split("/")[1])
        conf = self._conf(prefix)
        cman = f'<cman port="{PORT}"/>'
        assert cman in conf, "SvcLab's cluster.conf changed shape; adapt the qdisk edit"
        self.conf = conf.replace(cman, f'{cman}<quorumd device="{DEVICE}" interval="1" '
                                 f'tko="4" votes="3"><heuristic program="{CHECK}" score="1" '
                                 f'interval="1"/></quorumd>').replace(
            "<fence_daemon ", '<fence_daemon post_join_delay="60" ', 1)

    def all_members(self) -> None:
        self.wait("all four members of one quorate view", lambda: all(
            (d := self.doc(n)) is not None and d["view"]["members"] == [1, 2, 3, 4]
            and d["quorum"]["quorate"] for n in self.names), timeout=120)

    def split(self, winners: list[str], losers: list[str]) -> None:
        since = time.time()
        for name in winners:
            self.lab.partition(name, peers=losers)
        acted: list[str] = []

        def settled() -> bool:
            for w in winners:
                if not self.lab.is_on(w):
                    acted.append(f"{w} was powered off")
            for loser in losers:
                if self.lab.is_on(loser):
                    for w in winners:
                        f = self.fence(loser, w)
                        if f.get("state") in ("running", "done") and \
                                (f.get("since") or 0) >= since - 1:
                            acted.append(f"{loser} fenced {w}: {f}")
            done = [self.fence(winners[0], loser) for loser in losers]
            return bool(acted) or all(f.get("state") == "done"
                                      and (f.get("finished") or 0) >= since - 1 for f in done)
        self.wait(f"{', '.join(winners)} fenced {', '.join(losers)}", settled, timeout=180)
        assert not acted, acted
        self.wait(f"web answering from {' or '.join(winners)}",
                  lambda: self.answer() in winners, timeout=120)
        d = self.doc(winners[0])
        assert d["quorum"]["quorate"] and d["quorum"]["votes"] == 5, d["quorum"]
        assert d["view"]["members"] == sorted(int(w[-1]) for w in winners)
        assert set(self.holders()) <= set(winners)
        for w in winners:
            lost = [t for t in self.journal_unix(w, "NOT quorate") if t >= since - 1]
            assert not lost, f"{w} reported a loss of quorum at {lost}"
        for w in winners:
            self.lab.heal(w)
        for loser in losers:
            self.bring_back(loser)
        self.all_members()


@pytest.fixture(scope="module")
def qd4() -> Iterator[Qdisk4Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab.up(nodes=4, prefix=PREFIX, subnet=SUBNET)
    try:
        s = Qdisk4Lab(lab)
        s.install()
        for name in s.names:
            s.start(name)
        yield s
    finally:
        lab.down()


def test_a_two_two_split_leaves_the_half_with_the_disk_quorate(qd4: Qdisk4Lab) -> None:
    n1, n2, n3, n4 = qd4.names
    qd4.all_members()
    qd4.wait("node1 the disk's master, its votes counted everywhere", lambda: all(
        (q := qd4.qdisk(n)).get("master") == n1 and q.get("granted") for n in qd4.names),
        timeout=90)
    out = qd4.cli(n3, "cman_tool", "status")
    assert "Expected votes: 7\nQuorum device votes: 3\nTotal votes: 7\n" in out.stdout
    qd4.wait("web started", lambda: qd4.answer() in qd4.names, timeout=120)
    qd4.split([n1, n2], [n3, n4])


def test_with_its_heuristics_failing_the_other_half_takes_the_disk_and_wins(
        qd4: Qdisk4Lab) -> None:
    n1, n2, n3, n4 = qd4.names
    qd4.all_members()
    for name in (n1, n2):
        qd4.lab.exec(name, ["touch", "/run/qd-fail"])
    qd4.wait("node3 the disk's master, counted on node3 and node4 only", lambda: all(
        (q := qd4.qdisk(n)).get("master") == n3 and q.get("granted") == (n in (n3, n4))
        for n in qd4.names), timeout=90)
    qd4.split([n3, n4], [n1, n2])
