"""One model (issue 12, item 1): ``ClusterConf`` carries ``<rm>`` typed (services, failover
domains, the resource tree, the warnings it was accepted with), built once while the
document is validated; it equals what the consumers used to build again from the XML
(``services_from_rm`` and ``build_tree`` on a copy of ``<rm>``) for every reference file
and fixture; and no module outside ``clusterd.conf`` parses a config's ``<rm>`` again."""

from __future__ import annotations

import ast
import copy
import dataclasses
from pathlib import Path

import clusterd
import clusterd.placement.config
import clusterd.resources.tree
import pytest
from clusterd.conf import parse, validate_bytes
from clusterd.conf.parse import parse_xml, warnings_of
from clusterd.placement.config import services_from_rm
from clusterd.resources import ResourceNode, ResourceTree, build_tree, format_test
from clusterd.resources.tree import check_tree
from confbuild import REFERENCE, small_cluster, to_bytes
from lxml import etree

TESTS = Path(__file__).resolve().parents[2]
SRC = Path(clusterd.__file__).resolve().parent
HEAD = ('<cluster name="c" config_version="1"><clusternodes><clusternode name="n1" '
        'nodeid="1"/><clusternode name="n2" nodeid="2"/></clusternodes>')
SHARED_IP = (f'{HEAD}<rm><resources><ip address="10.0.0.1"/></resources>'
             '<service name="a"><ip ref="10.0.0.1"/></service><service name="b">'
             '<ip ref="10.0.0.1"><script name="in" file="/bin/true"/></ip></service></rm>'
             '</cluster>').encode()
SERVICES = "".join(f'<service name="s{i}" autostart="0"><ip address="10.1.{i // 250}.'
                   f'{i % 250 + 1}"><script name="w{i}" file="/etc/init.d/w{i}"/></ip></service>'
                   for i in range(400))


def _graft(data: bytes) -> bytes | None:
    """A partial config (rgmanager's test files: ``<cluster><rm>`` only) as a complete
    one: its ``<rm>`` under the nodes its failover domains name."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    rm = root.find("rm")
    if rm is None:
        return None
    names = list(dict.fromkeys(m.get("name") for m in rm.iter("failoverdomainnode")))
    nodes = "".join(f'<clusternode name="{n}" nodeid="{i}"/>'
                    for i, n in enumerate(names or ["n1", "n2"], 1))
    return (f'<cluster name="c" config_version="1"><clusternodes>{nodes}</clusternodes>'
            .encode() + etree.tostring(rm) + b"</cluster>")


def _name(path: Path) -> str:
    return (f"reference/{path.relative_to(REFERENCE)}" if path.is_relative_to(REFERENCE)
            else f"tests/{path.relative_to(TESTS)}")


def _files() -> list[Path]:
    return sorted({*REFERENCE.rglob("*.conf"), *TESTS.glob("unit/**/*.conf")})


def _fixtures() -> dict[str, bytes]:
    """Every reference file and every .conf the tests use (grafted when partial), and the
    inline fixtures: the ones that validate."""
    out = {}
    for path in _files():
        data = path.read_bytes()
        if validate_bytes(data):
            data = _graft(data) or b""
        if data and not validate_bytes(data):
            out[_name(path)] = data
    out["small_cluster"] = to_bytes(small_cluster())
    out["shared ip (a warning)"] = SHARED_IP
    out["400 services"] = f"{HEAD}<rm>{SERVICES}</rm></cluster>".encode()
    return out


FIXTURES = _fixtures()


def test_the_fixtures_cover_the_references():
    left_out = {_name(path) for path in _files()} - set(FIXTURES)
    assert left_out == {"reference/rgmanager-examples-cluster.conf"}   # its <rm> is refused
    assert len(FIXTURES) > 30
    assert {"small_cluster", "shared ip (a warning)", "400 services"} <= set(FIXTURES)


def _under_cluster(tree: ResourceTree) -> ResourceTree:
    """A tree built from a detached copy of ``<rm>`` (paths from ``/rm``) as built in its
    document (paths from ``/cluster/rm``): the only difference the old path had."""
    def res(r):
        return dataclasses.replace(r, where="/cluster" + r.where) if r.where else r

    def node(n: ResourceNode) -> ResourceNode:
        return dataclasses.replace(n, resource=res(n.resource), where="/cluster" + n.where,
                                   children=tuple(node(c) for c in n.children))
    return ResourceTree(tuple(res(r) for r in tree.resources),
                        tuple(node(n) for n in tree.roots))


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_the_model_is_what_the_old_path_built(name):
    data = FIXTURES[name]
    conf = parse(data)
    old_rm = copy.deepcopy(conf.root.find("rm"))     # what ``ClusterConf.rm`` handed out
    services, domains = services_from_rm(old_rm)
    old_tree = build_tree(old_rm)
    assert (conf.services, conf.domains) == (services, domains)
    assert conf.resource_tree == _under_cluster(old_tree)
    assert conf.resource_tree == build_tree(conf.root.find("rm"))
    assert format_test(conf.resource_tree) == format_test(old_tree)
    assert [(w.where, w.reason) for w in conf.tree_warnings] == \
        [(w.where, w.reason) for w in warnings_of(parse_xml(data))]
    assert [w.rgmanager for w in conf.tree_warnings] == \
        [w.rgmanager for w in check_tree(old_rm).warnings]


@pytest.fixture
def calls(monkeypatch) -> dict[str, list]:
    """Every build of ``<rm>``, one entry per call where conf looks the builders up:
    check_tree's ``complete`` argument; True for services_from_rm and build_tree."""
    seen: dict[str, list] = {"check_tree": [], "services_from_rm": [], "build_tree": []}
    real = {"check_tree": clusterd.resources.tree.check_tree,
            "services_from_rm": clusterd.placement.config.services_from_rm,
            "build_tree": clusterd.resources.tree.build_tree}

    def counted(name):
        def call(rm, *args, **kwargs):
            seen[name].append(kwargs.get("complete", True))
            return real[name](rm, *args, **kwargs)
        return call
    monkeypatch.setattr(clusterd.resources.tree, "check_tree", counted("check_tree"))
    monkeypatch.setattr(clusterd.resources.tree, "build_tree", counted("build_tree"))
    monkeypatch.setattr(clusterd.placement.config, "services_from_rm",
                        counted("services_from_rm"))
    return seen


def test_parse_builds_the_tree_and_the_services_once(calls):
    conf = parse(SHARED_IP)
    assert calls == {"check_tree": [True], "services_from_rm": [True], "build_tree": []}
    assert [r.label for r in conf.resource_tree.roots] == ["service:a", "service:b"]
    assert [s.name for s in conf.services] == ["service:a", "service:b"]
    assert [w.rgmanager for w in conf.tree_warnings] == [
        "Warning: Max references exceeded for resource address (type ip)"]
    assert calls["check_tree"] == [True]              # reading the model builds nothing


def test_validation_alone_builds_no_tree_nodes(calls):
    assert validate_bytes(SHARED_IP) == ()
    assert calls == {"check_tree": [False], "services_from_rm": [True], "build_tree": []}


def test_an_edit_builds_once_too(calls):
    from clusterd.conf import edit

    conf = parse(SHARED_IP)
    calls["check_tree"].clear()
    calls["services_from_rm"].clear()
    changed = edit.set_cluster(conf, token=3000)
    assert changed.token_ms == 3000
    assert calls == {"check_tree": [True], "services_from_rm": [True], "build_tree": []}
    assert changed.resource_tree == conf.resource_tree


def test_the_model_is_frozen_and_equality_still_follows_the_bytes():
    conf = parse(SHARED_IP)
    again = parse(conf.canonical_bytes(), source="elsewhere")
    assert conf == again and hash(conf) == hash(again)
    assert conf.resource_tree == again.resource_tree and conf.services == again.services
    assert conf.resource_tree is not again.resource_tree     # each config its own values
    assert isinstance(conf.services, tuple) and isinstance(conf.tree_warnings, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.services = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.resource_tree.roots[0].children = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.services[0].autostart = False  # type: ignore[misc]
    assert not hasattr(conf, "rm")              # no raw <rm> next to the model


# ------------------------------------------------------------------ nobody parses it again
_BUILDERS = frozenset({"services_from_rm", "build_tree", "check_tree"})
# Where a builder may be called outside clusterd.conf: its own module, and rg_test for
# rgmanager's partial test configs, which no ClusterConf holds (a valid one is the model).
_ALLOWED = {("resources/tree.py", "check_tree"), ("cli/rg_test.py", "check_tree")}


def _sources(conf: bool = False) -> list[tuple[str, ast.Module]]:
    """The daemon's modules (those of clusterd.conf with ``conf``) and the collection's
    plugins, parsed."""
    roots = [SRC, TESTS.parent / "collections/ansible_collections/redhat/cluster/plugins"]
    out = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(SRC).as_posix() if root == SRC else str(path)
            if conf or not rel.startswith("conf/"):
                out.append((rel, ast.parse(path.read_text(), str(path))))
    return out


def _called(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def test_nothing_outside_conf_parses_rm_again():
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "rm":
                found.append(f"{rel}:{node.lineno}: .rm (read the model: conf.services, "
                             "conf.domains, conf.resource_tree)")
            elif isinstance(node, ast.Call) and _called(node) in _BUILDERS \
                    and (rel, _called(node)) not in _ALLOWED:
                found.append(f"{rel}:{node.lineno}: {_called(node)}() outside clusterd.conf")
    assert found == []


def _defined(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return [node.name] if isinstance(node, ast.FunctionDef) else []


def test_the_cluster_defaults_are_defined_once():
    owners: dict[str, list[str]] = {}
    for rel, tree in _sources(conf=True):
        for node in ast.walk(tree):
            for name in _defined(node):
                if name in ("DEFAULT_TOKEN_MS", "DEFAULT_PORT", "cman_cluster_id"):
                    owners.setdefault(name, []).append(rel)
    assert owners == {"DEFAULT_TOKEN_MS": ["conf/model.py"], "DEFAULT_PORT": ["conf/model.py"],
                      "cman_cluster_id": ["conf/model.py"]}
