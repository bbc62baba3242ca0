"""Nothing silently ignored: the RHCS support table covers the whole schema, its honoured
claims name modules that read the part, and unused_report lists every occurrence of what
clusterd accepts but does not use, in document order and linear time."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import time
from importlib import resources
from pathlib import Path

import pytest
from clusterd.conf import parse, rng
from clusterd.conf.parse import parse_xml
from clusterd.conf.paths import element_path
from clusterd.conf.support import (
    LOG_LIMIT,
    attribute_support,
    log_unused,
    markdown_tables,
    survey,
    unused_report,
)
from clusterd.conf.support_table import ATTRIBUTES, ELEMENTS, HONOURED, IGNORED, REWRITE
from clusterd.resources.agents import registry, rhcs_types
from confbuild import reference_files
from lxml import etree

RNG = "{http://relaxng.org/ns/structure/1.0}"
DOCS = Path(__file__).resolve().parents[3] / "docs/rhcs-migration.md"
SRC = Path(importlib.util.find_spec("clusterd").origin).parent


def _rhcs_schema() -> dict[str, set[str]]:
    """Element -> attributes, straight from the shipped RHCS 3.0.12 cluster.rng (not the
    copy clusterd extends: the table must cover RHCS's own schema)."""
    data = resources.files("clusterd.conf").joinpath("schema/cluster.rng").read_bytes()
    root = etree.fromstring(data)
    defines = {d.get("name"): d for d in root.iter(RNG + "define")}
    attrs: dict[str, set[str]] = {}

    def walk(node: etree._Element, owner: str, seen: frozenset[str]) -> None:
        for child in node:
            if not isinstance(child.tag, str) or child.tag == RNG + "element":
                continue
            if child.tag == RNG + "attribute":
                attrs[owner].add(child.get("name"))
            elif child.tag == RNG + "ref" and child.get("name") not in seen:
                walk(defines[child.get("name")], owner, seen | {child.get("name")})
            else:
                walk(child, owner, seen)

    for el in root.iter(RNG + "element"):
        attrs.setdefault(el.get("name"), set())
        walk(el, el.get("name"), frozenset())
    return attrs


RHCS = _rhcs_schema()
SHIPPED = {tag: rule.attributes - {None} for tag, rule in rng.rules().items()}


def test_every_schema_element_is_in_the_table_and_nothing_else():
    assert len(RHCS) == 57
    assert set(ELEMENTS) == set(RHCS) | set(SHIPPED)
    assert set(ATTRIBUTES) == set(ELEMENTS)


@pytest.mark.parametrize("tag", sorted(set(RHCS) | set(SHIPPED)))
def test_every_schema_attribute_is_classified(tag):
    allowed = RHCS.get(tag, set()) | SHIPPED.get(tag, set())
    missing = sorted(a for a in allowed if attribute_support(tag, a) is None)
    assert missing == [], f"<{tag}>: add {missing} to ATTRIBUTES in conf/support_table.py"
    stale = sorted(set(ATTRIBUTES[tag]) - allowed - {"*"})
    assert stale == [], f"<{tag}>: the schema does not allow {stale}"


def test_the_table_has_566_rhcs_attributes_each_with_a_status():
    assert sum(len(a) for a in RHCS.values()) == 566
    for tag, attrs in RHCS.items():
        for name in attrs:
            assert attribute_support(tag, name)[0] in (HONOURED, IGNORED, REWRITE)


def _honoured_claims():
    for tag, (status, detail) in ELEMENTS.items():
        if status == HONOURED:
            yield tag, None, detail
    for tag, attrs in ATTRIBUTES.items():
        for name, (status, detail) in attrs.items():
            if status == HONOURED:
                yield tag, name, detail


CLAIMS = sorted(_honoured_claims(), key=lambda c: (c[0], c[1] or ""))


def _mentions(source: str, token: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", source) is not None


@pytest.mark.parametrize(("tag", "name", "detail"), CLAIMS,
                         ids=[f"{t}@{n}" if n else t for t, n, _ in CLAIMS])
def test_honoured_claims_name_modules_that_read_the_part(tag, name, detail):
    """Each reader imports, and its source names the element or attribute it reads
    (for agent parameters, ``*``: the parameter mapping it passes on)."""
    readers = detail.split(" (", 1)[0].split(", ")
    assert readers and all(r.startswith("clusterd.") for r in readers), detail
    for reader in readers:
        module = importlib.import_module(reader)
        source = Path(module.__file__).read_text()
        if name == "*":
            assert "params" in source or "OCF_RESKEY_" in source, (tag, reader)
        else:
            assert _mentions(source, name or tag), f"{reader} never names {name or tag!r}"


def test_ignored_and_rewrite_entries_say_what_to_use_instead():
    entries = list(ELEMENTS.values()) + [e for a in ATTRIBUTES.values() for e in a.values()]
    for status, detail in entries:
        if status != HONOURED:
            assert len(detail) > 20 and "(" not in detail, detail  # it goes in (...)


def test_rewrite_is_exactly_the_rhcs_resource_types_without_a_built_in_agent():
    resource_types = rng.rules()["resources"].children - {"action", "service", "ocf",
                                                          "systemd"}
    built_in = set(registry.known_types()) | rhcs_types.RHCS_TYPES
    assert {t for t, (s, _) in ELEMENTS.items() if s == REWRITE} == resource_types - built_in
    for rtype, agent in registry.OCF_EQUIVALENT.items():
        if rtype in ELEMENTS:
            assert f'"{agent}"' in ELEMENTS[rtype][1], rtype
    for rtype, unit in registry.UNIT_EQUIVALENT.items():
        assert f'"{unit}"' in ELEMENTS[rtype][1], rtype


def test_the_issue_examples_are_reported():
    for tag in ("altname", "logging", "multicast", "dlm", "events"):
        assert ELEMENTS[tag][0] == IGNORED, tag
    assert ELEMENTS["totem"][0] == HONOURED and ATTRIBUTES["totem"]["token"][0] == HONOURED
    assert all(s == IGNORED for k, (s, _) in ATTRIBUTES["totem"].items() if k != "token")
    assert ATTRIBUTES["cman"]["keyfile"][0] == ATTRIBUTES["rm"]["central_processing"][0] == IGNORED
    assert ELEMENTS["quorumd"][0] == HONOURED
    assert ATTRIBUTES["quorumd"]["status_file"][0] == IGNORED
    assert "journal" in ELEMENTS["logging"][1]


MIGRATED = """<cluster name="old" config_version="3">
  <cman expected_votes="3" keyfile="/etc/cluster/key" upgrading="no">
    <multicast addr="239.192.1.1"/>
  </cman>
  <totem token="5000" consensus="6000" secauth="on"/>
  <quorumd label="qdisk" votes="1" status_file="/tmp/qd"><heuristic program="/usr/local/sbin/check-gw" score="1"/></quorumd>
  <logging to_syslog="yes"><logging_daemon name="rgmanager" debug="on"/></logging>
  <dlm enable_plock="1"/>
  <fence_daemon post_join_delay="20" override_time="30"/>
  <clusternodes>
    <clusternode name="n1" nodeid="1"><altname name="n1-b"/></clusternode>
    <clusternode name="n2" nodeid="2"/>
  </clusternodes>
  <rm central_processing="1" status_poll_interval="5">
    <events><event name="e" class="node"/></events>
    <service name="web" nfslock="1">
      <ip address="10.0.0.5" sleeptime="2"/>
      <fs name="data" device="/dev/sdb1" mountpoint="/srv" quick_status="1"/>
      <apache name="httpd" server_root="/etc/httpd"/>
      <named name="dns"/>
    </service>
  </rm>
</cluster>
"""
EXPECTED = [
    "/cluster/cman/@keyfile", "/cluster/cman/@upgrading", "/cluster/cman/multicast",
    "/cluster/totem/@consensus", "/cluster/totem/@secauth", "/cluster/quorumd/@status_file",
    "/cluster/logging", "/cluster/dlm", "/cluster/fence_daemon/@override_time",
    "/cluster/clusternodes/clusternode[@name='n1']/altname[@name='n1-b']",
    "/cluster/rm/@central_processing", "/cluster/rm/@status_poll_interval",
    "/cluster/rm/events", "/cluster/rm/service[@name='web']/@nfslock",
    "/cluster/rm/service[@name='web']/ip[@address='10.0.0.5']/@sleeptime",
    "/cluster/rm/service[@name='web']/fs[@name='data']/@quick_status",
]


def test_unused_report_lists_each_occurrence_once_in_document_order():
    conf = parse(MIGRATED.encode())          # all of it is accepted
    found = unused_report(conf.root)
    assert [u.where for u in found] == EXPECTED
    quorumd = found[5]
    assert str(quorumd) == (f"accepted but not used by clusterd: /cluster/quorumd/@status_file "
                            f"({ATTRIBUTES['quorumd']['status_file'][1]})")
    assert quorumd.reason.startswith("accepted but not used by clusterd: ")


def test_survey_separates_honoured_unused_and_rewrite():
    found = survey(parse(MIGRATED.encode()).root)
    honoured = {h.element: h for h in found.honoured}
    assert "quorumd" in honoured and "heuristic" in honoured
    assert honoured["totem"].attributes == ("token",)
    assert honoured["cman"].attributes == ("expected_votes",)
    assert honoured["clusternode"].count == 2
    assert [(r.type, r.where) for r in found.rewrite] == [
        ("named", "/cluster/rm/service[@name='web']/named[@name='dns']")]
    assert honoured["apache"].attributes == ("name", "server_root")  # rhcs_types


def test_a_misplaced_element_is_left_to_validation():
    """rgmanager 1.x's <group> inside <resources> is not groupd's <group>."""
    root = parse_xml(b'<cluster name="c" config_version="1"><clusternodes><clusternode '
                     b'name="a" nodeid="1"/></clusternodes><rm><resources><group name="g"/>'
                     b'</resources></rm><group groupd_compat="1"/></cluster>')
    assert [u.where for u in unused_report(root)] == ["/cluster/group"]


@pytest.mark.parametrize("data", [p.read_bytes() for p in reference_files()] +
                         [MIGRATED.encode()])
def test_paths_are_the_validation_paths(data):
    root = parse_xml(data)
    paths = {element_path(el) for el in root.iter(etree.Element)}
    found = survey(root)
    wheres = [r.where for r in found.rewrite] + [u.where.split("/@")[0] for u in found.unused]
    assert all(where in paths for where in wheres), sorted(set(wheres) - paths)


def test_no_attribute_value_is_reported():
    root = parse_xml(b'<cluster name="c" config_version="1"><clusternodes><clusternode '
                     b'name="a" nodeid="1"><fence><method name="m"><device name="d" '
                     b'passwd="n0de-s3cret"/></method></fence></clusternode></clusternodes>'
                     b'<fencedevices><fencedevice name="d" agent="fence_ipmilan" '
                     b'passwd="s3cret-v4lue"/></fencedevices><rm><service name="s" nfslock="1">'
                     b'<script name="x" file="/bin/true" service_name="s"/></service></rm>'
                     b'</cluster>')
    text = repr(survey(root))
    assert "s3cret-v4lue" not in text and "n0de-s3cret" not in text
    assert "passwd" in text                                 # the parameter's name only


def test_not_a_cluster_has_nothing_to_report():
    assert unused_report(parse_xml(b"<rm><service name='a' nfslock='1'/></rm>")) == []


def _services(n: int) -> bytes:
    body = "".join(f'<service name="s{i}" nfslock="1" priority="{i}"/>' for i in range(n))
    return (f'<cluster name="c" config_version="1"><clusternodes><clusternode name="a" '
            f'nodeid="1"/></clusternodes><rm>{body}</rm></cluster>').encode()


def _best_time(root) -> float:
    """Best of five CPU times (this process only: other load on the host does not count)."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        found = unused_report(root)
        best = min(best, time.process_time() - start)
    assert len(found) == 2 * (len(root.find("rm")))
    return best


def test_linear_in_the_number_of_siblings_and_findings():
    small, large = parse_xml(_services(2000)), parse_xml(_services(8000))
    ratio = _best_time(large) / _best_time(small)
    assert ratio < 10, f"4x the services took {ratio:.1f}x the time (quadratic: ~16x)"


class _Conf:
    def __init__(self, data: bytes) -> None:
        self.root = parse_xml(data)
        self.version = 7
        self.source = "/etc/cluster/cluster.conf"


def test_log_unused_warns_once_per_occurrence(caplog):
    caplog.set_level(logging.WARNING, logger="clusterd.conf.support")
    assert log_unused("node1", parse(MIGRATED.encode())) == len(EXPECTED)
    assert len(caplog.records) == len(EXPECTED)
    assert caplog.records[5].getMessage() == (
        "node node1: config_version 3: accepted but not used by clusterd: "
        f"/cluster/quorumd/@status_file ({ATTRIBUTES['quorumd']['status_file'][1]})")


def test_log_unused_is_bounded(caplog):
    caplog.set_level(logging.WARNING, logger="clusterd.conf.support")
    assert log_unused("node1", _Conf(_services(100))) == 200
    assert len(caplog.records) == LOG_LIMIT + 1
    assert caplog.records[-1].getMessage() == (
        f"node node1: config_version 7: {200 - LOG_LIMIT} more parts accepted but not used "
        "by clusterd; ccs_config_validate -f /etc/cluster/cluster.conf lists them all")


def test_the_docs_carry_the_table():
    """docs/rhcs-migration.md shows the table as generated (python -m clusterd.conf.support)."""
    assert markdown_tables() in DOCS.read_text()
