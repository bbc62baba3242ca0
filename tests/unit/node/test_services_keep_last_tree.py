"""The daemon never loads an empty or partial resource tree, and never parses ``<rm>`` on
its event loop: a ClusterConf carries its services, domains and complete tree, built and
checked once when it was parsed (off the loop); there is no ClusterConf around a tree
that cannot be built, so ``on_conf`` only hands the model over."""

from __future__ import annotations

import logging

import clusterd.placement
import clusterd.placement.config
import clusterd.resources
import clusterd.resources.tree
import pytest
from clusterd.conf import parse
from clusterd.conf.model import ClusterConf
from clusterd.conf.parse import parse_xml
from clusterd.errors import ConfigError
from clusterd.node import services_glue as sg
from node_testdata import conf_bytes
from test_services_report_cadence import glue

NAMES = ("n1", "n2", "n3")
GOOD = ('<rm><failoverdomains><failoverdomain name="d"><failoverdomainnode name="n1"/>'
        '</failoverdomain></failoverdomains><service name="web" domain="d">'
        '<fs name="data" mountpoint="/srv" device="/dev/sdb1"/></service></rm>')
# Two fs on one mountpoint: refused by validation; built here by going around it.
BAD = ('<rm><service name="web"><fs name="data" mountpoint="/srv" device="/dev/sdb1"/>'
       '</service><service name="db"><fs name="db" mountpoint="/srv" device="/dev/sdc1"/>'
       '</service></rm>')
SHARED_IP = ('<rm><resources><ip address="10.0.0.1"/></resources>'
             '<service name="a"><ip ref="10.0.0.1"/></service>'
             '<service name="b"><ip ref="10.0.0.1"/></service></rm>')


def _forbid_parsing_rm(monkeypatch) -> None:
    """The builders fail wherever they are looked up: their modules, the packages that
    re-export them, and the glue's own namespace."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("<rm> parsed again outside conf.parse")
    for module in (clusterd.placement.config, clusterd.placement, clusterd.resources.tree,
                   clusterd.resources, sg):
        for name in ("services_from_rm", "build_tree", "check_tree"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)


def test_on_conf_hands_over_the_model_and_parses_nothing(tmp_path, monkeypatch):
    g, _, _ = glue(tmp_path, monkeypatch)
    conf = parse(conf_bytes(2, names=NAMES, extra=GOOD))
    _forbid_parsing_rm(monkeypatch)
    g.on_conf(conf)
    assert g.executor.tree is conf.resource_tree
    assert g.defs is conf.services and g.domains is conf.domains
    assert [d.name for d in g.defs] == ["service:web"] and g.services_version == 2
    assert [dom.name for dom in g.domains] == ["d"]


def test_on_conf_logs_the_warnings_the_config_was_accepted_with(tmp_path, monkeypatch,
                                                                caplog):
    g, _, _ = glue(tmp_path, monkeypatch)
    conf = parse(conf_bytes(2, names=NAMES, extra=SHARED_IP))
    with caplog.at_level(logging.WARNING, logger="clusterd"):
        g.on_conf(conf)
    (record,) = [r for r in caplog.records if "resource tree" in r.getMessage()]
    assert record.getMessage() == f"node n2: resource tree: {conf.tree_warnings[0]}"
    assert [r.label for r in g.executor.tree.roots] == ["service:a", "service:b"]


def test_no_config_holds_a_tree_that_cannot_be_built(tmp_path, monkeypatch):
    """What the old ``on_conf`` guarded against (a tree failing to build after
    validation) cannot reach it: a tree that did not come through ``parse`` is built
    when the ClusterConf is, and refused there."""
    g, _, _ = glue(tmp_path, monkeypatch)
    g.on_conf(parse(conf_bytes(2, names=NAMES, extra=GOOD)))
    tree, defs = g.executor.tree, g.defs
    with pytest.raises(ConfigError) as exc:
        ClusterConf.from_canonical(parse_xml(conf_bytes(3, names=NAMES, extra=BAD)))
    (problem,) = exc.value.problems
    assert problem.where == "/cluster/rm/service[@name='db']/fs[@name='db']"
    assert "unique attribute collision: fs mountpoint='/srv'" in problem.reason
    assert g.executor.tree is tree and g.defs == defs and g.services_version == 2


def test_a_tree_built_outside_parse_is_the_one_parse_builds():
    data = conf_bytes(2, names=NAMES, extra=GOOD)
    direct = ClusterConf.from_canonical(parse_xml(data))
    parsed = parse(data)
    assert direct == parsed
    assert (direct.services, direct.domains, direct.resource_tree) == \
        (parsed.services, parsed.domains, parsed.resource_tree)
