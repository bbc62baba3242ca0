"""Address announcements: gratuitous ARP (IPv4) and unsolicited neighbour advertisement
(IPv6), written here instead of depending on which ``arping`` flavour a node has.

Frame builders are pure and tested byte by byte; ``send_garp`` / ``send_unsolicited_na``
are blocking socket calls meant to run in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import ipaddress
import socket
import struct

ETH_P_ARP = 0x0806
BROADCAST_MAC = b"\xff" * 6
ALL_NODES_V6 = "ff02::1"
ICMPV6_NA = 136
NA_FLAG_OVERRIDE = 0x20000000
OPT_TARGET_LLADDR = 2


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"{mac!r} is not a MAC address")
    return bytes(int(p, 16) for p in parts)


def garp_frame(mac: str, address: str, reply: bool = False) -> bytes:
    """An Ethernet broadcast gratuitous ARP for ``address`` owned by ``mac``: sender and
    target protocol address are both ``address`` (RFC 5227 announcement; a request by
    default, a reply with ``reply=True``)."""
    src = mac_bytes(mac)
    ip = ipaddress.IPv4Address(address).packed
    eth = BROADCAST_MAC + src + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2 if reply else 1)
    target_mac = BROADCAST_MAC if reply else b"\x00" * 6
    return eth + arp + src + ip + target_mac + ip


def unsolicited_na(mac: str, address: str) -> bytes:
    """ICMPv6 neighbour advertisement body (type 136, override flag, target link-layer
    address option). The kernel fills the checksum on a raw ICMPv6 socket."""
    target = ipaddress.IPv6Address(address).packed
    header = struct.pack("!BBHI", ICMPV6_NA, 0, 0, NA_FLAG_OVERRIDE)
    option = struct.pack("!BB", OPT_TARGET_LLADDR, 1) + mac_bytes(mac)
    return header + target + option


def send_garp(ifname: str, mac: str, address: str) -> None:
    """Send one request-style and one reply-style gratuitous ARP on ``ifname``."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((ifname, 0))
        sock.send(garp_frame(mac, address))
        sock.send(garp_frame(mac, address, reply=True))


def send_unsolicited_na(ifname: str, mac: str, address: str) -> None:
    """Send one unsolicited NA for ``address`` to all-nodes on ``ifname`` (hop limit 255)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        index = socket.if_nametoindex(ifname)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.sendto(unsolicited_na(mac, address), (ALL_NODES_V6, 0, 0, index))
