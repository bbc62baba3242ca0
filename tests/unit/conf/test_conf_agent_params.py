"""Validating a cluster.conf checks each resource's parameters as its agent will take them
(issue 12: "agent parameter types"; issue 15: "a type or attribute that cannot be
honoured is refused at validation, never at start"): an ``ip`` that is no address, a
relative ``fs`` mountpoint, an RHCS type whose translation refuses an attribute, an
``<ocf>`` agent spec that does not parse, a ``<samba>`` in a service without an ``<ip>``.
Every such problem is on the resource's element, all of them at once; a config that
validates builds every agent."""

from __future__ import annotations

import pytest
from clusterd.conf import parse, validate_bytes
from clusterd.errors import ConfigError
from clusterd.resources.agents import build_agent

HEAD = ('<?xml version="1.0"?><cluster name="c" config_version="1"><clusternodes>'
        '<clusternode name="a" nodeid="1"/><clusternode name="b" nodeid="2"/>'
        '<clusternode name="c" nodeid="3"/></clusternodes><rm>')


def conf(rm: str) -> bytes:
    return (HEAD + rm + "</rm></cluster>\n").encode()


def reasons(rm: str) -> list[tuple[str, str]]:
    return [(p.where, p.reason) for p in validate_bytes(conf(rm))]


BAD = [
    ('<service name="s"><ip address="notanip"/></service>',
     "/cluster/rm/service[@name='s']/ip[@address='notanip']", "is not an IPv4/IPv6 address"),
    ('<service name="s"><fs name="f" device="/dev/sdb1" mountpoint="data"/></service>',
     "/cluster/rm/service[@name='s']/fs[@name='f']", "must be an absolute path"),
    ('<service name="s"><apache name="w" shutdown_wait="soon"/></service>',
     "/cluster/rm/service[@name='s']/apache[@name='w']", "is not a whole number of seconds"),
    (('<service name="s"><netfs name="n" mountpoint="/mnt/n" host="h" export="/e" '
      'fstype="nfs" no_unmount="1"/></service>'),
     "/cluster/rm/service[@name='s']/netfs[@name='n']", "always unmounts on stop"),
    ('<service name="s"><ocf name="o" agent="a:b:c:d"/></service>',
     "/cluster/rm/service[@name='s']/ocf[@name='o']", "is not PROVIDER:TYPE"),
    ('<service name="s"><samba name="smb"/></service>',
     "/cluster/rm/service[@name='s']/samba[@name='smb']", "its service has no <ip>"),
]


@pytest.mark.parametrize(("rm", "where", "words"), BAD, ids=lambda v: str(v)[:30])
def test_a_parameter_its_agent_refuses_fails_validation_on_its_element(rm, where, words):
    found = reasons(rm)
    assert any(w == where and words in r for w, r in found), found
    with pytest.raises(ConfigError):
        parse(conf(rm))


def test_every_bad_resource_is_reported_at_once():
    rm = "".join(rm.replace('name="s"', f'name="s{i}"') for i, (rm, _w, _r) in enumerate(BAD))
    found = reasons(rm)
    for i, (_rm, where, words) in enumerate(BAD):
        mine = where.replace("@name='s'", f"@name='s{i}'", 1)
        assert any(w == mine and words in r for w, r in found), (mine, found)


def test_a_global_resource_used_twice_is_reported_once_per_distinct_use():
    rm = ('<resources><ip address="999.1.1.1"/></resources>'
          '<service name="a"><ip ref="999.1.1.1"/></service>'
          '<service name="b"><ip ref="999.1.1.1"/></service>')
    found = [r for _w, r in reasons(rm) if "is not an IPv4/IPv6 address" in r]
    assert len(found) == 1, found


def test_inherited_values_are_checked_as_the_agent_gets_them():
    """nfsclient's path comes from its fs's mountpoint: checked once resolved (an ocf
    child inherits nothing, so this uses fs under fs: the inner mountpoint is its own)."""
    rm = ('<service name="s"><ip address="198.18.0.60"/>'
          '<fs name="outer" device="/dev/sdb1" mountpoint="/srv/x">'
          '<fs name="inner" device="/dev/sdb2" mountpoint="/srv/x/in"/></fs></service>')
    assert reasons(rm) == []


def test_a_config_that_validates_builds_every_agent():
    rm = ('<service name="s"><ip address="198.18.0.60/24"/>'
          '<fs name="f" device="/dev/cluster-lun0" mountpoint="/srv/f" fstype="ext4"/>'
          '<apache name="w" server_root="/etc/apache2" config_file="apache2.conf" '
          'shutdown_wait="10"/>'
          '<mysql name="m" config_file="/etc/mysql/db.cnf" listen_address="198.18.0.60"/>'
          '<samba name="smb" config_file="/etc/samba/smb.conf.files"/>'
          '<ocf name="o" agent="heartbeat:Dummy"/></service>')
    assert reasons(rm) == []
    built = parse(conf(rm))
    for node in built.resource_tree.roots[0].walk():
        attrs = {k: v for k, v in node.attrs if v is not None}
        build_agent(node.type, attrs, where=node.where)   # ConfigError if refused


def test_rgmanager_tree_building_alone_stays_as_rgmanager_built_it():
    """rg_test's tree (check_tree without agents) judges the structure only: rgmanager's
    own fixtures use values such as file="x" that an agent would refuse."""
    from clusterd.resources.tree import check_tree
    from lxml import etree
    rm = etree.fromstring('<rm><service name="s"><script name="x" file="x"/></service></rm>')
    assert check_tree(rm).problems == ()
    assert [f.reason for f in check_tree(rm, agents=True).problems] == [
        "script: file 'x' must be an absolute path"]
