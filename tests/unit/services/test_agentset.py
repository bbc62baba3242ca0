"""A service's agents: a ``samba`` resource is built with the addresses of every ``<ip>``
of its service (``samba.SERVICE_IPS``), as rgmanager's samba.sh read them."""

from __future__ import annotations

from clusterd.conf import parse
from clusterd.resources.agents.registry import DEFAULT_ENV
from clusterd.resources.agents.samba import SERVICE_IPS
from clusterd.resources.tree import check_tree
from clusterd.services.agentset import ServiceAgents, service_ips
from lxml import etree

CONF = """<?xml version="1.0"?>
<cluster name="c" config_version="1"><clusternodes>
<clusternode name="n1" nodeid="1"/></clusternodes><rm>
<resources><ip address="198.18.0.53"/></resources>
<service name="files"><ip address="198.18.0.52/24"><samba name="smb"/></ip>
<ip ref="198.18.0.53"/><fs name="d" device="/dev/sdb1" mountpoint="/srv"/></service>
<service name="web"><ip address="fd00::80/64"/><script name="w" file="/etc/init.d/w"/>
</service></rm></cluster>"""


def built(root) -> dict[str, dict[str, str]]:
    """What the factory was given, by type."""
    seen: dict[str, dict[str, str]] = {}

    def build(rtype, attrs, where, env):
        seen.setdefault(rtype, dict(attrs))
        return object()
    ServiceAgents(root.label, root, DEFAULT_ENV, build)
    return seen


def test_samba_gets_every_ip_of_its_service_without_prefix_lengths():
    files, web = parse(CONF.encode()).resource_tree.roots
    seen = built(files)
    assert seen["samba"] == {"name": "smb", "service_name": "files",
                             SERVICE_IPS: "198.18.0.52 198.18.0.53"}
    assert SERVICE_IPS not in seen["ip"] and SERVICE_IPS not in seen["fs"]
    assert service_ips(web) == "fd00::80" and SERVICE_IPS not in built(web)["script"]


def test_a_service_without_an_ip_gives_samba_none():
    """Validating a cluster.conf refuses this (tree checks); the agent then binds nothing."""
    rm = etree.fromstring(b'<rm><service name="bare"><samba name="lonely"/></service></rm>')
    [root] = check_tree(rm).tree.roots
    assert built(root)["samba"][SERVICE_IPS] == ""
