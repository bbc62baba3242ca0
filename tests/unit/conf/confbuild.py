"""Builders for the cluster.conf tests (a uniquely named helper module, not a conftest): small valid configs as dicts, rendered to XML bytes
in any attribute order / whitespace / comment style (for canonicalization properties)."""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import quoteattr

REFERENCE = Path("/work/shared/reference")
GOLDEN = Path(__file__).parent / "golden"


def reference_files() -> list[Path]:
    files = [REFERENCE / "rgmanager-examples-cluster.conf", REFERENCE / "pcs-test-cluster.conf"]
    files += sorted((REFERENCE / "clufter-tests").glob("*.conf"))
    files += sorted((REFERENCE / "rgmanager-tests").glob("test0*.conf"))
    return files


def ref_id(path: Path) -> str:
    return str(path.relative_to(REFERENCE))


def element(tag: str, attrs: dict[str, str], children: list | None = None) -> tuple:
    return (tag, dict(attrs), list(children or []))


def render(tree: tuple, rnd: random.Random | None = None, depth: int = 0) -> str:
    """XML text of a (tag, attrs, children) tree; with ``rnd``: shuffled attributes,
    random whitespace and comments (none of which is significant)."""
    tag, attrs, children = tree
    items = list(attrs.items())
    if rnd is not None:
        rnd.shuffle(items)
    sep = (lambda: rnd.choice([" ", "  ", "\n\t", " \n "])) if rnd else (lambda: " ")
    text = "<" + tag + "".join(sep() + k + "=" + quoteattr(v) for k, v in items)
    if not children:
        return text + (sep() if rnd and rnd.random() < 0.3 else "") + "/>"
    parts = [text + ">"]
    for child in children:
        if rnd is not None and rnd.random() < 0.2:
            parts.append("<!-- note " + str(rnd.random()) + " -->")
        ws = rnd.choice(["", "\n", "\n" + "  " * (depth + 1), "\t \n "]) if rnd else ""
        parts.append(ws + render(child, rnd, depth + 1))
    parts.append(("\n" if rnd and rnd.random() < 0.5 else "") + "</" + tag + ">")
    return "".join(parts)


def to_bytes(tree: tuple, rnd: random.Random | None = None) -> bytes:
    head = "" if rnd is None or rnd.random() < 0.5 else '<?xml version="1.0" ?>\n'
    return (head + render(tree, rnd)).encode("utf-8")


def small_cluster(nodes: int = 3, **cman: str) -> tuple:
    """A valid cluster with IPMI fencing, one ordered domain and one service."""
    nodelist = [element("clusternode", {"name": f"node{i}", "nodeid": str(i)}, [
        element("fence", {}, [element("method", {"name": "ipmi"}, [
            element("device", {"name": f"bmc{i}", "action": "off"})])])])
        for i in range(1, nodes + 1)]
    devices = [element("fencedevice", {"name": f"bmc{i}", "agent": "fence_ipmilan",
                                       "ipaddr": f"198.18.0.{10 + i}", "login": "admin",
                                       "passwd": f"pw-secret-{i}", "lanplus": "1"})
               for i in range(1, nodes + 1)]
    children = []
    if cman:
        children.append(element("cman", cman))
    children += [
        element("totem", {"token": "1000"}),
        element("clusternodes", {}, nodelist),
        element("fencedevices", {}, devices),
        element("rm", {}, [
            element("failoverdomains", {}, [element("failoverdomain", {
                "name": "prefer1", "ordered": "1", "restricted": "0"}, [
                element("failoverdomainnode", {"name": f"node{i}", "priority": str(min(i, 100))})
                for i in range(1, nodes + 1)])]),
            element("resources", {}, [element("ip", {"address": "198.18.1.10"}),
                                      element("script", {"name": "web", "file": "/bin/true"})]),
            element("service", {"name": "web", "domain": "prefer1", "recovery": "relocate"}, [
                element("ip", {"ref": "198.18.1.10"}),
                element("script", {"ref": "web"})]),
        ]),
    ]
    return element("cluster", {"name": "alpha", "config_version": "3"}, children)
