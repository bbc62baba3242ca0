"""Properties of ``<rm>`` validation (hypothesis), over random resource manager sections:
services with nested inline resources, global resources referenced from several services
(max-instance types included), failover domains, and now and then a mistake.

* A config that validates builds: the resource tree holds every service of the file, in
  order, and so do the service definitions (no config that validates makes a service
  disappear, the bug of issue 12). One that does not validate is refused by ``parse``.
* Two valid configs that differ in one service only: the reconfiguration diff names that
  service and no other, except a service whose reference to a max-instance resource
  (an ``ip``, an ``fs``) was left out with a warning in either config: it gains or loses
  that resource as the edited service takes or releases it, as in rgmanager.
"""

from __future__ import annotations

import re

import pytest
from clusterd.conf import parse, validate_bytes
from clusterd.conf.parse import parse_xml, warnings_of
from clusterd.errors import ConfigError
from clusterd.resources import ChangeKind, reconfiguration
from confbuild import element, to_bytes
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
NODES = ("n1", "n2", "n3")
GLOBALS = 3  # of each type: ip, script, fs
_SERVICE = re.compile(r"^/cluster/rm/service\[@name='([^']+)'\]")


@st.composite
def resource(draw, counts: dict[str, int], depth: int = 0) -> tuple:
    """An inline ip, script or fs (values from a range wide enough to rarely collide), or
    a reference to one of the global resources (now and then one that does not exist)."""
    refs = [t for t, n in counts.items() if n]
    kind = draw(st.sampled_from(["ip", "script", "fs", *(["ref"] * 3 if refs else [])]))
    n = draw(st.integers(0, 200))
    if kind == "ref":
        type_ = draw(st.sampled_from(refs))
        i = draw(st.integers(0, counts[type_] - 1))
        if draw(st.integers(0, 60)) == 0:
            i = counts[type_]                             # a mistake: no such resource
        ref = f"10.1.0.{i + 1}" if type_ == "ip" else f"g{type_}{i}"
        tag, attrs = type_, {"ref": ref}
    elif kind == "ip":
        tag, attrs = "ip", {"address": f"10.0.0.{n + 1}"}
    elif kind == "script":
        tag, attrs = "script", {"name": f"sc{n}", "file": f"/etc/init.d/sc{n}"}
    else:
        tag, attrs = "fs", {"name": f"fs{n}", "mountpoint": f"/mnt/{n}", "device": f"/dev/d{n}"}
    if depth and draw(st.integers(0, 5)) == 0:
        attrs["__independent_subtree"] = draw(st.sampled_from(["1", "2"]))
    children = draw(st.lists(resource(counts, depth + 1), max_size=2)) if depth < 2 else []
    if tag == "ip":                                       # ip forbids nfs children only
        children = [c for c in children if c[0] in ("ip", "script", "fs")]
    return element(tag, attrs, children)


@st.composite
def service(draw, i: int, domains: int, counts: dict[str, int]) -> tuple:
    attrs = {"name": f"svc{i}", "recovery": draw(st.sampled_from(["restart", "relocate"]))}
    if domains and draw(st.booleans()):
        attrs["domain"] = f"dom{draw(st.integers(0, domains - 1))}"
    if draw(st.booleans()):
        attrs["autostart"] = draw(st.sampled_from(["0", "1"]))
    return element("service", attrs, draw(st.lists(resource(counts), max_size=3)))


@st.composite
def rm_section(draw) -> tuple[list[tuple], list[tuple], dict[str, int]]:
    """(the sections before the services, the services, how many globals of each type)."""
    domains = [element("failoverdomain", {"name": f"dom{d}", "ordered": "1"}, [
        element("failoverdomainnode", {"name": n, "priority": str(p + 1)})
        for p, n in enumerate(draw(st.lists(st.sampled_from(NODES), unique=True,
                                            min_size=1)))])
        for d in range(draw(st.integers(0, 2)))]
    counts = {t: draw(st.integers(0, GLOBALS)) for t in ("ip", "script", "fs")}
    globals_ = ([element("ip", {"address": f"10.1.0.{i + 1}"}) for i in range(counts["ip"])]
                + [element("script", {"name": f"gscript{i}", "file": f"/g/{i}"})
                   for i in range(counts["script"])]
                + [element("fs", {"name": f"gfs{i}", "mountpoint": f"/g/m{i}",
                                  "device": f"/dev/g{i}"})
                   for i in range(counts["fs"])])
    head = ([element("failoverdomains", {}, domains)] if domains else []) + \
        ([element("resources", {}, globals_)] if globals_ else [])
    services = [draw(service(i, len(domains), counts))
                for i in range(draw(st.integers(1, 5)))]
    return head, services, counts


def render(head: list[tuple], services: list[tuple]) -> bytes:
    nodes = [element("clusternode", {"name": n, "nodeid": str(i)}) for i, n in
             enumerate(NODES, 1)]
    return to_bytes(element("cluster", {"name": "c", "config_version": "1"}, [
        element("clusternodes", {}, nodes), element("rm", {}, [*head, *services])]))


def built(data: bytes):
    """The tree and service names of a config, or None when it does not validate."""
    if validate_bytes(data):
        with pytest.raises(ConfigError):
            parse(data)
        event("refused")
        return None
    config = parse(data)
    event("validates")
    return config.resource_tree, [d.name for d in config.services]


def warned(data: bytes) -> set[str]:
    """The services a warning names (a reference of theirs left out of the tree)."""
    return {f"service:{m.group(1)}" for w in warnings_of(parse_xml(data))
            if (m := _SERVICE.match(w.where))}


@SETTINGS
@given(rm_section())
def test_a_config_that_validates_builds_every_service(section):
    head, services, _ = section
    data = render(head, services)
    result = built(data)
    if result is None:
        return
    tree, defs = result
    event(f"{len(warnings_of(parse_xml(data)))} warning(s)")
    names = [f"service:{s[1]['name']}" for s in services]
    assert [r.label for r in tree.roots] == names
    assert defs == names
    for w in warnings_of(parse_xml(data)):               # only left-out references warn
        assert "[@ref=" in w.where.rsplit("/", 1)[1] or "non-critical" in w.reason


@SETTINGS
@given(rm_section(), st.data())
def test_editing_one_service_changes_no_other(section, data):
    head, services, counts = section
    k = data.draw(st.integers(0, len(services) - 1))
    edited = list(services)
    domains = next((len(h[2]) for h in head if h[0] == "failoverdomains"), 0)
    edited[k] = data.draw(service(k, domains, counts))
    before, after = render(head, services), render(head, edited)
    old, new = built(before), built(after)
    if old is None or new is None:
        return
    changed = {c.group for c in reconfiguration(old[0], new[0])
               if c.kind is not ChangeKind.UNCHANGED}
    others = changed - {f"service:svc{k}"}
    event("another service changed" if others else "only the edited service")
    assert others <= warned(before) | warned(after)
    assert [r.label for r in old[0].roots] == [r.label for r in new[0].roots]
