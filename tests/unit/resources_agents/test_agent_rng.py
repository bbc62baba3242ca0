"""Our extension types against cluster.rng: the shipped RHCS 3.0.12 schema refuses them;
the same schema extended ccs_update_schema-style with ``rng.defines()`` accepts them and
still checks them."""

from __future__ import annotations

from importlib import resources

import pytest
from clusterd.resources.agents.rng import extend_schema
from lxml import etree

CONF = """<cluster name="alpha" config_version="1">
  <clusternodes><clusternode name="node1" nodeid="1"/></clusternodes>
  <rm>
    <resources>{shared}</resources>
    <service name="web">
      <ip address="198.18.0.50"/>
      {resources}
    </service>
  </rm>
</cluster>"""
GOOD = """<systemd name="nginx" unit="nginx.service" __independent_subtree="1"/>
      <systemd ref="shared"/>
      <script ref="legacy"/>
      <ocf name="web-nginx" agent="heartbeat:nginx" configfile="/etc/nginx/nginx.conf">
        <action name="monitor" depth="0" interval="10s"/>
        <script name="hook" file="/etc/init.d/hook"/>
      </ocf>"""


@pytest.fixture(scope="module")
def shipped() -> etree._Element:
    data = resources.files("clusterd.conf").joinpath("schema/cluster.rng").read_bytes()
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


SHARED_GOOD = '<script name="legacy" file="/etc/init.d/legacy"/>'
SHARED_EXT = SHARED_GOOD + '<systemd name="shared" unit="httpd.service"/>'


def valid(schema_root: etree._Element, resources_xml: str, shared: str = SHARED_EXT) -> bool:
    schema = etree.RelaxNG(schema_root)
    conf = CONF.format(resources=resources_xml, shared=shared)
    return schema.validate(etree.fromstring(conf))


def test_the_shipped_schema_refuses_extension_elements(shipped):
    assert valid(shipped, '<script ref="legacy"/>', SHARED_GOOD)
    assert not valid(shipped, '<script ref="legacy"/>', SHARED_EXT)
    assert not valid(shipped, GOOD, SHARED_EXT)


def test_the_extended_schema_accepts_them(shipped):
    extended = extend_schema(shipped)
    assert valid(extended, GOOD)
    assert extend_schema(extended) is not None   # idempotent: defines are not duplicated
    assert len(extend_schema(extended).findall(
        "{http://relaxng.org/ns/structure/1.0}define[@name='OCF']")) == 1


@pytest.mark.parametrize("bad", [
    '<systemd name="nginx"/>',                                  # unit is required
    '<systemd name="nginx" unit="nginx.service" colour="red"/>',  # not a parameter
    '<ocf agent="heartbeat:nginx"/>',                           # name is required
    '<ocf name="n"/>',                                          # agent is required
    '<ocf name="n" agent="heartbeat:nginx"><frobnicate/></ocf>',  # unknown child element
])
def test_the_extended_schema_still_checks(shipped, bad):
    assert not valid(extend_schema(shipped), bad)
