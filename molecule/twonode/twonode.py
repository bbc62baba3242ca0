"""Two-node clusters from the playbooks, one step per call, as an operator runs them.

From molecule/twonode/verify.yml, with the venv's python, after converge bootstrapped node1
and node2 (group ``cluster``) with the service ``web`` (a floating address + nginx,
preferring node1: group_vars/cluster.yml):

    twonode.py STEP --inventory SRC [--inventory SRC ...] --daemon-src DIR

STEP is one of:
  twonode   the accepted config has two_node="1" and expected_votes="1" on both nodes; a
            re-run of site.yml changes nothing; node1|node2 partitioned while a client polls
            web every 20 ms: exactly one survivor, the node running web (the fence delay of
            two_node mode: the side running more services fences at once, the other waits
            5 s), which fences the other through its BMC and keeps web answering; the
            fenced node boots, its clusterd starts (enabled by the role) and both are
            members again
  qdisk     the heuristic script written on both nodes (/usr/local/sbin/qd-check: fails
            while /run/qd-fail exists), then site.yml with cluster_node_quorum_disk (the
            lab's /dev/cluster-qdisk0, initialize, votes 1, interval 1, tko 4, that one
            heuristic): the device initialised from node1, two_node gone, expected_votes 3,
            clustat shows the disk Online and both nodes count its vote; a re-run changes
            nothing; partitioned: the disk's master survives, fences the other, web answers
            from it; both members again
  handover  the master's heuristic fails (touch /run/qd-fail): the other node becomes the
            master; partitioned: that side survives now, fences the first and runs web;
            both members again
  absent    site.yml with cluster_node_quorum_disk {state: absent}: the disk out of the
            config, two_node="1" and expected_votes="1" back, clustat without the disk,
            both members counting 2 votes; a re-run changes nothing

Each step prints one JSON line (``ok``, what it measured, ``why`` when not ok) and exits
1 when not ok. The lab is the one RHC_LAB_PREFIX names (default rhc).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lifecycle"))

from clusterlab.errors import LabError
from clusterlab.lab import Lab
from lifecycle import StepFailed, Steps

NODES = ("node1", "node2")
DEVICE = "/dev/cluster-qdisk0"
CHECK = "/usr/local/sbin/qd-check"
CHECK_SCRIPT = ("#!/bin/sh\n# the twonode scenario's quorum disk heuristic: fit unless "
                "/run/qd-fail exists\n[ ! -e /run/qd-fail ]\n")
QUORUM_DISK = {"device": DEVICE, "initialize": True, "votes": 1, "interval": 1, "tko": 4,
               "heuristics": [{"program": CHECK, "score": 1, "interval": 1}]}
QDISK_VARS = json.dumps({"cluster_node_quorum_disk": QUORUM_DISK})
ABSENT_VARS = json.dumps({"cluster_node_quorum_disk": {"state": "absent"}})


def other(node: str) -> str:
    return NODES[1] if node == NODES[0] else NODES[0]


class TwoNode(Steps):
    # ---------------------------------------------------------------- helpers
    def cman(self, node: str) -> dict[str, str]:
        conf = self.lab.exec(node, ["cat", "/var/lib/clusterd/cluster.conf.accepted"]).stdout
        found = re.search(r"<cman\b([^>]*)/?>", conf)
        return dict(re.findall(r'(\w+)="([^"]*)"', found.group(1))) if found else {}

    def doc(self, node: str) -> dict | None:
        """clustat's document, or None while the node is off, booting or not answering."""
        try:
            if not self.lab.is_on(node):
                return None
            done = self.lab.exec(node, ["clustat", "--format", "json"], check=False, timeout=10)
            return json.loads(done.stdout) if done.returncode == 0 else None
        except (LabError, ValueError, OSError):
            return None

    def both_members(self, qdisk: bool) -> dict:
        """Both nodes online members of one quorate view counting both nodes' votes (and,
        with the disk, its vote too, both under one master)."""
        votes = 3 if qdisk else 2

        def ready() -> dict | None:
            docs = {n: self.doc(n) for n in NODES}
            if any(d is None or d["view"]["members"] != [1, 2] or not d["quorum"]["quorate"]
                   or d["quorum"]["votes"] != votes
                   or sorted(n["name"] for n in d["nodes"] if n["state"] == "online")
                   != list(NODES) for d in docs.values()):
                return None
            if qdisk:
                q = {n: d.get("qdisk") or {} for n, d in docs.items()}
                masters = {x.get("master") for x in q.values()}
                if len(masters) != 1 or None in masters or not all(x.get("granted")
                                                                   for x in q.values()):
                    return None
                return {"master": masters.pop(), "votes": docs["node1"]["quorum"]["votes"]}
            return {"votes": docs["node1"]["quorum"]["votes"]}
        return self.wait(ready, 180, "both nodes members of one quorate view"
                         + (" counting the quorum disk" if qdisk else ""), interval=0.5)

    def partition(self, winner: str, what: str) -> dict:
        """node1|node2 cut apart while a client polls web: ``winner`` alone stays on and
        quorate, fences the other through its BMC (the other fences nobody) and web answers
        from it; healed as soon as the fence is done (the fenced node boots on a healed
        network), then both members again."""
        loser = other(winner)
        out: dict = {"case": what, "winner_expected": winner}
        probe = self.probe()
        try:
            self.wait(lambda: self.answered_by(probe, self.service(winner)["owner"], 0), 20,
                      "web answering before the cut")
            out["web_before"] = self.service(winner)["owner"]
            wall, cut_at = time.time(), time.monotonic()
            self.lab.partition(winner)   # cuts node1<->node2; the winner stays on
            acted: list[str] = []

            def fenced() -> dict | None:
                if not self.lab.is_on(winner):
                    acted.append(f"{winner} was powered off")
                d = self.doc(loser)
                for op in (d or {}).get("fencing") or ():
                    if op["node"] == winner and op["state"] in ("running", "done") \
                            and op["since"] >= wall - 1:
                        acted.append(f"{loser} fenced {winner}: {op}")
                if acted:
                    return {"acted": acted}
                for op in (self.doc(winner) or {}).get("fencing") or ():
                    if op["node"] == loser and op["state"] == "done" and op["since"] >= wall - 1:
                        return op
                return None

            op = self.wait(fenced, 120, f"{winner} fencing {loser}", interval=0.2)
            fenced_s = round(time.monotonic() - cut_at, 2)
            self.lab.heal(winner)
            if "acted" in op:
                raise StepFailed(f"not exactly one survivor ({what}): {op['acted']}")
            out["fenced"] = {"node": op["node"], "by": winner, "after_cut_s": fenced_s,
                             "how": op.get("how") or op.get("agent") or op.get("method")}
            self.wait(lambda: self.answered_by(probe, winner, cut_at), 120,
                      f"web answering from {winner}")
            d = self.doc(winner) or {}
            if not (d.get("quorum") or {}).get("quorate") or not self.lab.is_on(winner):
                raise StepFailed(f"{winner} is not a quorate survivor: {d.get('quorum')}")
            out["survivor"] = {"node": winner, "quorum": d["quorum"],
                               "qdisk": {k: (d.get("qdisk") or {}).get(k)
                                         for k in ("master", "granted", "state")}
                               if d.get("qdisk") else None}
            out["client"] = self.outage(probe, cut_at)
            # what the survivor's clusterd said about quorum and web since the cut
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall - 1))
            log = self.lab.exec(winner, ["journalctl", "-u", "clusterd", "--since", since,
                                         "--no-pager", "-o", "cat"], check=False).stdout
            out["survivor_log"] = [line[:160] for line in log.splitlines()
                                   if re.search(r"quorum|quorate|service:web", line,
                                                re.IGNORECASE)][:8]
        finally:
            probe.stop()
            if self.lab.is_on(winner):
                self.lab.heal(winner)
        back = time.monotonic()
        out["rejoined"] = self.both_members(qdisk=bool(out["survivor"]["qdisk"]))
        out["rejoin_s"] = round(time.monotonic() - back, 1)
        return out

    # ---------------------------------------------------------------- steps
    def twonode(self) -> None:
        s = self.summary
        s["cman"] = {n: self.cman(n) for n in NODES}
        for node, cman in s["cman"].items():
            if cman.get("two_node") != "1" or cman.get("expected_votes") != "1":
                raise StepFailed(f"{node}'s accepted config: <cman {cman}>, expected "
                                 'two_node="1" expected_votes="1"')
        s["members"] = self.both_members(qdisk=False)
        s["rerun_s"] = self.run_unchanged("site.yml")
        owner = self.service("node1")["owner"]
        s["partition"] = self.partition(owner, "two_node, web on " + owner)

    def qdisk(self) -> None:
        s = self.summary
        for node in NODES:
            self.lab.exec(node, ["sh", "-c", f"cat > {CHECK} && chmod 0755 {CHECK} && "
                                 "chown root:root " + CHECK + " && rm -f /run/qd-fail"],
                          input=CHECK_SCRIPT)
        _, s["site_qdisk_s"], hosts = self.run_ok("site.yml", "-e", QDISK_VARS)
        s["site_qdisk_changed"] = {h: r["changed"] for h, r in hosts.items()}
        s["cman"] = {n: self.cman(n) for n in NODES}
        for node, cman in s["cman"].items():
            if cman.get("two_node", "0") != "0" or cman.get("expected_votes") != "3":
                raise StepFailed(f"{node}'s accepted config: <cman {cman}>, expected "
                                 'no two_node and expected_votes="3"')
        s["members"] = self.both_members(qdisk=True)
        text = self.lab.exec("node2", ["clustat"]).stdout
        line = re.search(rf"^ {re.escape(DEVICE)}\s+0 Online, Quorum Disk$", text, re.MULTILINE)
        if not line:
            raise StepFailed(f"clustat does not show the disk Online: {text}")
        s["clustat_disk"] = line.group(0).strip()
        s["mkqdisk_L"] = self.lab.exec("node1", ["mkqdisk", "-L", "-d", DEVICE]).stdout.strip()
        s["rerun_s"] = self.run_unchanged("site.yml", "-e", QDISK_VARS)
        master = s["members"]["master"]
        s["partition"] = self.partition(master, f"quorum disk, master {master}")

    def handover(self) -> None:
        s = self.summary
        first = self.both_members(qdisk=True)["master"]
        second = other(first)
        s["master_before"] = first
        failed_at = time.monotonic()
        self.lab.exec(first, ["touch", "/run/qd-fail"])

        def handed() -> dict | None:
            q = {n: ((self.doc(n) or {}).get("qdisk") or {}) for n in NODES}
            if all(x.get("master") == second for x in q.values()) \
                    and q[second].get("granted") and not q[first].get("granted"):
                return {n: {k: x.get(k) for k in ("master", "granted", "state", "score")}
                        for n, x in q.items()}
            return None

        s["handed_over"] = self.wait(handed, 120, f"{second} the disk's master", interval=0.5)
        s["handover_s"] = round(time.monotonic() - failed_at, 1)
        s["partition"] = self.partition(second, f"quorum disk, {first}'s heuristic failing, "
                                                f"master {second}")

    def absent(self) -> None:
        s = self.summary
        _, s["site_absent_s"], hosts = self.run_ok("site.yml", "-e", ABSENT_VARS)
        s["site_absent_changed"] = {h: r["changed"] for h, r in hosts.items()}
        s["cman"] = {n: self.cman(n) for n in NODES}
        for node, cman in s["cman"].items():
            if cman.get("two_node") != "1" or cman.get("expected_votes") != "1":
                raise StepFailed(f"{node}'s accepted config: <cman {cman}>, expected "
                                 'two_node="1" expected_votes="1"')
            conf = self.lab.exec(node, ["cat", "/var/lib/clusterd/cluster.conf.accepted"]).stdout
            if "<quorumd" in conf:
                raise StepFailed(f"{node}'s accepted config still has <quorumd>")
        s["members"] = self.both_members(qdisk=False)
        if DEVICE in self.lab.exec("node1", ["clustat"]).stdout:
            raise StepFailed("clustat still lists the quorum disk")
        s["rerun_s"] = self.run_unchanged("site.yml", "-e", ABSENT_VARS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("twonode", "qdisk", "handover", "absent"))
    parser.add_argument("--inventory", action="append", required=True)
    parser.add_argument("--daemon-src", required=True)
    args = parser.parse_args()
    steps = TwoNode(Lab.load(os.environ.get("RHC_LAB_PREFIX") or "rhc"), args.inventory,
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
