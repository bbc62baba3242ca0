"""``<clusterd admin_group="..."/>``: schema extension, name rule, model accessor."""

from __future__ import annotations

import pytest
from clusterd.conf import parse, validate_bytes
from clusterd.conf import rng as conf_rng
from lxml import etree


def conf(clusterd: str) -> bytes:
    return ('<?xml version="1.0"?><cluster name="alpha" config_version="1">'
            f'{clusterd}<clusternodes><clusternode name="n1" nodeid="1"/></clusternodes>'
            '</cluster>').encode()


@pytest.mark.parametrize("group", ["hacluster-admin", "_ops", "wheel", "ha.admins",
                                   "admins@example.com", "Domain_Admins", "a" * 64])
def test_group_names_are_accepted_and_modelled(group):
    assert parse(conf(f'<clusterd admin_group="{group}"/>')).admin_group == group


@pytest.mark.parametrize("group", ["1000", "-admins", "ha admins", "adm;id", "", "a" * 65,
                                   "grüppe"])
def test_bad_group_names_are_refused_with_the_rule(group):
    (problem,) = validate_bytes(conf(f'<clusterd admin_group="{group}"/>'))
    assert problem.where == "/cluster/clusterd"
    assert problem.reason == (
        f'admin_group="{group}" is not a group name: use 1-64 letters, digits, \'_\', \'.\', '
        "'-' or '@', starting with a letter or '_' (a name, not a gid); or remove "
        "admin_group to leave changes to root")


def test_without_the_element_or_the_attribute_only_root_administers():
    assert parse(conf("")).admin_group is None
    assert parse(conf("<clusterd/>")).admin_group is None


def test_unknown_attributes_and_a_second_element_are_refused():
    (problem,) = validate_bytes(conf('<clusterd admin_groups="x"/>'))
    assert problem.where == "/cluster/clusterd"
    assert "attribute 'admin_groups' is not allowed on <clusterd>" in problem.reason
    assert "did you mean 'admin_group'?" in problem.reason
    problems = validate_bytes(conf('<clusterd admin_group="a"/><clusterd admin_group="b"/>'))
    assert any(p.where == "/cluster/clusterd[2]" and "given 2 times" in p.reason
               for p in problems)


def test_the_printed_schema_validates_the_element_on_its_own():
    """What ``ccs_config_validate --print-schema`` gives xmllint accepts <clusterd>."""
    schema = etree.RelaxNG(etree.fromstring(conf_rng.schema_text().encode()))
    assert schema.validate(etree.fromstring(conf('<clusterd admin_group="ha"/>')))
    assert not schema.validate(etree.fromstring(conf('<clusterd group="ha"/>')))
