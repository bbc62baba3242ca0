"""`make demo`: a 3-node lab (reused when up), bootstrap.yml + services.yml, clustat, then
the node running `web` is powered off through its BMC while an HTTP client in the client
namespace polls the floating IP every 20 ms; the failover, the measured outage and the
node's return are shown as they happen. The lab is left up.

`Probe` (the HTTP client) is also used by tests/bench/bench_playbooks.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError
from .lab import Lab

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
SERVICE = "web"
URL = "http://198.18.0.50/"

# Runs in the client namespace with the host's python3: one GET every interval seconds, one
# JSON line per answer {"t": monotonic, "ok": bool, "node": text or error}.
PROBE_CODE = r"""
import json, sys, time, urllib.request
url, interval = sys.argv[1], float(sys.argv[2])
while True:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=0.2) as reply:
            body = reply.read().decode().strip()
        line = {"t": start, "ok": True, "node": body.rsplit(" ", 1)[-1]}
    except Exception as exc:
        line = {"t": start, "ok": False, "node": type(exc).__name__}
    print(json.dumps(line), flush=True)
    time.sleep(max(0.0, interval - (time.monotonic() - start)))
"""


@dataclass(frozen=True)
class Answer:
    t: float
    ok: bool
    node: str


def longest_outage(answers: list[Answer]) -> float:
    """Longest time from the last answer before a run of failures to the first answer after
    it (0.0 without failures; a run of failures with no answer after it is not counted)."""
    longest, last_ok, failed = 0.0, None, False
    for answer in answers:
        if answer.ok:
            if last_ok is not None and failed:
                longest = max(longest, answer.t - last_ok)
            last_ok, failed = answer.t, False
        else:
            failed = True
    return longest


class Probe:
    """An HTTP client in the lab's client namespace polling url every interval seconds."""

    def __init__(self, lab: Lab, url: str = URL, interval: float = 0.02,
                 on_change: Callable[[Answer], None] | None = None) -> None:
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._on_change = on_change
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.spec.client_netns, "python3", "-c", PROBE_CODE,
             url, str(interval)], stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        last: tuple[bool, str] | None = None
        for line in self._proc.stdout:
            data = json.loads(line)
            answer = Answer(data["t"], data["ok"], data["node"])
            with self._lock:
                self._answers.append(answer)
            if (answer.ok, answer.node) != last and self._on_change is not None:
                self._on_change(answer)
            last = (answer.ok, answer.node)

    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._answers)

    def last(self) -> Answer | None:
        with self._lock:
            return self._answers[-1] if self._answers else None

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=5)

    def longest_outage(self) -> float:
        return longest_outage(self.answers())

    def owners(self) -> set[str]:
        return {a.node for a in self.answers() if a.ok}


def say(msg: str) -> None:
    print(f"demo: {msg}", flush=True)


def run_playbooks(*names: str, extra: Sequence[str] = ()) -> float:
    """Run playbooks from the repo root (``extra``: more ansible-playbook arguments); print
    the plays, failures and the recap; return seconds."""
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    argv = [str(VENV_BIN / "ansible-playbook"), *[f"playbooks/{n}" for n in names], *extra]
    say("$ " + " ".join(["ansible-playbook", *argv[1:]]))
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    recap = False
    for line in proc.stdout:
        recap = line.startswith("PLAY RECAP") or (recap and not line.startswith("PLAY ["))
        if (recap and line.strip()) or line.startswith(("PLAY [", "fatal:", "[ERROR]", "failed:")):
            print("  " + line.rstrip(), flush=True)
    if proc.wait() != 0:
        raise LabError(f"{' '.join(names)} failed (rc={proc.returncode}); see the output above")
    return time.monotonic() - start


def cluster_status(lab: Lab, node: str) -> dict | None:
    done = lab.exec(node, ["clustat", "--format", "json"], check=False, timeout=15)
    if done.returncode not in (0, 1) or not done.stdout.strip().startswith("{"):
        return None
    return json.loads(done.stdout)


def service_owner(status: dict | None, service: str = SERVICE) -> str | None:
    for svc in (status or {}).get("services", []):
        if svc["name"] in (service, f"service:{service}") and svc["state"] == "started":
            return svc["owner"]
    return None


def show_clustat(lab: Lab, node: str) -> None:
    print(f"$ cluster-lab exec {node} -- clustat")
    print(lab.exec(node, ["clustat"], check=False).stdout, flush=True)


def failover(lab: Lab) -> None:
    status = cluster_status(lab, lab.nodes[0].name)
    victim = service_owner(status)
    if victim is None:
        say(f"service {SERVICE} is not started, so there is no failover to show (services "
            "may not be wired into clusterd yet); the cluster itself is up")
        return
    survivor = next(n.name for n in lab.nodes if n.name != victim)
    t0 = time.monotonic()

    def on_change(answer: Answer) -> None:
        what = f"answered by {answer.node}" if answer.ok else f"no answer ({answer.node})"
        print(f"  client  +{answer.t - t0:7.3f} s  {URL} {what}", flush=True)

    probe = Probe(lab, on_change=on_change)
    try:
        lab.wait_for(lambda: (probe.last() or Answer(0, False, "")).ok, 10,
                     "the client's first answer from web")
        say(f"powering off {victim} (runs {SERVICE}) through its BMC; the client polls every 20 ms")
        t0 = time.monotonic()
        lab.power(victim, "off", wait=False)
        print(f"  power   +{time.monotonic() - t0:7.3f} s  {victim} off (ipmitool chassis power off)")
        seen: dict[str, object] = {}

        def moved() -> bool:
            st = cluster_status(lab, survivor)
            for op in (st or {}).get("fencing", []):
                key = f"{op['node']}:{op['state']}"
                if key not in seen:
                    seen[key] = op
                    method = f" (method {op['method']})" if op.get("method") else ""
                    print(f"  fence   +{time.monotonic() - t0:7.3f} s  {op['node']} "
                          f"{op['state']}{method} (as clustat shows it)", flush=True)
            owner = service_owner(st)
            last = probe.last()
            return bool(owner and owner != victim and last and last.ok)

        lab.wait_for(moved, 120, f"{SERVICE} to answer from another node", interval=0.2)
        outage = probe.longest_outage()
        say(f"{SERVICE} failed over: outage seen by the client {outage:.3f} s")
        show_clustat(lab, survivor)
        say(f"powering {victim} back on through its BMC")
        lab.power(victim, "on")

        def rejoined() -> bool:
            st = cluster_status(lab, survivor)
            nodes = {n["name"]: n["state"] for n in (st or {}).get("nodes", [])}
            return nodes.get(victim) == "online"

        lab.wait_for(rejoined, 120, f"{victim} to rejoin the cluster", interval=0.5)
        say(f"{victim} rejoined at +{time.monotonic() - t0:.1f} s")
        try:
            lab.wait_for(lambda: service_owner(cluster_status(lab, survivor)) == victim, 30,
                         f"{SERVICE} to fail back to {victim}", interval=0.5)
            say(f"{SERVICE} failed back to {victim} (ordered domain web_nodes, node1 first)")
        except LabError:
            say(f"{SERVICE} stayed on {service_owner(cluster_status(lab, survivor))}")
        say(f"longest outage during the whole demo: {probe.longest_outage():.3f} s; "
            f"answered by {', '.join(sorted(probe.owners()))}")
        show_clustat(lab, survivor)
    finally:
        probe.stop()


def demo_lab() -> Lab:
    """The lab that is up, or a new 3-node one (LabError when it cannot come up)."""
    try:
        lab = Lab.load()
        say("using the lab that is already up")
    except LabError:
        lab = Lab.up(progress=say)
    return lab


def main() -> int:
    try:
        lab = demo_lab()
        took = run_playbooks("bootstrap.yml", "services.yml")
        say(f"bootstrap + services took {took:.1f} s")
        show_clustat(lab, lab.nodes[0].name)
        failover(lab)
        print(f"""
Explore (the lab stays up):
  .venv/bin/cluster-lab exec node1 -- clustat
  .venv/bin/cluster-lab exec node1 -- clusvcadm -r {SERVICE} -m node2
  .venv/bin/ansible-playbook playbooks/relocate.yml -e service={SERVICE} -e target=node3
  .venv/bin/ansible node1 -m redhat.cluster.relocate -a 'name={SERVICE} member=node2'
  ip netns exec {lab.spec.client_netns} curl -s {URL}
  .venv/bin/cluster-lab power node2 off; .venv/bin/cluster-lab power node2 on
Tear down:
  make lab-down   (or .venv/bin/cluster-lab down)
More: docs/operator-guide.md, docs/lab.md""")
    except LabError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
