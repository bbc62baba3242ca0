"""Every RHCS reference file: the decision table (accept, or reject with exact messages),
and what the accepted ones look like through the model and after canonicalization."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from clusterd.conf import load, parse, validate_bytes
from clusterd.errors import ConfigError
from confbuild import GOLDEN, REFERENCE, ref_id, reference_files

DECISIONS = json.loads((GOLDEN / "reference_decisions.json").read_text())
ACCEPTED = [p for p in reference_files() if DECISIONS[ref_id(p)]["decision"] == "accept"]


def test_the_table_covers_every_reference_file():
    assert sorted(DECISIONS) == sorted(ref_id(p) for p in reference_files())
    assert len(ACCEPTED) == 3  # clufter test1..3


@pytest.mark.parametrize("path", reference_files(), ids=ref_id)
def test_decision_and_messages_match_the_table(path):
    row = DECISIONS[ref_id(path)]
    problems = validate_bytes(path.read_bytes(), source=ref_id(path))
    assert [[p.where, p.reason] for p in problems] == row["problems"]
    if row["decision"] == "accept":
        assert load(path).version >= 1
    else:
        with pytest.raises(ConfigError) as exc:
            parse(path.read_bytes(), source=ref_id(path))
        assert [[p.where, p.reason] for p in exc.value.problems] == row["problems"]
        assert exc.value.source == ref_id(path)


def test_rejections_say_what_to_fix():
    for row in DECISIONS.values():
        for _where, reason in row["problems"]:
            assert any(word in reason for word in ("add", "remove", "set", "use", "rename",
                                                   "fix", "define", "give", "name the"))


def test_rhcs_example_does_not_leak_its_password():
    text = json.dumps(DECISIONS["rgmanager-examples-cluster.conf"]["problems"])
    assert '"wti"' not in text and "'wti'" not in text


def test_clufter_test1_model():
    conf = load(REFERENCE / "clufter-tests/test1.conf")
    assert (conf.name, conf.version) == ("foo", 1)
    assert [(n.name, n.nodeid, n.votes) for n in conf.nodes] == [("node1", 1, 1), ("node2", 2, 1)]
    assert conf.expected_votes == 2 and not conf.two_node
    assert conf.token_ms == 1000 and conf.port == 5405
    assert [s.name for s in conf.services] == ["service:nfs1", "service:nfs2"]
    assert [r.label for r in conf.resource_tree.roots] == ["service:nfs1", "service:nfs2"]


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="libxml2-utils not installed")
@pytest.mark.parametrize("path", ACCEPTED, ids=ref_id)
def test_canonical_output_validates_with_xmllint(path, tmp_path):
    out = tmp_path / "cluster.conf"
    out.write_bytes(load(path).canonical_bytes())
    run = subprocess.run(["xmllint", "--noout", "--relaxng", str(REFERENCE / "cluster.rng"),
                          str(out)], check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("path", ACCEPTED, ids=ref_id)
def test_canonical_is_a_fixed_point(path):
    once = load(path).canonical_bytes()
    assert parse(once).canonical_bytes() == once
    assert once.startswith(b'<?xml version="1.0"?>\n<cluster name="foo" config_version="1">\n')
    assert once.endswith(b"</cluster>\n") and b"<!--" not in once
