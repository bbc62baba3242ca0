"""clusterd keygen and clusterd key status|reload|activate (thin client; fake control client)."""

from __future__ import annotations

import io
import json
import os

from clusterd.cli.clusterd import main
from clusterd.wire.auth import key_id, load_authkey

ROOT = os.geteuid() == 0
STATUS = {"active": "aaaaaaaaaaaa", "path": "/etc/cluster/authkey",
          "accepted": [{"id": "bbbbbbbbbbbb", "path": "/etc/cluster/authkey.old"}],
          "peers": {"node2": "aaaaaaaaaaaa", "node3": "bbbbbbbbbbbb", "node4": None}}


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def call(self, op: str, args: dict | None = None) -> dict:
        self.calls.append(op)
        return STATUS


def test_keygen_writes_a_256_byte_0400_key_and_never_overwrites(tmp_path, capsys) -> None:
    path = str(tmp_path / "authkey.next")
    out = io.StringIO()
    assert main(["--format", "json", "keygen", path], out=out) == 0
    doc = json.loads(out.getvalue())
    key = load_authkey(path, require_root_owner=ROOT)
    assert doc == {"path": path, "bytes": 256, "id": key_id(key.secret)}
    assert os.stat(path).st_mode & 0o777 == 0o400
    assert main(["keygen", path], out=io.StringIO()) == 1
    assert "exists; a key is never overwritten" in capsys.readouterr().err
    assert main(["keygen", "--size", "64", str(tmp_path / "small")], out=io.StringIO()) == 2
    assert "outside 128..4096" in capsys.readouterr().err


def test_key_subcommands_call_the_daemon_and_show_who_is_on_which_key() -> None:
    for action in ("status", "reload", "activate"):
        client, out = FakeClient(), io.StringIO()
        assert main(["key", action], client=client, out=out) == 0
        assert client.calls == [f"key.{action}"]
    assert out.getvalue() == (
        "active key aaaaaaaaaaaa (/etc/cluster/authkey)\n"
        "also accepts bbbbbbbbbbbb (/etc/cluster/authkey.old)\n"
        "  node2: aaaaaaaaaaaa\n"
        "  node3: bbbbbbbbbbbb (not the active key)\n"
        "  node4: not heard yet\n")
