"""Alerts on the lab (issue 17 item 3), with the real daemon, the shipped sample alert
programs and real fence_ipmilan, on the shared 3-node lab (SvcLab's deployment) with four
alerts in cluster.conf's ``<clusterd>``:

  ``journal`` (alert_journal: a journal line per event), ``hook`` (alert_webhook: a JSON
  POST to a receiver in the lab's client namespace), ``hang`` (a program that never ends,
  timeout 5 s) and ``missing`` (a program that is not there);

  node1, which runs web, is powered off: web answers from a survivor (the hanging and the
  missing alert do not hold anything up), and the receiver gets node1's failure from both
  survivors, its fence from the node that ran it and web's start from its new owner; the
  survivors' journals have the same events; the hanging program's process group is gone
  and the daemon said it ran over its timeout; the missing one was logged as not run.
  Bad input: a shell command line as an alert program, an unknown event kind and a
  duplicate name are refused by ccs_config_validate.

Polls with deadlines (SvcLab.wait); asserts no timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterlab import Lab
from test_services_lab import REMOTE, SvcLab

pytestmark = pytest.mark.lab

SAMPLES = Path(__file__).resolve().parents[2] / "daemon/src/clusterd/data/alerts"
DIR = "/usr/local/libexec/rhc-alerts"
HOOK_PORT = 8099
RECEIVER = r"""
import http.server, sys
out = open(sys.argv[3], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(body.decode() + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


class AlertLab(SvcLab):
    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        hook = f"http://{lab.spec.client_address}:{HOOK_PORT}/hook"
        alerts = (f'<clusterd>'
                  f'<alert name="journal" program="{DIR}/alert_journal"/>'
                  f'<alert name="hook" program="{DIR}/alert_webhook" recipient="{hook}" '
                  f'timeout="10"/>'
                  f'<alert name="hang" program="{DIR}/alert_hang" timeout="5" '
                  f'events="node service"/>'
                  f'<alert name="missing" program="{DIR}/not-installed" events="node"/>'
                  f'</clusterd>')
        assert "<clusternodes>" in self.conf, "SvcLab's cluster.conf changed shape"
        self.conf = self.conf.replace("<clusternodes>", alerts + "<clusternodes>", 1)

    def install(self) -> None:
        super().install()
        files = {"alert_journal": (SAMPLES / "alert_journal").read_text(),
                 "alert_webhook": (SAMPLES / "alert_webhook").read_text(),
                 "alert_hang": "#!/bin/sh\n# never ends: clusterd kills its group\nsleep 3600\n"}
        for name in self.names:
            self.lab.exec(name, ["sh", "-c", f"rm -rf {DIR} && install -d -m 0755 {DIR}"])
            for fname, text in files.items():
                self.lab.exec(name, ["sh", "-c", (f"cat > {DIR}/{fname} && "
                                     f"chmod 0755 {DIR}/{fname}")], input=text)


@pytest.fixture(scope="module")
def alerting(lab: Lab) -> Iterator[AlertLab]:
    """As test_services_lab.deployed, with the alerts' deployment."""
    from lab_restore import restore
    restore(lab)
    s = AlertLab(lab)
    s.install()
    for name in s.names:
        s.start(name)
    try:
        s.wait("web started on node1", lambda: s.owner(s.names[1]) == s.names[0],
               timeout=120)
        yield s
    finally:
        restore(lab)
        for name in s.names:
            s.stop(name)


def receiver(s: SvcLab, log: Path) -> subprocess.Popen:
    script = log.with_suffix(".py")
    script.write_text(RECEIVER)
    return subprocess.Popen(["ip", "netns", "exec", s.lab.spec.client_netns, sys.executable,
                             str(script), s.lab.spec.client_address, str(HOOK_PORT),
                             str(log)])


def received(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_a_node_failure_reaches_the_hook_and_the_journal_and_nothing_waits(
        alerting: AlertLab, tmp_path: Path) -> None:
    s = alerting
    n1, n2, n3 = s.names
    log = tmp_path / "hook.jsonl"
    rx = receiver(s, log)
    try:
        s.wait("web answering from node1", lambda: s.answer() == n1, timeout=120)
        since = time.time()
        s.lab.power(n1, "off")
        s.wait("web answering from a survivor", lambda: s.answer() in (n2, n3), timeout=90)
        owner = s.answer()

        def got(kind: str, state: str, **match: str) -> list[dict]:
            return [a for a in received(log) if a["kind"] == kind and a["state"] == state
                    and all(a.get(k) == v for k, v in match.items())]
        s.wait("node1's failure from both survivors", lambda: {
            a["local_node"] for a in got("node", "failed", node=n1)} == {n2, n3}, timeout=60)
        s.wait("node1's fence", lambda: got("fence", "fenced", node=n1), timeout=90)
        s.wait(f"web started on {owner}, reported by {owner}", lambda: got(
            "service", "started", service="web", node=owner, local_node=owner), timeout=60)
        fence = got("fence", "fenced", node=n1)[0]
        assert fence["cluster"] == "svclab" and "fenced" in fence["desc"]
        assert len({(a["local_node"], a["sequence"]) for a in received(log)}) == \
            len(received(log)), "a node sent one sequence number twice"
        for name in (n2, n3):
            s.wait(f"{name}'s journal has node1's failure", lambda name=name: any(
                "node failed" in line for line in s.lab.exec(name, [
                    "journalctl", "-q", "-t", "clusterd-alert", "-o", "cat",
                    f"--since=@{int(since)}"], check=False).stdout.splitlines()), timeout=30)
        for name in (n2, n3):
            s.wait(f"{name}: the hanging alert killed after its timeout",
                   lambda name=name: s.journal_unix(name, "alert hang (") and s.journal_unix(
                       name, "ran over its 5s timeout: its process group was killed"),
                   timeout=60)
            s.wait(f"{name}: the missing alert program logged as not run",
                   lambda name=name: s.journal_unix(name, "alert missing (node failed"),
                   timeout=30)
        # the groups of the killed runs are gone (a new event may have started another run)
        s.wait("no hanging alert left over", lambda: all(
            s.lab.exec(name, ["pgrep", "-c", "-f", f"{DIR}/alert_hang"],
                       check=False).stdout.strip() in ("0", "1") for name in (n2, n3)),
            timeout=30)
    finally:
        rx.terminate()
        rx.wait(timeout=10)
        s.lab.power(n1, "on")


def test_bad_alert_settings_are_refused(alerting: AlertLab) -> None:
    n2 = alerting.names[1]
    for bad, words in (
            (f'program="{DIR}/alert_journal"/>', 'program="logger -t x hello"/>'),
            ('events="node service"', 'events="node disk"'),
            ('name="missing"', 'name="hook"')):
        conf = alerting.conf.replace(bad, words, 1)
        assert conf != alerting.conf
        alerting.lab.exec(n2, ["sh", "-c", f"cat > {REMOTE}/bad.conf"], input=conf)
        out = alerting.lab.exec(n2, ["env", f"PYTHONPATH={REMOTE}", "python3", "-m",
                                     "clusterd.cli.ccs_config_validate", "-f",
                                     f"{REMOTE}/bad.conf"], check=False)
        assert out.returncode != 0, (words, out.stdout)
        assert "/cluster/clusterd/alert" in out.stderr + out.stdout, out.stderr


def test_metrics_of_a_running_node(alerting: AlertLab) -> None:
    """Issue 17 item 4: ``clustat --format prometheus`` on a member, and ``--textfile``."""
    s = alerting
    n2 = s.names[1]
    s.wait("web running", lambda: s.answer() in s.names, timeout=120)
    out = s.cli(n2, "clustat", "--format", "prometheus")
    assert out.returncode == 0, out.stderr
    series = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in out.stdout.splitlines() if line and not line.startswith("#")}
    assert series["clusterd_quorate"] == 1
    assert series['clusterd_service_state{service="service:web",state="started"}'] == 1
    assert series["clusterd_process_resident_memory_bytes"] > 10e6
    assert series["clusterd_process_cpu_seconds_total"] > 0
    members = int(series["clusterd_view_members"])
    rtts = [k for k in series if k.startswith("clusterd_heartbeat_lease_rtt_seconds")]
    assert len(rtts) >= members - 1 >= 1, rtts
    out = s.cli(n2, "clustat", "--textfile", "/run/clusterd.prom")
    assert out.returncode == 0 and out.stdout == "", out.stderr
    text = s.lab.exec(n2, ["cat", "/run/clusterd.prom"]).stdout
    assert "# TYPE clusterd_quorate gauge\nclusterd_quorate 1\n" in text
