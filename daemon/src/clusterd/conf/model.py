"""The cluster.conf model: frozen values read from a validated canonical tree.

One model: cluster, nodes, fencing and ``<rm>`` (service definitions, failover domains,
the resource tree and the warnings it was accepted with) are typed here, built while the
document was validated (``conf.parse``, off the event loop). Consumers read these values;
none parses the XML again. ``root`` (a copy of the XML) is for what needs the document
itself: export, diff, edit, masking.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from lxml import etree

from clusterd.conf.qdisk import QdiskConf, qdisk_conf
from clusterd.conf.render import sha256_hex, to_bytes
from clusterd.conf.rmcheck import RmModel, TreeWarning, rm_model
from clusterd.conf.secrets import mask_params

if TYPE_CHECKING:  # for annotations only: consumers of conf, which may import it (rmcheck)
    from clusterd.placement.model import FailoverDomain, ServiceDef
    from clusterd.resources.model import ResourceTree

# Not RHCS's 10000 ms: there the token was corosync's totem ring timeout, sized for ring
# retransmits on 2000s hardware; here it is the heartbeat silence after which a peer is
# suspected, and the goal is to report a powered-off node Offline in about a second. A
# suspicion is not a fence (views are agreed first, fencing waits post_fail_delay); slow or
# overloaded hosts raise totem@token.
DEFAULT_TOKEN_MS = 1000
DEFAULT_PORT = 5405


class Params(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping whose repr masks secret values."""

    __slots__ = ("_dict", "_items")

    def __init__(self, items: Mapping[str, str] | tuple[tuple[str, str], ...] = ()):
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items = tuple(sorted((str(k), str(v)) for k, v in pairs))
        self._dict = dict(self._items)

    def __getitem__(self, key: str) -> str:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"Params({dict(mask_params(self._items))!r})"


@dataclass(frozen=True)
class FenceDeviceRef:
    name: str
    params: Params = field(default_factory=Params)


@dataclass(frozen=True)
class FenceMethod:
    name: str
    devices: tuple[FenceDeviceRef, ...] = ()


@dataclass(frozen=True)
class NodeConf:
    name: str
    nodeid: int
    votes: int = 1
    fence_methods: tuple[FenceMethod, ...] = ()
    unfence: tuple[FenceDeviceRef, ...] = ()


@dataclass(frozen=True)
class FenceDevice:
    name: str
    agent: str
    params: Params = field(default_factory=Params)


@dataclass(frozen=True)
class FenceDaemonConf:
    post_join_delay: int = 6
    post_fail_delay: int = 0
    clean_start: bool = False


def cman_cluster_id(name: str) -> int:
    """cman's default cluster id: ``generate_cluster_id()`` in cman-preconfig.c (shift-add
    over the name's bytes, low 16 bits), so a converted RHCS cluster keeps its id."""
    value = 0
    for byte in name.encode():
        value = ((value << 1) + (byte - 256 if byte > 127 else byte)) & 0xFFFFFFFF
    return value & 0xFFFF


def _device_ref(el: etree._Element) -> FenceDeviceRef:
    params = {k: v for k, v in el.attrib.items() if k != "name"}
    return FenceDeviceRef(el.get("name", ""), Params(params))


def _node(el: etree._Element) -> NodeConf:
    methods = tuple(
        FenceMethod(m.get("name", ""), tuple(_device_ref(d) for d in m.iterfind("device")))
        for m in el.iterfind("fence/method")
    )
    unfence = tuple(_device_ref(d) for d in el.iterfind("unfence/device"))
    return NodeConf(el.get("name", ""), int(el.get("nodeid", "0")), int(el.get("votes", "1")),
                    methods, unfence)


def _opt_int(el: etree._Element | None, key: str, default: int) -> int:
    if el is None or el.get(key) is None:
        return default
    return int(el.get(key))


@dataclass(frozen=True, eq=False, repr=False)
class ClusterConf:
    """A validated cluster.conf. Immutable: every accessor returns values or copies.

    Built only through ``ClusterConf.from_canonical`` by ``parse``/``load``/the edit
    functions, which validate first. Equality and hash follow the canonical bytes.

    ``<rm>``: ``services`` and ``domains`` (what placement reads), ``resource_tree`` (what
    the executor runs; empty without ``<rm>``) and ``tree_warnings`` (what rgmanager
    accepted with a warning, secret values masked), built once during validation.
    """

    name: str
    version: int
    nodes: tuple[NodeConf, ...]
    expected_votes: int
    two_node: bool
    token_ms: int
    port: int
    cluster_id: int
    fence_daemon: FenceDaemonConf
    qdisk: QdiskConf | None
    fencedevices: Mapping[str, FenceDevice]
    services: tuple[ServiceDef, ...]
    domains: tuple[FailoverDomain, ...]
    resource_tree: ResourceTree
    tree_warnings: tuple[TreeWarning, ...]
    sha256: str
    source: str
    _root: etree._Element
    _bytes: bytes
    _by_name: Mapping[str, NodeConf]
    _by_id: Mapping[int, NodeConf]

    @classmethod
    def from_canonical(cls, root: etree._Element, source: str = "cluster.conf",
                       rm: RmModel | None = None) -> ClusterConf:
        """Read the model out of a canonical, already validated tree (which it keeps), with
        ``rm`` the typed ``<rm>`` its validation built. Without it (a tree that did not
        come through ``parse``) ``<rm>`` is built here: ConfigError if it cannot be, so no
        ClusterConf ever carries a partial tree."""
        if rm is None:
            rm = rm_model(root, source)
        data = to_bytes(root)
        name = root.get("name", "")
        nodes = tuple(_node(n) for n in root.iterfind("clusternodes/clusternode"))
        cman = root.find("cman")
        fd = root.find("fence_daemon")
        qdisk = qdisk_conf(root)
        devices = {}
        for dev in root.iterfind("fencedevices/fencedevice"):
            params = {k: v for k, v in dev.attrib.items() if k not in ("name", "agent")}
            devices[dev.get("name")] = FenceDevice(dev.get("name"), dev.get("agent"),
                                                   Params(params))
        return cls(
            name=name,
            version=int(root.get("config_version", "0")),
            nodes=nodes,
            expected_votes=_opt_int(cman, "expected_votes", sum(n.votes for n in nodes)
                                    + (qdisk.votes if qdisk is not None else 0)),
            two_node=cman is not None and cman.get("two_node") == "1",
            token_ms=_opt_int(root.find("totem"), "token", DEFAULT_TOKEN_MS),
            port=_opt_int(cman, "port", DEFAULT_PORT),
            cluster_id=_opt_int(cman, "cluster_id", cman_cluster_id(name)),
            fence_daemon=FenceDaemonConf(_opt_int(fd, "post_join_delay", 6),
                                         _opt_int(fd, "post_fail_delay", 0),
                                         fd is not None and fd.get("clean_start") == "1"),
            qdisk=qdisk,
            fencedevices=MappingProxyType(devices),
            services=rm.services,
            domains=rm.domains,
            resource_tree=rm.tree,
            tree_warnings=rm.warnings,
            sha256=sha256_hex(data),
            source=source,
            _root=root,
            _bytes=data,
            _by_name=MappingProxyType({n.name: n for n in nodes}),
            _by_id=MappingProxyType({n.nodeid: n for n in nodes}),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClusterConf) and self._bytes == other._bytes

    def __hash__(self) -> int:
        return hash(self.sha256)

    def __repr__(self) -> str:
        return (f"ClusterConf(name={self.name!r}, version={self.version}, "
                f"nodes={len(self.nodes)}, sha256={self.sha256[:12]})")

    def canonical_bytes(self) -> bytes:
        return self._bytes

    def node_by_name(self, name: str) -> NodeConf | None:
        return self._by_name.get(name)

    def node_by_id(self, nodeid: int) -> NodeConf | None:
        return self._by_id.get(nodeid)

    @property
    def root(self) -> etree._Element:
        """A deep copy of the canonical XML tree (never the internal one), for what needs
        the document (export, diff, edit, masking). Not the model: read the typed values,
        ``<rm>`` included (``services``, ``domains``, ``resource_tree``)."""
        return _copy.deepcopy(self._root)

    def section(self, tag: str) -> etree._Element:
        """A copy of the document with only its ``<tag>`` children (and the root's
        attributes): for a reader of one section, such as the alerts in ``<clusterd>``,
        which would otherwise deep-copy the whole tree on the event loop (0.1-0.3 s for a
        1 MiB ``<rm>``)."""
        out = etree.Element(self._root.tag, dict(self._root.attrib))
        for el in self._root.iterchildren(tag):
            out.append(_copy.deepcopy(el))
        return out

    @property
    def admin_group(self) -> str | None:
        """``<clusterd admin_group="..."/>``: the group whose members hold the control
        socket's admin role (None: root only). See ``conf/clusterd_element.py``."""
        el = self._root.find("clusterd")
        return el.get("admin_group") or None if el is not None else None
