"""Our extension resource types (systemd, ocf) in the shipped schema."""

from __future__ import annotations

import pytest
from clusterd.conf import parse
from clusterd.errors import ConfigError

BASE = """<?xml version="1.0"?>
<cluster name="alpha" config_version="1">
  <clusternodes><clusternode name="node1" nodeid="1"/><clusternode name="node2" nodeid="2"/>
  </clusternodes>
  <rm><service name="web">{body}</service></rm>
</cluster>
"""


def test_ocf_takes_any_agent_parameter_and_systemd_its_unit() -> None:
    body = ('<ip address="198.18.0.50"><ocf name="nginx" agent="heartbeat:nginx" '
            'configfile="/etc/nginx/nginx.conf" status10url="/"/></ip>'
            '<systemd name="app" unit="app.service"/>')
    conf = parse(BASE.format(body=body).encode())
    assert b'configfile="/etc/nginx/nginx.conf"' in conf.canonical_bytes()


@pytest.mark.parametrize(("body", "reason"), [
    ('<ip address="198.18.0.50" bogus="1"/>', "attribute 'bogus' is not allowed on <ip>"),
    # a missing required attribute is located on the resource element itself (libxml2
    # alone reports the failure at <rm>, the choice that contains it)
    ('<ocf agent="heartbeat:nginx"/>', ("/cluster/rm/service[@name='web']/ocf: attribute "
                                       "'name' is missing")),
    ('<ocf name="nginx"/>', ("/cluster/rm/service[@name='web']/ocf[@name='nginx']: "
                            "attribute 'agent' is missing: name the OCF agent")),
    ('<systemd name="app"/>', ("/cluster/rm/service[@name='web']/systemd[@name='app']: "
                              "attribute 'unit' is missing")),
    ('<ip address="198.18.0.50"><systemd unit="a.service"/></ip>',
     ("/cluster/rm/service[@name='web']/ip[@address='198.18.0.50']/systemd: attribute "
     "'name' is missing")),
])
def test_known_types_stay_strict(body: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(BASE.format(body=body).encode())
    assert reason in str(err.value)


def test_a_missing_attribute_is_one_problem_on_the_element_not_a_generic_rm_one() -> None:
    with pytest.raises(ConfigError) as err:
        parse(BASE.format(body='<ocf name="nginx"/><systemd name="app"/>').encode())
    assert [p.where for p in err.value.problems] == [
        "/cluster/rm/service[@name='web']/ocf[@name='nginx']",
        "/cluster/rm/service[@name='web']/systemd[@name='app']"]


def test_a_ref_to_a_global_extension_resource_needs_no_attributes() -> None:
    body = '<ocf ref="nginx"/>'
    conf = BASE.format(body=body).replace(
        "<rm>", '<rm><resources><ocf name="nginx" agent="heartbeat:nginx"/></resources>')
    parse(conf.encode())
