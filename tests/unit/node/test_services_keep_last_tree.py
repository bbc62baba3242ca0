"""The daemon never loads an empty or partial resource tree: when the services of a new
config cannot be built (validation builds the same tree, so only a bug gets here), the
services keep the last good definitions and tree, and one ERROR line says why and that
nothing was stopped."""

from __future__ import annotations

import logging

from clusterd.conf import parse
from clusterd.conf.model import ClusterConf
from clusterd.conf.parse import parse_xml
from node_testdata import conf_bytes
from test_services_report_cadence import glue

NAMES = ("n1", "n2", "n3")
GOOD = ('<rm><service name="web"><fs name="data" mountpoint="/srv" device="/dev/sdb1"/>'
        '</service></rm>')
# Two fs on one mountpoint: refused by validation; built here by going around it.
BAD = ('<rm><service name="web"><fs name="data" mountpoint="/srv" device="/dev/sdb1"/>'
       '</service><service name="db"><fs name="db" mountpoint="/srv" device="/dev/sdc1"/>'
       '</service></rm>')


def test_a_config_whose_tree_cannot_be_built_keeps_the_last_good_tree(tmp_path, monkeypatch,
                                                                      caplog):
    g, _, _ = glue(tmp_path, monkeypatch)
    g.on_conf(parse(conf_bytes(2, names=NAMES, extra=GOOD)))
    tree, defs = g.executor.tree, g.defs
    assert [r.label for r in tree.roots] == ["service:web"] and g.services_version == 2
    unvalidated = ClusterConf.from_canonical(parse_xml(conf_bytes(3, names=NAMES, extra=BAD)))
    with caplog.at_level(logging.INFO, logger="clusterd"):
        g.on_conf(unvalidated)
    assert g.executor.tree is tree and g.defs == defs and g.services_version == 2
    assert not g.executor.in_flight()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert message.startswith("node n2: the services of config_version 3 cannot be loaded (")
    assert "unique attribute collision: fs mountpoint='/srv'" in message
    assert message.endswith("keeping config_version 2's services and resource tree: nothing "
                            "was stopped")


def test_nothing_loaded_yet_keeps_no_services(tmp_path, monkeypatch, caplog):
    g, _, _ = glue(tmp_path, monkeypatch)
    g.services_version = None
    unvalidated = ClusterConf.from_canonical(parse_xml(conf_bytes(3, names=NAMES, extra=BAD)))
    g.on_conf(unvalidated)
    assert g.executor.tree.roots == () and g.defs == ()
    assert "keeping no services: nothing was stopped" in caplog.text
