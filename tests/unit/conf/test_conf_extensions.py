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
    # a missing required attribute is refused, located only down to <rm> for now (libxml2
    # reports the failure at the choice that contains it)
    ('<ocf agent="heartbeat:nginx"/>', "/cluster/rm"),
    ('<systemd name="app"/>', "/cluster/rm"),
])
def test_known_types_stay_strict(body: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(BASE.format(body=body).encode())
    assert reason in str(err.value)
