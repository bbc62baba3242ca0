"""The cluster's life cycle through the playbooks, one step per call, as an operator runs it.

From molecule/lifecycle/verify.yml, with the venv's python, after converge bootstrapped
node1-node3 (group ``cluster_initial``) with the services ``web`` (on node1) and ``web2``
(on node2), each a floating address + nginx (group_vars/cluster.yml):

    lifecycle.py STEP --inventory SRC [--inventory SRC ...] --daemon-src DIR

STEP is one of:
  add       site.yml with the whole group ``cluster`` (node4 added to the inventory) while a
            client polls web and web2 every 20 ms: node4 joins, is fenceable (fence_node
            --verify), nobody is fenced, neither service moves and no poll fails; a re-run
            changes nothing; a new node id for a running node is refused before any change
  failover  web relocated onto node4 (relocate.yml, twice: the second changes nothing),
            node4 powered off through its BMC: fenced by the cluster, web answers from a
            survivor; node4 comes back and rejoins
  remove    web relocated onto node4 again, then remove_node.yml -e node=node4 with the
            initial group while the client polls both: web answers again elsewhere (one
            relocation), web2 never stops answering, nobody is fenced, node4 is out of the
            config and holds nothing of the cluster; a re-run changes nothing and says so;
            an unknown node is refused
  replace   web relocated onto node3, node3's server dies for good (powered off through its
            BMC, which cannot power it on again: cluster-lab die): fenced by the cluster, web
            back on a survivor; a new bare server in its place (same name, address and BMC:
            cluster-lab replace), then site.yml with the initial group while the client
            polls both: node3 joins with a new incarnation and nothing of the old server,
            is fenceable, neither service moves and web2 never stops answering, nobody else
            is fenced; a re-run changes nothing
  replace_ack
            the same with node3's BMC dead too (cluster-lab bmc stop, then die pulls the
            plug): the fence fails and web stays down on node3; the new server is there but
            site.yml is refused before any change (the old node still owns web: fence it or
            acknowledge it); fence_ack_manual -y node3 on a survivor: web back on a
            survivor; site.yml: node3 joins as above; its BMC back, fence_node --verify ok
  stopstart stop.yml (services stopped, clusterd stopped everywhere, nobody fenced), again
            (no change), start.yml (quorate, each service started and answering on the
            first node of its domain), again (no change)
  destroy   destroy.yml on the lab's whole group (node4 too, which remove_node.yml left
            with the software): without the confirmation (refused, no node touched), with it
            (every node as bare as before bootstrap: nothing of the cluster left in its
            overlay), again (no change)

Each step prints one JSON line (``ok``, what it measured, ``why`` when not ok) and exits
1 when not ok. The lab is the one RHC_LAB_PREFIX names (default rhc).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from clusterlab.demo import Probe
from clusterlab.errors import LabError
from clusterlab.lab import Lab
from clusterlab.node import node_dir

REPO = Path(__file__).resolve().parents[2]
INITIAL = "cluster_initial"        # node1-node3: the group converge bootstrapped
ADDED = "node4"
REPLACED = "node3"   # dies for good and is replaced by a bare server of the same name
SERVICES = ("web", "web2")      # web moves (relocation, failover, drain); web2 stays put
HOMES = {"web": "node1", "web2": "node2"}   # the first node of each one's ordered domain
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.MULTILINE)
# what a node holds of the cluster (the venv, unit, config, state, the services' files,
# the links of the tools the role installs): a path in the node's overlay whose name
# matches is a leftover
TOOLS = yaml.safe_load((REPO / "roles/cluster_node/vars/main.yml").read_text())["__cluster_node_clis"]
LEFTOVER = re.compile("|".join(["clust", *map(re.escape, TOOLS)]))


class StepFailed(Exception):
    """A check of the step did not hold: the message says which and what was seen."""


class Steps:
    def __init__(self, lab: Lab, inventories: list[str], daemon_src: str) -> None:
        self.lab = lab
        self.inventories = inventories
        self.daemon_src = daemon_src
        self.summary: dict = {"ok": False}
        # the lab's first floating addresses, in the order group_vars/cluster.yml uses them
        first = ipaddress.ip_address(self.lab.spec.floating_range[0])
        self.url = {name: f"http://{first + i}/" for i, name in enumerate(SERVICES)}

    # ---------------------------------------------------------------- helpers
    def playbook(self, name: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
        argv = [str(Path(sys.executable).parent / "ansible-playbook")]
        for source in self.inventories:
            argv += ["-i", source]
        argv += [f"playbooks/{name}", "-e", f"cluster_node_daemon_src={self.daemon_src}", *extra]
        started = time.monotonic()
        # one stream: molecule's ansible.cfg sends failed results to stderr
        done = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=900, check=False,
                              env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
        return done, round(time.monotonic() - started, 1)

    def run_ok(self, name: str, *extra: str) -> tuple[str, float, dict]:
        done, seconds = self.playbook(name, *extra)
        if done.returncode != 0:
            raise StepFailed(f"{name} {' '.join(extra)} failed (rc {done.returncode}): "
                             f"{failures(done.stdout)}")
        return done.stdout, seconds, recap(done.stdout)

    def run_unchanged(self, name: str, *extra: str) -> float:
        out, seconds, hosts = self.run_ok(name, *extra)
        changed = {h: r["changed"] for h, r in hosts.items() if r["changed"]}
        if changed:
            raise StepFailed(f"re-run of {name} changed something: {changed}; "
                             f"{changed_tasks(out)}")
        return seconds

    def status(self, node: str) -> dict:
        done = self.lab.exec(node, ["clustat", "--format", "json"], check=False, timeout=20)
        try:
            return json.loads(done.stdout)
        except ValueError:
            raise StepFailed(f"clustat on {node} answered rc {done.returncode}: "
                             f"{(done.stdout + done.stderr).strip()[-300:]}") from None

    def service(self, node: str, name: str = "web") -> dict:
        return next(s for s in self.status(node)["services"] if s["name"] == f"service:{name}")

    def wait(self, predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.2) -> object:
        try:
            return self.lab.wait_for(predicate, timeout, what, interval=interval)
        except LabError as exc:
            raise StepFailed(str(exc)) from None

    def probe(self, name: str = "web") -> Probe:
        probe = Probe(self.lab, url=self.url[name])
        self.wait(lambda: (a := probe.last()) is not None and a.ok, 30,
                  f"{name} ({self.url[name]}) answering before the step")
        return probe

    def probes(self) -> dict[str, Probe]:
        return {name: self.probe(name) for name in SERVICES}

    def unmoved(self, name: str, before: dict, probe: Probe, since: float, what: str) -> dict:
        """The client's view of a service that must not move: no failed poll, same owner."""
        seen = self.outage(probe, since)
        after = self.service("node1", name)
        if seen["failed_polls"] or after["owner"] != before["owner"] \
                or after["state"] != "started" or seen["answered_by"] != [before["owner"]]:
            raise StepFailed(f"{name} moved or stopped answering while {what}: before "
                             f"{before}, after {after}, client {seen}")
        return seen

    def answered_by(self, probe: Probe, node: str, since: float) -> bool:
        return any(a.ok and a.node == node and a.t >= since for a in probe.answers())

    def outage(self, probe: Probe, since: float) -> dict:
        answers = [a for a in probe.answers() if a.t >= since]
        ok = [a.t for a in answers if a.ok]   # longest_gap_s: between two answered polls
        gaps = [ok[i + 1] - ok[i] for i in range(len(ok) - 1)]
        return {"polls": len(answers), "failed_polls": sum(not a.ok for a in answers),
                "outage_s": round(probe.longest_outage(), 3),
                "longest_gap_s": round(max(gaps, default=0.0), 3),
                "answered_by": sorted({a.node for a in answers if a.ok})}

    def relocate(self, target: str) -> float:
        _, seconds, _ = self.run_ok("relocate.yml", "-e", "service=web", "-e", f"target={target}")
        owner = self.service("node1")["owner"]
        if owner != target:
            raise StepFailed(f"relocate.yml left web on {owner}, not {target}")
        return seconds

    def config_everywhere(self, nodes: list[str]) -> dict:
        """The one (version, sha256) every node runs, accepted, with exactly ``nodes``."""
        seen = {}
        for node in nodes:
            status = self.status(node)
            seen[node] = (status["cluster"]["config_version"], status["cluster"]["config_sha256"],
                          status["cluster"]["config_accepted"], status["quorum"]["quorate"],
                          sorted(n["name"] for n in status["nodes"]),
                          sorted(n["name"] for n in status["nodes"] if n["state"] == "online"))
        if len(set(map(str, seen.values()))) != 1:
            raise StepFailed(f"the nodes disagree: {seen}")
        version, _sha, accepted, quorate, names, online = next(iter(seen.values()))
        if not (accepted and quorate and names == sorted(nodes) and online == sorted(nodes)):
            raise StepFailed(f"expected {nodes} online in a quorate cluster on an accepted "
                             f"config, saw {seen}")
        return {"config_version": version, "nodes": names}

    def fence_ops(self, node: str) -> list[dict]:
        return list(self.status(node).get("fencing") or ())

    def fenced_since(self, wall: float, nodes: list[str],
                     known: frozenset[str] = frozenset()) -> list[dict]:
        """Fence operations opened since ``wall`` (epoch seconds), as ``nodes`` see them,
        other than the ``known`` op ids. ``since`` is whole seconds, so an op opened up to
        a second before ``wall`` counts too: pass the ops already seen then as ``known``
        (a fence that ended just before a step began is not one of the step's)."""
        return [op for node in nodes for op in self.fence_ops(node)
                if op["since"] >= wall - 1 and op["op_id"] not in known]

    def fence_op_ids(self, nodes: list[str]) -> frozenset[str]:
        return frozenset(op["op_id"] for node in nodes for op in self.fence_ops(node))

    # ---------------------------------------------------------------- steps
    def add(self) -> None:
        s = self.summary
        before = {name: self.service("node1", name) for name in SERVICES}
        s["owners_before"] = {name: svc["owner"] for name, svc in before.items()}
        probes = self.probes()
        wall = time.time()
        try:
            start = time.monotonic()
            _, s["add_s"], _ = self.run_ok("site.yml")
            s["client_during_add"] = {name: self.unmoved(name, before[name], probe, start,
                                                         f"{ADDED} was added")
                                      for name, probe in probes.items()}
        finally:
            for probe in probes.values():
                probe.stop()
        nodes = [n.name for n in self.lab.nodes]
        s["config"] = self.config_everywhere(nodes)
        if fenced := self.fenced_since(wall, nodes):
            raise StepFailed(f"a node was fenced while {ADDED} was added: {fenced}")
        verify = self.lab.exec("node1", ["fence_node", "--verify"], check=False, timeout=120)
        s["fence_verify"] = (verify.stdout + verify.stderr).strip()[-400:]
        if verify.returncode != 0 or ADDED not in s["fence_verify"]:
            raise StepFailed(f"fence_node --verify: rc {verify.returncode}: {s['fence_verify']}")
        s["rerun_s"] = self.run_unchanged("site.yml")
        # a running node's id cannot change: refused before any change
        bad = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "lifecycle-bad.yml"
        bad.write_text("all:\n  hosts:\n    node3:\n      cluster_node_nodeid: 9\n")
        self.inventories.append(str(bad))
        try:
            done, _ = self.playbook("bootstrap.yml")
        finally:
            self.inventories.pop()
        expected = "node3: cluster_node_nodeid is 9 but node3 runs as node id 3"
        if done.returncode == 0 or expected not in done.stdout or \
                any(r["changed"] for r in recap(done.stdout).values()):
            raise StepFailed(f"a changed node id was not refused before any change: "
                             f"{failures(done.stdout)}")
        s["refused"] = expected

    def failover(self) -> None:
        s = self.summary
        s["relocate_s"] = self.relocate(ADDED)
        s["relocate_rerun_s"] = self.run_unchanged("relocate.yml", "-e", "service=web",
                                                   "-e", f"target={ADDED}")
        survivors = [n.name for n in self.lab.nodes if n.name != ADDED]
        probe = self.probe()
        try:
            self.wait(lambda: self.answered_by(probe, ADDED, 0), 10, f"web answering from {ADDED}")
            off_at = time.monotonic()
            wall = time.time()
            self.lab.power(ADDED, "off")

            def fenced() -> dict | None:
                for op in self.fence_ops(survivors[0]):
                    if op["node"] == ADDED and op["state"] == "done" and op["since"] >= wall - 5:
                        return op
                return None

            s["fence"] = self.wait(fenced, 60, f"{ADDED} fenced", interval=0.5)
            s["answered_by_survivor"] = self.wait(
                lambda: next((a.node for a in probe.answers()
                              if a.t > off_at and a.ok and a.node in survivors), None),
                60, "web answering from a survivor")
            s["client_during_failover"] = self.outage(probe, off_at)
        finally:
            probe.stop()
        self.lab.power(ADDED, "on")   # the fencer powers it back on: then a no-op
        self.wait(lambda: any(n["name"] == ADDED and n["state"] == "online"
                              for n in self.status("node1")["nodes"]), 120, f"{ADDED} rejoined",
                  interval=0.5)

    def remove(self) -> None:
        s = self.summary
        s["relocate_s"] = self.relocate(ADDED)
        survivors = [n.name for n in self.lab.nodes if n.name != ADDED]
        web2 = self.service("node1", "web2")
        probes = self.probes()
        wall = time.time()
        try:
            start = time.monotonic()
            out, s["remove_s"], _ = self.run_ok("remove_node.yml", "-e", f"node={ADDED}",
                                                "-e", f"cluster_group={INITIAL}")
            owner = self.wait(lambda: (w := self.service("node1"))["state"] == "started"
                              and w["owner"] in survivors and w["owner"], 30,
                              "web started on a survivor")
            self.wait(lambda: self.answered_by(probes["web"], str(owner), start), 10,
                      f"web answering from {owner}")
            s["web_after"] = owner
            s["client_during_remove"] = {
                "web": self.outage(probes["web"], start),
                "web2": self.unmoved("web2", web2, probes["web2"], start, f"{ADDED} was removed")}
        finally:
            for probe in probes.values():
                probe.stop()
        s["said"] = said(out)
        s["config"] = self.config_everywhere(survivors)
        if fenced := self.fenced_since(wall, survivors):
            raise StepFailed(f"a node was fenced while {ADDED} was removed: {fenced}")
        conf = self.lab.exec("node1", ["cat", "/etc/cluster/cluster.conf"]).stdout
        if ADDED in conf:
            raise StepFailed(f"{ADDED} is still named in cluster.conf")
        script = ("systemctl is-enabled clusterd; systemctl is-active clusterd; ls -d "
                  "/etc/cluster/cluster.conf* /etc/cluster/authkey* /etc/cluster/secrets "
                  "/var/lib/clusterd 2>/dev/null; true")
        left = self.lab.exec(ADDED, ["sh", "-c", script]).stdout.split()
        s["removed_node"] = left
        if left[:2] != ["disabled", "inactive"] or left[2:]:
            raise StepFailed(f"{ADDED} still holds the cluster: {left}")
        for node in survivors:
            if self.lab.exec(node, ["test", "-e", f"/etc/cluster/secrets/ipmi_{ADDED}"],
                             check=False).returncode == 0:
                raise StepFailed(f"{node} still holds the BMC password of {ADDED}")
        done, _ = self.playbook("remove_node.yml", "-e", f"node={ADDED}",
                                "-e", f"cluster_group={INITIAL}")
        changed = {h: r for h, r in recap(done.stdout).items() if r["changed"]}
        if done.returncode != 0 or changed or "already removed" not in done.stdout:
            raise StepFailed(f"the re-run of remove_node.yml: rc {done.returncode}, changed "
                             f"{changed}, {failures(done.stdout)} {changed_tasks(done.stdout)}")
        s["rerun_said"] = said(done.stdout)
        done, _ = self.playbook("remove_node.yml", "-e", "node=node9")
        if done.returncode == 0 or "node node9 is not in the inventory" not in done.stdout:
            raise StepFailed(f"an unknown node was not refused: {failures(done.stdout)}")

    def replace(self) -> None:
        """node3 dies for good and is fenced through its BMC; a new server joins."""
        self.die_and_replace(acknowledge=False)
        self.summary["rerun_s"] = self.run_unchanged("site.yml", "-e", f"cluster_group={INITIAL}")

    def replace_ack(self) -> None:
        """node3 dies for good with its BMC: the fence fails until fence_ack_manual."""
        self.die_and_replace(acknowledge=True)

    def die_and_replace(self, acknowledge: bool) -> None:
        s = self.summary
        nodes = [n.name for n in self.lab.nodes if n.name != ADDED]
        survivors = [n for n in nodes if n != REPLACED]
        old_incarnation = self.status(REPLACED)["local"]["incarnation"]
        # something of the old server's own, which the new one must not have
        self.lab.exec(REPLACED, ["touch", "/var/lib/clusterd/old-server"])
        s["relocate_s"] = self.relocate(REPLACED)
        web2 = self.service("node1", "web2")
        probes = self.probes()
        try:
            self.wait(lambda: self.answered_by(probes["web"], REPLACED, 0), 10,
                      f"web answering from {REPLACED}")
            if acknowledge:
                self.lab.bmc_control(REPLACED, "stop")
            dead_at = time.monotonic()
            wall = time.time()
            self.lab.die(REPLACED)   # off through its BMC (or pulled), never on again

            def fence_op(states: tuple[str, ...]) -> dict | None:
                for op in self.fence_ops(survivors[0]):
                    if op["node"] == REPLACED and op["state"] in states \
                            and op["since"] >= wall - 5 and (op["state"] == "done"
                                                             or op["last_error"]):
                        return op
                return None

            if acknowledge:
                s["fence_failing"] = self.wait(lambda: fence_op(("failed", "pending", "running")),
                                               120, f"the fence of {REPLACED} failing",
                                               interval=0.5)
                web = self.service("node1")
                if web["owner"] != REPLACED:
                    raise StepFailed(f"web moved before {REPLACED} was fenced or acknowledged: "
                                     f"{web}")
                # the new server is there before the acknowledgement: refused, nothing changed
                s["new_server_s"] = self.lab.replace(REPLACED)
                done, _ = self.playbook("site.yml", "-e", f"cluster_group={INITIAL}")
                expected = (f"{REPLACED} is replaced by a new server, but the old one is offline "
                            f"and ")
                if done.returncode == 0 or expected not in done.stdout.replace("\n", " ") or \
                        any(r["changed"] for r in recap(done.stdout).values()):
                    raise StepFailed(f"site.yml before the acknowledgement was not refused "
                                     f"before any change: {failures(done.stdout)}")
                s["refused"] = next((m for m in re.findall(r'"msg": "([^"]*)"', done.stdout)
                                     if expected in m), expected)
                ack = self.lab.exec(survivors[0], ["fence_ack_manual", "-y", REPLACED],
                                    check=False)
                if ack.returncode != 0:
                    raise StepFailed(f"fence_ack_manual: rc {ack.returncode}: "
                                     f"{(ack.stdout + ack.stderr).strip()[-300:]}")
                s["fence"] = self.wait(lambda: fence_op(("done",)), 30,
                                       f"{REPLACED} acknowledged", interval=0.5)
            else:
                s["fence"] = self.wait(lambda: fence_op(("done",)), 90, f"{REPLACED} fenced",
                                       interval=0.5)
            owner = self.wait(lambda: (w := self.service("node1"))["state"] == "started"
                              and w["owner"] in survivors and w["owner"], 60,
                              "web started on a survivor")
            self.wait(lambda: self.answered_by(probes["web"], str(owner), dead_at), 30,
                      f"web answering from {owner}")
            s["web_during_death"] = self.outage(probes["web"], dead_at)
            probes["web"].stop()
            web = self.service("node1")
            if not acknowledge:   # the new server: bare, as it comes from the image
                s["new_server_s"] = self.lab.replace(REPLACED)
            script = "ls -d /opt/clusterd /etc/cluster /var/lib/clusterd 2>/dev/null; true"
            bare = self.lab.exec(REPLACED, ["sh", "-c", script]).stdout.split()
            if bare:
                raise StepFailed(f"the new {REPLACED} is not bare: {bare}")
            probes["web"] = self.probe("web")
            start = time.monotonic()
            known = self.fence_op_ids(survivors)   # the dead node's own fence among them
            site_wall = time.time()
            _, s["site_s"], _ = self.run_ok("site.yml", "-e", f"cluster_group={INITIAL}")
            s["joined_after_s"] = round(time.monotonic() - dead_at, 1)
            s["client_during_replace"] = {
                "web": self.unmoved("web", web, probes["web"], start, f"{REPLACED} was replaced"),
                "web2": self.unmoved("web2", web2, probes["web2"], dead_at,
                                     f"{REPLACED} died and was replaced")}
        finally:
            for probe in probes.values():
                probe.stop()
        s["config"] = self.config_everywhere(nodes)
        new_incarnation = self.status(REPLACED)["local"]["incarnation"]
        s["incarnation"] = {"old": old_incarnation, "new": new_incarnation}
        if new_incarnation <= old_incarnation:
            raise StepFailed(f"{REPLACED} joined with incarnation {new_incarnation}, not newer "
                             f"than the old server's {old_incarnation}")
        if self.lab.exec(REPLACED, ["test", "-e", "/var/lib/clusterd/old-server"],
                         check=False).returncode == 0:
            raise StepFailed(f"the new {REPLACED} holds the old server's state")
        if fenced := self.fenced_since(site_wall, nodes, known):
            raise StepFailed(f"a node was fenced while {REPLACED} was replaced: {fenced}")
        if acknowledge:   # the new server's BMC is set up: the cluster can fence it again
            self.lab.bmc_control(REPLACED, "start")
        verify = self.lab.exec("node1", ["fence_node", "--verify"], check=False, timeout=120)
        s["fence_verify"] = (verify.stdout + verify.stderr).strip()[-400:]
        if verify.returncode != 0 or f"{REPLACED} ok" not in s["fence_verify"]:
            raise StepFailed(f"fence_node --verify: rc {verify.returncode}: {s['fence_verify']}")

    def stopstart(self) -> None:
        s = self.summary
        nodes = [n.name for n in self.lab.nodes if n.name != ADDED]
        wall = time.time()
        out, s["stop_s"], _ = self.run_ok("stop.yml", "-e", f"cluster_group={INITIAL}")
        s["stop_said"] = said(out)
        for node in nodes:
            active = self.lab.exec(node, ["systemctl", "is-active", "clusterd"],
                                   check=False).stdout.strip()
            if active != "inactive":
                raise StepFailed(f"clusterd is {active} on {node} after stop.yml")
        s["stop_rerun_s"] = self.run_unchanged("stop.yml", "-e", f"cluster_group={INITIAL}")
        out, s["start_s"], _ = self.run_ok("start.yml", "-e", f"cluster_group={INITIAL}")
        s["start_said"] = said(out)
        s["config"] = self.config_everywhere(nodes)
        for name, home in HOMES.items():
            svc = self.service("node1", name)
            if svc["state"] != "started" or svc["owner"] != home:
                raise StepFailed(f"{name} is not started on {home}, first of its domain, after "
                                 f"start.yml: {svc}")
            self.probe(name).stop()   # it answers, or the step fails here
            s[name] = svc["owner"]
        s["start_rerun_s"] = self.run_unchanged("start.yml", "-e", f"cluster_group={INITIAL}")
        if fenced := self.fenced_since(wall, nodes):
            raise StepFailed(f"a node was fenced during stop/start: {fenced}")

    def destroy(self) -> None:
        s = self.summary
        # the lab's whole group: node4 too, which remove_node.yml left with the software
        done, _ = self.playbook("destroy.yml")
        hosts = recap(done.stdout)
        if done.returncode == 0 or set(hosts) != {"localhost"} or \
                "-e cluster_destroy_confirm=alpha" not in done.stdout:
            raise StepFailed(f"destroy.yml without confirmation was not refused before any "
                             f"node: {failures(done.stdout)} {hosts}")
        out, s["destroy_s"], _ = self.run_ok("destroy.yml", "-e", "cluster_destroy_confirm=alpha")
        s["destroy_said"] = said(out)
        s["rerun_s"] = self.run_unchanged("destroy.yml", "-e", "cluster_destroy_confirm=alpha")
        left = {}
        for node in self.lab.nodes:
            found = leftovers(node_dir(self.lab.spec, node) / "upper")
            script = "pgrep -a -f '[c]lusterd' || true; ls -d /run/cluster 2>/dev/null || true"
            running = self.lab.exec(node.name, ["sh", "-c", script]).stdout.split("\n")
            found += [line for line in running if line.strip()]
            if found:
                left[node.name] = found
        if left:
            raise StepFailed(f"the cluster left things on the nodes: {left}")
        s["bare"] = [n.name for n in self.lab.nodes]


def leftovers(upper: Path) -> list[str]:
    """Paths the node wrote (its overlay's upper layer) that belong to the cluster, a
    directory once for all it holds; a deleted lower file is a whiteout (a 0/0 character
    device), not a leftover. The logs stay, as after any uninstall."""
    found = []
    for root, dirs, files in os.walk(upper):
        rel = Path(root).relative_to(upper)
        for name in sorted(dirs + files):
            path = Path(root) / name
            mode = path.lstat()
            whiteout = stat.S_ISCHR(mode.st_mode) and mode.st_rdev == 0
            if LEFTOVER.search(name) and not whiteout and not str(rel).startswith("var/log"):
                found.append(f"/{rel / name}")
        dirs[:] = [d for d in dirs if not LEFTOVER.search(d)]
    return sorted(found)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    return {m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]),
                   "failed": int(m[5])} for m in RECAP.finditer(stdout.split("PLAY RECAP")[-1])}


def failures(stdout: str) -> str:
    lines = [ln for ln in stdout.splitlines() if ln.startswith(("fatal:", "failed:", "[ERROR]"))]
    return " | ".join(lines)[-1500:] or stdout[-800:]


def changed_tasks(stdout: str) -> str:
    tasks, current = [], ""
    for line in stdout.splitlines():
        if line.startswith("TASK ["):
            current = line
        elif line.startswith("changed:"):
            tasks.append(f"{current} {line}")
    return " | ".join(tasks)[-1500:]


def said(stdout: str) -> list[str]:
    """The messages the playbook's debug tasks printed."""
    return re.findall(r'"msg": "(.*)"', stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("add", "failover", "remove", "replace", "replace_ack",
                                           "stopstart", "destroy"))
    parser.add_argument("--inventory", action="append", required=True)
    parser.add_argument("--daemon-src", required=True)
    args = parser.parse_args()
    steps = Steps(Lab.load(os.environ.get("RHC_LAB_PREFIX") or "rhc"), args.inventory,
                  args.daemon_src)
    started = time.monotonic()
    try:
        getattr(steps, args.step)()
        steps.summary["ok"] = True
    except (StepFailed, LabError) as exc:
        steps.summary["why"] = f"{type(exc).__name__}: {exc}"
    steps.summary["step_s"] = round(time.monotonic() - started, 1)
    print(json.dumps({"step": args.step, **steps.summary}))
    return 0 if steps.summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
