"""What changed between two configurations: by element name, plus a masked text diff.

Services are compared with their ``ref=`` resources resolved, so editing a global
resource marks every service using it as changed (rgmanager reconfiguration semantics).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from clusterd.conf.model import ClusterConf
from clusterd.conf.paths import element_path
from clusterd.conf.render import to_bytes
from clusterd.conf.secrets import in_secret_scope, is_secret_param, masked_copy
from clusterd.conf.validate import RECOVERY_TOP, primary_key

_SECTIONS = ("clusternodes", "fencedevices", "rm")


@dataclass(frozen=True)
class ConfDiff:
    old_version: int
    new_version: int
    cluster_changed: tuple[str, ...] = ()  # "name" and top-level sections such as "totem"
    nodes_added: tuple[str, ...] = ()
    nodes_removed: tuple[str, ...] = ()
    nodes_changed: tuple[str, ...] = ()
    fencedevices_added: tuple[str, ...] = ()
    fencedevices_removed: tuple[str, ...] = ()
    fencedevices_changed: tuple[str, ...] = ()
    services_added: tuple[str, ...] = ()  # service names; top-level <vm>s as "vm:NAME"
    services_removed: tuple[str, ...] = ()
    services_changed: tuple[str, ...] = ()
    failover_domains_added: tuple[str, ...] = ()
    failover_domains_removed: tuple[str, ...] = ()
    failover_domains_changed: tuple[str, ...] = ()
    resources_added: tuple[str, ...] = ()  # global resources as "TYPE:KEY"
    resources_removed: tuple[str, ...] = ()
    resources_changed: tuple[str, ...] = ()
    text: str = ""  # unified diff of the canonical bytes, secret values masked

    @property
    def changed(self) -> bool:
        return bool(self.text)


def _bytes(el: etree._Element) -> bytes:
    return etree.tostring(el)


def _compare(old: dict[str, bytes], new: dict[str, bytes]) -> tuple[tuple[str, ...], ...]:
    added = tuple(k for k in new if k not in old)
    removed = tuple(k for k in old if k not in new)
    changed = tuple(k for k in new if k in old and old[k] != new[k])
    return added, removed, changed


def _keyed(elements: Iterable[etree._Element], key: str = "name") -> dict[str, bytes]:
    return {el.get(key, ""): _bytes(el) for el in elements}


def _resources(root: etree._Element) -> dict[tuple[str, str], etree._Element]:
    return {(el.tag, el.get(primary_key(el.tag), "")): el
            for el in root.iterfind("rm/resources/*")}


def _resolved(el: etree._Element, globals_: dict[tuple[str, str], etree._Element],
              depth: int = 0) -> bytes:
    """Bytes of ``el`` with every ``ref=`` replaced by (the bytes of) what it names."""
    parts = [el.tag.encode(), repr(sorted(el.attrib.items())).encode()]
    ref = el.get("ref")
    if ref is not None and depth < 32:
        target = globals_.get((el.tag, ref))
        if target is not None:
            parts.append(_resolved(target, globals_, depth + 1))
    parts.extend(_resolved(child, globals_, depth + 1) for child in el
                 if isinstance(child.tag, str))
    return b"(" + b"|".join(parts) + b")"


def _services(root: etree._Element) -> dict[str, bytes]:
    globals_ = _resources(root)
    out = {}
    for el in root.iterfind("rm/*"):
        if el.tag in RECOVERY_TOP:
            name = el.get("name") or el.get("ref") or ""
            out[name if el.tag == "service" else f"{el.tag}:{name}"] = _resolved(el, globals_)
    return out


def _cluster_level(root: etree._Element) -> dict[str, bytes]:
    out = {"name": (root.get("name") or "").encode()}
    for el in root:
        if isinstance(el.tag, str) and el.tag not in _SECTIONS:
            out[el.tag] = out.get(el.tag, b"") + _bytes(el)
    return out


def _secret_items(root: etree._Element) -> dict[tuple[str, str], str]:
    return {(element_path(el), key): value for el in root.iter(etree.Element)
            if in_secret_scope(el) for key, value in el.attrib.items() if is_secret_param(key)}


def _text(old: ClusterConf, new: ClusterConf) -> str:
    if old.canonical_bytes() == new.canonical_bytes():
        return ""
    a = to_bytes(masked_copy(old._root)).decode("utf-8").splitlines(keepends=True)
    b = to_bytes(masked_copy(new._root)).decode("utf-8").splitlines(keepends=True)
    import difflib  # only when a config changes: not in an idle daemon's memory

    text = "".join(difflib.unified_diff(
        a, b, f"{old.source} (version {old.version})", f"{new.source} (version {new.version})"))
    before, after = _secret_items(old._root), _secret_items(new._root)
    for path, key in sorted(set(before) & set(after)):
        if before[path, key] != after[path, key]:
            text += f"# {path} {key}: secret value changed (not shown)\n"
    return text


def diff(old: ClusterConf, new: ClusterConf) -> ConfDiff:
    """Structured and textual difference from ``old`` to ``new``."""
    o, n = old._root, new._root
    cl_a, cl_r, cl_c = _compare(_cluster_level(o), _cluster_level(n))
    nodes = _compare(_keyed(o.iterfind("clusternodes/clusternode")),
                     _keyed(n.iterfind("clusternodes/clusternode")))
    devices = _compare(_keyed(o.iterfind("fencedevices/fencedevice")),
                       _keyed(n.iterfind("fencedevices/fencedevice")))
    services = _compare(_services(o), _services(n))
    domains = _compare(_keyed(o.iterfind("rm/failoverdomains/failoverdomain")),
                       _keyed(n.iterfind("rm/failoverdomains/failoverdomain")))
    res = _compare({f"{t}:{k}": _bytes(e) for (t, k), e in _resources(o).items()},
                   {f"{t}:{k}": _bytes(e) for (t, k), e in _resources(n).items()})
    return ConfDiff(
        old_version=old.version, new_version=new.version,
        cluster_changed=cl_a + cl_r + cl_c,
        nodes_added=nodes[0], nodes_removed=nodes[1], nodes_changed=nodes[2],
        fencedevices_added=devices[0], fencedevices_removed=devices[1],
        fencedevices_changed=devices[2],
        services_added=services[0], services_removed=services[1], services_changed=services[2],
        failover_domains_added=domains[0], failover_domains_removed=domains[1],
        failover_domains_changed=domains[2],
        resources_added=res[0], resources_removed=res[1], resources_changed=res[2],
        text=_text(old, new),
    )
