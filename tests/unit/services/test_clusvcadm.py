"""clusvcadm main(argv) as a table, against a fake control client: the op and arguments
sent, the RHCS messages printed and the exit codes (RG_E* modulo 256, RG_ERUN = 0)."""

from __future__ import annotations

import io

import pytest
from clusterd.cli.clusvcadm import main
from clusterd.errors import ControlError


class FakeClient:
    def __init__(self, reply: dict | None = None, error: ControlError | None = None) -> None:
        self.reply = reply or {}
        self.error = error
        self.calls: list[tuple[str, dict]] = []

    def call(self, op: str, args: dict) -> dict:
        self.calls.append((op, args))
        if self.error is not None:
            raise self.error
        return self.reply


def ok(owner: str | None = "node2", state: str = "started", code: int = 0,
       message: str = "Success", detail: str = "") -> dict:
    return {"code": code, "message": message, "owner": owner, "state": state,
            "detail": detail, "service": "service:web"}


def run(argv: list[str], reply: dict | None = None, error: ControlError | None = None):
    client = FakeClient(reply, error)
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, client=client, out=out, err=err)
    return rc, out.getvalue(), err.getvalue(), client.calls


@pytest.mark.parametrize("argv,reply,rc,stdout,call", [
    (["-e", "web"], ok("node1"), 0,
     ("Local machine trying to enable service:web...Success\n"
     "service:web is now running on node1\n"),
     ("svc.enable", {"service": "service:web", "timeout": 60})),
    (["-e", "web", "-m", "node2"], ok(), 0,
     ("Member node2 trying to enable service:web...Success\n"
     "service:web is now running on node2\n"),
     ("svc.enable", {"service": "service:web", "timeout": 60, "member": "node2"})),
    (["-e", "web", "-m", "node2"], ok("node3"), 0,
     ("Member node2 trying to enable service:web...Success\n"
     "Warning: service:web is now running on node3\n"), None),
    (["-e", "vm:guest", "-F"], ok("node1"), 0,
     "Local machine trying to enable vm:guest...Success\nvm:guest is now running on node1\n",
     ("svc.enable", {"service": "vm:guest", "timeout": 60, "follow_domain": True})),
    (["-e", "web"], ok("node1", code=-10, message="Service is already running"), 0,
     ("Local machine trying to enable service:web...Service is already running\n"
     "service:web is now running on node1\n"), None),
    (["-r", "web", "-m", "node2"], ok(), 0,
     ("Trying to relocate service:web to node2...Success\n"
     "service:web is now running on node2\n"), None),
    (["-r", "web"], ok("node1", code=-17, message="Failed; service running on original owner"),
     239, ("Trying to relocate service:web...Failed; service running on original owner\n"
           "service:web is now running on node1\n"),
     ("svc.relocate", {"service": "service:web", "timeout": 60})),
    (["-d", "web"], ok(None, "disabled"), 0, "Local machine disabling service:web...Success\n",
     ("svc.disable", {"service": "service:web", "timeout": 60})),
    (["-s", "web"], ok(None, "stopped"), 0, "Local machine stopping service:web...Success\n",
     None),
    (["-R", "web"], ok("node1"), 0, ("Local machine trying to restart service:web...Success\n"
     "service:web is now running on node1\n"), None),
    (["-Z", "web"], ok("node1"), 0, "Local machine freezing service:web...Success\n", None),
    (["-U", "web"], ok("node1"), 0, "Local machine unfreezing service:web...Success\n", None),
    (["-e", "nosuch"], ok(None, "stopped", -4, "Service does not exist"), 252,
     "Local machine trying to enable service:nosuch...Service does not exist\n", None),
    (["-e", "web"], ok(None, "stopped", -9, "Operation requires quorum"), 247,
     "Local machine trying to enable service:web...Operation requires quorum\n", None),
    (["-d", "web"], ok("node1", "failed", -1, "Failure"), 255,
     "Local machine disabling service:web...Failure\n", None),
    (["-q", "-e", "web"], ok(), 0, "", None),
    (["-c", "web"], ok("node1"), 0, "Local machine trying to convalesce service:web...Success\n",
     ("svc.convalesce", {"service": "service:web", "timeout": 60})),
])
def test_options_messages_and_exit_codes(argv, reply, rc, stdout, call) -> None:
    got_rc, out, _err, calls = run(argv, reply)
    assert (got_rc, out) == (rc, stdout)
    if call is not None:
        assert calls == [call]


@pytest.mark.parametrize("argv,msg", [
    ([], "one of -e -d -r -R -s -Z -U -M -c -l -u -S is required"),
    (["-d", "web", "-m", "node1"], "-m goes with -e, -r or -M"),
    (["-M", "web"], "-M needs the target member (-m MEMBER)"),
    (["-e", "web", "-F", "-m", "node1"], "-F goes with -e and cannot be combined with -m"),
    (["-e", "web", "--timeout", "0"], "--timeout must be positive"),
])
def test_usage_errors_send_nothing(argv, msg) -> None:
    rc, _out, err, calls = run(argv, ok())
    assert rc == 2 and msg in err and calls == []


def test_daemon_errors_and_details_go_to_stderr() -> None:
    rc, out, err, _ = run(["-e", "web"], error=ControlError("not_running", "clusterd is not "
                                                            "running on this node"))
    assert (rc, out) == (3, "Local machine trying to enable service:web...Failure\n")
    assert "clusterd is not running on this node" in err
    rc, _out, err, _ = run(["-e", "web", "-m", "node9"],
                           ok(None, "stopped", -12, "Target node dead / nonexistent",
                              "'node9' not in membership list"))
    assert rc == 244 and "'node9' not in membership list" in err


def test_json_format_prints_the_result() -> None:
    rc, out, _err, _ = run(["--format", "json", "-e", "web"], ok("node1"))
    assert rc == 0 and '"owner": "node1"' in out


@pytest.mark.parametrize("argv,reply,rc,stdout,op", [
    (["-l"], ok(None, None), 0, "Resource groups locked\n", "svc.lock"),
    (["-u"], ok(None, None), 0, "Resource groups unlocked\n", "svc.unlock"),
    (["-S"], {"locked": True}, 0, "Resource groups locked\n", "svc.lock_state"),
    (["-S"], {"locked": False}, 0, "Resource groups unlocked\n", "svc.lock_state"),
    (["-l"], ok(None, None, -9, "Operation requires quorum"), 1, "Lock operation failed\n",
     "svc.lock"),
])
def test_lock_unlock_and_lock_state_print_rgmanager_texts(argv, reply, rc, stdout, op) -> None:
    got_rc, out, _err, calls = run(argv, reply)
    assert (got_rc, out, calls) == (rc, stdout, [(op, {})])


def test_lock_query_failure_and_migrate_refusal() -> None:
    rc, out, err, _ = run(["-S"], error=ControlError("not_running", "clusterd is not running"))
    assert (rc, out) == (1, "Query operation failed\n") and "not running" in err
    rc, out, err, calls = run(["-M", "web", "-m", "node2"], ok(
        "node1", "started", -8, "Invalid request",
        "service:web cannot be migrated: it has no migratory resources"))
    assert rc == 248
    assert out == "Trying to migrate service:web to node2...Invalid request\n"
    assert "no migratory resources" in err
    assert calls == [("svc.migrate", {"service": "service:web", "timeout": 60,
                                      "member": "node2"})]
