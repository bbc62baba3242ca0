"""PacketGuard: the only way bytes from the network become messages, and back.

Inbound order of checks (cheap and unauthenticated first, payload last): length limits,
magic, version, HMAC tag (under the active key or another loaded one during a rekey,
``set_keys``), cluster id, sender in the nodelist (and not ourselves), source
address equal to the sender's configured address, incarnation and seq against the
sender's replay window, then the payload schema. Every drop is counted by reason and
logged at most once per reason per ``LOG_INTERVAL`` seconds; past ``AUTH_HINT_THRESHOLD``
authentication failures a hint to compare the authkey on every node is logged (S14).
Only a fully accepted packet updates the replay window or the peer's protocol version.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clusterd.errors import WireError
from clusterd.wire.codec import (
    HEADER,
    PROTOCOL_VERSION,
    Packet,
    encode_packet,
    unpack_header,
    verify_tag,
)
from clusterd.wire.messages import Message, decode_payload
from clusterd.wire.replay import ReplayState, first_seen

logger = logging.getLogger(__name__)

Address = tuple[str, int]
LOG_INTERVAL = 10.0
AUTH_HINT_THRESHOLD = 20
AUTH_REASONS = frozenset({"bad mac"})


@dataclass
class _RateLimit:
    last: dict[str, float] = field(default_factory=dict)
    suppressed: Counter = field(default_factory=Counter)

    def allow(self, reason: str, now: float) -> int | None:
        """None if suppressed; otherwise how many lines were suppressed since the last."""
        last = self.last.get(reason)
        if last is not None and now - last < LOG_INTERVAL:
            self.suppressed[reason] += 1
            return None
        self.last[reason] = now
        return self.suppressed.pop(reason, 0)


class PacketGuard:
    """Seal outbound messages and authenticate/filter inbound packets for one node."""

    def __init__(self, *, nodeid: int, cluster_id: int, key: bytes, incarnation: int,
                 peers: Mapping[int, Address], version: int = PROTOCOL_VERSION):
        self.nodeid = nodeid
        self.cluster_id = cluster_id
        self._key = key
        self._keys: tuple[bytes, ...] = (key,)  # active first, then accepted-only keys
        self._peer_key: dict[int, bytes] = {}  # the key that last verified each sender
        self.incarnation = incarnation
        self.peers = dict(peers)
        self.version = version  # highest version this node speaks
        self.seq = 0
        self.drops: Counter = Counter()
        self.accepted = 0
        self._windows: dict[int, ReplayState] = {}
        self._peer_version: dict[int, int] = {}
        self._rate = _RateLimit()
        self._auth_failures = 0

    # ----------------------------------------------------------------- keys
    def set_keys(self, active: bytes, accepted: Sequence[bytes] = ()) -> None:
        """Seal with ``active`` from now on; accept packets sealed with it or with any of
        ``accepted`` (a rekey in progress). Peers' last-verified keys are kept only if
        still loaded."""
        self._key = active
        self._keys = (active, *(k for k in accepted if k != active))
        self._peer_key = {p: k for p, k in self._peer_key.items() if k in self._keys}

    def peer_key(self, nodeid: int) -> bytes | None:
        """The key that verified ``nodeid``'s latest accepted packet (None: none yet)."""
        return self._peer_key.get(nodeid)

    def _verify(self, data: bytes, sender: int) -> bytes:
        """Check the tag against the sender's last key first, then the others: one HMAC
        per packet unless a rekey is under way. The sender id is not yet authenticated;
        it only orders the attempts."""
        first = self._peer_key.get(sender)
        if first is not None:
            try:
                verify_tag(data, first)
                return first
            except WireError:
                pass
        for key in self._keys:
            if key is first:
                continue
            try:
                verify_tag(data, key)
                return key
            except WireError:
                continue
        raise WireError("bad mac")

    # ----------------------------------------------------------------- outbound
    def set_incarnation(self, incarnation: int) -> None:
        if incarnation <= self.incarnation:
            raise ValueError("incarnations must increase")
        self.incarnation = incarnation
        self.seq = 0

    def peer_version(self, nodeid: int) -> int:
        """The version to speak to a peer: ours until it is heard speaking an older one
        (an old node drops our newer packets but keeps sending its own, so the pair
        settles on the older version within one heartbeat; an upgraded peer is heard
        speaking the newer one again)."""
        return min(self.version, self._peer_version.get(nodeid, self.version))

    def seal(self, dest: int, msg: Message) -> tuple[int, bytes]:
        """Encode ``msg`` for ``dest``; returns (seq, packet bytes)."""
        self.seq += 1
        data = encode_packet(msg, key=self._key, cluster_id=self.cluster_id, sender=self.nodeid,
                             incarnation=self.incarnation, seq=self.seq,
                             version=self.peer_version(dest))
        return self.seq, data

    def seal_many(self, dests: Sequence[int], msg: Message) -> dict[int, bytes]:
        """Encode one message for several peers: once per protocol version spoken among
        them, under one seq each (every receiver keeps its own replay window, so one
        seq per receiver is all that matters). Returns the packet bytes per peer."""
        by_version: dict[int, bytes] = {}
        out = {}
        for dest in dests:
            version = self.peer_version(dest)
            if version not in by_version:
                self.seq += 1
                by_version[version] = encode_packet(
                    msg, key=self._key, cluster_id=self.cluster_id, sender=self.nodeid,
                    incarnation=self.incarnation, seq=self.seq, version=version)
            out[dest] = by_version[version]
        return out

    # ----------------------------------------------------------------- inbound
    def accept(self, data: bytes, addr: Address, now: float) -> Packet | None:
        """Return the packet, or None after counting and (rate-limited) logging the drop."""
        try:
            return self._accept(data, addr)
        except WireError as exc:
            self._drop(exc.reason, addr, now)
            return None

    def _accept(self, data: bytes, addr: Address) -> Packet:
        header = unpack_header(data)
        if header.version > self.version:  # this node runs an older protocol
            raise WireError("unsupported version")
        try:
            key = self._verify(data, header.sender)
        except WireError:
            self._auth_failures += 1
            raise
        if header.cluster_id != self.cluster_id:
            raise WireError("foreign cluster")
        if header.sender == self.nodeid or header.sender not in self.peers:
            raise WireError("unknown sender")
        expected = self.peers[header.sender]
        if tuple(addr[:2]) != tuple(expected):
            raise WireError("address mismatch")
        window = self._windows.get(header.sender)
        if window is not None:
            why = window.check(header.incarnation, header.seq)
            if why:
                raise WireError(why)
        payload = data[HEADER.size:HEADER.size + header.payload_len]
        try:
            msg = decode_payload(header.mtype, payload, header.version)
        except WireError as exc:
            raise WireError("malformed") from exc
        self._windows[header.sender] = (first_seen(header.incarnation, header.seq)
                                        if window is None else
                                        window.commit(header.incarnation, header.seq))
        self._peer_version[header.sender] = header.version
        self._peer_key[header.sender] = key
        self.accepted += 1
        return Packet(header, msg)

    def _drop(self, reason: str, addr: Address, now: float) -> None:
        self.drops[reason] += 1
        suppressed = self._rate.allow(reason, now)
        if suppressed is not None:
            logger.warning("node %d: dropped packet from %s: %s (%d of this kind so far, %d "
                           "similar lines suppressed)", self.nodeid, _fmt(addr), reason,
                           self.drops[reason], suppressed)
        if (reason in AUTH_REASONS and self._auth_failures >= AUTH_HINT_THRESHOLD
                and self._rate.allow("auth hint", now) is not None):
            logger.warning("node %d: %d packets failed authentication: check that every "
                               "node has the same /etc/cluster/authkey", self.nodeid,
                               self._auth_failures)


def _fmt(addr: Address) -> str:
    """Sanitized peer address for logs (never raw packet bytes)."""
    try:
        return f"{str(addr[0])[:64]}:{int(addr[1])}"
    except (TypeError, ValueError, IndexError):
        return "?"
