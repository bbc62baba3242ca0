"""ClusterCore: the byte-level core one node runs (guard + membership + configsync).

Sans-IO: ``on_datagram(data, addr, now)`` and ``tick(now)`` return ``HostOutput`` with the
datagrams to send (address, bytes) and the events for the runtime. The asyncio transport
(``clusterd.node.transport``) and the simulator (``tests/sim``) drive this same object.
A ``ValidateConfig`` event asks the runtime to run ``validate`` on a pulled config away
from its event loop and to answer with ``on_validated``.

Config chunks (cluster.conf, inline secrets included) are only ever sent encrypted: a
chunk for a peer that speaks an older, unencrypted protocol (a rolling upgrade) is not
sent, and that is logged once per peer incarnation (``clear_refused`` counts them). A core
run with ``version`` below 3 stands for an older node in tests and sends them as it did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clusterd.configsync.core import ConfigSyncCore
from clusterd.configsync.model import ValidateConfig, Validator
from clusterd.events import ConfigAccepted, Event, Outputs, WriteConfig
from clusterd.membership.agreement import LocalConfig
from clusterd.membership.config import MembershipConfig
from clusterd.membership.core import MembershipCore
from clusterd.membership.override import CHANNELS as OVERRIDE_CHANNELS
from clusterd.membership.quorum import QdiskGrant
from clusterd.wire.codec import PROTOCOL_VERSION, SEALED_VERSION
from clusterd.wire.guard import Address, PacketGuard, Record
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
class PeersSeen:
    """The highest incarnation (and protocol version) accepted from a peer changed; the
    runtime persists ``peers`` (nodeid -> (incarnation, version)) and passes them back at
    start (``ClusterCore(peers_seen=)``), so that a restarted node still refuses packets
    of earlier incarnations."""

    peers: tuple[tuple[int, Record], ...]


@dataclass(frozen=True)
class IncarnationOutdated:
    """Peer ``peer`` has seen incarnation ``seen`` of this node, above the running
    ``incarnation``: this node's state dir was lost while its clock is behind, and its
    peers refuse it. The runtime persists ``seen`` and restarts the daemon, which then
    runs an incarnation above it."""

    peer: int
    seen: int
    incarnation: int


@dataclass(frozen=True)
class HostOutput:
    datagrams: tuple[Datagram, ...] = ()
    events: tuple[Event | AppReceived | PeersSeen | IncarnationOutdated | ValidateConfig,
                  ...] = ()


NOTHING_OUT = HostOutput()  # frozen: shared by every input that has no output


class ClusterCore:
    def __init__(self, cfg: MembershipConfig, nodeid: int, *, key: bytes, incarnation: int,
                 config_data: bytes | None, validator: Validator,
                 version: int = PROTOCOL_VERSION,
                 grid_offset: float = 0.0, peers_seen: Mapping[int, Record] | None = None,
                 config_accepted: bool = True):
        self.cfg = cfg
        self.me = nodeid
        addrs = cfg.addresses()
        self.addr = addrs[nodeid]
        self.guard = PacketGuard(nodeid=nodeid, cluster_id=cfg.cid, key=key,
                                 incarnation=incarnation, version=version, seen=peers_seen,
                                 peers={n: a for n, a in addrs.items() if n != nodeid})
        self.clear_refused = 0
        self._clear_logged: set[tuple[int, int]] = set()
        self._outdated = incarnation  # newer_self values above this were reported
        self.membership = MembershipCore(cfg, nodeid, incarnation, grid_offset=grid_offset)
        self.validate = validator   # the host runs it for a ValidateConfig, off its loop
        self.configsync = ConfigSyncCore(nodeid, config_data, validator, cfg.token,
                                         accepted=config_accepted)
        self._sync_state(0.0)

    def set_keys(self, active: bytes, accepted: tuple[bytes, ...] = ()) -> None:
        """Seal with ``active``; also accept ``accepted`` (a rekey in progress)."""
        self.guard.set_keys(active, accepted)

    # ------------------------------------------------------------------ inputs
    def tick(self, now: float) -> HostOutput:
        out = self.configsync.tick(now)
        self._sync_state(now)
        out += self.membership.tick(now)
        out += self._config_view(now)
        return self._emit(out, now)

    def next_deadline(self, now: float) -> float:
        """The instant at which ``tick`` is next due (``now`` if it is due already): the
        runtime sleeps until then or until a datagram arrives."""
        return min(self.membership.next_deadline(now), self.configsync.next_deadline())

    def on_datagram(self, data: bytes, addr: Address, now: float) -> HostOutput:
        packet = self.guard.accept(data, addr, now)
        noted = self._guard_events()
        if packet is None:
            return HostOutput((), noted)
        sender, inc, msg = packet.header.sender, packet.header.incarnation, packet.msg
        if isinstance(msg, AppMessage) and msg.channel not in OVERRIDE_CHANNELS:
            return HostOutput((), (*noted, AppReceived(sender, inc, msg.channel, msg.payload)))
        out = Outputs()
        if isinstance(msg, ConfigRequest | ConfigChunk):
            out += self.configsync.on_message(sender, msg, now)
        else:
            if isinstance(msg, Heartbeat):
                out += self.configsync.observe(sender, msg.config_version, msg.config_sha256,
                                               now, accepted=not msg.unaccepted)
                self._sync_state(now)
            out += self.membership.on_message(sender, inc, msg, now)
            out += self._config_view(now)
        emitted = self._emit(out, now)
        return HostOutput(emitted.datagrams, (*noted, *emitted.events)) if noted else emitted

    def propose_config(self, data: bytes, now: float, *, validated: Any = None) -> HostOutput:
        """Raises ConfigError / ControlError when refused (nothing changes then).
        ``validated``: the host's own validation of ``data`` (None: validate here)."""
        out = self.configsync.propose(data, self.membership.is_quorate(now), now,
                                      validated=validated)
        out += self._config_view(now)
        return self._emit(out, now)

    def on_validated(self, sha256: str, outcome: Any, now: float) -> HostOutput:
        """The host's answer to a ``ValidateConfig`` event (what ``validate`` returned
        for its data, or the ClusterError it raised)."""
        out = self.configsync.on_validated(sha256, outcome, now)
        self._sync_state(now)
        out += self._config_view(now)
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

    def leave(self, reason: str, now: float, hold: bool = False) -> HostOutput:
        return self._emit(self.membership.leave(reason, now, hold), now)

    def set_expected(self, expected: int, origin: str, now: float) -> HostOutput:
        """``cman_tool expected -e N`` (``MembershipCore.set_expected``); ValueError when
        refused."""
        return self._emit(self.membership.set_expected(expected, origin, now), now)

    def set_qdisk(self, grant: QdiskGrant | None, now: float) -> HostOutput:
        """The quorum disk's grant as just read (``MembershipCore.set_qdisk``)."""
        return self._emit(self.membership.set_qdisk(grant, now), now)

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
                        "config_conflict": sync["conflict"], "config_held": sync["held"],
                        "config_accepted": sync["config_accepted"],
                        "config_unaccepted_peers": sync["unaccepted_peers"]},
            "quorum": {"quorate": m.quorum.quorate, "votes": m.quorum.votes,
                       "expected_votes": m.quorum.expected_votes, "quorum": m.quorum.quorum,
                       "override": m.expected.status()},
            "local": {"name": self.cfg.node(self.me).name, "nodeid": self.me,
                      "incarnation": m.inc},
            "view": None if view is None else {"epoch": view.epoch, "members": sorted(members),
                                               "coordinator": view.coordinator},
            "wire": {"accepted": self.guard.accepted, "drops": dict(self.guard.drops),
                     "clear_refused": self.clear_refused},
        }

    # ------------------------------------------------------------------ plumbing
    def _sync_state(self, now: float) -> None:
        """Give membership the running config as configsync has it now. Called two or
        three times per input; it rarely changes, so the current (frozen) one is kept
        when it is equal rather than replaced by an equal copy."""
        run, sync = self.configsync.running, self.configsync
        local = self.membership.local
        if (local.version != run.version or local.sha256 != run.sha256
                or local.accepted != sync.accepted or local.held != sync.held):
            self.membership.local = LocalConfig(run.version, run.sha256,
                                                accepted=sync.accepted, held=sync.held)

    def _config_view(self, now: float) -> Outputs:
        """Tell configsync the view it may accept a config in (and pull proposals from)."""
        view = self.membership.view
        members = view.nodeids if view is not None else frozenset()
        out = self.configsync.set_view(members, self.membership.is_quorate(now), now)
        self._sync_state(now)
        return out

    def _emit(self, out: Outputs, now: float) -> HostOutput:
        if not (out.sends or out.events):
            return NOTHING_OUT      # most datagrams of an idle node: nothing to send
        for ev in out.events:
            if isinstance(ev, WriteConfig | ConfigAccepted):
                self._sync_state(now)
                self.membership.heartbeat_soon()  # peers learn the new version at once
        addrs = self.guard.peers
        grams = []
        for send in out.sends:
            if (isinstance(send.msg, ConfigChunk) and not self.guard.encrypts_to(send.dest)
                    and self.guard.version >= SEALED_VERSION):
                self._refuse_clear(send.dest)
                continue
            _seq, data = self.guard.seal(send.dest, send.msg)
            grams.append(Datagram(addrs[send.dest], data))
            probe = self.guard.probe(send.dest, send.msg)
            if probe is not None:
                grams.append(Datagram(addrs[send.dest], probe))
        return HostOutput(tuple(grams), out.events)

    def _refuse_clear(self, dest: int) -> None:
        self.clear_refused += 1
        incarnation = self.guard.seen().get(dest, (0, 0))[0]
        if (dest, incarnation) in self._clear_logged:
            return
        self._clear_logged.add((dest, incarnation))
        logger.warning("node %d: not sending cluster.conf to node %d: it speaks protocol "
                       "version %d, which does not encrypt (upgrade it; config changes "
                       "wait until then)", self.me, dest, self.guard.peer_version(dest))

    def _guard_events(self) -> tuple[PeersSeen | IncarnationOutdated, ...]:
        """What the packet just handled told the guard that the runtime must act on."""
        if not self.guard.seen_changed and self.guard.newer_self[0] <= self._outdated:
            return ()               # the common case, checked without building anything
        events: list[PeersSeen | IncarnationOutdated] = []
        seen = self.guard.take_seen()
        if seen is not None:
            events.append(PeersSeen(tuple(sorted(seen.items()))))
        seen_self, peer = self.guard.newer_self
        if seen_self > self._outdated:
            self._outdated = seen_self
            logger.error("node %d: node %d has seen incarnation %d of this node, above the "
                         "running %d (state dir lost and clock behind?): restarting above "
                         "it", self.me, peer, seen_self, self.guard.incarnation)
            events.append(IncarnationOutdated(peer, seen_self, self.guard.incarnation))
        return tuple(events)
