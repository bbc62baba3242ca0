"""Start-up wiring: config loading errors, local node identity, incarnations, addresses."""

from __future__ import annotations

import socket

import pytest
from clusterd.conf import parse
from clusterd.errors import FatalError
from clusterd.node import wiring
from node_testdata import conf_bytes

CONF = parse(conf_bytes(1, names=("127.0.0.11", "alpha-node2.example", "node3")),
             source="/etc/cluster/cluster.conf")


def test_identify_by_name_or_hostname(monkeypatch):
    assert wiring.identify(CONF, "node3").nodeid == 3
    monkeypatch.setattr(socket, "gethostname", lambda: "node3.lab.example")
    assert wiring.identify(CONF, None).nodeid == 3          # short name matches
    monkeypatch.setattr(socket, "gethostname", lambda: "alpha-node2.example")
    assert wiring.identify(CONF, None).nodeid == 2


def test_identify_refuses_strangers(monkeypatch):
    with pytest.raises(FatalError) as info:
        wiring.identify(CONF, "node9")
    assert str(info.value) == ("cannot start: node 'node9' is not a clusternode in "
                               "/etc/cluster/cluster.conf")
    monkeypatch.setattr(socket, "gethostname", lambda: "elsewhere")
    with pytest.raises(FatalError, match=r"this host \(elsewhere\) is not a clusternode in "
                                         r"/etc/cluster/cluster.conf; pass --node NAME"):
        wiring.identify(CONF, None)


def test_load_conf_errors_are_fatal_and_name_the_problem(tmp_path):
    with pytest.raises(FatalError, match="cannot read .*missing.conf: No such file"):
        wiring.load_conf(str(tmp_path / "missing.conf"))
    bad = tmp_path / "bad.conf"
    bad.write_bytes(conf_bytes(1, names=("a", "a")))
    with pytest.raises(FatalError) as info:
        wiring.load_conf(str(bad))
    assert str(info.value).startswith("cannot start: ") and "clusternode" in str(info.value)


def test_incarnations_always_grow():
    first = wiring.new_incarnation(0)
    assert wiring.new_incarnation(first) > first
    huge = 2**60
    assert wiring.new_incarnation(huge) == huge + 1        # even if the clock went back


def test_resolve_address():
    assert wiring.resolve_address("127.0.0.12") == "127.0.0.12"
    assert wiring.resolve_address("localhost").startswith("127.")


def test_startup_runs_the_accepted_copy_and_keeps_an_edited_file_pending(tmp_path, caplog):
    """A file edited while clusterd was stopped (version 7) is not run: the accepted copy
    (version 5) is, the file is kept as cluster.conf.pending-7 and written back, and the log
    says how to propose it."""
    path, state = tmp_path / "cluster.conf", tmp_path / "state"
    accepted = parse(conf_bytes(5), source="t").canonical_bytes()
    wiring.save_accepted(str(state), accepted)
    edited = conf_bytes(7)
    path.write_bytes(edited)
    with caplog.at_level("ERROR"):
        choice = wiring.startup_conf(str(path), str(state))
    assert choice.accepted and choice.conf.version == 5
    assert path.read_bytes() == accepted
    assert (tmp_path / "cluster.conf.pending-7").read_bytes() == edited
    assert f"clusterd conf propose {path}.pending-7" in caplog.text


def test_startup_without_an_accepted_copy_runs_the_file_unaccepted(tmp_path):
    path = tmp_path / "cluster.conf"
    path.write_bytes(conf_bytes(3))
    choice = wiring.startup_conf(str(path), str(tmp_path / "state"))
    assert not choice.accepted and choice.conf.version == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.conf"]
