"""cman_tool: golden renders of ``status`` and ``nodes``, and main(argv) against a fake
control client (``expected``, errors, exit codes).

The ``*.expected`` files beside this test are written by ``cman_tool_golden/
make_expected.sh`` with printf(1) and the format strings of cman 3's ``cman_tool/main.c``
(an oracle independent of the code under test), from the values of the ``*.json``
status documents.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from clusterd.cli import cman_tool
from clusterd.control import protocol as p
from clusterd.errors import ControlError

GOLDEN = Path(__file__).parent / "cman_tool_golden"
NOT_RUNNING = "clusterd is not running on this node (no socket at /run/cluster/clusterd.sock)"


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def doc(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def expected(name: str) -> str:
    return (GOLDEN / f"{name}.expected").read_text()


@pytest.mark.parametrize("fixture", ["quorate", "override", "blocked"])
def test_status_golden(fixture):
    assert cman_tool.render_status(doc(fixture)) == expected(f"status_{fixture}")


@pytest.mark.parametrize(("fixture", "opts", "golden"), [
    ("quorate", {}, "nodes_quorate"),
    ("override", {"addresses": True}, "nodes_override_a"),
    ("blocked", {}, "nodes_blocked"),            # an estranged node that is gone: not shown
    ("override", {"names": ["node2", "node3"], "fields": ["id", "name", "type", "state",
                                                          "addr", "exp"]},
     "nodes_override_F"),                        # exp: no per-node source here, skipped
])
def test_nodes_golden(fixture, opts, golden):
    assert cman_tool.render_nodes(doc(fixture), localtime=utc, **opts) == expected(golden)


class FakeClient:
    def __init__(self, replies: dict) -> None:
        self.replies = replies
        self.calls: list[tuple[str, dict | None]] = []

    def call(self, op: str, args: dict | None = None):
        self.calls.append((op, args))
        reply = self.replies[op]
        if isinstance(reply, ControlError):
            raise reply
        return reply


def run(argv: list[str], replies: dict) -> tuple[int, str, str, FakeClient]:
    out, err, client = io.StringIO(), io.StringIO(), FakeClient(replies)
    rc = cman_tool.main(argv, client=client, out=out, err=err, localtime=utc)
    return rc, out.getvalue(), err.getvalue(), client


def test_main_status_nodes_and_version():
    replies = {p.OP_STATUS: doc("quorate")}
    assert run(["status"], replies)[:3] == (0, expected("status_quorate"), "")
    assert run(["nodes"], replies)[:2] == (0, expected("nodes_quorate"))
    rc, out, _, _ = run(["nodes", "-n", "node2", "-F", "id,name"], replies)
    assert (rc, out) == (0, "2 node2 \n")
    assert run(["version"], replies)[:2] == (0, "0.1.0 config 3\n")
    # an inquorate node's status exits 0, as cman's did
    assert run(["status"], {p.OP_STATUS: doc("blocked")})[0] == 0


def test_main_json_formats():
    replies = {p.OP_STATUS: doc("override")}
    rc, out, _, _ = run(["--format", "json", "status"], replies)
    fields = json.loads(out)
    assert rc == 0 and fields["expected_votes"] == 1 and fields["quorum"] == 1
    assert fields["expected_override"]["configured"] == 3 and fields["nodes"] == 1
    rows = json.loads(run(["nodes", "--format", "json"], replies)[1])
    assert [(r["name"], r["sts"], r["inc"]) for r in rows] == [
        ("node1", "M", 1), ("node2", "X", 2), ("node3", "X", 0)]


def test_expected_sets_the_votes_and_warns():
    reply = {"expected_votes": 1, "previous": 3, "configured": 3, "quorum": 1,
             "quorate": True, "members": ["node1", "node2"], "sent_to": ["node2"]}
    rc, out, err, client = run(["expected", "-e", "1"], {p.OP_QUORUM_EXPECTED: reply})
    assert rc == 0
    assert client.calls == [(p.OP_QUORUM_EXPECTED, {"expected": 1})]
    assert out == ("Expected votes: 1 (was 3, cluster.conf 3); quorum 1: this node is "
                   "quorate\nSent to the other members: node2\n")
    assert err.startswith("cman_tool: WARNING: a group of nodes that is not a majority")
    rc, out, _, _ = run(["expected", "-e", "1", "--format", "json"],
                        {p.OP_QUORUM_EXPECTED: reply})
    assert json.loads(out) == reply


@pytest.mark.parametrize(("argv", "error", "rc", "message"), [
    (["expected", "-e", "2"], ControlError(p.E_CONFLICT, "expected votes not changed: ..."),
     5, "cman_tool: can't set expected votes: expected votes not changed: ...\n"),
    (["expected", "-e", "1"], ControlError(p.E_DENIED, "permission denied: ..."),
     4, "cman_tool: can't set expected votes: permission denied: ...\n"),
    (["status"], ControlError(p.E_NOT_RUNNING, NOT_RUNNING),
     3, f"cman_tool: {NOT_RUNNING}\n"),
    (["nodes"], ControlError(p.E_NOT_READY, "clusterd is starting and not ready yet"),
     1, "cman_tool: clusterd is starting and not ready yet\n"),
])
def test_errors_are_one_line_with_the_tools_exit_codes(argv, error, rc, message):
    got = run(argv, {p.OP_QUORUM_EXPECTED: error, p.OP_STATUS: error})
    assert got[:3] == (rc, "", message)


def test_usage_errors_call_nothing():
    rc, _, err, client = run(["expected", "-e", "0"], {})
    assert (rc, client.calls) == (2, [])
    assert err == "cman_tool: expected votes must be at least 1, not 0\n"
    rc, _, err, client = run(["join", "-w"], {})
    assert rc == 2 and "'join' is not a clusterd command: start clusterd" in err
    assert client.calls == []
    rc, _, err, _ = run([], {})
    assert rc == 2 and "a command is required" in err
    with pytest.raises(SystemExit) as info:
        run(["expected"], {})                       # -e is required (argparse: exit 2)
    assert info.value.code == 2


@pytest.mark.parametrize("argv", [["--control-socket", "{sock}", "status"],
                                  ["status", "--control-socket", "{sock}"]])
def test_no_daemon_behind_the_socket_is_one_line_and_exit_3(tmp_path, argv):
    sock = str(tmp_path / "none.sock")
    out, err = io.StringIO(), io.StringIO()
    rc = cman_tool.main([a.format(sock=sock) for a in argv], out=out, err=err)
    assert (rc, out.getvalue()) == (3, "")
    assert err.getvalue() == f"cman_tool: clusterd is not running on this node (no socket " \
                             f"at {sock})\n"


def test_status_with_a_quorum_disk_shows_its_votes_and_counts_them_while_granted():
    d = doc("quorate")
    base = cman_tool.render_status(d)
    assert "Quorum device votes" not in base
    total = cman_tool.status_fields(d)["total_votes"]
    d["qdisk"] = {"name": "/dev/sdq", "votes": 2, "granted": True}
    text = cman_tool.render_status(d)
    assert f"Quorum device votes: 2\nTotal votes: {total + 2}\n" in text
    d["qdisk"]["granted"] = False
    assert f"Quorum device votes: 2\nTotal votes: {total}\n" in cman_tool.render_status(d)
