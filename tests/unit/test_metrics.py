"""clusterd.metrics: the status document as Prometheus text (issue 17 item 4)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from clusterd import metrics
from clusterd.cli import clustat

GOLDEN = Path(__file__).parent / "cli" / "clustat_golden"
SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_][a-z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+]+$')


def doc() -> dict:
    d = json.loads((GOLDEN / "alpha.json").read_text())
    d["wire"] = {"accepted": 120, "drops": {"bad_mac": 2, "replay": 1}, "inbox_overflow": 0,
                 "lease_rtt": {"node2": 0.0031, "node3": 0.35}}
    d["qdisk"] = {"granted": True, "score": 1, "master": "node1"}
    d["services_locked"] = True
    return d


def parse(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ .+$", line), line
            continue
        assert SAMPLE.match(line), line
        key, value = line.rsplit(" ", 1)
        assert key not in out, f"{key} twice"
        out[key] = float(value)
    return out


def test_every_line_is_valid_exposition_text_and_each_series_appears_once():
    text = metrics.render(doc(), {"rss_bytes": 40e6, "cpu_seconds": 12.5})
    assert text.endswith("\n")
    series = parse(text)
    names = {k.split("{")[0] for k in series}
    for name in names:   # each family has its HELP and TYPE, once
        assert text.count(f"# HELP {name} ") == 1 and text.count(f"# TYPE {name} ") == 1


def test_values_come_from_the_document():
    d = doc()
    s = parse(metrics.render(d, {"rss_bytes": 40_000_000, "cpu_seconds": 12.5}))
    assert s["clusterd_quorate"] == (1 if d["quorum"]["quorate"] else 0)
    assert s["clusterd_expected_votes"] == d["quorum"]["expected_votes"]
    online = [n["name"] for n in d["nodes"] if n["state"] == "online"]
    for n in d["nodes"]:
        assert s[f'clusterd_node_online{{node="{n["name"]}"}}'] == (n["name"] in online)
    for svc in d["services"]:
        states = {k: v for k, v in s.items()
                  if k.startswith(f'clusterd_service_state{{service="{svc["name"]}"')}
        assert sum(states.values()) == (1 if svc["state"] in metrics.SERVICE_STATES else 0)
    assert s['clusterd_packets_dropped_total{reason="bad_mac"}'] == 2
    assert s['clusterd_heartbeat_lease_rtt_seconds{peer="node3"}'] == 0.35
    assert s["clusterd_qdisk_votes_counted"] == 1 and s["clusterd_services_locked"] == 1
    assert s["clusterd_process_resident_memory_bytes"] == 40_000_000
    assert s["clusterd_process_cpu_seconds_total"] == 12.5


def test_label_values_are_escaped():
    d = doc()
    d["services"][0]["name"] = 'service:a"b\\c\nd'
    text = metrics.render(d)
    assert 'service="service:a\\"b\\\\c\\nd"' in text
    parse(text)


def test_without_qdisk_or_process_figures_those_families_are_absent():
    d = doc()
    del d["qdisk"]
    text = metrics.render(d)
    assert "clusterd_qdisk" not in text and "clusterd_process_" not in text


def test_process_figures_of_this_process():
    figures = metrics.process_figures(os.getpid())
    assert figures["rss_bytes"] > 1_000_000 and figures["cpu_seconds"] > 0
    assert metrics.process_figures(2**22 + 7) == {}


class Client:
    def __init__(self, reply):
        self.reply = reply

    def call(self, op, **kw):
        return self.reply


def test_clustat_prints_and_writes_the_textfile_atomically(tmp_path, capsys):
    import io
    out = io.StringIO()
    assert clustat.main(["--format", "prometheus"], client=Client(doc()), out=out) == 0
    assert "clusterd_quorate" in out.getvalue()
    target = tmp_path / "clusterd.prom"
    out = io.StringIO()
    assert clustat.main(["--textfile", str(target)], client=Client(doc()), out=out) == 0
    assert out.getvalue() == "" and "clusterd_quorate" in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["clusterd.prom"]    # no temporary left
    assert clustat.main(["--textfile", str(tmp_path / "no/such/dir/x.prom")],
                        client=Client(doc()), out=io.StringIO()) != 0
    assert "cannot write" in capsys.readouterr().err
