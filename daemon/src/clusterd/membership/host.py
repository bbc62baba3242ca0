"""ClusterCore: the byte-level core one node runs (guard + membership + configsync).

Sans-IO: ``on_datagram(data, addr, now)`` and ``tick(now)`` return ``HostOutput`` with the
datagrams to send (address, bytes) and the events for the runtime. The asyncio transport
(``clusterd.node.transport``) and the simulator (``tests/sim``) drive this same object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clusterd.configsync.core import ConfigSyncCore, Validator
from clusterd.membership.config import MembershipConfig
from clusterd.membership.core import MembershipCore
from clusterd.membership.events import Event, IncarnationChanged, Outputs, WriteConfig
from clusterd.wire.codec import PROTOCOL_VERSION
from clusterd.wire.guard import Address, PacketGuard
from clusterd.wire.messages import AppMessage, ConfigChunk, ConfigRequest, Heartbeat

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Datagram:
    addr: Address
    data: bytes


@dataclass(frozen=True)
class AppReceived:
    """An authenticated application message (``send_app``) from ``src`` (nodeid) running
    incarnation ``incarnation``; the consumer checks membership itself."""

    src: int
    incarnation: int
    channel: str
    payload: dict = field(hash=False)


@dataclass(frozen=True)
class HostOutput:
    datagrams: tuple[Datagram, ...] = ()
    events: tuple[Event | AppReceived, ...] = ()


class ClusterCore:
    def __init__(self, cfg: MembershipConfig, nodeid: int, *, key: bytes, incarnation: int,
                 config_data: bytes | None, validator: Validator,
                 new_incarnation: Callable[[int], int], version: int = PROTOCOL_VERSION,
                 grid_offset: float = 0.0):
        self.cfg = cfg
        self.me = nodeid
        addrs = cfg.addresses()
        self.addr = addrs[nodeid]
        self.guard = PacketGuard(nodeid=nodeid, cluster_id=cfg.cid, key=key,
                                 incarnation=incarnation, version=version,
                                 peers={n: a for n, a in addrs.items() if n != nodeid})
        self.membership = MembershipCore(cfg, nodeid, incarnation,
                                         new_incarnation=new_incarnation,
                                         grid_offset=grid_offset)
        self.configsync = ConfigSyncCore(nodeid, config_data, validator, cfg.token)
        self._sync_state(0.0)

    def set_keys(self, active: bytes, accepted: tuple[bytes, ...] = ()) -> None:
        """Seal with ``active``; also accept ``accepted`` (a rekey in progress)."""
        self.guard.set_keys(active, accepted)

    # ------------------------------------------------------------------ inputs
    def tick(self, now: float) -> HostOutput:
        out = self.configsync.tick(now)
        self._sync_state(now)
        out += self.membership.tick(now)
        return self._emit(out, now)

    def next_deadline(self, now: float) -> float:
        """The instant at which ``tick`` is next due (``now`` if it is due already): the
        runtime sleeps until then or until a datagram arrives."""
        return min(self.membership.next_deadline(now), self.configsync.next_deadline())

    def on_datagram(self, data: bytes, addr: Address, now: float) -> HostOutput:
        packet = self.guard.accept(data, addr, now)
        if packet is None:
            return HostOutput()
        sender, inc, msg = packet.header.sender, packet.header.incarnation, packet.msg
        if isinstance(msg, AppMessage):
            return HostOutput((), (AppReceived(sender, inc, msg.channel, msg.payload),))
        out = Outputs()
        if isinstance(msg, ConfigRequest | ConfigChunk):
            out += self.configsync.on_message(sender, msg, now)
        else:
            if isinstance(msg, Heartbeat):
                out += self.configsync.observe(sender, msg.config_version, msg.config_sha256,
                                               now)
                self._sync_state(now)
            out += self.membership.on_message(sender, inc, msg, now)
        return self._emit(out, now)

    def propose_config(self, data: bytes, now: float) -> HostOutput:
        """Raises ConfigError / ControlError when refused (nothing changes then)."""
        out = self.configsync.propose(data, self.membership.is_quorate(now), now)
        return self._emit(out, now)

    def send_app(self, dest: int | None, channel: str, payload: dict,
                 now: float) -> HostOutput:
        """Seal an application message for ``dest``, or for every other member of the
        current view when ``dest`` is None (nothing without a view). Raises ValueError
        for a bad channel or an oversize payload (``MAX_APP_PAYLOAD``)."""
        view = self.membership.view
        if dest is not None:
            dests = [dest] if dest != self.me and dest in self.guard.peers else []
        else:
            dests = sorted(view.nodeids - {self.me}) if view is not None else []
        packets = self.guard.seal_many(dests, AppMessage(channel, payload))  # encoded once
        return HostOutput(tuple(Datagram(self.guard.peers[d], packets[d]) for d in dests))

    def reconfigure(self, cfg: MembershipConfig, now: float) -> HostOutput:
        """Use a new membership config (after the runtime applied a new cluster.conf).
        Raises KeyError if this node is no longer in it (the runtime should leave).
        The UDP address and port of this node cannot change without a restart."""
        addrs = cfg.addresses()
        if addrs[self.me] != self.addr:
            raise ValueError(f"node {self.me}: address {addrs[self.me]} differs from the "
                             f"bound {self.addr}: restart clusterd to apply it")
        self.cfg = cfg
        self.guard.cluster_id = cfg.cid
        self.guard.peers = {n: a for n, a in addrs.items() if n != self.me}
        self.configsync.token = cfg.token
        return self._emit(self.membership.reconfigure(cfg, now), now)

    def leave(self, reason: str, now: float) -> HostOutput:
        return self._emit(self.membership.leave(reason, now), now)

    # ------------------------------------------------------------------ status
    def status(self, now: float) -> dict[str, Any]:
        m = self.membership
        view = m.view
        sync = self.configsync.status(now)
        members = view.nodeids if view else frozenset()
        return {
            "cluster": {"name": self.cfg.cluster_name, "id": self.cfg.cid,
                        "generation": view.epoch if view else 0,
                        "config_version": sync["config_version"],
                        "config_sha256": sync["config_sha256"],
                        "config_holders": self.configsync.holders(now, members - {self.me}),
                        "config_conflict": sync["conflict"], "config_held": sync["held"]},
            "quorum": {"quorate": m.quorum.quorate, "votes": m.quorum.votes,
                       "expected_votes": m.quorum.expected_votes, "quorum": m.quorum.quorum},
            "local": {"name": self.cfg.node(self.me).name, "nodeid": self.me,
                      "incarnation": m.inc},
            "view": None if view is None else {"epoch": view.epoch, "members": sorted(members),
                                               "coordinator": view.coordinator},
            "wire": {"accepted": self.guard.accepted, "drops": dict(self.guard.drops)},
        }

    # ------------------------------------------------------------------ plumbing
    def _sync_state(self, now: float) -> None:
        run = self.configsync.running
        self.membership.config = (run.version, run.sha256)
        self.membership.held = self.configsync.held

    def _emit(self, out: Outputs, now: float) -> HostOutput:
        for ev in out.events:
            if isinstance(ev, IncarnationChanged):
                self.guard.set_incarnation(ev.incarnation)
            elif isinstance(ev, WriteConfig):
                self._sync_state(now)
                self.membership.heartbeat_soon()  # peers learn the new version at once
        addrs = self.guard.peers
        grams = []
        for send in out.sends:
            _seq, data = self.guard.seal(send.dest, send.msg)
            grams.append(Datagram(addrs[send.dest], data))
        return HostOutput(tuple(grams), out.events)
