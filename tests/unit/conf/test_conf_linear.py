"""Validation in linear time gives the answers the straightforward code gave (issue 12,
item 6): the flattened schema and its ordered, wrapped twin accept exactly what RHCS's
cluster.rng accepts; many element paths at once equal one at a time; masking many texts
at once equals masking each; and validation is safe from several threads at once."""

from __future__ import annotations

import copy
import random
import threading
from importlib import resources

import pytest
from clusterd.conf import paths, rng, rnglinear
from clusterd.conf.parse import parse_xml, validate_bytes
from clusterd.conf.secrets import MASK, redact, redact_all
from clusterd.errors import ConfigError
from confbuild import reference_files, small_cluster, to_bytes
from lxml import etree


def _unflattened() -> etree.RelaxNG:
    """The schema as clusterd extends it, without flatten_repeats."""
    from clusterd.conf.clusterd_element import extend_schema as add_clusterd_element
    from clusterd.conf.fenceparams import extend_schema as open_fence_options
    from clusterd.resources.agents.rng import extend_schema

    data = resources.files("clusterd.conf").joinpath("schema/cluster.rng").read_bytes()
    return etree.RelaxNG(etree.ElementTree(open_fence_options(add_clusterd_element(
        extend_schema(etree.fromstring(data))))))


def _trees() -> list[etree._Element]:
    out = []
    for path in reference_files():
        try:
            out.append(parse_xml(path.read_bytes()))
        except ConfigError:
            pass
    return [*out, parse_xml(to_bytes(small_cluster()))]


def _mutated(root: etree._Element, rnd: random.Random) -> etree._Element:
    """Children shuffled, duplicated, dropped or added where order and count matter."""
    root = copy.deepcopy(root)
    for el in list(root.iter("cluster", "rm", "clusternode", "service", "resources", "fence",
                             "method", "failoverdomain")):
        kids = list(el)
        if kids and rnd.random() < 0.6:
            rnd.shuffle(kids)
            el[:] = kids
        if kids and rnd.random() < 0.15:
            el.append(copy.deepcopy(rnd.choice(kids)))
        if kids and rnd.random() < 0.05:
            el.remove(rnd.choice(kids))
        if rnd.random() < 0.03:
            el.insert(rnd.randint(0, len(el)), etree.Element(
                rnd.choice(["cman", "totem", "events", "vm", "action", "zzz"])))
    return root


@pytest.mark.parametrize("chunk", [1, 2, rnglinear.CHUNK])
def test_the_linear_schemas_accept_exactly_what_cluster_rng_accepts(monkeypatch, chunk):
    monkeypatch.setattr(rnglinear, "CHUNK", chunk)   # small: every list gets wrapped
    original, rnd = _unflattened(), random.Random(chunk)
    trees, seen = _trees(), {True: 0, False: 0}
    for _ in range(600):
        root = _mutated(rnd.choice(trees), rnd)
        expected = bool(original.validate(root.getroottree()))
        assert rng.is_valid(root) is expected, etree.tostring(root)[:400]
        assert bool(rng.schema().validate(root.getroottree())) is expected
        seen[expected] += 1
    assert seen[True] > 20 and seen[False] > 20, seen


def test_a_large_tree_gets_the_twins_findings_on_its_own_elements() -> None:
    services = "".join(f'<service name="s{i}"/>' for i in range(rng.EXACT_LIMIT))
    data = (b'<cluster name="big" config_version="1"><clusternodes><clusternode '
            b'name="n1" nodeid="1"/></clusternodes><rm>' + services.encode()
            + b'<service name="last"><action/></service></rm></cluster>')
    (problem,) = validate_bytes(data)
    assert problem.where == "/cluster/rm/service[@name='last']/action"
    assert problem.reason.startswith("<action> does not match the RHCS 3.0.12 cluster.rng")


def test_element_paths_at_once_equal_one_at_a_time() -> None:
    rnd = random.Random(7)
    for _ in range(200):
        root = etree.Element("cluster", name="c")
        els = [root]
        for _ in range(rnd.randint(1, 60)):
            attrs = {k: rnd.choice(["x", "y", "it's", "/m[1]"]) for k in paths._KEYS
                     if rnd.random() < 0.4}
            els.append(etree.SubElement(rnd.choice(els), rnd.choice(["a", "b", "service"]),
                                        attrs))
        many = paths.ElementPaths()
        order = list(root.iter(etree.Element))
        rnd.shuffle(order)
        assert [many(el) for el in order] == [paths.element_path(el) for el in order]


def test_masking_many_texts_at_once_equals_masking_each() -> None:
    rnd = random.Random(3)
    words = ["pw1", "pw-1", "s3cret", "node1", "a b", "x", "passwd", "key", "pw1x"]
    for _ in range(300):
        secrets = frozenset(rnd.sample(words, rnd.randint(0, 4)))
        texts = [" ".join(rnd.choices([*words, "=", "passwd=pw1", '"s3cret"', "--key", "-"],
                                      k=rnd.randint(0, 8))) for _ in range(rnd.randint(0, 6))]
        assert redact_all(texts, secrets) == [redact(t, secrets) for t in texts]
    assert redact_all(["a pw1 b", "pw1"], {"pw1"}) == [f"a {MASK} b", MASK]


def test_validation_from_several_threads_gives_each_its_own_findings() -> None:
    good = to_bytes(small_cluster())
    bad = good.replace(b'<service name="web"', b'<service name="web" bogus="1"')
    expected = {good: validate_bytes(good), bad: validate_bytes(bad)}
    assert expected[good] == () and len(expected[bad]) == 1
    results: list[bool] = []

    def worker(data: bytes) -> None:
        results.extend(validate_bytes(data) == expected[data] for _ in range(20))

    threads = [threading.Thread(target=worker, args=(d,)) for d in (good, bad) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results and all(results)


def _big(services: str) -> bytes:
    """A tree past EXACT_LIMIT (the twin's findings), with ``services`` first."""
    filler = "".join(f'<service name="s{i}"/>' for i in range(rng.EXACT_LIMIT))
    return (b'<cluster name="big" config_version="1"><clusternodes><clusternode '
            b'name="n1" nodeid="1"/></clusternodes><rm>' + services.encode()
            + filler.encode() + b'</rm></cluster>')


@pytest.mark.parametrize("size", ["small", "large"])
def test_what_the_structure_check_refused_is_not_reported_again(size) -> None:
    """Unknown attributes and elements are one finding each (the schema's copy leaves
    them out, ``rng._pruner``), and a mistake elsewhere in the same file is still found."""
    mistakes = ('<service name="a" bogus="1"/><zzz name="z"/>'
                '<service name="b"><action/></service>')
    data = _big(mistakes) if size == "large" else to_bytes(small_cluster()).replace(
        b"</rm>", mistakes.encode() + b"</rm>")
    found = validate_bytes(data)
    assert [p.where for p in found] == ["/cluster/rm/service[@name='a']", "/cluster/rm/zzz[@name='z']",
                                        "/cluster/rm/service[@name='b']/action"], found
    assert "'bogus' is not allowed on <service>" in found[0].reason
    assert "unknown" in found[1].reason
    assert "does not match the RHCS 3.0.12 cluster.rng" in found[2].reason


def test_the_schema_copy_drops_only_what_was_judged() -> None:
    root = parse_xml(_big('<service name="a" bogus="1"/><zzz/>'
                          '<service name="b"><action/></service>'))
    judged = frozenset(p.element for p in rng.structure_problems(root))
    assert {el.tag for el in judged} == {"service", "zzz"}
    unpruned = rng.schema_problems(root)
    found = rng.schema_problems(root, judged)
    # the unknown attribute and element are gone from the copy, the nameless action stays
    assert len(unpruned) > len(found)
    assert [(p.element.tag, p.element.getparent().get("name")) for p in found] == [
        ("action", "b")], found
    assert root.find("rm/service").get("bogus") == "1" and root.find("rm/zzz") is not None
