"""web.conf: every option checked at start, each refusal naming option, value and fix;
and clusterd-web's exits (2 for a refused config, refusing root)."""

from __future__ import annotations

import importlib.util
import os

import pytest
from clusterd.web import cli, users
from clusterd.web import config as c
from clusterd.web.users import hash_password


@pytest.fixture
def setup(tmp_path, cert_files):
    users_file = tmp_path / "users"
    users_file.write_text(f"alice:admin:{hash_password('pw', n=16)}\n")
    token = tmp_path / "metrics.token"
    token.write_text("a" * 32 + "\n")
    token.chmod(0o640)

    def write(body: str = "", **options: str) -> str:
        opts = {"certificate": cert_files[0], "key": cert_files[1],
                "users_file": str(users_file), **options}
        text = "[web]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items()) + body
        path = tmp_path / "web.conf"
        path.write_text(text)
        return str(path)
    write.tmp = tmp_path       # type: ignore[attr-defined]
    write.token = str(token)   # type: ignore[attr-defined]
    return write


def problems(path: str) -> list[str]:
    with pytest.raises(c.WebConfigError) as info:
        c.load(path, users_check=users.check)
    return list(info.value.problems)


def test_a_good_config_and_the_defaults(setup):
    path = setup(listen="198.18.0.1, ::1", port="9443", session_idle="600",
                 metrics_token_file=setup.token)
    conf = c.load(path, users_check=users.check)
    assert conf.listen == ("198.18.0.1", "::1") and conf.port == 9443
    assert conf.session_idle == 600 and conf.session_max == 28800
    assert conf.auth == "file" and conf.metrics_token == "a" * 32
    assert conf.control_socket == "/run/cluster/clusterd.sock"
    assert c.load(setup(), users_check=users.check).listen == ("0.0.0.0",)


@pytest.mark.parametrize("options, expected", [
    ({"port": "abc"}, "[web] port = 'abc': not a port number (1-65535)"),
    ({"port": "0"}, "[web] port = '0': not a port number (1-65535)"),
    ({"listen": "198.18.0.1, nodeone"}, "'nodeone' is not an IP address"),
    ({"colour": "blue"}, "[web] colour = 'blue': unknown option; known options: auth,"),
    ({"session_idle": "soon"}, "[web] session_idle = 'soon': not a number of seconds"),
    ({"session_idle": "3600", "session_max": "1800"}, "longer than session_max (1800)"),
    ({"auth": "ldap"}, "[web] auth = 'ldap': must be 'file' (users_file) or 'pam'"),
    ({"users_file": "/nonexistent/users"}, ("[web] users_file = '/nonexistent/users': no "
                                           "such file")),
    ({"control_socket": "run/clusterd.sock"}, ("[web] control_socket = 'run/clusterd.sock': "
                                              "give an absolute path")),
    ({"certificate": "/nonexistent.pem"}, "[web] certificate = '/nonexistent.pem': no such"),
    ({"auth": "pam", "pam_admin_group": "no-such-group-xyz"},
     "[web] pam_admin_group = 'no-such-group-xyz': no such group on this node"),
    ({"auth": "pam", "pam_service": "../x"}, "[web] pam_service = '../x': give the name"),
])
def test_each_refusal_names_the_option_value_and_fix(setup, options, expected):
    found = problems(setup(**options))
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once(setup):
    found = problems(setup(port="abc", auth="ldap", session_max="x"))
    assert len(found) == 3


def test_unknown_section_missing_section_missing_file_and_garbage(setup, tmp_path):
    assert "unknown section(s) [extra]" in problems(setup("[extra]\nx = 1\n"))[0]
    bare = tmp_path / "bare.conf"
    bare.write_text("port = 1\n")
    assert "not an INI file" in problems(str(bare))[0]
    nosec = tmp_path / "nosec.conf"
    nosec.write_text("[other]\n")
    assert problems(str(nosec)) == ["no [web] section; the options go under a line [web]"]
    assert "no such file" in problems(str(tmp_path / "missing.conf"))[0]


def test_certificate_and_key_must_match(setup, tmp_path):
    other = tmp_path / "other.pem"
    other.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    found = problems(setup(key=str(other)))
    assert any("cannot load them as a PEM certificate and its key" in p for p in found)


def test_users_file_problems_name_file_and_line(setup):
    users_file = setup.tmp / "users"
    users_file.write_text("# users\nalice:admin:scrypt$1$2\n")
    found = problems(setup())
    assert found == [(f"{users_file}:2: user alice: the hash must be "
                     "scrypt$N$r$p$SALT_B64$HASH_B64 (make it with clusterd-web-user)")]


def test_metrics_token_must_be_private_and_long(setup):
    os.chmod(setup.token, 0o644)
    assert "readable by everyone" in problems(setup(metrics_token_file=setup.token))[0]
    os.chmod(setup.token, 0o640)
    with open(setup.token, "w") as f:
        f.write("short\n")
    assert "at least 16 printable characters" in problems(
        setup(metrics_token_file=setup.token))[0]


def test_pam_needs_the_module(setup, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pam" else real(name, *a))
    found = problems(setup(auth="pam", pam_admin_group="root", pam_viewer_group="root"))
    assert any("python-pam module is not installed" in p for p in found), found


def test_cli_exit_2_with_the_messages(setup, capsys, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    path = setup(port="abc")
    assert cli.main(["--config", path]) == 2
    err = capsys.readouterr().err
    assert f"clusterd-web: {path}: [web] port = 'abc': not a port number (1-65535)\n" in err


def test_cli_refuses_root_but_checks_as_root(setup, capsys, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    path = setup()
    assert cli.main(["--config", path]) == 2
    assert "refusing to run as root" in capsys.readouterr().err
    assert cli.main(["--config", path, "--check"]) == 0
    assert f"{path}: OK" in capsys.readouterr().out
