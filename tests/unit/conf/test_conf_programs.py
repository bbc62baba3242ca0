"""No shell by the back door: program parameters in cluster.conf (clusterd.trust,
conf/programs.py), at validation (pure), on this node's files, and in ccs_config_validate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clusterd import trust
from clusterd.cli.ccs_config_validate import main as ccs_config_validate
from clusterd.conf import parse, validate_bytes
from clusterd.conf.parse import parse_xml
from clusterd.conf.paths import element_path
from clusterd.conf.programs import local_problems
from clusterd.errors import ConfigError

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown test files")
DEVICE = "/cluster/fencedevices/fencedevice[@name='ipmi']"


def conf(device_attrs: str = "", rm: str = "") -> bytes:
    return ('<?xml version="1.0"?><cluster name="alpha" config_version="1"><clusternodes>'
            '<clusternode name="n1" nodeid="1"/></clusternodes><fencedevices>'
            f'<fencedevice name="ipmi" agent="fence_ipmilan" ipaddr="10.0.0.1" login="admin" '
            f'{device_attrs}/></fencedevices>{rm}</cluster>').encode()


REFUSED_VALUES = [
    ("/bin/sh -c 'echo pw'", "runs inline code through '/bin/sh'"),
    ("bash -c id", "runs inline code through 'bash'"),
    ("/usr/bin/python3 -c 'print(1)'", "runs inline code through '/usr/bin/python3'"),
    ("/usr/bin/perl -e 'print 1'", "runs inline code through '/usr/bin/perl'"),
    ("/usr/local/bin/getpw --vault prod", "has arguments ('/usr/local/bin/getpw' followed by 2 more)"),
    ("/usr/local/bin/getpw;id", "contains ';'"),
    ("/usr/local/bin/$(id)", "contains '$()'"),
    ("/usr/local/bin/getpw`id`", "contains '`'"),
    ("/usr/local/bin/get|pw", "contains '|'"),
    ("getpw", "is not an absolute path"),
    ("./getpw", "is not an absolute path"),
    ("/usr/local/../bin/getpw", ("is not a normalized path (no '.', '..', '//' or trailing "
                                 "'/'): write '/usr/bin/getpw'")),
    ("//usr/bin/getpw", "is not a normalized path"),
    ("/usr/bin/getpw/", "is not a normalized path"),
    ("/bin/bash", "is a shell or interpreter (bash)"),
    ("/usr/bin/env", "is a shell or interpreter (env)"),
    ("/usr/bin/python3.11", "is a shell or interpreter (python3.11)"),
    ("", "is empty"),
]


@pytest.mark.parametrize("value, reason", REFUSED_VALUES)
def test_value_rules(value, reason):
    problem = trust.value_problem(value)
    assert problem is not None and problem.startswith(reason)


@pytest.mark.parametrize("value", ["/usr/local/sbin/get-ipmi-pw", "/usr/bin/ssh",
                                   "/usr/bin/sudo", "/opt/vmware/vmrun", "/etc/init.d/httpd",
                                   "/usr/libexec/cluster/pw_1.2+x"])
def test_plain_paths_of_programs_pass(value):
    assert trust.value_problem(value) is None


def test_a_refused_command_line_is_not_echoed():
    problem = trust.value_problem("/usr/local/bin/getpw --password hunter2")
    assert "hunter2" not in problem


@pytest.mark.parametrize("tag, name, in_rm, expected", [
    ("fencedevice", "passwd_script", False, True),
    ("device", "password-script", False, True),
    ("fencedevice", "snmp_priv_passwd_script", False, True),
    ("fencedevice", "ssh_path", False, True),
    ("fencedevice", "ipmitool-path", False, True),
    ("fencedevice", "exec", False, True),
    ("fencedevice", "identity_file", False, False),
    ("fencedevice", "api_path", False, False),      # fence_rhevm: a URL path, not a program
    ("fencedevice", "ipaddr", False, False),
    ("script", "file", True, True),
    ("vm", "status_program", True, True),
    ("ocf", "reload_script", True, True),
    ("ocf", "configfile", True, False),
    ("fs", "device", True, False),
    ("cman", "keyfile", False, False),
    ("script", "file", False, False),             # outside <rm>: not a resource
])
def test_which_parameters_name_programs(tag, name, in_rm, expected):
    assert trust.is_program_param(tag, name, in_rm) is expected


def test_validation_names_the_xpath_the_parameter_and_what_to_do():
    problems = validate_bytes(conf('passwd_script="/bin/sh -c &apos;echo hunter2&apos;"'))
    assert [p.where for p in problems] == [DEVICE]
    (problem,) = problems
    assert problem.reason.startswith("passwd_script runs inline code through '/bin/sh'")
    assert "put it in a root-owned script" in problem.reason and "hunter2" not in problem.reason


def test_every_program_parameter_is_checked_in_one_pass():
    rm = ('<rm><service name="web"><script name="s" file="init.d/web"/>'
          '<ocf name="o" agent="heartbeat:Dummy" stop_script="/usr/bin/perl -e 1"/></service>'
          '<vm name="v" status_program="/usr/bin/check v1"/></rm>')
    problems = validate_bytes(conf('passwd_script="/usr/bin/env" exec="vmrun"', rm=rm))
    found = {(p.where, p.reason.split(" ", 1)[0]) for p in problems}
    assert found == {
        (DEVICE, "exec"), (DEVICE, "passwd_script"),
        ("/cluster/rm/service[@name='web']/script[@name='s']", "file"),
        ("/cluster/rm/service[@name='web']/ocf[@name='o']", "stop_script"),
        ("/cluster/rm/vm[@name='v']", "status_program"),
    }


def test_plain_program_paths_validate():
    rm = '<rm><service name="web"><script name="s" file="/etc/init.d/web"/></service></rm>'
    parse(conf('passwd_script="/usr/local/sbin/ipmi-pw" exec="/usr/bin/vmrun"', rm=rm))


def test_the_edit_path_refuses_too():
    from clusterd.conf import edit
    running = parse(conf())
    with pytest.raises(ConfigError, match="passwd_script has arguments"):
        edit.set_fence_device(running, "ipmi", "fence_ipmilan",
                              {"ipaddr": "10.0.0.1", "login": "admin",
                               "passwd_script": "/usr/local/bin/pw --now"})


# --- this node's files -------------------------------------------------------------------

@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    """A root-owned 0755 directory (tmp_path's parents are root-owned or sticky)."""
    directory = tmp_path / "bin"
    directory.mkdir(mode=0o755)
    return directory


def program(directory: Path, name: str = "getpw", mode: int = 0o755, uid: int = 0) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\necho pw\n")
    os.chmod(path, mode)
    os.chown(path, uid, 0)
    return path


def local(value: str) -> list[tuple[str, str]]:
    root = parse_xml(conf(f'passwd_script="{value}"'))
    return [(element_path(p.element), p.reason) for p in local_problems(root)]


@needs_root
def test_a_root_owned_program_in_a_root_owned_directory_passes(bindir):
    assert local(str(program(bindir))) == []
    assert trust.program_problem(str(program(bindir))) is None


@needs_root
@pytest.mark.parametrize("setup, reason", [
    (lambda d: program(d, uid=NOBODY), "is owned by uid 65534, not root"),
    (lambda d: program(d, mode=0o775), "is writable by group or others (mode 0775)"),
    (lambda d: program(d, mode=0o757), "is writable by group or others (mode 0757)"),
    (lambda d: program(d, mode=0o644), "is not executable"),
    (lambda d: (os.chown(d, NOBODY, 0), program(d))[1], "bin is owned by uid 65534, not root"),
    (lambda d: (os.chmod(d, 0o777), program(d))[1], "bin is writable by group or others"),
])
def test_untrusted_files_are_refused_where_they_exist(bindir, setup, reason):
    path = setup(bindir)
    ((where, why),) = local(str(path))
    assert where == DEVICE
    assert why.startswith(f"passwd_script='{path}' cannot be run as root: ")
    assert reason in why and why.endswith("(chown root, chmod go-w) or name another program")


@needs_root
def test_a_symlink_is_judged_by_its_directory_and_its_target(bindir, tmp_path):
    (link := bindir / "via-link").symlink_to("/bin/bash")
    assert "resolves to" in trust.program_problem(str(link))
    assert "a shell or interpreter" in local(str(link))[0][1]
    evil = tmp_path / "evil"
    evil.mkdir()
    os.chown(evil, NOBODY, 0)
    (evil / "getpw").symlink_to(program(bindir))
    assert "evil is owned by uid 65534" in trust.program_problem(str(evil / "getpw"))


def test_a_program_missing_here_is_not_a_validation_problem(tmp_path):
    """As for a fence agent not installed on the machine: the controller need not have it;
    the node that runs it refuses it then (program_problem)."""
    missing = str(tmp_path / "nope")
    assert local(missing) == []
    assert trust.program_problem(missing).endswith(f"{missing} does not exist")


@needs_root
def test_ccs_config_validate_checks_the_files_on_this_node(bindir, tmp_path, capsys):
    path = tmp_path / "cluster.conf"
    path.write_bytes(conf(f'passwd_script="{program(bindir, mode=0o777)}"'))
    assert ccs_config_validate(["-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{DEVICE}: passwd_script=" in err and "mode 0777" in err
    os.chmod(bindir / "getpw", 0o755)
    assert ccs_config_validate(["-f", str(path)]) == 0
    path.write_bytes(conf(f'passwd_script="{tmp_path / "absent"}"'))
    assert ccs_config_validate(["-f", str(path)]) == 0
