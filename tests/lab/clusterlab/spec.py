"""Pure description of a lab: names, addresses and MACs derived from (prefix, nodes, subnet).

Nothing here touches the system. Layout of the /24 (default 198.18.0.0/24):
  .1        the host, on the bridge <prefix>-br0
  .10+N     node N (N = 1..39)
  .50-.99   reserved for floating service IPs
  .100+N    node N's BMC (ipmi_sim, UDP 623), in namespace <prefix>-bmcN
  .200      the client namespace <prefix>-client (HTTP clients, auditors)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import UsageError

ALLOWED_NET = ipaddress.ip_network("198.18.0.0/15")
DEFAULT_PREFIX = "rhc"
DEFAULT_SUBNET = "198.18.0.0/24"
MAX_NODES = 39
FLOATING_FIRST, FLOATING_LAST = 50, 99
BMC_PORT = 623
BMC_USER = "admin"
BMC_CIPHER = 3
_PREFIX_RE = re.compile(r"^rhc[a-z0-9]{0,3}$")


@dataclass(frozen=True)
class NodeSpec:
    """One emulated node and its BMC."""

    index: int
    name: str  # hostname inside the node: node1
    machine: str  # container / namespace name: rhc-node1
    netns: str
    veth: str  # host end of the node's veth
    address: str
    mac: str
    bmc_netns: str
    bmc_veth: str
    bmc_address: str
    bmc_mac: str


@dataclass(frozen=True)
class LabSpec:
    """Everything that names or addresses a lab, derived from three inputs."""

    prefix: str = DEFAULT_PREFIX
    node_count: int = 3
    subnet: str = DEFAULT_SUBNET

    @classmethod
    def create(cls, prefix: str = DEFAULT_PREFIX, node_count: int = 3,
               subnet: str = DEFAULT_SUBNET) -> LabSpec:
        """Validate the inputs and build a spec; raise UsageError naming the bad one."""
        if not _PREFIX_RE.match(prefix):
            raise UsageError(
                f"bad prefix {prefix!r}: it must be 'rhc' followed by at most 3 lowercase "
                "letters or digits (names must stay under 16 characters)")
        if not 1 <= node_count <= MAX_NODES:
            raise UsageError(f"bad node count {node_count}: choose 1 to {MAX_NODES}")
        try:
            net = ipaddress.ip_network(subnet, strict=True)
        except ValueError as exc:
            raise UsageError(f"bad subnet {subnet!r}: {exc}") from None
        if net.prefixlen != 24 or not net.subnet_of(ALLOWED_NET):  # type: ignore[arg-type]
            raise UsageError(
                f"subnet {subnet} is outside the allowed range: the lab uses a /24 inside "
                f"{ALLOWED_NET} only")
        return cls(prefix=prefix, node_count=node_count, subnet=str(net))

    # --- derived names -------------------------------------------------------------------
    def _ip(self, host: int) -> str:
        return str(ipaddress.ip_network(self.subnet)[host])

    @staticmethod
    def _mac(address: str) -> str:
        octets = [int(o) for o in address.split(".")]
        return f"02:52:48:{octets[1] - 18:02x}:{octets[2]:02x}:{octets[3]:02x}"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br0"

    @property
    def host_address(self) -> str:
        return self._ip(1)

    @property
    def host_netns_alias(self) -> str:
        """A name for the host's own network namespace (the BMCs' power program returns to it)."""
        return f"{self.prefix}-host"

    @property
    def client_netns(self) -> str:
        return f"{self.prefix}-client"

    @property
    def client_veth(self) -> str:
        return f"{self.prefix}-c-h"

    @property
    def client_address(self) -> str:
        return self._ip(200)

    @property
    def floating_range(self) -> tuple[str, str]:
        return self._ip(FLOATING_FIRST), self._ip(FLOATING_LAST)

    @property
    def nft_table(self) -> str:
        return f"{self.prefix}-lab"

    @property
    def state_dir(self) -> str:
        return f"/run/{self.prefix}-lab"

    @property
    def nodes_dir(self) -> str:
        return f"/var/lib/{self.prefix}-lab"

    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        return tuple(self.node(i) for i in range(1, self.node_count + 1))

    def node(self, index: int) -> NodeSpec:
        address = self._ip(10 + index)
        bmc_address = self._ip(100 + index)
        return NodeSpec(
            index=index, name=f"node{index}", machine=f"{self.prefix}-node{index}",
            netns=f"{self.prefix}-node{index}", veth=f"{self.prefix}-n{index}-h",
            address=address, mac=self._mac(address),
            bmc_netns=f"{self.prefix}-bmc{index}", bmc_veth=f"{self.prefix}-b{index}-h",
            bmc_address=bmc_address, bmc_mac=self._mac(bmc_address))

    def find(self, name: str) -> NodeSpec:
        """Look a node up by hostname (node2), container name (rhc-node2) or index (2)."""
        for node in self.nodes:
            if name in (node.name, node.machine, str(node.index)):
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise UsageError(f"unknown node {name!r}: this lab has {known}")

    def peers_of(self, node: NodeSpec) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.index != node.index)

    def owns_address(self, address: str) -> bool:
        """True if address lies in this lab's subnet (and so inside 198.18.0.0/15)."""
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(self.subnet)
        except ValueError:
            return False
