"""The log of a failover and of a clean leave tells the truth, read off three real clusterd
processes on loopback (the services harness: a script service, the fake fence agent).

For every daemon's whole log: no line calls a view inquorate that this node saw quorate;
every view line states the view's true member count, the votes of those members, the
configured expected votes and cman's quorum, and calls it quorate exactly when those
votes reach the quorum. A SIGKILLed owner is fenced and the fence lines name the victim,
the operation and the method (and device, action and the agent's timeout); a SIGTERMed
owner is logged as a clean leave everywhere, never as silence or a failure, and nobody
logs a quorum loss. Needs root (like every local-cluster test), not the lab.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from localcluster_harness import wait_until
from test_services_local import ServiceCluster, formed

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusterd needs root (authkey "
                                "owned by root, control socket)")

LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) \[(?P<node>\S+) view (?P<ctx>\S+)\] "
                  r"(?P<logger>\S+): (?P<msg>.*)$")
VIEW_LINE = re.compile(r"view (?P<epoch>\d+): (?P<n>\d+) members? \((?P<names>[^)]*)\), "
                       r"(?P<votes>\d+) of (?P<expected>\d+) expected votes, quorum "
                       r"(?P<quorum>\d+): (?P<state>.*)$")
EXPECTED, QUORUM = 3, 2          # three nodes of one vote each: cman's quorum is 2


@pytest.fixture
def cluster(request):
    root = Path(tempfile.mkdtemp(prefix="rhc-logs-"))
    root.chmod(0o755)
    c = ServiceCluster(root)
    yield c
    c.stop_all()
    if getattr(request.node, "rep_failed", False):
        print(c.logs())
    shutil.rmtree(root, ignore_errors=True)


def lines(node) -> list[dict[str, str]]:
    out = []
    for raw in node.log.read_text(errors="replace").splitlines():
        m = LINE.match(raw)
        if m:
            out.append(m.groupdict())
    return out


def check_views_and_quorum(c: ServiceCluster) -> None:
    """Every daemon's view lines agree with the view and the config, and no line calls a
    view inquorate that the same node logged quorate."""
    for node in c.nodes:
        log = lines(node)
        views = [(m, VIEW_LINE.search(m["msg"])) for m in log]
        views = [(m, v) for m, v in views if v and m["logger"] == "clusterd.node.daemon"]
        assert views, f"{node.addr} logged no view line"
        quorate = set()
        for _m, v in views:
            names = v["names"].split(", ")
            assert int(v["n"]) == len(names) and set(names) <= set(c.addrs), v.group(0)
            assert int(v["votes"]) == len(names), v.group(0)         # one vote each
            assert (int(v["expected"]), int(v["quorum"])) == (EXPECTED, QUORUM), v.group(0)
            enough = int(v["votes"]) >= QUORUM
            assert v["state"] == ("quorate" if enough else "inquorate"), v.group(0)
            if v["state"] == "quorate":
                quorate.add(v["epoch"])
        for m in log:
            if "inquorate" in m["msg"].lower():
                said = re.search(r"\bview (\d+)", m["msg"])
                epoch = said.group(1) if said else m["ctx"]
                assert epoch not in quorate, f"{node.addr}: {m['msg']} (view {epoch} was " \
                                             f"quorate here)"


def messages(node, pattern: str = "") -> list[str]:
    return [m["msg"] for m in lines(node) if re.search(pattern, m["msg"])]


def test_failover_log_names_the_fence_and_never_calls_a_quorate_view_inquorate(cluster):
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    c.signal(n1, signal.SIGKILL)
    wait_until(f"web started on {n2.addr}", lambda: c.started_on(n2, n2.addr), timeout=30)
    victim = re.escape(n1.addr)
    op = rf"{victim}#\d+"
    wait_until("the fence attempt finished (power back on)",
               lambda: messages(n2, rf"fenced {victim} with method fake in"))
    check_views_and_quorum(c)
    for node in (n2, n3):
        assert messages(node, rf"^node \S+: {victim} failed: not in view \d+/\d+ \(")
        assert not messages(node, r"quorum lost|NOT quorate")
    # the executor (node 2 coordinates the new view) names victim, op, method, device,
    # action and the agent's timeout when the call starts, and how it ended
    step = rf"fencing {victim} \({op}, attempt 1\): method fake device fake \(fence_rhctest\)"
    assert messages(n2, rf"{step} action off, agent timeout \d+s$")
    assert messages(n2, rf"{step} action off succeeded in \d+\.\d\ds$")
    assert messages(n2, rf"fencing: (.*; )?{victim} fenced \({op}, method fake\): recovery allowed")
    assert messages(n2, rf"fencing: (.*; )?fence intent {op} for {victim} \(membership, due in 0s\)")
    for msg in messages(n2, rf"fencing {victim} \("):        # "fencing X (...)" names the op
        for said in re.findall(rf"fencing {victim} \([^)]*\)", msg):
            assert re.fullmatch(rf"fencing {victim} \({op}, attempt \d+\)", said), msg
    assert messages(n3, rf"fencing: (.*; )?{op} done per {re.escape(n2.addr)}")
    # the new view is logged quorate, with its two members, on both survivors
    for node in (n2, n3):
        assert messages(node, rf"view \d+: 2 members \({re.escape(n2.addr)}, "
                              rf"{re.escape(n3.addr)}\), 2 of 3 expected votes, quorum 2: "
                              r"quorate$")


def test_clean_leave_is_logged_as_a_clean_leave_everywhere(cluster):
    c = cluster
    c.setup_services()
    formed(c)
    n1, n2, n3 = c.nodes
    wait_until("web started on node 1", lambda: c.started_on(n2, n1.addr))
    c.signal(n1, signal.SIGTERM)
    assert n1.proc.wait(timeout=60) == 0
    wait_until(f"web started on {n2.addr}", lambda: c.started_on(n2, n2.addr), timeout=30)
    for node in (n2, n3):
        wait_until(f"{node.addr} logs the two-member view",
                   lambda node=node: messages(node, r"view \d+: 2 members .*: quorate$"))
    check_views_and_quorum(c)
    leaver = re.escape(n1.addr)
    for node in (n2, n3):
        assert messages(node, rf"^node \S+: {leaver} left cleanly \(its services were "
                              r"stopped\)$"), node.addr
        assert messages(node, rf"fencing: (.*; )?{leaver} left cleanly: not fenced")
        assert not messages(node, rf"{leaver} failed|node 1 silent|node 1 failed|"
                                  rf"quorum lost|NOT quorate|fence intent \S+ for {leaver}")
    # the coordinator of the new view says why it proposed it
    assert messages(n2, r"proposing view \d+/2 members \[2, 3\]: node 1 left cleanly \(its "
                        r"services were stopped\)$")
    # the leaver itself gave up its quorum by leaving: no loss, no "inquorate"
    assert not messages(n1, r"quorum lost|no services to stop")
    assert messages(n1, r"fencing: (.*; )?this node left the cluster: no fencing, no recovery")
    assert messages(n1, r"announced clean leave")
