"""MembershipConfig: the part of cluster.conf that membership and the wire need.

Built with ``from_conf(conf)`` from the one cluster.conf model (``clusterd.conf``), or
constructed directly in tests and the simulator. Construction checks the invariants and
raises ``ConfigError`` listing every problem.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

# The defaults and the cluster id of cluster.conf are defined once, by the config model
# (conf.model: the token's rationale is there); conf imports nothing from membership.
from clusterd.conf.model import DEFAULT_PORT, DEFAULT_TOKEN_MS, cman_cluster_id
from clusterd.errors import ConfigError, Problem

if TYPE_CHECKING:
    from clusterd.conf import ClusterConf

__all__ = ["DEFAULT_PORT", "DEFAULT_TOKEN_MS", "HEARTBEATS_PER_TOKEN", "MembershipConfig",
           "NodeSpec", "cman_cluster_id"]

HEARTBEATS_PER_TOKEN = 3


@dataclass(frozen=True)
class NodeSpec:
    name: str
    nodeid: int
    votes: int = 1
    address: str = ""  # IP literal the node's packets come from; "" = the name itself


def _ip_only(name: str) -> str:
    ipaddress.ip_address(name)
    return name


@dataclass(frozen=True)
class MembershipConfig:
    cluster_name: str
    nodes: tuple[NodeSpec, ...]
    cluster_id: int = -1  # -1: derive from the name
    expected_votes: int = 0  # 0: sum of the nodes' votes
    two_node: bool = False
    wait_for_all: bool | None = None  # None: on with two_node
    token_ms: int = DEFAULT_TOKEN_MS
    port: int = DEFAULT_PORT
    post_join_delay: float = 6.0

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        where = "/cluster"
        ids = [n.nodeid for n in self.nodes]
        names = [n.name for n in self.nodes]
        if not self.nodes:
            problems.append(Problem(f"{where}/clusternodes", "at least one clusternode is needed"))
        for node in self.nodes:
            at = f"{where}/clusternodes/clusternode[@name='{node.name}']"
            if not 0 < node.nodeid < 2**31:
                problems.append(Problem(at, f"nodeid {node.nodeid} must be in 1..2147483647"))
            if node.votes < 0:
                problems.append(Problem(at, f"votes {node.votes} must not be negative"))
            if ids.count(node.nodeid) > 1:
                problems.append(Problem(at, f"nodeid {node.nodeid} is used more than once"))
            if names.count(node.name) > 1:
                problems.append(Problem(at, "name is used more than once"))
        if self.two_node and (len(self.nodes) != 2 or any(n.votes != 1 for n in self.nodes)):
            problems.append(Problem(f"{where}/cman", "two_node needs exactly two nodes with one "
                                    "vote each"))
        if self.token_ms < 100:
            problems.append(Problem(f"{where}/totem", f"token {self.token_ms} ms is below 100 ms"))
        if not 0 < self.port < 65536:
            problems.append(Problem(f"{where}/cman", f"port {self.port} is not a UDP port"))
        if self.expected_votes < 0:
            problems.append(Problem(f"{where}/cman", "expected_votes must not be negative"))
        if not -1 <= self.cluster_id <= 0xFFFF:
            problems.append(Problem(f"{where}/cman", "cluster_id must be in 0..65535"))
        if problems:
            raise ConfigError(problems, source="membership config")

    @classmethod
    def from_conf(cls, conf: ClusterConf,
                  resolve: Callable[[str], str] = _ip_only) -> MembershipConfig:
        """Build from a ``clusterd.conf.ClusterConf``. ``resolve`` maps a node name to the
        IP its packets come from (the runtime passes a resolver; the default accepts IP
        literals only, as cluster.conf(5) allows names to be addresses)."""
        nodes, problems = [], []
        for n in conf.nodes:
            try:
                addr = resolve(n.name)
            except (ValueError, OSError) as exc:
                problems.append(Problem(f"/cluster/clusternodes/clusternode[@name='{n.name}']",
                                        f"cannot resolve the node name to an address: {exc}"))
                continue
            nodes.append(NodeSpec(n.name, n.nodeid, n.votes, addr))
        if problems:
            raise ConfigError(problems, source="membership config")
        fence_daemon = getattr(conf, "fence_daemon", None)
        cid = getattr(conf, "cluster_id", None)
        return cls(
            cluster_name=conf.name, nodes=tuple(nodes),
            cluster_id=-1 if cid is None else cid,
            expected_votes=conf.expected_votes, two_node=bool(conf.two_node),
            token_ms=conf.token_ms, port=conf.port,
            post_join_delay=float(getattr(fence_daemon, "post_join_delay", 6)))

    # ------------------------------------------------------------- derived
    @property
    def cid(self) -> int:
        return cman_cluster_id(self.cluster_name) if self.cluster_id < 0 else self.cluster_id

    @property
    def token(self) -> float:
        return self.token_ms / 1000.0

    @property
    def heartbeat_interval(self) -> float:
        """token/3: a peer is suspected after missing about three heartbeats in a row,
        and a lease (one token from the heartbeat it acks) is renewed in time as long
        as a round trip takes under token/3. (token/4 cost a third more packets, the
        bulk of an idle daemon's CPU, for no faster detection: that is ``token``.)"""
        return self.token / HEARTBEATS_PER_TOKEN

    @cached_property
    def expected(self) -> int:
        return self.expected_votes or sum(n.votes for n in self.nodes)

    @property
    def waits_for_all(self) -> bool:
        return self.two_node if self.wait_for_all is None else self.wait_for_all

    @cached_property
    def nodeids(self) -> tuple[int, ...]:
        return tuple(sorted(n.nodeid for n in self.nodes))

    def node(self, nodeid: int) -> NodeSpec:
        for n in self.nodes:
            if n.nodeid == nodeid:
                return n
        raise KeyError(nodeid)

    @cached_property
    def _votes(self) -> dict[int, int]:
        return {n.nodeid: n.votes for n in self.nodes}

    def votes(self, nodeids: frozenset[int] | set[int]) -> int:
        table = self._votes
        return sum(table.get(n, 0) for n in nodeids)

    def addresses(self) -> dict[int, tuple[str, int]]:
        return {n.nodeid: (n.address or n.name, self.port) for n in self.nodes}
