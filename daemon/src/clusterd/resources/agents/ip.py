"""Built-in ``ip`` agent: a floating address on the interface whose subnet contains it.

- start: pick the interface whose configured subnet contains the address (longest prefix,
  then lowest index; ``prefer_interface`` narrows it), add the address with that subnet's
  prefix (or the one written as ``address="A/P"``; IPv6 without DAD), then announce it:
  gratuitous ARP / unsolicited NA now and ``garp_count - 1`` (default 2) more times in the
  background, one second apart. Refuses (INVALID_ARGS, a hard error for this node) when no interface's
  subnet matches, and (FAILED) when ``monitor_link`` is on and the link is down.
- status: OK = address present and (``monitor_link``) its link administratively up with
  carrier; NOT_RUNNING = address absent; FAILED = link down or duplicate address found.
- stop: remove the address wherever it is; absent = OK.
- announce(): re-send the announcements (the runtime calls it after a partition heals or
  membership changes; keepalived #166).

Netlink (``netlink.py``: four rtnetlink requests on a plain socket, where pyroute2 cost
about 10 MB of RSS) and raw sockets run in worker threads under the action's deadline, so
the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clusterd.errors import Problem
from clusterd.resources.agents import garp, netlink
from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    MetaDataResult,
    Outcome,
    guarded,
)
from clusterd.resources.agents.metadata import (
    AgentMeta,
    parse_bool,
    validate_params,
)
from clusterd.resources.rules import ActionSpec, ParamSpec

logger = logging.getLogger(__name__)

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFA_F_SECONDARY = 0x01
IFA_F_DADFAILED = 0x08
GARP_SPACING = 1.0
GARP_COUNT = 3   # a daemon setting, not a cluster.conf attribute (cluster.rng has none)

META = AgentMeta(
    name="ip",
    shortdesc="Floating IP address on the interface whose subnet contains it",
    params=(
        ParamSpec("address", required=True, unique=True, primary=True,
                  shortdesc="IPv4 or IPv6 address, optionally ADDRESS/PREFIX"),
        ParamSpec("family", content_type="select", default="auto",
                  options=("auto", "inet", "inet6")),
        ParamSpec("monitor_link", content_type="boolean", default="1"),
        ParamSpec("prefer_interface", shortdesc="use this interface when several match"),
        ParamSpec("nfslock", content_type="boolean", default="0"),
        ParamSpec("sleeptime", content_type="integer", default="10"),
        ParamSpec("disable_rdisc", content_type="boolean", default="0"),
    ),
    actions=(
        ActionSpec("start", timeout=20.0), ActionSpec("stop", timeout=20.0),
        ActionSpec("status", timeout=10.0, interval=20.0, depth=0),
        ActionSpec("status", timeout=20.0, interval=60.0, depth=10),
        ActionSpec("meta-data", timeout=5.0),
    ),
)


def validate(attrs: Mapping[str, str], where: str) -> list[Problem]:
    problems = validate_params(META, attrs, where)
    raw = attrs.get("address")
    if raw:
        try:
            target = ipaddress.ip_interface(raw)
        except ValueError:
            problems.append(Problem(where, f"ip: address {raw!r} is not an IPv4/IPv6 address "
                                           "(optionally ADDRESS/PREFIX)"))
        else:
            family = attrs.get("family", "auto")
            if (family == "inet" and target.version != 4) or (family == "inet6"
                                                               and target.version != 6):
                problems.append(Problem(where, f"ip: address {raw!r} does not match "
                                               f"family={family}"))
            if target.ip.is_multicast or target.ip.is_unspecified or target.ip.is_loopback:
                problems.append(Problem(where, f"ip: address {raw!r} cannot be a floating "
                                               "address (multicast, unspecified or loopback)"))
    return problems


@dataclass(frozen=True)
class IfAddr:
    index: int
    ifname: str
    address: str
    prefixlen: int
    flags: int = 0


@dataclass(frozen=True)
class Link:
    index: int
    ifname: str
    flags: int
    mac: str

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP) and bool(self.flags & IFF_LOWER_UP)


@dataclass(frozen=True)
class Placement:
    index: int
    ifname: str
    prefixlen: int


def choose_interface(target: ipaddress.IPv4Interface | ipaddress.IPv6Interface,
                     explicit_prefix: bool, addrs: Sequence[IfAddr],
                     prefer: str | None = None) -> Placement | str:
    """Where ``target`` goes: the interface with an address (other than the target itself)
    whose subnet contains it. Returns a Placement or a sentence saying why none fits."""
    matches = []
    for entry in addrs:
        addr = ipaddress.ip_address(entry.address)
        if addr.version != target.version or addr == target.ip:
            continue
        if target.ip in ipaddress.ip_network(f"{addr}/{entry.prefixlen}", strict=False):
            matches.append(entry)
    if prefer:
        preferred = [m for m in matches if m.ifname == prefer]
        if not preferred:
            return (f"prefer_interface {prefer} has no subnet containing {target.ip}"
                    + (f" (matching: {', '.join(sorted({m.ifname for m in matches}))})"
                       if matches else ""))
        matches = preferred
    if not matches:
        subnets = sorted({f"{e.address}/{e.prefixlen} on {e.ifname}" for e in addrs
                          if ipaddress.ip_address(e.address).version == target.version
                          and not ipaddress.ip_address(e.address).is_loopback
                          and not ipaddress.ip_address(e.address).is_link_local})
        return (f"no interface has a subnet containing {target.ip}"
                f" (this node has: {', '.join(subnets) or 'no such addresses'})")
    best = min(matches, key=lambda m: (-m.prefixlen, m.index))
    return Placement(best.index, best.ifname, target.network.prefixlen if explicit_prefix
                     else best.prefixlen)


class _Netlink:
    """Blocking netlink calls (run them in a thread): ``clusterd.resources.agents.netlink``."""

    @staticmethod
    def snapshot() -> tuple[tuple[IfAddr, ...], dict[int, Link]]:
        links, addrs = netlink.snapshot()
        by_index = {m.index: Link(m.index, m.ifname, m.flags, m.mac) for m in links}
        return tuple(IfAddr(a.index, by_index[a.index].ifname if a.index in by_index else "?",
                            a.address, a.prefixlen, a.flags) for a in addrs), by_index

    @staticmethod
    def add(index: int, address: str, prefixlen: int, v6: bool) -> None:
        netlink.add(index, address, prefixlen, nodad=v6)

    @staticmethod
    def delete(index: int, address: str, prefixlen: int) -> bool:
        """True if removed, False if it was already gone."""
        try:
            netlink.delete(index, address, prefixlen)
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.ENODEV):
                return False
            raise
        return True


class IpAgent:
    rtype = "ip"

    def __init__(self, attrs: Mapping[str, str], *, netlink: _Netlink | None = None,
                 garp_count: int = GARP_COUNT):
        self.attrs = META.with_defaults(attrs)
        self.name = self.attrs.get("address", "")
        self.target = ipaddress.ip_interface(self.name)
        self.explicit_prefix = "/" in self.name
        self.monitor_link = parse_bool(self.attrs["monitor_link"])
        self.garp_count = garp_count
        self.prefer = self.attrs.get("prefer_interface") or None
        self._netlink = netlink or _Netlink()
        self._repeats: asyncio.Task[None] | None = None
        self._who = f"ip:{self.target.ip}"

    def _timeout(self, action: str, timeout: float | None) -> float:
        return timeout if timeout is not None else META.action_timeout(action, 20.0)

    async def _present(self) -> tuple[list[IfAddr], dict[int, Link], tuple[IfAddr, ...]]:
        addrs, links = await asyncio.to_thread(self._netlink.snapshot)
        mine = [a for a in addrs if ipaddress.ip_address(a.address) == self.target.ip]
        return mine, links, addrs

    async def start(self, timeout: float | None = None) -> AgentResult:
        return await guarded(AgentAction.START, self._who, self._timeout("start", timeout),
                             self._start)

    async def _start(self) -> Outcome:
        mine, links, addrs = await self._present()
        if mine:
            where = mine[0]
            link = links.get(where.index)
            if self.monitor_link and (link is None or not link.up):
                return Outcome(AgentRc.FAILED, f"{self._who}: present on {where.ifname} "
                                               "but its link is down")
            await self._announce_now(where.ifname, link)
            return Outcome(AgentRc.OK, f"{self._who}: already on {where.ifname}")
        placement = choose_interface(self.target, self.explicit_prefix, addrs, self.prefer)
        if isinstance(placement, str):
            return Outcome(AgentRc.INVALID_ARGS, f"{self._who}: cannot start: {placement}")
        link = links.get(placement.index)
        if self.monitor_link and (link is None or not link.up):
            return Outcome(AgentRc.FAILED, f"{self._who}: link {placement.ifname} is down "
                                           "(monitor_link=1)")
        await asyncio.to_thread(self._netlink.add, placement.index, str(self.target.ip),
                                placement.prefixlen, self.target.version == 6)
        note = await self._announce_now(placement.ifname, link)
        self._schedule_repeats(placement.ifname, link)
        return Outcome(AgentRc.OK, f"{self._who}: added to {placement.ifname} "
                                   f"as /{placement.prefixlen}{note}")

    async def stop(self, timeout: float | None = None) -> AgentResult:
        return await guarded(AgentAction.STOP, self._who, self._timeout("stop", timeout),
                             self._stop)

    async def _stop(self) -> Outcome:
        if self._repeats is not None:
            self._repeats.cancel()
            self._repeats = None
        mine, _links, _addrs = await self._present()
        if not mine:
            return Outcome(AgentRc.OK, f"{self._who}: already absent")
        removed = []
        for entry in mine:
            if await asyncio.to_thread(self._netlink.delete, entry.index, entry.address,
                                       entry.prefixlen):
                removed.append(entry.ifname)
        return Outcome(AgentRc.OK, f"{self._who}: removed from {', '.join(removed) or '-'}")

    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult:
        return await guarded(AgentAction.STATUS, self._who, self._timeout("status", timeout),
                             self._status)

    async def _status(self) -> Outcome:
        mine, links, _addrs = await self._present()
        if not mine:
            return Outcome(AgentRc.NOT_RUNNING, f"{self._who}: not configured on any interface")
        entry = mine[0]
        if entry.flags & IFA_F_DADFAILED:
            return Outcome(AgentRc.FAILED, f"{self._who}: duplicate address detected on "
                                           f"{entry.ifname}")
        link = links.get(entry.index)
        if self.monitor_link and (link is None or not link.up):
            return Outcome(AgentRc.FAILED, f"{self._who}: link {entry.ifname} is down")
        return Outcome(AgentRc.OK, f"{self._who}: up on {entry.ifname}")

    async def announce(self, timeout: float | None = None) -> AgentResult:
        return await guarded(AgentAction.ANNOUNCE, self._who, self._timeout("start", timeout),
                             self._announce)

    async def _announce(self) -> Outcome:
        mine, links, _addrs = await self._present()
        if not mine:
            return Outcome(AgentRc.NOT_RUNNING, f"{self._who}: nothing to announce (absent)")
        note = await self._announce_now(mine[0].ifname, links.get(mine[0].index))
        self._schedule_repeats(mine[0].ifname, links.get(mine[0].index))
        return Outcome(AgentRc.OK, f"{self._who}: announced on {mine[0].ifname}{note}")

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult:
        result = AgentResult(AgentAction.META_DATA, AgentRc.OK, "ip: built-in meta-data", 0.0)
        return MetaDataResult(result, META)

    async def _announce_now(self, ifname: str, link: Link | None) -> str:
        """Send one announcement; a failure is reported in the message, not fatal (the
        address is up; peers learn it at their next ARP)."""
        if self.garp_count <= 0 or link is None:
            return ""
        try:
            await asyncio.to_thread(self._send, ifname, link.mac)
        except OSError as exc:
            logger.warning("%s: announcement on %s failed: %s", self._who, ifname, exc)
            return f" (announcement failed: {exc.strerror or exc})"
        return ""

    def _send(self, ifname: str, mac: str) -> None:
        if self.target.version == 4:
            garp.send_garp(ifname, mac, str(self.target.ip))
        else:
            garp.send_unsolicited_na(ifname, mac, str(self.target.ip))

    def _schedule_repeats(self, ifname: str, link: Link | None) -> None:
        if self.garp_count <= 1 or link is None:
            return
        if self._repeats is not None:
            self._repeats.cancel()
        self._repeats = asyncio.get_running_loop().create_task(
            self._repeat(ifname, link), name=f"{self._who} announcements")

    async def _repeat(self, ifname: str, link: Link) -> None:
        for _ in range(self.garp_count - 1):
            await asyncio.sleep(GARP_SPACING)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._send, ifname, link.mac)

    async def close(self) -> None:
        """Cancel background announcements (the runtime calls it when dropping the agent)."""
        if self._repeats is not None:
            self._repeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._repeats
            self._repeats = None
