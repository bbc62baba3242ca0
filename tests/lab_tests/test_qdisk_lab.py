"""The quorum disk on the lab (issue 16, items 5 and 6): a two-node cluster (node1, node2
of the shared lab; node3 stays out) with qdisk(5)'s tie-breaker settings, two_node="0",
expected_votes="3" and ``<quorumd device="/dev/cluster-qdisk0" votes="1">`` with one
heuristic (a root-owned script that fails while /run/qd-fail exists), on the real daemon,
the lab's quorum disk (one loop device per node on one file) and real fence_ipmilan:

  both up: node1 (the lower node id) is the disk's master, both nodes count its vote
  (clustat shows the disk Online, cman_tool status 3 total votes);
  node1|node2 partitioned: node1, which holds the disk and passes its heuristic, stays
  quorate and fences node2; node2 fences nobody; web answers from node1;
  node1's heuristic fails: it steps down and node2 becomes master; partitioned again:
  now node2 survives, fences node1 and runs web;
  node2's path to the disk cut (its writes fail): it loses the master and the disk's vote,
  node1 becomes master; partitioned: node1 survives.
  Bad input: a heuristic that is not a trusted executable is refused before anything runs.

Polls with deadlines (SvcLab.wait); asserts no timings.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from clusterlab import Lab
from test_services_lab import PORT, REMOTE, UNIT, SvcLab

pytestmark = pytest.mark.lab

DEVICE = "/dev/cluster-qdisk0"
CHECK = "/usr/local/sbin/qd-check"
CHECK_SCRIPT = "#!/bin/sh\n# the lab's quorum disk heuristic: fit unless /run/qd-fail exists\n" \
               "[ ! -e /run/qd-fail ]\n"


class QdiskLab(SvcLab):
    """SvcLab on node1 and node2 only, with the quorum disk as the tie-breaker."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.names = self.names[:2]
        prefix = int(self.lab.spec.subnet.split("/")[1])
        conf = self._conf(prefix)
        cman = f'<cman port="{PORT}"/>'
        assert cman in conf, "SvcLab's cluster.conf changed shape; adapt the qdisk edit"
        conf = conf.replace(cman, f'<cman port="{PORT}" two_node="0" expected_votes="3"/>'
                            f'<quorumd device="{DEVICE}" interval="1" tko="4" votes="1">'
                            f'<heuristic program="{CHECK}" score="1" interval="1"/></quorumd>')
        # a daemon that starts more than post_join_delay after its peer is fenced at
        # startup, as in RHCS: this module tests the quorum disk, not that race
        fd = re.search(r"<fence_daemon ", conf)
        assert fd, "SvcLab's cluster.conf has no <fence_daemon>; adapt the qdisk edit"
        self.conf = conf.replace(fd.group(0), '<fence_daemon post_join_delay="60" ', 1)

    def install(self) -> None:
        super().install()
        for name in self.names:
            script = f"cat > {CHECK} && chmod 0755 {CHECK} && rm -f /run/qd-fail"
            self.lab.exec(name, ["sh", "-c", script], input=CHECK_SCRIPT)
        out = self.cli(self.names[0], "mkqdisk", "-c", DEVICE, "-l", "labqdisk", "--force")
        assert out.returncode == 0, out.stdout + out.stderr

    def cli(self, name, module, *args):
        if module in ("mkqdisk", "ccs_config_validate"):   # no control socket
            return self.lab.exec(name, ["env", f"PYTHONPATH={REMOTE}", "python3", "-m",
                                        f"clusterd.cli.{module}", *args], check=False)
        return super().cli(name, module, *args)

    def doc(self, via: str) -> dict | None:
        out = self.cli(via, "clustat", "--format", "json")
        return json.loads(out.stdout) if out.returncode == 0 else None

    def qdisk(self, via: str) -> dict:
        return (self.doc(via) or {}).get("qdisk") or {}

    def fence(self, via: str, victim: str) -> dict:
        doc = self.doc(via) or {}
        return next((f for f in doc.get("fencing", ()) if f["node"] == victim), {})

    def bring_back(self, name: str) -> None:
        """A node the cluster fenced (rebooted) back with the test's daemon, which does
        not start at boot, and with the quorum disk reachable and its heuristic fit."""
        if not self.lab.is_on(name):
            self.lab.power(name, "on")
        self.lab.heal(name)
        self.lab.qdisk_path(name, True)
        self.lab.wait_ready(name, timeout=120)
        self.lab.exec(name, ["rm", "-f", "/run/qd-fail"])
        if self.lab.exec(name, ["systemctl", "is-active", "--quiet", UNIT],
                         check=False).returncode != 0:
            self.stop(name)
            self.start(name)

    def both_members(self) -> None:
        n1, n2 = self.names
        self.wait("both nodes members of one quorate view", lambda: all(
            (d := self.doc(n)) is not None and d["view"]["members"] == [1, 2]
            and d["quorum"]["quorate"] for n in (n1, n2)), timeout=120)

    def master_is(self, name: str, counted: tuple[str, ...] = ()) -> None:
        """``name`` is the master on both nodes' reading, and the disk's vote counts on
        the nodes ``counted`` (default both) and not on the other."""
        counted = counted or tuple(self.names)
        self.wait(f"{name} the quorum disk's master, its vote counted on "
                  f"{', '.join(counted)}", lambda: all(
                      (q := self.qdisk(n)).get("master") == name
                      and q.get("granted") == (n in counted) for n in self.names),
                  timeout=90)

    def partition_survivor(self, winner: str, loser: str, since: float) -> None:
        """Cut the two apart: ``winner`` stays on, quorate, fences ``loser`` and runs web;
        ``loser`` never acts as quorate: it fences nobody and web never runs on it after
        the cut (its reported flag may lag the exact answer by half a token: LOSS_GRACE)."""
        self.lab.partition(winner)
        acted: list[str] = []

        def settled() -> bool:
            if not self.lab.is_on(winner):
                acted.append(f"{winner} was powered off")
            if self.lab.is_on(loser):
                f = self.fence(loser, winner)
                if f.get("state") in ("running", "done") and (f.get("since") or 0) >= since - 1:
                    acted.append(f"{loser} fenced {winner}: {f}")
            f = self.fence(winner, loser)
            return bool(acted) or (f.get("state") == "done" and f.get("finished", 0) >= since - 1)
        self.wait(f"{winner} fenced {loser}", settled, timeout=120)
        assert not acted, acted
        self.wait(f"web answering from {winner}", lambda: self.answer() == winner, timeout=120)
        d = self.doc(winner)
        assert d["quorum"]["quorate"] and d["view"]["members"] == [int(winner[-1])]
        assert self.holders() == [winner] and self.lab.is_on(winner)
        # the master regrants the disk's vote for its new view at once: the winner never
        # lost quorum (which would have stopped web there)
        lost = [t for t in self.journal_unix(winner, "NOT quorate") if t >= since - 1]
        assert not lost, f"{winner} reported a loss of quorum at {lost}"
        self.lab.heal(winner)
        self.bring_back(loser)
        self.both_members()


@pytest.fixture(scope="module")
def qd(lab: Lab) -> Iterator[QdiskLab]:
    from lab_restore import restore
    restore(lab)
    s = QdiskLab(lab)
    s.install()
    for name in s.names:
        s.start(name)
    try:
        yield s
    finally:
        restore(lab)
        for name in s.names:
            s.lab.qdisk_path(name, True)
            s.stop(name)


def test_the_master_holds_the_disk_and_both_count_its_vote(qd: QdiskLab) -> None:
    n1, n2 = qd.names
    qd.both_members()
    qd.master_is(n1)
    out = qd.cli(n1, "cman_tool", "status")
    assert "Expected votes: 3\nQuorum device votes: 1\nTotal votes: 3\n" in out.stdout
    text = qd.cli(n2, "clustat").stdout
    assert re.search(rf"^ {re.escape(DEVICE)}\s+0 Online, Quorum Disk$", text, re.MULTILINE), text
    assert qd.qdisk(n2)["state"] == "available" and qd.qdisk(n1)["state"] == "master"
    qd.wait("web started on node1", lambda: qd.owner(n2) == n1, timeout=120)


def test_a_partition_leaves_the_disk_holder_quorate_and_the_other_fenced(qd: QdiskLab) -> None:
    n1, n2 = qd.names
    qd.both_members()
    qd.master_is(n1)
    qd.wait("web answering from node1", lambda: qd.answer() == n1, timeout=120)
    qd.partition_survivor(n1, n2, time.time())


def test_a_failed_heuristic_hands_the_disk_over_and_the_other_side_wins(qd: QdiskLab) -> None:
    n1, n2 = qd.names
    qd.both_members()
    qd.master_is(n1)
    qd.lab.exec(n1, ["touch", "/run/qd-fail"])
    qd.master_is(n2, counted=(n2,))      # node1, unfit, no longer counts the disk's vote
    q1 = qd.qdisk(n1)
    assert q1["score"] < q1["min_score"] and q1["state"] == "none"
    assert qd.doc(n1)["quorum"]["quorate"]     # both nodes' votes still make quorum
    qd.partition_survivor(n2, n1, time.time())


def test_a_node_that_loses_its_path_to_the_disk_loses_the_master(qd: QdiskLab) -> None:
    n1, n2 = qd.names
    qd.both_members()
    def agreed_master() -> str | None:
        # one reading for the test and the check: a master whose writes stop landing
        # for 2.5 intervals steps down (a busy CI machine), so a second read may be None
        seen = {qd.qdisk(n).get("master") for n in (n1, n2)}
        return seen.pop() if len(seen) == 1 and seen <= {n1, n2} else None

    holder = qd.wait("one master on the disk on both nodes' reading", agreed_master,
                     timeout=90)
    other = n2 if holder == n1 else n1
    qd.lab.qdisk_path(holder, False)
    qd.master_is(other, counted=(other,))
    q = qd.qdisk(holder)
    assert not q["granted"] and q["error"], q
    qd.partition_survivor(other, holder, time.time())


def test_a_heuristic_that_is_not_a_trusted_program_is_refused(qd: QdiskLab) -> None:
    n1, _ = qd.names
    bad = qd.conf.replace(f'program="{CHECK}"', 'program="ping -c1 198.18.0.1"')
    qd.lab.exec(n1, ["sh", "-c", f"cat > {REMOTE}/bad.conf"], input=bad)
    out = qd.cli(n1, "ccs_config_validate", "-f", f"{REMOTE}/bad.conf")
    assert out.returncode != 0
    assert "heuristic" in out.stderr + out.stdout and "has arguments" in out.stderr + out.stdout
    writable = "/run/qd-writable"
    script = f"printf '#!/bin/sh\\ntrue\\n' > {writable} && chmod 0777 {writable}"
    qd.lab.exec(n1, ["sh", "-c", script])
    bad = qd.conf.replace(f'program="{CHECK}"', f'program="{writable}"')
    qd.lab.exec(n1, ["sh", "-c", f"cat > {REMOTE}/bad.conf"], input=bad)
    out = qd.cli(n1, "ccs_config_validate", "-f", f"{REMOTE}/bad.conf")
    assert out.returncode != 0 and "writable" in out.stderr + out.stdout, out
