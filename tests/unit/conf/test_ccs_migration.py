"""ccs_config_validate --migration: every RHCS reference file keeps its report (golden
files beside this test), the sections and exit codes, and the unused-part warnings of
plain ccs_config_validate.

Regenerate the golden files after a deliberate change with
``CLUSTERD_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/conf/test_ccs_migration.py`` and
read the diff: each report must stay true.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from clusterd.cli import ccs_config_validate
from confbuild import REFERENCE, ref_id, reference_files

GOLDEN = Path(__file__).parent / "migration_golden"
UPDATE = os.environ.get("CLUSTERD_UPDATE_GOLDEN") == "1"
SECTIONS = ("1. Honoured:", "2. Accepted but not used by clusterd", "3. Must be rewritten",
            "4. Problems:", "Result:")


def _golden(path: Path) -> Path:
    return GOLDEN / (ref_id(path).replace("/", "__") + ".txt")


def _report(path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    rc = ccs_config_validate.main(["--migration", str(path), *extra])
    out, err = capsys.readouterr()
    return rc, out.replace(str(REFERENCE) + "/", ""), err


def test_every_reference_file_has_a_golden_report():
    assert sorted(p.name for p in GOLDEN.glob("*.txt")) == sorted(
        _golden(p).name for p in reference_files())


@pytest.mark.parametrize("path", reference_files(), ids=ref_id)
def test_report_matches_the_golden_file(path, capsys):
    rc, out, err = _report(path, capsys)
    assert (rc, err) == (0, "")
    if UPDATE:
        _golden(path).write_text(out)
    assert out == _golden(path).read_text()
    positions = [out.index(s) for s in SECTIONS]
    assert positions == sorted(positions)


def test_the_rgmanager_example_in_one_read(capsys):
    _rc, out, _err = _report(REFERENCE / "rgmanager-examples-cluster.conf", capsys)
    assert "/cluster/dlm\n" in out                                        # ignored
    assert "<nfsexport> (3): name, ref\n" in out                         # run as written
    assert "attribute 'nodeid' is missing" in out                         # invalid here
    assert "password" in out and "wti\n" not in out and "'wti'" not in out  # names only
    assert out.endswith("Result: needs changes: 1 not used, 7 problems\n")


def test_json_has_the_same_sections(capsys):
    path = REFERENCE / "clufter-tests/test1.conf"
    rc, out, _err = _report(path, capsys, "--format", "json")
    doc = json.loads(out)
    assert rc == 0
    assert list(doc) == ["file", "cluster", "config_version", "honoured", "unused", "rewrite",
                         "problems"]
    assert doc["unused"] == [{"where": "/cluster/rm/service[@name='nfs1']/@nfslock",
                              "instead": doc["unused"][0]["instead"]}]
    assert doc["rewrite"] == []                 # nfsexport: built in; nfsclient: exportfs
    honoured = {h["element"]: h for h in doc["honoured"]}
    assert honoured["nfsclient"]["count"] == honoured["nfsexport"]["count"] == 3
    assert honoured["nfsclient"]["read_by"] == "clusterd.resources.agents.rhcs_nfs"
    assert doc["honoured"][0] == {"element": "cluster", "count": 1,
                                  "attributes": ["name", "config_version"],
                                  "agent_parameters": [], "read_by": "clusterd.conf.model"}
    assert doc["problems"] == []


def test_a_clean_file_runs_as_it_is(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_text('<cluster name="c" config_version="1"><clusternodes><clusternode '
                    'name="a" nodeid="1"/></clusternodes></cluster>')
    rc, out, _err = _report(conf, capsys)
    assert rc == 0 and out.endswith("Result: clusterd runs this file as it is\n")
    assert "2. Accepted but not used by clusterd (0): remove them, or use what is named " \
           "instead\n  none\n" in out


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),
    (b"<cluster", "not well-formed XML"),
])
def test_unreadable_input_exits_2(tmp_path, capsys, content, message):
    conf = tmp_path / "cluster.conf"
    if content is not None:
        conf.write_bytes(content)
    rc, out, err = _report(conf, capsys)
    assert (rc, out) == (2, "")
    assert message in err


MIGRATED = b"""<cluster name="c" config_version="1"><cman keyfile="/k"/>
<clusternodes><clusternode name="a" nodeid="1"/></clusternodes>
<quorumd label="q" status_file="/tmp/q"/></cluster>"""


def test_validate_warns_about_unused_parts_and_still_validates(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_bytes(MIGRATED)
    assert ccs_config_validate.main(["-f", str(conf), "--skip-fence-agents"]) == 0
    out, err = capsys.readouterr()
    assert out == "Configuration validates\n"
    lines = err.splitlines()
    assert [line.split(" (", 1)[0] for line in lines] == [
        f"{conf}: warning: accepted but not used by clusterd: /cluster/cman/@keyfile",
        f"{conf}: warning: accepted but not used by clusterd: /cluster/quorumd/@status_file"]


def test_validate_json_lists_unused_parts(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_bytes(MIGRATED)
    assert ccs_config_validate.main(["-f", str(conf), "--skip-fence-agents",
                                     "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True
    assert [u["where"] for u in doc["unused"]] == ["/cluster/cman/@keyfile", "/cluster/quorumd/@status_file"]


def test_quiet_prints_no_warnings(tmp_path, capsys):
    conf = tmp_path / "cluster.conf"
    conf.write_bytes(MIGRATED)
    assert ccs_config_validate.main(["-f", str(conf), "--skip-fence-agents", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
