"""The lab network: bridge, namespaces, veths, the host's forwarding guard, and partitions.
Every name carries the lab prefix and every address is checked to lie in 198.18.0.0/15."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
from pathlib import Path

from .errors import LabError
from .procs import run
from .render import host_guard_ruleset, partition_ruleset
from .spec import ALLOWED_NET, LabSpec, NodeSpec

logger = logging.getLogger(__name__)
NETNS_DIR = Path("/run/netns")


def _checked(address: str) -> str:
    if ipaddress.ip_address(address) not in ALLOWED_NET:
        raise LabError(f"refusing address {address}: the lab uses {ALLOWED_NET} only")
    return address


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def address_in_use(address: str) -> bool:
    out = run(["ip", "-j", "addr", "show"], what="ip addr show").stdout
    for link in json.loads(out or "[]"):
        for info in link.get("addr_info", []):
            if info.get("local") == address:
                return True
    return False


def create_bridge(spec: LabSpec) -> None:
    run(["ip", "link", "add", spec.bridge, "type", "bridge"], what=f"creating {spec.bridge}")
    run(["ip", "addr", "add", f"{_checked(spec.host_address)}/24", "dev", spec.bridge])
    run(["ip", "link", "set", spec.bridge, "up"])
    run(["nft", "-f", "-"], input=host_guard_ruleset(spec), what="installing the forward guard")


def alias_host_netns(spec: LabSpec) -> None:
    """Name the host's own network namespace, so the power program (run by ipmi_sim
    inside a BMC namespace) can return to it: `ip netns attach <prefix>-host <our pid>`."""
    run(["ip", "netns", "attach", spec.host_netns_alias, str(os.getpid())],
        what="naming the host network namespace")


def create_namespace_with_link(spec: LabSpec, netns: str, veth: str, address: str,
                               mac: str) -> None:
    """A namespace with lo up and eth0 (fixed MAC, address/24) plugged into the bridge."""
    run(["ip", "netns", "add", netns], what=f"creating namespace {netns}")
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
         "address", mac, "netns", netns], what=f"creating veth {veth}")
    run(["ip", "link", "set", veth, "master", spec.bridge, "up"])
    run(["ip", "-n", netns, "addr", "add", f"{_checked(address)}/24", "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])


def create_node_network(spec: LabSpec, node: NodeSpec) -> None:
    create_namespace_with_link(spec, node.netns, node.veth, node.address, node.mac)


def remove_node_network(node: NodeSpec) -> None:
    """Power-off: the host end goes first, so the node's address vanishes at once."""
    if link_exists(node.veth):
        run(["ip", "link", "del", node.veth], check=False)
    if netns_exists(node.netns):
        run(["ip", "netns", "del", node.netns], check=False)


def partition(spec: LabSpec, node: NodeSpec, targets: tuple[str, ...], direction: str) -> None:
    """Install (replacing any earlier) drop rules inside the node's namespace."""
    ruleset = partition_ruleset(spec, targets, direction)
    heal(spec, node)
    run(["nsenter", f"--net={NETNS_DIR / node.netns}", "nft", "-f", "-"], input=ruleset,
        what=f"partitioning {node.name}")


def heal(spec: LabSpec, node: NodeSpec) -> bool:
    """Remove the node's partition table; return whether there was one."""
    if not netns_exists(node.netns):
        raise LabError(f"{node.name} is powered off: there is no network to heal")
    proc = run(["nsenter", f"--net={NETNS_DIR / node.netns}", "nft", "delete", "table", "ip",
                f"{spec.prefix}-partition"], check=False)
    return proc.returncode == 0


def partition_state(spec: LabSpec, node: NodeSpec) -> str:
    """'none', 'both', 'in' or 'out' from the rules actually installed in the namespace."""
    if not netns_exists(node.netns):
        return "none"
    proc = run(["nsenter", f"--net={NETNS_DIR / node.netns}", "nft", "list", "table", "ip",
                f"{spec.prefix}-partition"], check=False)
    if proc.returncode != 0:
        return "none"
    has_in, has_out = "chain input" in proc.stdout, "chain output" in proc.stdout
    return "both" if has_in and has_out else "in" if has_in else "out" if has_out else "none"


def ssh_banner(address: str, timeout: float = 1.0) -> bool:
    """True if an SSH server answers on address:22 with its banner."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def bridge_neighbours(spec: LabSpec) -> dict[str, str]:
    """address -> state of the host's neighbour entries on the bridge."""
    out = run(["ip", "-j", "neigh", "show", "dev", spec.bridge], check=False).stdout
    return {n["dst"]: ",".join(n.get("state", [])) for n in json.loads(out or "[]")}
