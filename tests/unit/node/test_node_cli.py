"""``clusterd`` admin subcommands against a fake control client; argument errors."""

from __future__ import annotations

import io
import json

import pytest
from clusterd.cli import clusterd as cli
from clusterd.control import protocol as p
from clusterd.errors import ControlError


def status_doc(version=2, sha="ab" * 32, holders=3, members=(1, 2, 3), conflict=None):
    return {"cluster": {"config_version": version, "config_sha256": sha,
                        "config_holders": holders, "config_conflict": conflict},
            "view": {"members": list(members)}}


class FakeClient:
    def __init__(self, replies):
        self.replies = replies          # op -> reply, or list of replies, or ControlError
        self.calls: list[tuple[str, dict]] = []

    def call(self, op, args=None):
        self.calls.append((op, dict(args or {})))
        reply = self.replies[op]
        if isinstance(reply, list):
            reply = reply.pop(0) if len(reply) > 1 else reply[0]
        if isinstance(reply, ControlError):
            raise reply
        return reply


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def run(argv, client, clock=None):
    out = io.StringIO()
    clock = clock or Clock()
    rc = cli.main(argv, client=client, out=out, sleep=clock.sleep, clock=clock)
    return rc, out.getvalue()


def test_conf_status_prints_holders():
    rc, out = run(["conf", "status"], FakeClient({"status": status_doc(holders=2)}))
    assert (rc, out) == (0, f"config_version 2 (sha256 {'ab' * 6}) is held by 2 of 3 members\n")


def test_conf_status_reports_conflict_and_json():
    doc = status_doc(conflict={"peer": "n3", "version": 2, "sha256": "ff"})
    rc, out = run(["conf", "status"], FakeClient({"status": doc}))
    assert out.endswith("CONFLICT: n3 runs config_version 2 with different content\n")
    rc, out = run(["--format", "json", "conf", "status"], FakeClient({"status": doc}))
    assert json.loads(out)["holders"] == 3 and rc == 0


def test_conf_propose_sends_text_and_waits_until_every_member_holds_it(tmp_path):
    f = tmp_path / "c.conf"
    f.write_text("<cluster/>")
    reply = {"version": 2, "sha256": "ab" * 32, "changed": True, "holders": 1, "members": 3,
             "reason": "config_version 1 -> 2 accepted"}
    client = FakeClient({"conf.propose": reply,
                         "status": [status_doc(holders=2), status_doc(holders=3)]})
    rc, out = run(["conf", "propose", str(f)], client)
    assert rc == 0
    assert client.calls[0] == ("conf.propose", {"conf": "<cluster/>"})
    assert out == ("config_version 1 -> 2 accepted\n"
                   f"config_version 2 (sha256 {'ab' * 6}) is held by 3 of 3 members\n")


def test_conf_propose_stops_waiting_at_the_deadline(tmp_path):
    f = tmp_path / "c.conf"
    f.write_text("<cluster/>")
    reply = {"version": 2, "sha256": "ab" * 32, "changed": True, "holders": 1, "members": 3,
             "reason": "ok"}
    client = FakeClient({"conf.propose": reply, "status": [status_doc(holders=2)]})
    clock = Clock()
    rc, out = run(["conf", "propose", "--wait", "1", str(f)], client, clock)
    assert rc == 0 and out.endswith("is held by 2 of 3 members\n")
    assert 1.0 <= clock.t < 1.5


@pytest.mark.parametrize(("code", "rc"), [(p.E_INVALID_CONFIG, 5), (p.E_STALE_VERSION, 5),
                                          (p.E_CONFLICT, 5), (p.E_NO_QUORUM, 5),
                                          (p.E_NOT_RUNNING, 3),
                                          (p.E_PERMISSION, 4)])
def test_conf_propose_refusals_map_to_exit_codes(tmp_path, capsys, code, rc):
    f = tmp_path / "c.conf"
    f.write_text("<cluster/>")
    client = FakeClient({"conf.propose": ControlError(code, "why it was refused")})
    assert run(["conf", "propose", str(f)], client) == (rc, "")
    assert capsys.readouterr().err == "clusterd: why it was refused\n"


def test_conf_propose_missing_file(capsys, tmp_path):
    rc, _ = run(["conf", "propose", str(tmp_path / "nope")], FakeClient({}))
    assert rc == 1
    assert capsys.readouterr().err == f"clusterd: {tmp_path / 'nope'}: No such file or directory\n"


def test_conf_get_reload_leave():
    client = FakeClient({"conf.get": {"conf": "<cluster/>\n"},
                         "reload": {"version": 3, "sha256": "cd" * 32, "holders": 1,
                                    "members": 1, "reason": "config_version 2 -> 3 accepted",
                                    "changed": True},
                         "leave": {"leaving": True}})
    assert run(["conf", "get"], client) == (0, "<cluster/>\n")
    assert client.calls[-1] == ("conf.get", {"text": True, "reveal_secrets": False})
    assert run(["conf", "get", "--reveal-secrets"], client) == (0, "<cluster/>\n")
    assert client.calls[-1] == ("conf.get", {"text": True, "reveal_secrets": True})
    rc, out = run(["reload"], client)
    assert rc == 0 and out.startswith("config_version 2 -> 3 accepted\n")
    assert run(["leave"], client) == (0, "clusterd is leaving the cluster\n")


def test_bad_allow_list_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--allow-uid", "no-such-user-here"])
    assert info.value.code == 2
    assert "unknown user 'no-such-user-here' in the control socket allow-list" in \
        capsys.readouterr().err


@pytest.mark.parametrize("user, words", [
    ("no-such-user-here", ("--web-user 'no-such-user-here': no such user on this node; "
                          "create the web service's system user")),
    ("root", "--web-user must not be root"),
    ("0", "--web-user must not be root"),
])
def test_a_bad_web_user_is_a_usage_error(capsys, user, words):
    with pytest.raises(SystemExit) as info:
        cli.main(["--web-user", user])
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_daemon_start_failure_is_reported_with_exit_1(tmp_path, capsys):
    rc = cli.main(["--foreground", "--config", str(tmp_path / "missing.conf"),
                   "--state-dir", str(tmp_path / "state")])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("clusterd: cannot start: cannot read ")
    assert "missing.conf: No such file or directory" in err
