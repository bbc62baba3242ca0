"""rgmanager's own resource-tree tests, replayed through our rg_test.

Each testNNN.conf must dump as testNNN.expected and start/stop as testNNN.start.expected /
testNNN.stop.expected; each consecutive pair must give delta-testNNN-testMMM.expected.
Compared ignoring whitespace (rgmanager's runtests.sh) and, stricter, byte for byte.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clusterd.cli.rg_test import run

FIXTURES = Path(__file__).parent / "rgmanager-tests"
CONFS = sorted(p.stem for p in FIXTURES.glob("test*.conf"))
DELTAS = sorted(p.name[len("delta-"):-len(".expected")] for p in FIXTURES.glob("delta-*.expected"))


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _expected(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_fixture_set_is_complete():
    assert len(CONFS) == 12 and len(DELTAS) == 11


@pytest.mark.parametrize("conf", CONFS)
def test_tree_dump(conf):
    rc, out, err = run(["test", str(FIXTURES / f"{conf}.conf")])
    assert rc == 0, err
    assert _squash(out) == _squash(_expected(f"{conf}.expected"))
    assert out == _expected(f"{conf}.expected")


@pytest.mark.parametrize("conf", CONFS)
@pytest.mark.parametrize("verb", ["start", "stop"])
def test_noop_plan(conf, verb):
    rc, out, err = run(["noop", str(FIXTURES / f"{conf}.conf"), verb, "service", "test1"])
    assert rc == 0, err
    assert _squash(out) == _squash(_expected(f"{conf}.{verb}.expected"))
    assert out == _expected(f"{conf}.{verb}.expected")


@pytest.mark.parametrize("pair", DELTAS)
def test_delta(pair):
    old, new = pair.split("-")
    rc, out, err = run(["delta", str(FIXTURES / f"{old}.conf"), str(FIXTURES / f"{new}.conf")])
    assert rc == 0, err
    assert _squash(out) == _squash(_expected(f"delta-{pair}.expected"))
    assert out == _expected(f"delta-{pair}.expected")


def test_noop_unknown_resource():
    rc, out, _ = run(["noop", str(FIXTURES / "test003.conf"), "start", "service", "nope"])
    assert rc == 3
    assert out == "No resource nope of type service found\n"


def test_noop_subtree_only():
    rc, out, _ = run(["noop", str(FIXTURES / "test011.conf"), "stop", "nfsexport", "Dummy Export"])
    assert rc == 0
    assert out.splitlines() == [
        "Stopping Dummy Export...", "[stop] nfsclient:User group", "[stop] nfsclient:Admin group",
        "[stop] nfsexport:Dummy Export", "Stop of Dummy Export complete"]


def test_usage_and_bad_file(tmp_path):
    assert run([])[0] == 1
    assert run(["frobnicate"])[0] == 1
    rc, _, err = run(["test", str(tmp_path / "missing.conf")])
    assert rc == 2 and "cannot read" in err
    bad = tmp_path / "bad.conf"
    bad.write_text("<cluster><rm>")
    rc, _, err = run(["test", str(bad)])
    assert rc == 2 and "not well-formed XML" in err


def test_no_entity_expansion(tmp_path):
    conf = tmp_path / "xxe.conf"
    secret = tmp_path / "secret"
    secret.write_text("TOPSECRET")
    conf.write_text(f'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file://{secret}">]>'
                    '<cluster><rm><service name="&x;"/></rm></cluster>')
    _, out, err = run(["test", str(conf)])
    assert "TOPSECRET" not in out + err


def test_partial_config_note_and_complete_config(tmp_path):
    rc, _, err = run(["test", str(FIXTURES / "test001.conf")])
    assert rc == 0 and "testing its <rm> section only" in err
    full = tmp_path / "cluster.conf"
    full.write_text(
        '<?xml version="1.0"?>\n<cluster name="alpha" config_version="1">\n'
        '  <clusternodes>\n'
        '    <clusternode name="node1" nodeid="1"/>\n    <clusternode name="node2" nodeid="2"/>\n'
        '  </clusternodes>\n'
        '  <rm>\n    <service name="web">\n      <script name="app" file="/etc/init.d/app"/>\n'
        '      <ip address="198.18.0.10"/>\n    </service>\n  </rm>\n</cluster>\n')
    rc, out, err = run(["noop", str(full), "start", "service", "web"])
    assert (rc, err) == (0, ""), err
    assert out.splitlines()[1:3] == ["[start] service:web", "[start] ip:198.18.0.10"]
