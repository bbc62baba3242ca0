"""One RHCS support table: the collection's copy (module_utils/_clusterd/support.py, which
must not import clusterd) holds clusterd.conf.support_table's data, and its walker (on
xml.etree, over the cluster.conf a module wrote) finds what clusterd.conf.support finds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from clusterd.conf import parse, support_table
from clusterd.conf.parse import parse_xml
from clusterd.conf.render import to_bytes
from clusterd.conf.support import unused_report

REPO = Path(__file__).resolve().parents[2]
COPY = (REPO / "collections/ansible_collections/redhat/cluster/plugins/module_utils/"
        "_clusterd/support.py")
REFERENCE = Path("/work/shared/reference")
VALID = sorted((REFERENCE / "clufter-tests").glob("test*.conf"))

MIGRATED = b"""<cluster name="old" config_version="3">
  <cman expected_votes="3" keyfile="/etc/cluster/key"><multicast addr="239.192.1.1"/></cman>
  <totem token="5000" consensus="6000" rrp_mode="passive"/>
  <quorumd label="qdisk" votes="1" status_file="/tmp/qd"><heuristic program="/usr/local/sbin/check-gw" score="1"/></quorumd>
  <logging to_syslog="yes"/>
  <clusternodes>
    <clusternode name="n1" nodeid="1"><altname name="n1-b"/></clusternode>
    <clusternode name="n2" nodeid="2"/>
  </clusternodes>
  <rm central_processing="1">
    <resources><ip address="10.0.0.9" sleeptime="1"/></resources>
    <service name="web" nfslock="1"><ip ref="10.0.0.9"/><script name="s" file="/bin/true"
      service_name="web"/></service>
    <service name="db" priority="2"><apache name="a" server_root="/x"/></service>
  </rm>
</cluster>
"""
# Siblings that share a name, or have none: paths count them ([n]); not a valid config.
TWINS = b"""<cluster name="c" config_version="1"><clusternodes><clusternode name="a" nodeid="1">
<altname name="x"/><altname name="x"/></clusternode></clusternodes><rm><service name="s">
<script name="t" file="/bin/true" service_name="1"/><script name="t" file="/bin/true"
service_name="2"/><fs name="f" device="/d" mountpoint="/m" quick_status="1"><action
name="status" depth="0"/></fs></service><service name="s" nfslock="1"/></rm>
<totem secauth="on"/><totem join="1"/></cluster>"""


def _collection():
    spec = importlib.util.spec_from_file_location("rhc_collection_support", COPY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_data_is_the_same():
    coll = _collection()
    assert (coll.HONOURED, coll.IGNORED, coll.REWRITE) == (
        support_table.HONOURED, support_table.IGNORED, support_table.REWRITE)
    assert coll.ELEMENTS == support_table.ELEMENTS
    assert coll.ATTRIBUTES == support_table.ATTRIBUTES


def test_the_copy_is_the_table_text():
    """scripts/sync_support_table.py writes the copy; --check says whether it is current."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts/sync_support_table.py"),
                           "--check"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _both(data: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    root = parse_xml(data)
    daemon = [(u.where, u.instead) for u in unused_report(root)]
    text = to_bytes(root).decode()           # what cluster_admin's diff carries
    return daemon, _collection().unused_report(ElementTree.fromstring(text))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_same_findings_on_the_valid_reference_files(path):
    daemon, coll = _both(path.read_bytes())
    assert daemon and coll == daemon


def test_same_findings_and_paths_on_a_migrated_file():
    parse(MIGRATED)                          # it is a config clusterd accepts
    daemon, coll = _both(MIGRATED)
    assert coll == daemon
    assert [where for where, _ in coll] == [
        "/cluster/cman/@keyfile", "/cluster/cman/multicast", "/cluster/totem/@consensus",
        "/cluster/totem/@rrp_mode", "/cluster/quorumd/@status_file", "/cluster/logging",
        "/cluster/clusternodes/clusternode[@name='n1']/altname[@name='n1-b']",
        "/cluster/rm/@central_processing",
        "/cluster/rm/resources/ip[@address='10.0.0.9']/@sleeptime",
        "/cluster/rm/service[@name='web']/@nfslock",
        "/cluster/rm/service[@name='web']/script[@name='s']/@service_name",
        "/cluster/rm/service[@name='db']/@priority"]


def test_same_paths_for_siblings_that_share_a_name():
    daemon, coll = _both(TWINS)
    assert coll == daemon
    assert [where for where, _ in coll] == [
        "/cluster/clusternodes/clusternode[@name='a']/altname[@name='x'][1]",
        "/cluster/clusternodes/clusternode[@name='a']/altname[@name='x'][2]",
        "/cluster/rm/service[@name='s'][1]/script[@name='t'][1]/@service_name",
        "/cluster/rm/service[@name='s'][1]/script[@name='t'][2]/@service_name",
        "/cluster/rm/service[@name='s'][1]/fs[@name='f']/@quick_status",
        "/cluster/rm/service[@name='s'][2]/@nfslock",
        "/cluster/totem[1]/@secauth", "/cluster/totem[2]/@join"]


def test_module_warnings_from_the_diff():
    coll = _collection()
    text = to_bytes(parse_xml(MIGRATED)).decode()
    warnings = coll.unused_warnings({"before": "", "after": text})
    assert len(warnings) == 12
    assert warnings[4] == ("accepted but not used by clusterd: /cluster/quorumd/@status_file "
                           f"({support_table.ATTRIBUTES['quorumd']['status_file'][1]})")


@pytest.mark.parametrize("diff", [None, {}, {"after": ""}, {"after": 'passwd="********"'},
                                  {"after": "<rm/>"}])
def test_no_cluster_conf_no_warning(diff):
    assert _collection().unused_warnings(diff) == []
