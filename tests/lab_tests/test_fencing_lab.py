"""Fencing on the lab with the real fence_ipmilan against the emulated BMCs (issue 4).

Three nodes (the shared ``lab`` fixture; RHC_LAB_PREFIX/RHC_LAB_SUBNET pick another lab),
one deployment of the services test's cluster (SvcLab: web = floating address + nginx,
one fence_ipmilan device per node) shared by the tests here:

  fence_node --verify (and cluster_admin fence.verify, what the collection's
  fence_device verify calls) names the node whose BMC is stopped, without its password.
  The owner of web is cut off while its BMC is stopped: the fence fails, clustat on a
  surviving non-coordinator shows the failed fence with its error, web is not started
  elsewhere; the BMC answers again -> the owner is powered off -> web recovered.
  Same again, but the BMC stays dead: the plug is pulled, fence_ack_manual on a survivor
  -> web recovered.
  Issue 11: a survivor restarted with an old completed fence record never starts web
  beside its hung owner (dead BMC): never two holders, web recovered after a fence of
  this failure.

Two nodes (own lab ``rhcy``, 198.18.11.0/24, brought up and torn down by this module):
two_node="1" expected_votes="1", web moved to node2, the two nodes cut from each other:
exactly one survives (node2, the side running web: the asymmetric delay follows the
services), node1 is powered off by its BMC, web runs on node2 only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from clusterlab import Lab, LabError
from test_services_lab import PORT, UNIT, SvcLab, deployed, samples

pytestmark = pytest.mark.lab

CLUSTER_LAB = str(Path(sys.executable).parent / "cluster-lab")
TWO_NODE_PREFIX = os.environ.get("RHC_FENCE_LAB2_PREFIX", "rhcy")
TWO_NODE_SUBNET = os.environ.get("RHC_FENCE_LAB2_SUBNET", "198.18.11.0/24")


def all_bmcs_running(lab: Lab) -> None:
    for n in lab.nodes:
        lab.bmc_control(n.name, "start")


def fencing(s: SvcLab, via: str, victim: str) -> dict | None:
    out = s.cli(via, "clustat", "--format", "json")
    if out.returncode:
        return None
    return next((f for f in json.loads(out.stdout).get("fencing", ())
                 if f["node"] == victim), None)


def member(s: SvcLab, via: str, name: str) -> bool:
    out = s.cli(via, "clustat", "--format", "json")
    if out.returncode:
        return False
    doc = json.loads(out.stdout)
    return any(n["name"] == name and n["state"] == "online" for n in doc["nodes"])


def healthy(s: SvcLab) -> None:
    """Every node on, running its clusterd, a member, and no fence open: where each test
    here starts. A node that an earlier test's aftermath fenced (an unreset return is
    fenced, issue 11 item 3) comes back from the power cycle without the test's daemon (a
    transient unit): it is started again, as often as needed."""
    def probe() -> bool:
        for n in s.names:
            if not s.lab.is_on(n):
                s.lab.bmc_control(n, "start")
                s.lab.power(n, "on")
            active = s.lab.exec(n, ["systemctl", "is-active", UNIT], check=False).stdout
            if active.strip() != "active":
                s.stop(n)
                s.start(n)
        first = s.names[0]
        return all(member(s, first, n) for n in s.names) and not any(
            (f := fencing(s, first, n)) and f["state"] in ("pending", "running", "failed")
            for n in s.names)
    since = time.time() - 120
    try:
        s.wait("every node on, running clusterd, a member, no fence open", probe,
               timeout=180)
    except LabError as exc:
        raise LabError(f"{exc}\n{_journals(s, since)}") from None


def relocate(s: SvcLab, target: str) -> None:
    other = next(n for n in s.names if n != target)
    healthy(s)
    since = time.time()

    def moved() -> bool:
        # right after a view change the coordinator may answer "try again" (rgmanager's
        # RG_EAGAIN): retried as an operator would; a node fenced meanwhile (the aftermath
        # of an earlier test) is brought back first
        out = s.cli(other, "clusvcadm", "-r", "web", "-m", target)
        text = out.stdout + out.stderr
        if out.returncode != 0 and "not running on this node" in text:
            healthy(s)
            return False
        if out.returncode != 0 and "try again" not in text:
            raise AssertionError(text)
        return out.returncode == 0

    try:
        s.wait(f"relocation of web to {target} accepted", moved, timeout=240)
    except LabError as exc:
        raise LabError(f"{exc}\n{_journals(s, since - 120)}") from None
    s.wait(f"web answering from {target}", lambda: s.answer() == target, timeout=60)


@pytest.fixture(scope="module")
def fsvc(lab: Lab) -> Iterator[SvcLab]:
    with deployed(lab, reset=lambda: all_bmcs_running(lab), web_on_node1=True) as s:
        yield s


def bring_back(s: SvcLab, name: str) -> None:
    """Return a node the test cut off, hung or powered off to a healthy cluster. Its old
    daemon is killed before the node is reachable again (an incarnation that was lost and
    rejoins unreset is fenced, issue 11 item 3: the power cycle would land under the next
    test), a new one starts, and the BMC answers again only once that new incarnation has
    cancelled any open fence of the node; then no fence of it is open anywhere."""
    if s.lab.is_on(name):
        s.lab.wait_ready(name)           # a fence's reboot may have just powered it on
        kill = (f"systemctl kill --signal=SIGKILL {UNIT} 2>/dev/null; systemctl stop {UNIT} "
                f"2>/dev/null; systemctl reset-failed {UNIT} 2>/dev/null; true")
        s.lab.exec(name, ["sh", "-c", kill], check=False, timeout=90)
        s.lab.heal(name)
    else:
        s.lab.bmc_control(name, "start")
        s.lab.power(name, "on")          # a fresh network namespace: no partition left
    s.start(name)
    s.wait(f"{name} back in the cluster", lambda: member(s, s.names[0], name), timeout=90)
    s.lab.bmc_control(name, "start")
    other = next(n for n in s.names if n != name)
    s.wait(f"no fence of {name} open", lambda: (f := fencing(s, other, name)) is None
           or f["state"] not in ("pending", "running", "failed"), timeout=90)


def test_verify_names_the_node_whose_bmc_is_stopped(fsvc: SvcLab):
    s = fsvc
    n1, n2, n3 = s.names
    ok = s.cli(n2, "fence_node", "--verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert [line.split()[:2] for line in ok.stdout.splitlines()] == [
        [n, "ok:"] for n in s.names]
    stop = subprocess.run([CLUSTER_LAB, "--prefix", s.lab.spec.prefix, "bmc", n3, "stop"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (stop.returncode, stop.stdout) == (0, f"{n3}: BMC stopped\n"), stop.stderr
    try:        # both wait ~20 s for the silent BMC: run them side by side
        with ThreadPoolExecutor(2) as pool:
            cli = pool.submit(s.cli, n2, "fence_node", "--verify")
            adm = pool.submit(s.lab.exec, n1, [
                "env", "PYTHONPATH=/opt/rhc-services-test",
                "RHC_CONTROL_SOCKET=/opt/rhc-services-test/ctl.sock", "python3", "-m",
                "clusterd.cli.cluster_admin"], input='{"v": 1, "op": "fence.verify"}',
                check=False, timeout=60)
            bad, admin = cli.result(), adm.result()
    finally:
        s.lab.bmc_control(n3, "start")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(rf"^{n3} UNFENCEABLE: method ipmi: fence_ipmilan status: ", bad.stdout,
                     re.MULTILINE), bad.stdout
    assert f"{n1} ok: method ipmi" in bad.stdout and f"{n2} ok: method ipmi" in bad.stdout
    reply = json.loads(admin.stdout)
    assert reply["ok"] and reply["result"]["unfenceable"] == [n3], admin.stdout
    password = s.lab.bmc(n3).password
    assert password not in bad.stdout + bad.stderr + admin.stdout + admin.stderr


def _cut_off_owner_with_dead_bmc(s: SvcLab, victim: str, watcher: str) -> dict:
    relocate(s, victim)
    s.lab.bmc_control(victim, "stop")
    s.lab.partition(victim)
    failed = s.wait(f"{watcher} shows the failed fence of {victim}",
                    lambda: (f := fencing(s, watcher, victim)) and f["state"] == "failed"
                    and f["last_error"] and f, timeout=120)
    text = s.cli(watcher, "clustat").stdout
    assert re.search(rf"^ {victim}\s+failed\s+\d+ .*last error: ", text, re.MULTILINE), text
    holders = [h for h in s.holders() if h != victim]
    assert holders == [], f"web started elsewhere before {victim} was fenced: {holders}"
    assert s.owner(watcher) in (None, victim)
    return failed


def test_dead_bmc_blocks_recovery_until_the_bmc_answers_again(fsvc: SvcLab):
    s = fsvc
    n1, n2, n3 = s.names
    try:
        failed = _cut_off_owner_with_dead_bmc(s, n3, watcher=n2)
        assert failed["attempts"] >= 1 and failed.get("next_attempt")
        s.lab.bmc_control(n3, "start")
        s.wait(f"{n3} fenced (done on {n2})",
               lambda: (f := fencing(s, n2, n3)) and f["state"] == "done", timeout=120)
        assert not s.lab.is_on(n3), "the fence reported done but node3 still runs"
        s.wait("web recovered on a survivor", lambda: s.answer() in (n1, n2), timeout=90)
        assert s.holders() in ([n1], [n2])
    finally:
        bring_back(s, n3)


def test_dead_bmc_then_fence_ack_manual(fsvc: SvcLab):
    s = fsvc
    n1, n2, n3 = s.names
    try:
        _cut_off_owner_with_dead_bmc(s, n3, watcher=n2)
        s.lab.pull_plug(n3)                         # the operator makes sure it is off
        out = s.cli(n2, "fence_ack_manual", "-y", n3)
        assert out.returncode == 0, out.stdout + out.stderr
        s.wait("web recovered after the acknowledgement",
               lambda: s.answer() in (n1, n2), timeout=90)
        ack = fencing(s, n1, n3)
        assert ack and ack["state"] == "done" and ack["acked"], ack
    finally:
        bring_back(s, n3)


def _daemon_signal(s: SvcLab, name: str, sig: str) -> None:
    """SIGSTOP/SIGCONT the clusterd of ``name`` only (its services keep running)."""
    s.lab.exec(name, ["systemctl", "kill", "--kill-who=main", f"--signal={sig}", UNIT])


def test_stale_fence_record_never_starts_web_beside_its_hung_owner(fsvc: SvcLab,
                                                                    tmp_path: Path):
    """Issue 11 item 1, as found in the lab: node2 fenced node1 once (a completed record in
    its state dir); web back on node1; node1's BMC dies and its clusterd hangs (nginx and
    the floating address stay up); node2 is powered off (node3 alone is inquorate) and on
    again. web must stay on node1 alone until a fence issued for this failure succeeds."""
    s = fsvc
    n1, n2, n3 = s.names
    poll = None
    try:
        relocate(s, n1)
        s.lab.power(n1, "off")                       # the first fence: node1#N done
        s.wait(f"{n2} shows {n1} fenced", lambda: (f := fencing(s, n2, n1))
               and f["state"] == "done", timeout=90)
        s.wait("web on a survivor", lambda: s.answer() in (n2, n3), timeout=60)
        bring_back(s, n1)
        relocate(s, n1)
        log = tmp_path / "client.log"
        poll = s.poller(log)                        # a client polling web every 20 ms
        s.lab.bmc_control(n1, "stop")
        hung_at = time.time()
        _daemon_signal(s, n1, "SIGSTOP")
        s.lab.power(n2, "off")
        s.wait(f"{n3} alone is inquorate", lambda: "Inquorate" in s.cli(n3, "clustat").stdout,
               timeout=60)
        s.lab.power(n2, "on")
        s.start(n2)                                  # the same state dir, the old record
        s.wait(f"{n2} and {n3} quorate", lambda: "Member Status: Quorate"
               in s.cli(n2, "clustat").stdout, timeout=90)
        doubled, deadline = [], time.monotonic() + 20.0   # > post_join_delay + a retry
        while time.monotonic() < deadline:
            holders = s.holders()
            if len(holders) > 1:
                doubled.append(holders)
        assert doubled == [], f"two holders of web: {doubled[:3]}"
        assert s.holders() == [n1]
        f = fencing(s, n2, n1)
        assert f and f["state"] in ("pending", "running", "failed"), f
        s.lab.bmc_control(n1, "start")               # the BMC answers: fenced, recovered
        s.wait(f"{n1} fenced for this failure", lambda: (f := fencing(s, n2, n1))
               and f["state"] == "done", timeout=120)
        s.wait("web recovered on a survivor", lambda: s.answer() in (n2, n3), timeout=90)
        assert s.holders() in ([n2], [n3])
        poll.terminate()
        poll.wait(timeout=10)
        fenced = min(t for n in (n2, n3) for t in s.journal_unix(n, f"{n1} fenced (")
                     if t >= hung_at)
        early = [(t, who) for t, who in samples(log) if who in (n2, n3) and t < fenced]
        assert early == [], f"the client reached web on a survivor before {n1} was " \
                            f"fenced: {early[:3]}"
    finally:
        if poll is not None and poll.poll() is None:
            poll.terminate()
            poll.wait(timeout=10)
        bring_back(s, n1)                # kills a hung daemon: no SIGCONT, no unreset return
        if not s.lab.is_on(n2):
            bring_back(s, n2)


def _nginx_pid(s: SvcLab, name: str) -> str:
    return s.lab.exec(name, ["cat", "/opt/rhc-services-test/nginx.pid"], check=False).stdout.strip()


def _journals(s: SvcLab, since: float) -> str:
    """Every node's clusterd journal since ``since`` (unix time): what a failed wait shows,
    so that a run on another machine explains itself."""
    out = []
    for n in s.names:
        if not s.lab.is_on(n):
            out.append(f"--- {n}: powered off")
            continue
        text = s.lab.exec(n, ["journalctl", "-u", UNIT, "-o", "short-unix", "--no-pager",
                              "--since", f"@{since - 2:.0f}"], check=False, timeout=60).stdout
        out.append(f"--- {n}\n" + "\n".join(text.splitlines()[-150:]))
    return "\n".join(out)


def _restarted(s: SvcLab, names: list[str], tmp_path: Path, label: str) -> None:
    """``systemctl restart`` of the daemon on ``names`` at once while a client polls web
    every 20 ms and the floating address is sampled on every node: web keeps answering
    from the same nginx process, nothing is fenced, never two holders."""
    owner = s.answer()
    pid = _nginx_pid(s, owner)
    before = {n: s.lab.exec(n, ["systemctl", "show", "-p", "MainPID", "--value", UNIT]
                            ).stdout.strip() for n in names}
    log = tmp_path / f"client-{label}.log"
    poll = s.poller(log)
    doubled = []
    started = time.time()
    try:
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(lambda n: s.lab.exec(n, ["systemctl", "restart", UNIT], timeout=60),
                          names))
        try:
            s.wait("every daemon restarted and back in one view", lambda: all(
                s.lab.exec(n, ["systemctl", "show", "-p", "MainPID", "--value", UNIT]
                           ).stdout.strip() not in ("0", before[n]) for n in names)
                and len(s.members(s.names[0])) == 3, timeout=60)
        except LabError as exc:
            raise LabError(f"{exc}\n{_journals(s, started)}") from None
        deadline = time.monotonic() + 8.0       # > post_join_delay: no startup fence
        while time.monotonic() < deadline:
            if len(h := s.holders()) > 1:
                doubled.append(h)
    finally:
        poll.terminate()
        poll.wait(timeout=10)
    assert doubled == [], doubled[:3]
    assert s.answer() == owner and _nginx_pid(s, owner) == pid, "web was restarted or moved"
    # every answer came from the owner's nginx ("-" is a request that got no answer in
    # 100 ms: a busy machine's slow reply, not a move; bench_outage measures the gaps)
    answered = [who for _, who in samples(log) if who not in ("", "-")]
    assert answered and set(answered) == {owner}, sorted(set(answered))
    # a startup intent for a daemon that is not back yet is normal (cancelled when it
    # joins); an agent run is a fence
    runs = [(n, t) for n in s.names for t in s.journal_unix(n, ", attempt ") if t >= started]
    assert runs == [], f"a restart fenced a node: {runs}"


def test_restarting_clusterd_moves_nothing_and_fences_nobody(fsvc: SvcLab, tmp_path: Path):
    """Issue 11 item 2: systemctl restart of the owner's daemon, then of every daemon at
    once: the same nginx keeps serving, nothing moves, nobody is fenced."""
    s = fsvc
    relocate(s, s.names[0])
    _restarted(s, [s.names[0]], tmp_path, "owner")
    _restarted(s, list(s.names), tmp_path, "all")


def test_a_node_that_rejoins_unreset_is_still_fenced(fsvc: SvcLab):
    """Issue 11 item 3: node3 is cut off while its BMC is dead (its fence fails), then the
    partition heals: it comes back with the same incarnation (its daemon never restarted),
    and is fenced once its BMC answers, although it is a member again."""
    s = fsvc
    n1, n2, n3 = s.names
    try:
        _cut_off_owner_with_dead_bmc(s, n3, watcher=n2)
        s.lab.heal(n3)
        s.wait(f"{n3} back in the view", lambda: member(s, n2, n3), timeout=60)
        f = fencing(s, n2, n3)
        assert f and f["state"] in ("pending", "running", "failed"), \
            f"the rejoin cancelled the fence of {n3}: {f}"
        assert s.holders() in ([n1], [n2], []), s.holders()
        s.lab.bmc_control(n3, "start")
        s.wait(f"{n3} fenced although it came back", lambda: not s.lab.is_on(n3)
               or (g := fencing(s, n2, n3)) and g["state"] == "done", timeout=120)
        s.wait("web recovered on a survivor", lambda: s.answer() in (n1, n2), timeout=90)
        assert s.holders() in ([n1], [n2])
    finally:
        bring_back(s, n3)


# --- two nodes ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_node() -> Iterator[SvcLab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab2 = Lab.up(nodes=2, prefix=TWO_NODE_PREFIX, subnet=TWO_NODE_SUBNET)
    try:
        s = SvcLab(lab2)
        cman = f'<cman port="{PORT}"/>'
        assert cman in s.conf, "SvcLab's cluster.conf changed shape; adapt the two_node edit"
        s.conf = s.conf.replace(cman, f'<cman port="{PORT}" two_node="1" '
                                      f'expected_votes="1"/>')
        # a daemon that starts more than post_join_delay after its peer (a busy machine) is
        # fenced at startup, as in RHCS: this module tests the partition, not that race
        fd = re.search(r"<fence_daemon ", s.conf)
        assert fd, "SvcLab's cluster.conf has no <fence_daemon>; adapt the two_node edit"
        s.conf = s.conf.replace(fd.group(0), '<fence_daemon post_join_delay="60" ', 1)
        s.install()
        since = time.time()
        with ThreadPoolExecutor(len(s.names)) as pool:
            list(pool.map(s.start, s.names))
        try:
            s.wait("web started on node1 (two nodes)",
                   lambda: s.owner(s.names[1]) == s.names[0], timeout=120)
        except LabError as exc:
            raise LabError(f"{exc}\n{_journals(s, since)}") from None
        yield s
    finally:
        lab2.down()


def test_two_node_partition_leaves_exactly_one_survivor_the_one_running_web(two_node):
    s = two_node
    n1, n2 = s.names
    relocate(s, n2)              # web on the higher nodeid: a static delay would shoot it
    s.lab.partition(n1)          # heartbeats cut both ways; the BMCs stay reachable
    s.wait(f"{n1} powered off by its BMC", lambda: not s.lab.is_on(n1), timeout=60)
    s.wait("web still answering from node2", lambda: s.answer() == n2, timeout=30)
    assert s.lab.is_on(n2) and s.holders() == [n2]
    done = s.wait(f"{n2} shows {n1} fenced",
                  lambda: (f := fencing(s, n2, n1)) and f["state"] == "done" and f, timeout=30)
    assert done["attempts"] == 1
