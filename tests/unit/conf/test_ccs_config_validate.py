"""ccs_config_validate: RHCS-style output and exit status, called as main(argv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clusterd.cli.ccs_config_validate import main

REFERENCE = Path("/work/shared/reference")
GOOD = REFERENCE / "clufter-tests" / "test1.conf"
BAD = REFERENCE / "pcs-test-cluster.conf"


def test_valid_file(capsys):
    assert main(["-f", str(GOOD)]) == 0
    out, err = capsys.readouterr()
    assert out == "Configuration validates\n" and err == ""


def test_invalid_file_lists_each_problem_then_fails(capsys):
    assert main(["-f", str(BAD)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[-1] == "Configuration fails to validate"
    assert lines[0].startswith(f"{BAD}: /cluster/cman: attribute 'transport' is not allowed")
    assert len(lines) == 2


def test_quiet_prints_nothing(capsys):
    assert main(["-q", "-f", str(BAD)]) == 1
    assert main(["-q", "-f", str(GOOD)]) == 0
    assert capsys.readouterr() == ("", "")


def test_unreadable_file_is_exit_2(tmp_path, capsys):
    assert main(["-f", str(tmp_path / "missing.conf")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_usage_error_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == 2


def test_json_format(capsys):
    assert main(["-f", str(BAD), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and doc["problems"][0]["where"] == "/cluster/cman"


def test_secrets_never_printed(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_text('<cluster name="c" config_version="1"><clusternodes><clusternode name="a" '
                    'nodeid="1"/></clusternodes><fencedevices><fencedevice name="d" '
                    'agent="fence_ipmilan" ipaddr="x" passwd="Sup3r-Secret" bogus="Sup3r-Secret"/>'
                    "</fencedevices></cluster>")
    assert main(["-f", str(conf)]) == 1
    out, err = capsys.readouterr()
    assert "Sup3r-Secret" not in out + err


def test_malformed_xml_names_line(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_text('<cluster name="c" config_version="1">\n<clusternodes>\n</cluster>\n')
    assert main(["-f", str(conf)]) == 1
    assert ": line 3, column " in capsys.readouterr().err


SYSTEMD_CONF = """<?xml version="1.0"?>
<cluster name="alpha" config_version="1">
  <clusternodes><clusternode name="node1" nodeid="1"/></clusternodes>
  <rm><service name="web"><systemd name="web_nginx" unit="nginx.service"/></service></rm>
</cluster>
"""


def test_print_schema_lets_xmllint_check_extension_resources(tmp_path, capsys):
    assert main(["--print-schema"]) == 0
    schema = tmp_path / "cluster.rng"
    schema.write_text(capsys.readouterr().out)
    conf = tmp_path / "cluster.conf"
    conf.write_text(SYSTEMD_CONF)
    import subprocess

    def xmllint(rng: Path) -> int:
        return subprocess.run(["xmllint", "--noout", "--relaxng", str(rng), str(conf)],
                              check=False, capture_output=True).returncode

    assert xmllint(schema) == 0  # the printed schema knows systemd
    assert xmllint(REFERENCE / "cluster.rng") != 0  # RHCS's own schema does not
    assert main(["-q", "-f", str(conf)]) == 0
