"""clustat: golden renders and exit codes, and main(argv) against a fake control client.

The ``*.expected`` files beside this test were produced by a small C program that feeds
hand-written data through rgmanager clustat.c's printf formats (an independent oracle),
except ``extensions.expected`` (clusterd's Fencing section and Config Conflict line),
written by hand with printf(1).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from clusterd.cli import clustat
from clusterd.control import protocol as p
from clusterd.errors import ControlError

GOLDEN = Path(__file__).parent / "clustat_golden"
NOW = 1764104400          # Tue Nov 25 21:00:00 2025 UTC


def utc_ctime(t: float) -> str:
    return time.asctime(time.gmtime(t))


def doc(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def expected(name: str) -> str:
    return (GOLDEN / f"{name}.expected").read_text()


TEXT_CASES = [
    # (fixture, options, golden file, exit code)
    ("alpha", {}, "full", 0),
    ("alpha", {"long": True}, "long", 0),
    ("alpha", {"cols": 120}, "wide", 0),
    ("alpha", {"service": "service:baz"}, "svc_baz", 0),
    ("alpha", {"service": "service:bar"}, "svc_bar", 119),
    ("alpha", {"member": "node3"}, "member_node3", 1),
    ("beta", {}, "inquorate", 0),
    ("gamma", {}, "extensions", 0),
]


@pytest.mark.parametrize(("fixture", "opts", "golden", "rc"), TEXT_CASES)
def test_text_golden(fixture, opts, golden, rc):
    text, code = clustat.render_text(doc(fixture), now=NOW, ctime=utc_ctime, **opts)
    assert text == expected(golden)
    assert code == rc


@pytest.mark.parametrize(("fixture", "golden"), [("alpha", "xml"), ("beta", "xml_inquorate")])
def test_xml_golden(fixture, golden):
    text, code = clustat.render_xml(doc(fixture), ctime=utc_ctime)
    assert (text, code) == (expected(golden), 0)


EXIT_CASES = [
    ({"member": "node1"}, 0),
    ({"member": "node3"}, 1),
    ({"member": "nosuch"}, 255),
    ({"service": "service:foo"}, 0),
    ({"service": "vm:guest1"}, 114),
    ({"service": "service:nosuch"}, 255),
]


@pytest.mark.parametrize(("opts", "rc"), EXIT_CASES)
def test_exit_codes_text_and_xml_agree(opts, rc):
    assert clustat.render_text(doc("alpha"), ctime=utc_ctime, **opts)[1] == rc
    assert clustat.render_xml(doc("alpha"), ctime=utc_ctime, **opts)[1] == rc


def test_service_missing_when_no_services_at_all():
    assert clustat.render_text(doc("beta"), service="service:x")[1] == 255


def test_xml_member_filter_omits_cluster_and_groups():
    text, rc = clustat.render_xml(doc("alpha"), member="node2", ctime=utc_ctime)
    assert rc == 0
    assert "<cluster" not in text and "<groups>" not in text
    assert text.count("<node ") == 1 and 'name="node2"' in text


def test_estranged_offline_node_is_hidden_but_shown_when_online():
    d = doc("alpha")
    assert "ghost" not in clustat.render_text(d, now=NOW, ctime=utc_ctime)[0]
    d["nodes"][3]["state"] = "online"
    assert " ghost" in clustat.render_text(d, now=NOW, ctime=utc_ctime)[0]
    assert "Online, Estranged" in clustat.render_text(d, now=NOW, ctime=utc_ctime)[0]


def test_names_are_xml_escaped():
    d = doc("alpha")
    d["services"][0]["name"] = 'service:a"<b'
    text, _ = clustat.render_xml(d, ctime=utc_ctime)
    assert 'name="service:a&quot;&lt;b"' in text


@pytest.mark.parametrize(("given", "name"), [("foo", "service:foo"), ("vm:x", "vm:x")])
def test_service_prefix(given, name):
    assert clustat.service_name(given) == name


# --- main(argv) with a fake client --------------------------------------------------


class FakeClient:
    def __init__(self, *docs, error: ControlError | None = None):
        self.docs = list(docs)
        self.error = error
        self.calls: list[str] = []

    def call(self, op, args=None):
        self.calls.append(op)
        if self.error:
            raise self.error
        return self.docs[min(len(self.calls), len(self.docs)) - 1]


def run(argv, client, **kw):
    out = io.StringIO()
    rc = clustat.main(argv, client=client, out=out, clock=lambda: NOW, tty=False, **kw)
    return rc, out.getvalue()


def test_main_plain_uses_status_op(monkeypatch):
    monkeypatch.setattr(clustat, "_ctime", utc_ctime)
    client = FakeClient(doc("alpha"))
    assert run([], client) == (0, expected("full"))
    assert client.calls == [p.OP_STATUS]


def test_main_service_prefix_and_exit_code(monkeypatch):
    monkeypatch.setattr(clustat, "_ctime", utc_ctime)
    assert run(["-s", "bar"], FakeClient(doc("alpha"))) == (119, expected("svc_bar"))


@pytest.mark.parametrize(("fixture", "rc"), [("alpha", 0), ("beta", 1)])
def test_main_quiet_quorum(fixture, rc):
    assert run(["-Q"], FakeClient(doc(fixture))) == (rc, "")


def test_main_quiet_quorum_when_daemon_down_is_not_quorate():
    err = ControlError(p.E_NOT_RUNNING, "clusterd is not running on this node (no socket at x)")
    assert run(["-Q"], FakeClient(error=err)) == (1, "")


def test_main_local_nodeid():
    assert run(["-I"], FakeClient(doc("gamma"))) == (0, "0x00000001\n")


def test_main_json_prints_the_document():
    rc, out = run(["--format", "json"], FakeClient(doc("alpha")))
    assert rc == 0 and json.loads(out) == doc("alpha")


def test_main_xml(monkeypatch):
    monkeypatch.setattr(clustat, "_ctime", utc_ctime)
    assert run(["-x"], FakeClient(doc("alpha"))) == (0, expected("xml"))


def test_main_refresh_loop_renders_each_time_until_interrupted(monkeypatch):
    monkeypatch.setattr(clustat, "_ctime", utc_ctime)
    naps: list[float] = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    client = FakeClient(doc("alpha"), doc("beta"), doc("beta"))
    rc, out = run(["-i", "2"], client, sleep=sleep)
    assert rc == 0 and naps == [2, 2] and len(client.calls) == 2
    assert out == expected("full") + expected("inquorate")


def test_main_interval_and_xml_are_exclusive(capsys):
    with pytest.raises(SystemExit) as info:
        clustat.main(["-i", "1", "-x"], client=FakeClient(doc("alpha")))
    assert info.value.code == 2
    assert "options -i and -x are mutually exclusive" in capsys.readouterr().err


@pytest.mark.parametrize(("code", "rc"), [(p.E_NOT_RUNNING, 3), (p.E_PERMISSION, 4),
                                          (p.E_NOT_READY, 1)])
def test_main_connection_errors_are_clear(capsys, code, rc):
    err = ControlError(code, "the message")
    assert run([], FakeClient(error=err)) == (rc, "")
    assert capsys.readouterr().err == "clustat: the message\n"


def test_long_format_shows_why_a_service_failed():
    """clusterd's addition to -l: the agent's message of a failed service (RHCS showed
    none; the operator had to find it in the log), control characters masked."""
    d = doc("alpha")
    d["services"][0].update(state="failed", reason="start of service:foo failed at "
                            "fs:data: mount failed: special device /dev/sdz does not exist\x1b[2J")
    text, _ = clustat.render_text(d, now=NOW, ctime=utc_ctime, long=True)
    assert ("  Reason          : start of service:foo failed at fs:data: mount failed: "
            "special device /dev/sdz does not exist?[2J\n") in text
    assert text.count("Reason") == 1   # services without a reason show no such line


def test_standby_nodes_and_the_service_lock_are_shown():
    """Issue 17 item 5: a member in standby says so on its line; clusvcadm -l in force is a
    line under the quorum line (neither shown when not so)."""
    d = doc("alpha")
    plain = clustat.render_text(d, now=NOW, ctime=utc_ctime)[0]
    assert "Standby" not in plain and "locked" not in plain
    d["nodes"][1]["standby"] = True
    d["services_locked"] = True
    text = clustat.render_text(d, now=NOW, ctime=utc_ctime)[0]
    name = d["nodes"][1]["name"]
    line = next(x for x in text.splitlines() if x.startswith(f" {name} "))
    assert line.endswith(", Standby"), line
    assert sum("Standby" in x for x in text.splitlines()) == 1
    assert "Member Status: Quorate\n\nServices locked: nothing starts or moves until " \
           "clusvcadm -u\n\n" in text


def test_the_quorum_disk_is_member_zero_online_while_its_votes_count():
    d = doc("alpha")
    d["qdisk"] = {"name": "/dev/sdq", "granted": True, "votes": 1}
    text = clustat.render_text(d, now=NOW, ctime=utc_ctime)[0]
    assert " /dev/sdq " in text and text.index("/dev/sdq") < text.index(d["nodes"][0]["name"])
    assert any(x.startswith(" /dev/sdq") and x.endswith("0 Online, Quorum Disk")
               for x in text.splitlines()), text
    d["qdisk"]["granted"] = False
    assert "Offline, Quorum Disk" in clustat.render_text(d, now=NOW, ctime=utc_ctime)[0]
    xml = clustat.render_xml(d, ctime=utc_ctime)[0]
    assert 'name="/dev/sdq" state="0"' in xml and 'qdisk="1" nodeid="0x00000000"' in xml
