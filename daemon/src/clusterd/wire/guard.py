"""PacketGuard: the only way bytes from the network become messages, and back.

Inbound order of checks (cheap and unauthenticated first, payload last): length limits,
magic, version, cluster id, sender in the nodelist (and not ourselves), source address
equal to the sender's configured address; then the tag (v3: AES-GCM under the key of
that direction, v1/v2: HMAC) under the active key or another loaded one during a rekey
(``set_keys``); then no downgrade (an incarnation of a peer heard speaking a version
never speaks an older one), the sender's replay window (incarnation, seq), for v3 that
the packet was sealed for this node's current incarnation, and last the payload schema.
Outbound, a peer is spoken to in the highest version both speak: ours until it is heard
speaking an older one, with a heartbeat in ours now and then (``probe``) so that two
upgraded nodes find each other again.
Every drop is counted by reason and logged at most once per reason per ``LOG_INTERVAL``
seconds; past ``AUTH_HINT_THRESHOLD`` authentication failures a hint to compare the
authkey on every node is logged (S14). Only a fully accepted packet updates the replay
window, the peer's protocol version and its record (``seen``).

Freshness (v3). Every v3 packet names the receiver's incarnation as the sender knows it,
and a node accepts only packets naming its current one: nothing captured before it
restarted opens after. A node learns a peer's incarnation from the peer's authenticated
packets, also from those it refuses for naming an older incarnation of itself (the one
trace such a packet leaves: the node's next packets to that peer name it), so two nodes
that start together know each other after one exchange. The highest incarnation and
version accepted from each peer (``seen``) are persisted by the runtime and restored at
start (``seen=``): a restarted node refuses earlier incarnations of every peer, also of
peers that speak v1/v2 (whose packets carry no receiver incarnation), and names each
peer's incarnation in its first packets. A packet naming an incarnation of this node
above the running one means that this node lost its state dir while its clock is behind:
``newer_self`` records it (and who named it), and the runtime restarts above it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clusterd.errors import WireError
from clusterd.wire.codec import (
    PROTOCOL_VERSION,
    SEALED_VERSION,
    Header,
    Packet,
    frame,
    open_payload,
    unpack_header,
)
from clusterd.wire.keys import WireKeys
from clusterd.wire.messages import Heartbeat, Message, decode_payload, encode_payload
from clusterd.wire.replay import ReplayState, first_seen, floor

logger = logging.getLogger(__name__)

Address = tuple[str, int]
Record = tuple[int, int]  # (incarnation, highest protocol version accepted from it)
LOG_INTERVAL = 10.0
# A peer heard speaking an older version also gets every PROBE_EVERY-th heartbeat in this
# node's own version (``probe``): an old node drops it, an upgraded one answers in kind.
PROBE_EVERY = 8
AUTH_HINT_THRESHOLD = 20
AUTH_REASONS = frozenset({"bad mac"})
NOT_FRESH = "not for this incarnation"  # normal for a packet or two after any restart
QUIET_REASONS = frozenset({NOT_FRESH})  # logged at debug level only


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
                 peers: Mapping[int, Address], version: int = PROTOCOL_VERSION,
                 seen: Mapping[int, Record] | None = None):
        self.nodeid = nodeid
        self.cluster_id = cluster_id
        self._keys: tuple[WireKeys, ...] = (WireKeys(key),)  # active first, then others
        self._peer_key: dict[int, WireKeys] = {}  # the key that last verified each sender
        self.incarnation = incarnation
        self.peers = dict(peers)
        self.version = version  # highest version this node speaks
        self.seq = 0
        self.drops: Counter = Counter()
        self.accepted = 0
        self.newer_self = (0, 0)  # (incarnation, peer): the highest one of this node a
                                  # peer named, when above the running one
        self.seen_changed = False
        self._windows: dict[int, ReplayState] = {}
        self._peer_version: dict[int, int] = {}
        self._probes: dict[int, int] = {}
        self._seen: dict[int, Record] = {}
        self._known: dict[int, int] = {}  # each peer's incarnation, named in packets to it
        self._rate = _RateLimit()
        self._auth_failures = 0
        for peer, (inc, version_seen) in (seen or {}).items():
            self._windows[peer] = floor(inc)
            self._seen[peer] = (inc, version_seen)
            self._known[peer] = inc

    # ----------------------------------------------------------------- keys
    def set_keys(self, active: bytes, accepted: Sequence[bytes] = ()) -> None:
        """Seal with ``active`` from now on; accept packets sealed with it or with any of
        ``accepted`` (a rekey in progress). Peers' last-verified keys are kept only if
        still loaded."""
        loaded = {k.secret: k for k in self._keys}
        wanted = dict.fromkeys((active, *accepted))
        self._keys = tuple(loaded.get(s) or WireKeys(s) for s in wanted)
        self._peer_key = {p: k for p, k in self._peer_key.items() if k in self._keys}

    def peer_key(self, nodeid: int) -> bytes | None:
        """The key that verified ``nodeid``'s latest accepted packet (None: none yet)."""
        keys = self._peer_key.get(nodeid)
        return keys.secret if keys is not None else None

    def _authenticate(self, data: bytes, header: Header) -> tuple[WireKeys, bytes]:
        """Open the packet under the sender's last key first, then the others: one
        decryption per packet unless a rekey is under way. The sender id is not yet
        authenticated; it only orders the attempts."""
        first = self._peer_key.get(header.sender)
        order = self._keys if first is None else (first, *(k for k in self._keys
                                                            if k is not first))
        for keys in order:
            try:
                return keys, open_payload(data, header, keys, self.nodeid)
            except WireError:
                continue
        self._auth_failures += 1
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

    @property
    def heard_versions(self) -> dict[int, int]:
        """The protocol version last accepted from each peer heard so far (status)."""
        return dict(self._peer_version)

    def encrypts_to(self, nodeid: int) -> bool:
        """Whether what is sealed for ``nodeid`` now is encrypted (it speaks v3)."""
        return self.peer_version(nodeid) >= SEALED_VERSION

    def seal(self, dest: int, msg: Message) -> tuple[int, bytes]:
        """Encode ``msg`` for ``dest``; returns (seq, packet bytes)."""
        self.seq += 1
        version = self.peer_version(dest)
        mtype, payload = encode_payload(msg, version)
        return self.seq, self._frame(dest, mtype, payload, version)

    def probe(self, dest: int, msg: Message) -> bytes | None:
        """A copy of heartbeat ``msg`` in this node's own version for a peer heard speaking
        an older one, every ``PROBE_EVERY`` heartbeats to it (else None); sent besides the
        packet ``seal`` made. Without it two upgraded nodes that heard each other's old
        daemons would speak the old version to each other for ever: each hears the other
        speak it and answers in kind. An old peer drops the probe (``unsupported
        version``: its heartbeat came anyway); an upgraded one accepts it and speaks the
        new version from then on, and so does this node when it hears the answer."""
        if not isinstance(msg, Heartbeat) or self.peer_version(dest) >= self.version:
            return None
        count = self._probes.get(dest, 0) + 1
        self._probes[dest] = count
        if count % PROBE_EVERY:
            return None
        self.seq += 1
        mtype, payload = encode_payload(msg, self.version)
        return self._frame(dest, mtype, payload, self.version)

    def seal_many(self, dests: Sequence[int], msg: Message) -> dict[int, bytes]:
        """Encode one message for several peers: the payload once per protocol version,
        one seq for the call. v3 seals it for each destination (each direction has its
        own key, so one seq never repeats a nonce); an older version is framed once for
        all the peers that speak it (each receiver keeps its own replay window)."""
        self.seq += 1
        encoded: dict[int, tuple[int, bytes]] = {}
        clear: dict[int, bytes] = {}
        out = {}
        for dest in dests:
            version = self.peer_version(dest)
            if version not in encoded:
                encoded[version] = encode_payload(msg, version)
            if version >= SEALED_VERSION:
                out[dest] = self._frame(dest, *encoded[version], version)
            else:
                if version not in clear:
                    clear[version] = self._frame(dest, *encoded[version], version)
                out[dest] = clear[version]
        return out

    def _frame(self, dest: int, mtype: int, payload: bytes, version: int) -> bytes:
        return frame(mtype, payload, keys=self._keys[0], version=version,
                     cluster_id=self.cluster_id, sender=self.nodeid,
                     incarnation=self.incarnation, seq=self.seq, receiver=dest,
                     receiver_incarnation=self._known.get(dest, 0))

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
        if header.cluster_id != self.cluster_id:
            raise WireError("foreign cluster")
        sender, inc = header.sender, header.incarnation
        if sender == self.nodeid or sender not in self.peers:
            raise WireError("unknown sender")
        if tuple(addr[:2]) != tuple(self.peers[sender]):
            raise WireError("address mismatch")
        keys, payload = self._authenticate(data, header)
        seen = self._seen.get(sender)
        if seen is not None and seen[0] == inc and header.version < seen[1]:
            raise WireError("downgrade")
        window = self._windows.get(sender)
        why = window.check(inc, header.seq) if window is not None else None
        if why:
            raise WireError(why)
        if header.version >= SEALED_VERSION and header.receiver_incarnation != self.incarnation:
            self._known[sender] = max(self._known.get(sender, 0), inc)
            if header.version < self.peer_version(sender):
                # an authenticated first contact in an older sealed version: answer in it,
                # or an older peer (which drops our newer packets unread) never learns
                # our incarnation and the two never hear each other (v3 beside v4)
                self._peer_version[sender] = header.version
            if header.receiver_incarnation > self.incarnation:
                self.newer_self = max(self.newer_self, (header.receiver_incarnation, sender))
                raise WireError("for a later incarnation")
            raise WireError(NOT_FRESH)
        try:
            msg = decode_payload(header.mtype, payload, header.version)
        except WireError as exc:
            raise WireError("malformed") from exc
        self._commit(header, keys)
        return Packet(header, msg)

    def _commit(self, header: Header, keys: WireKeys) -> None:
        sender, inc = header.sender, header.incarnation
        window = self._windows.get(sender)
        self._windows[sender] = (first_seen(inc, header.seq) if window is None
                                 else window.commit(inc, header.seq))
        self._peer_version[sender] = header.version
        self._peer_key[sender] = keys
        self._known[sender] = max(self._known.get(sender, 0), inc)
        record = (inc, header.version)
        if self._seen.get(sender, (-1, -1)) < record:  # a later incarnation or version
            self._seen[sender] = record
            self.seen_changed = True
        self.accepted += 1

    def seen(self) -> dict[int, Record]:
        """The highest (incarnation, version) accepted from each peer (or restored)."""
        return dict(self._seen)

    def take_seen(self) -> dict[int, Record] | None:
        """``seen()`` if it changed since the last call, else None."""
        if not self.seen_changed:
            return None
        self.seen_changed = False
        return self.seen()

    def _drop(self, reason: str, addr: Address, now: float) -> None:
        self.drops[reason] += 1
        suppressed = self._rate.allow(reason, now)
        if suppressed is not None:
            level = logging.DEBUG if reason in QUIET_REASONS else logging.WARNING
            logger.log(level, "node %d: dropped packet from %s: %s (%d of this kind so far, "
                       "%d similar lines suppressed)", self.nodeid, _fmt(addr), reason,
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
