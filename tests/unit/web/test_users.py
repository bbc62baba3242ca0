"""The users file: parsing (file:line refusals), scrypt hashes, FileAuth, and the
clusterd-web-user command (password on stdin)."""

from __future__ import annotations

import io
import os
import stat

import pytest
from clusterd.web import users
from clusterd.web.users import FileAuth, hash_password, verify_password


def test_hash_verify_and_parameters_travel_in_the_hash():
    h = hash_password("s3cret", n=16)
    assert h.startswith("scrypt$16$8$1$")
    assert verify_password("s3cret", h) and not verify_password("s3cre", h)
    assert not verify_password("s3cret", "scrypt$garbage")
    assert hash_password("s3cret").startswith(f"scrypt${2**14}$8$1$")


@pytest.mark.parametrize("line, words", [
    ("alice:admin", "expected NAME:ROLE:HASH (3 fields separated by ':'), found 2"),
    ("al ice:admin:x", "user name 'al ice' is not valid"),
    ("alice:root:x", "role 'root' must be admin or viewer"),
    ("alice:admin:md5$x", "the hash must be scrypt$N$r$p$SALT_B64$HASH_B64"),
    ("alice:admin:scrypt$3$8$1$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA==", "N=3"),
    ("alice:admin:scrypt$x$8$1$a$b", "must be numbers"),
])
def test_malformed_lines_are_refused_with_file_and_line(line, words):
    with pytest.raises(users.UsersFileError) as info:
        users.parse(f"# header\n\n{line}\n", "/etc/clusterd/web/users")
    assert info.value.problems[0].startswith("/etc/clusterd/web/users:3: ")
    assert words in info.value.problems[0]


def test_duplicate_user_is_refused():
    h = hash_password("x", n=16)
    with pytest.raises(users.UsersFileError, match="users:2: user bob is listed twice"):
        users.parse(f"bob:admin:{h}\nbob:viewer:{h}\n", "users")


def test_cli_add_list_remove(tmp_path):
    path = str(tmp_path / "users")

    def cli(*argv: str, stdin: str = "") -> tuple[int, str]:
        out = io.StringIO()
        rc = users.main(["--file", path, *argv], stdin=io.StringIO(stdin), out=out)
        return rc, out.getvalue()

    assert cli("add", "alice", "--role", "admin", stdin="pw-a\n") == (0, "added alice (admin)\n")
    assert cli("add", "victor", "--role", "viewer", stdin="pw-v\n")[0] == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert cli("list") == (0, "alice admin\nvictor viewer\n")
    auth = FileAuth(path)
    assert auth.authenticate("alice", "pw-a") == "admin"
    assert auth.authenticate("alice", "pw-v") is None
    assert auth.authenticate("nobody", "pw-a") is None
    with open(path) as f:
        assert "pw-a" not in f.read()
    os.chmod(path, 0o600)                            # an existing mode is kept
    assert cli("add", "alice", "--role", "viewer", stdin="new\n") == (0, "updated alice (viewer)\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert auth.authenticate("alice", "new") == "viewer"   # re-read after the change
    assert cli("remove", "victor") == (0, "removed victor\n")
    assert cli("remove", "victor")[0] == 1
    assert cli("list") == (0, "alice viewer\n")
    assert cli("add", "eve", "--role", "admin", stdin="\n")[0] == 1     # empty password
    assert users.check(path) == []


def test_check_reports_an_empty_file(tmp_path):
    path = tmp_path / "users"
    path.write_text("# nobody\n")
    assert "no users; add one with clusterd-web-user" in users.check(str(path))[0]
