"""Roll the lab's cluster to a newer clusterd build while watching the service.

Copies daemon/ with a bumped local version (0.1.0 -> 0.1.0+<tag>), runs
playbooks/rolling_upgrade.yml against it, and meanwhile polls web every 20 ms from the
client namespace (clusterlab.demo.Probe) and samples which nodes hold the floating address.
Prints one JSON summary line (with who answers after the roll and which nodes are left in
standby); exit 1 if the playbook failed or the address was ever seen on two nodes at once.
Used by verify.yml and tests/bench/bench_playbooks.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from clusterd.wire.codec import PROTOCOL_VERSION
from clusterlab.demo import Probe
from clusterlab.errors import LabError
from clusterlab.lab import Lab

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADDRESS = "198.18.0.50"


def bumped_copy(tag: str, into: Path) -> Path:
    src = into / "daemon"
    shutil.copytree(REPO / "daemon", src,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    pyproject = src / "pyproject.toml"
    text = pyproject.read_text()
    version = re.search(r'^version = "([^"+]+)', text, re.MULTILINE)
    if version is None:
        raise SystemExit("daemon/pyproject.toml has no version line")
    pyproject.write_text(text.replace(version.group(0), f'version = "{version.group(1)}+{tag}',
                                      1))
    return src


def holders(lab: Lab, address: str = ADDRESS) -> list[str]:
    out = []
    for node in lab.nodes:
        if not lab.is_on(node.name):
            continue
        done = lab.exec(node.name, ["ip", "-o", "addr", "show", "to", address], check=False,
                        timeout=10)
        if done.stdout.strip():
            out.append(node.name)
    return out


def outages_in_place(answers: list, longer_than: float = 2.0) -> list[dict]:
    """Runs of failed requests longer than ``longer_than`` seconds after which the same node
    answers again: an outage that no relocation explains (a service restarted in place, a
    daemon that stopped it). Shorter runs are a busy machine's slow answers."""
    found, last_ok, failed = [], None, False
    for answer in answers:
        if not answer.ok:
            failed = True
            continue
        if failed and last_ok is not None and answer.node == last_ok.node \
                and answer.t - last_ok.t > longer_than:
            found.append({"node": answer.node, "seconds": round(answer.t - last_ok.t, 3)})
        last_ok, failed = answer, False
    return found


_PROTOCOL = "from clusterd.wire.codec import PROTOCOL_VERSION as V; print(V)"


def protocols(lab: Lab) -> dict[str, dict]:
    """Per node: the protocol its installed clusterd speaks, and (v3 and later: its status
    names them) the version each peer was last heard speaking."""
    out = {}
    for node in lab.nodes:
        spoken = lab.exec(node.name, ["/opt/clusterd/bin/python", "-c", _PROTOCOL],
                          check=False).stdout.strip()
        status = lab.exec(node.name, ["clustat", "--format", "json"], check=False).stdout
        with contextlib.suppress(ValueError):
            wire = json.loads(status or "{}").get("wire", {})
        out[node.name] = {"speaks": int(spoken) if spoken.isdigit() else None,
                          "peers": wire.get("peer_protocols", {})}
    return out


def _answer(lab: Lab, address: str) -> str | None:
    done = subprocess.run(["ip", "netns", "exec", lab.spec.client_netns, "curl", "-s",
                           "--max-time", "1", f"http://{address}/"],
                          capture_output=True, text=True, check=False, timeout=10)
    return done.stdout.strip() or None


def roll(lab: Lab, tag: str, address: str = ADDRESS, ansible_args: tuple[str, ...] = ()
         ) -> tuple[dict, str]:
    """Run the watched rolling upgrade; returns (summary, playbook output)."""
    stop = threading.Event()
    most: list[list[str]] = [[]]

    def sample() -> None:
        while not stop.is_set():
            seen = holders(lab, address)
            if len(seen) > len(most[0]):
                most[0] = seen
            stop.wait(0.3)

    before = protocols(lab)
    with tempfile.TemporaryDirectory(prefix="rhc-upgrade-") as tmp:
        src = bumped_copy(tag, Path(tmp))
        probe = Probe(lab, url=f"http://{address}/")
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   PATH=f"{BIN}:{os.environ.get('PATH', '')}")
        done = subprocess.run([str(BIN / "ansible-playbook"), "playbooks/rolling_upgrade.yml",
                               "-e", f"cluster_node_daemon_src={src}", *ansible_args],
                              cwd=REPO, env=env, capture_output=True, text=True, check=False)
        took = time.monotonic() - start
        stop.set()
        sampler.join()
        probe.stop()
    answering = None
    if done.returncode == 0:
        with contextlib.suppress(LabError):
            answering = lab.wait_for(lambda: _answer(lab, address), 60,
                                     "web answering after the roll")
    # every peer heard speaking this build's protocol by every node (a heartbeat each way:
    # poll, not sleep)
    after: dict = {}
    with contextlib.suppress(LabError):
        lab.wait_for(lambda: after.update(protocols(lab)) or all(
            len(p["peers"]) == len(lab.nodes) - 1 and set(p["peers"].values()) == {PROTOCOL_VERSION}
            for p in after.values()), 30,
            f"every node hearing every peer speak v{PROTOCOL_VERSION}")
    status = lab.exec(lab.nodes[0].name, ["clustat", "--format", "json"], check=False).stdout
    standby = sorted(n["name"] for n in json.loads(status or '{"nodes": []}')["nodes"]
                     if n.get("standby"))
    code = "import importlib.metadata as m; print(m.version('clusterd'))"
    versions = {n.name: lab.exec(n.name, ["/opt/clusterd/bin/python", "-c", code],
                                 check=False).stdout.strip() for n in lab.nodes}
    summary = {"rc": done.returncode, "seconds": round(took, 1), "versions": versions,
               "expected_suffix": f"+{tag}", "most_holders": most[0],
               "longest_outage_s": round(probe.longest_outage(), 3),
               "answered_by": sorted(probe.owners()), "answers": len(probe.answers()),
               "answering_after": answering, "standby_after": standby,
               "outages_in_place": outages_in_place(probe.answers()),
               "protocol_of_this_build": PROTOCOL_VERSION,
               "protocols_before": {n: p["speaks"] for n, p in before.items()},
               "protocols_after": {n: p["speaks"] for n, p in after.items()},
               "peer_protocols_after": {n: p["peers"] for n, p in after.items()}}
    return summary, done.stdout


def main() -> int:
    tag = sys.argv[1] if len(sys.argv) > 1 else "upgrade1"
    summary, output = roll(Lab.load(), tag)
    if summary["rc"] != 0:
        print(output[-4000:], file=sys.stderr)
    print(json.dumps(summary))
    return 0 if summary["rc"] == 0 and len(summary["most_holders"]) <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
