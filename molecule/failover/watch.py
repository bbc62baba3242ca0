"""Power off the owner of web and watch, as a client does, until it is back on its owner.

A client polls web every 20 ms from the lab's client namespace (clusterlab.demo.Probe)
while this script powers the owner off through its BMC. The cluster fences it (the
default action is reboot, so the node comes back by itself on the lab's fast boot) and
starts web on a survivor; the ordered domain then fails web back once the node rejoined.
Polling clustat alone could miss the time web spent on the survivor; the client's answers
cannot. Prints one JSON summary line; exit 1 if any step did not happen in time.

    watch.py            # from molecule/failover/verify.yml, with the venv's python
"""

from __future__ import annotations

import json
import sys
import time

from clusterlab.demo import Probe
from clusterlab.errors import LabError
from clusterlab.lab import Lab

SERVICE = "service:web"
RECOVER_WITHIN = 60.0    # s: owner powered off -> fenced and answering from a survivor
FAILBACK_WITHIN = 120.0  # s: owner on again -> rejoined and answering from it


def _status(lab: Lab, node: str) -> dict | None:
    done = lab.exec(node, ["clustat", "--format", "json"], check=False, timeout=20)
    try:
        return json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:
        return None


def _web(status: dict) -> dict:
    return next(s for s in status["services"] if s["name"] == SERVICE)


def main() -> int:
    lab = Lab.load()
    names = [n.name for n in lab.nodes]
    before = _status(lab, names[0])
    if before is None or _web(before)["state"] != "started":
        print(json.dumps({"ok": False, "why": "web is not started before the test",
                          "status": before}))
        return 1
    owner = _web(before)["owner"]
    survivors = [n for n in names if n != owner]
    summary: dict = {"owner": owner, "ok": False}
    probe = Probe(lab)
    try:
        lab.wait_for(lambda: (a := probe.last()) is not None and a.ok, 30,
                     "web answering before the power-off")
        off_at = time.monotonic()
        lab.power(owner, "off")
        summary["power_off_s"] = round(time.monotonic() - off_at, 2)

        def fenced() -> dict | None:
            for node in survivors:
                status = _status(lab, node)
                if status and any(f["node"] == owner and f["state"] == "done"
                                  for f in status.get("fencing", ())):
                    return {"seen_on": node, "fencing": [f for f in status["fencing"]
                                                         if f["node"] == owner]}
            return None

        def elsewhere() -> str | None:
            return next((a.node for a in probe.answers()
                         if a.t > off_at and a.ok and a.node in survivors), None)

        summary["fenced"] = lab.wait_for(fenced, RECOVER_WITHIN, f"{owner} fenced",
                                         interval=0.5)
        summary["answered_by_survivor"] = lab.wait_for(
            elsewhere, RECOVER_WITHIN, "web answering from a survivor")
        summary["outage_s"] = round(probe.longest_outage(), 3)
        # the fence action may have been reboot: power on is then a no-op
        summary["power_on"] = lab.power(owner, "on")

        def back() -> bool:
            status = _status(lab, survivors[0])
            if status is None:
                return False
            node = next(n for n in status["nodes"] if n["name"] == owner)
            web, last = _web(status), probe.last()
            return (node["state"] == "online" and web["owner"] == owner
                    and web["state"] == "started" and last is not None and last.ok
                    and last.node == owner)

        lab.wait_for(back, FAILBACK_WITHIN, f"web failed back to {owner}", interval=0.5)
        summary["ok"] = True
    except LabError as exc:
        summary["why"] = str(exc)
        summary["status"] = {n: _status(lab, n) for n in survivors}
    finally:
        probe.stop()
    answers = probe.answers()
    summary["answered_by"] = sorted(probe.owners())
    summary["answers"] = len(answers)
    summary["last_answer"] = answers[-1].node if answers else None
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
