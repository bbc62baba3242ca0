"""The four rtnetlink calls the ``ip`` agent makes, on a plain ``AF_NETLINK`` socket.

``snapshot()`` dumps links (index, name, flags, hardware address) and addresses (index,
address, prefix length, flags); ``add()`` and ``delete()`` change one address. Blocking:
the agent runs them in a worker thread under the action's deadline. The messages are
the kernel's (``linux/netlink.h``, ``linux/rtnetlink.h``, ``linux/if_addr.h``), built and
read with ``struct``; they are what ``ip addr`` and pyroute2 send: an IPv4 address goes
with ``IFA_LOCAL`` and ``IFA_ADDRESS`` both set to it and no broadcast, an IPv6 one with
``IFA_ADDRESS`` and the header flag ``IFA_F_NODAD`` when asked.

pyroute2 did this before: importing it for these calls cost every daemon that checked an
``ip`` resource about 10 MB of RSS and 180 modules (its package imports every netlink
family it knows). A refusal of the kernel is an ``OSError`` with its errno (the agent's
``guarded`` makes that a FAILED result).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETLINK, RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 18, 20, 21, 22
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x200, 0x400, 0x300
IFLA_ADDRESS, IFLA_IFNAME = 1, 3
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02

_NLMSGHDR = struct.Struct("=IHHII")      # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")    # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBi")     # family, prefixlen, flags, scope, index
_RTATTR = struct.Struct("=HH")           # len, type
_ERRNO = struct.Struct("=i")
_U32 = struct.Struct("=I")
RECV_BYTES = 1 << 16


@dataclass(frozen=True)
class LinkInfo:
    index: int
    ifname: str
    flags: int
    mac: str


@dataclass(frozen=True)
class AddrInfo:
    index: int
    address: str
    prefixlen: int
    flags: int          # IFA_FLAGS when the kernel sends it (32 bits), else the header's


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, data: bytes) -> bytes:
    size = _RTATTR.size + len(data)
    return _RTATTR.pack(size, kind) + data + b"\0" * (_align(size) - size)


def _attrs(data: bytes, offset: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(data):
        size, kind = _RTATTR.unpack_from(data, offset)
        if size < _RTATTR.size:
            break
        out.setdefault(kind & 0x3FFF, data[offset + _RTATTR.size:offset + size])
        offset += _align(size)
    return out


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


class _Socket:
    """One request and its answer (a dump's parts, or an acknowledgement)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.seq = 0

    def __enter__(self) -> Self:
        try:
            self.sock.bind((0, 0))
        except OSError:
            self.sock.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def request(self, kind: int, flags: int, body: bytes) -> Iterator[tuple[int, bytes]]:
        """Send one request; yield (type, payload) of every answer until it is complete.
        A dump ends with NLMSG_DONE; anything else with its acknowledgement (NLMSG_ERROR,
        0 = done; not 0 = the kernel's errno, raised as OSError)."""
        self.seq += 1
        seq = self.seq
        self.sock.sendto(_message(kind, flags | NLM_F_REQUEST, seq, body), (0, 0))
        while True:
            data = self.sock.recv(RECV_BYTES)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                size, mtype, _mflags, mseq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if size < _NLMSGHDR.size or offset + size > len(data):
                    raise OSError(errno.EPROTO, "netlink: truncated message")
                payload = data[offset + _NLMSGHDR.size:offset + size]
                offset += _align(size)
                if mseq != seq:
                    continue            # not ours (cannot happen on a private socket)
                if mtype == NLMSG_DONE:
                    return
                if mtype == NLMSG_ERROR:
                    code = -_ERRNO.unpack_from(payload)[0]
                    if code:
                        raise OSError(code, f"netlink: {os.strerror(code)}")
                    return
                yield mtype, payload


def _ntop(family: int, data: bytes) -> str | None:
    try:
        return socket.inet_ntop(family, data)
    except (ValueError, OSError):
        return None


def snapshot() -> tuple[tuple[LinkInfo, ...], tuple[AddrInfo, ...]]:
    """Every link and every address of this network namespace, as the kernel dumps them."""
    links, addrs = [], []
    with _Socket() as nl:
        for _kind, body in nl.request(RTM_GETLINK, NLM_F_DUMP,
                                      _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(body)
            attrs = _attrs(body, _IFINFOMSG.size)
            name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
            mac = attrs.get(IFLA_ADDRESS)
            links.append(LinkInfo(index, name or str(index), flags,
                                  mac.hex(":") if mac else "00:00:00:00:00:00"))
        for _kind, body in nl.request(RTM_GETADDR, NLM_F_DUMP,
                                      _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            family, prefixlen, hflags, _scope, index = _IFADDRMSG.unpack_from(body)
            attrs = _attrs(body, _IFADDRMSG.size)
            # IFA_LOCAL is our own address on point-to-point links (IFA_ADDRESS the peer)
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            address = _ntop(family, raw) if raw else None
            if address is None:
                continue
            extra = attrs.get(IFA_FLAGS)
            flags = _U32.unpack_from(extra)[0] if extra and len(extra) >= 4 else 0
            addrs.append(AddrInfo(index, address, prefixlen, flags or hflags))
    return tuple(links), tuple(addrs)


def _addr_body(index: int, address: str, prefixlen: int, flags: int = 0) -> bytes:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    packed = socket.inet_pton(family, address)
    body = _IFADDRMSG.pack(family, prefixlen, flags, 0, index)
    if family == socket.AF_INET:
        body += _attr(IFA_LOCAL, packed)
    return body + _attr(IFA_ADDRESS, packed)


def add(index: int, address: str, prefixlen: int, nodad: bool = False) -> None:
    """Add address/prefixlen to the link; OSError (EEXIST, ENODEV ...) if refused."""
    with _Socket() as nl:
        for _ in nl.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                            _addr_body(index, address, prefixlen, IFA_F_NODAD if nodad else 0)):
            pass


def delete(index: int, address: str, prefixlen: int) -> None:
    """Remove address/prefixlen from the link; OSError (EADDRNOTAVAIL: not there)."""
    with _Socket() as nl:
        for _ in nl.request(RTM_DELADDR, NLM_F_ACK, _addr_body(index, address, prefixlen)):
            pass
