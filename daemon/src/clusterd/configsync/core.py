"""ConfigSyncCore: one cluster.conf cluster-wide, as a sans-IO state machine.

Every node advertises (version, sha256 of the exact bytes) in its heartbeats; the host
feeds each advert to ``observe``. A node that sees a higher version pulls it from a
holder in ``CONFIG_CHUNK_BYTES`` chunks over the authenticated channel (request/response,
retried on another holder after token/2) and checks the sha256. Validating a pulled
config (``clusterd.conf.parse``: up to a second for 1 MiB) must not hold up the host's
event loop, so the core does not call the validator then: it emits ``ValidateConfig`` and
the host validates where it likes (the daemon in a worker thread, the simulator at once)
and feeds the outcome back to ``on_validated``; if valid, the core emits ``WriteConfig``
(the runtime writes it atomically 0640 root and applies it). An outcome for anything but
the config awaiting validation (a newer one was pulled meanwhile, or accepted) is
ignored; one that never comes is given up after ``VALIDATE_TIMEOUT`` and the config is
pulled again. ``propose`` takes the host's own validation of a proposal (``validated=``);
the injected validator runs only for the config the core starts with and for a proposal
the host did not validate (tests).

Same version with other content is a conflict: nothing is pulled, the old config keeps
running, ``ConfigConflict`` is emitted on each side and ``status()['conflict']`` says so.
A newer config that cannot be validated here is remembered as rejected and never pulled
again; while a peer advertises it this node is ``held``: it steps down (membership keeps
it out of views) instead of looping. The newest side never steps down.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clusterd.errors import ClusterError, ConfigError, ControlError
from clusterd.membership.events import (
    ConfigConflict,
    ConfigRejected,
    OutputBuffer,
    Outputs,
    WriteConfig,
)
from clusterd.wire.messages import (
    CONFIG_CHUNK_BYTES,
    MAX_CONFIG_BYTES,
    ConfigChunk,
    ConfigRequest,
    Message,
)

logger = logging.getLogger(__name__)

Validator = Callable[[bytes], Any]  # returns an object with ``.version``; raises ConfigError
VALIDATE_TIMEOUT = 60.0  # seconds the host may take to answer a ValidateConfig


@dataclass(frozen=True)
class ValidateConfig:
    """Validate these pulled bytes off the event loop; answer with ``on_validated``."""

    version: int
    sha256: str
    data: bytes = field(repr=False)


Outcome = Any  # what the validator returned, or the ClusterError it raised


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Running:
    version: int
    sha256: str
    data: bytes

    @classmethod
    def of(cls, data: bytes | None, version: int) -> Running:
        return cls(0, "", b"") if data is None else cls(version, sha256_hex(data), data)


@dataclass(frozen=True)
class Advert:
    version: int
    sha256: str
    heard_at: float


@dataclass
class _Pull:
    version: int
    sha256: str
    holder: int
    buf: bytearray
    deadline: float
    tried: set[int]


@dataclass(frozen=True)
class _Validating:
    version: int
    sha256: str
    data: bytes
    sender: int
    deadline: float


class ConfigSyncCore:
    def __init__(self, nodeid: int, data: bytes | None, validator: Validator, token: float):
        self.me = nodeid
        self._validate = validator
        self.token = token
        version = 0
        if data is not None:
            version = self._checked(data).version
        self.running = Running.of(data, version)
        self.adverts: dict[int, Advert] = {}
        self.rejected: dict[tuple[int, str], str] = {}
        self.conflicts: dict[int, tuple[int, str]] = {}
        self.pull: _Pull | None = None
        self.validating: _Validating | None = None
        self._out = OutputBuffer()

    def _checked(self, data: bytes, validated: Any = None) -> Any:
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError([], source=f"config of {len(data)} bytes (over 1 MiB)")
        result = self._validate(data) if validated is None else validated
        return _versioned(result)

    # ------------------------------------------------------------------ inputs
    def observe(self, peer: int, version: int, sha256: str, now: float) -> Outputs:
        self.adverts[peer] = Advert(version, sha256, now)
        mine = self.running
        if version == mine.version and sha256 != mine.sha256 and mine.version > 0:
            if self.conflicts.get(peer) != (version, sha256):
                self.conflicts[peer] = (version, sha256)
                reason = (f"node {peer} runs config_version {version} with different content "
                          f"(sha256 {sha256[:12]} vs local {mine.sha256[:12]}): refusing it, "
                          "keeping the running config; raise config_version on the right one")
                logger.error("node %d: CONFIG CONFLICT: %s", self.me, reason)
                self._out.emit(ConfigConflict(peer, version, mine.sha256, sha256, reason))
        else:
            self.conflicts.pop(peer, None)
        self._maybe_pull(now)
        return self._out.take()

    def tick(self, now: float) -> Outputs:
        v = self.validating
        if v is not None and now >= v.deadline:
            logger.warning("node %d: no validation of config_version %d (sha256 %s) within "
                           "%gs; pulling it again", self.me, v.version, v.sha256[:12],
                           VALIDATE_TIMEOUT)
            self.validating = None
        p = self.pull
        if p is not None and now >= p.deadline:
            holders = self._holders(p.version, p.sha256, now) - p.tried
            if not holders:
                p.tried.clear()
                holders = self._holders(p.version, p.sha256, now)
            if not holders:
                logger.info("node %d: no holder of config_version %d is reachable; giving up "
                            "for now", self.me, p.version)
                self.pull = None
            else:
                p.holder = min(holders)
                p.tried.add(p.holder)
                self._request(now)
        self._maybe_pull(now)
        return self._out.take()

    def next_deadline(self) -> float:
        """When ``tick`` next has work (a pull to retry on another holder, a validation
        given up)."""
        return min(self.pull.deadline if self.pull is not None else float("inf"),
                   self.validating.deadline if self.validating is not None else float("inf"))

    def on_message(self, sender: int, msg: Message, now: float) -> Outputs:
        if isinstance(msg, ConfigRequest):
            mine = self.running
            if (msg.version, msg.sha256) == (mine.version, mine.sha256) and mine.version > 0 \
                    and msg.offset <= len(mine.data):
                chunk = mine.data[msg.offset:msg.offset + CONFIG_CHUNK_BYTES]
                self._out.send(sender, ConfigChunk(mine.version, mine.sha256, msg.offset,
                                                   len(mine.data), chunk))
        elif isinstance(msg, ConfigChunk):
            self._on_chunk(sender, msg, now)
        return self._out.take()

    def propose(self, data: bytes, quorate: bool, now: float, *,
                validated: Any = None) -> Outputs:
        """A new config from the control socket, with the host's validation of it
        (``validated``: what the validator returned; None: validate here). Raises
        ConfigError (invalid) or ControlError (version does not rise, not quorate);
        nothing changes then."""
        parsed = self._checked(data, validated)
        if parsed.version <= self.running.version:
            raise ControlError("version", f"config_version {parsed.version} must be greater "
                               f"than the running {self.running.version}")
        if not quorate:
            raise ControlError("quorum", "this node is not quorate: a new config is accepted "
                               "only by a quorate cluster")
        self._accept(data, parsed.version, f"proposed on node {self.me}")
        return self._out.take()

    def on_validated(self, sha256: str, outcome: Outcome, now: float) -> Outputs:
        """The host's answer to ``ValidateConfig(sha256=...)``: what the validator
        returned, or the ClusterError it raised (TypeError if it is neither). Ignored
        unless that config still awaits validation (a newer one was pulled meanwhile, or
        one was accepted)."""
        v = self.validating
        if v is None or v.sha256 != sha256:
            logger.debug("node %d: stale validation of sha256 %s ignored", self.me, sha256[:12])
            return self._out.take()
        self.validating = None
        key = (v.version, v.sha256)
        if v.version <= self.running.version:
            pass  # overtaken (a newer config was accepted meanwhile): never go back
        elif isinstance(outcome, ClusterError):
            self._reject(key, f"invalid: {outcome}")
        elif _versioned(outcome).version != v.version:
            self._reject(key, f"advertised as version {v.version} but the file says "
                         f"{outcome.version}")
        else:
            self._accept(v.data, v.version, f"pulled from node {v.sender}")
        self._maybe_pull(now)
        return self._out.take()

    # ------------------------------------------------------------------ status
    @property
    def held(self) -> bool:
        """A newer config exists that this node cannot apply: stay out of views."""
        return any(a.version > self.running.version and (a.version, a.sha256) in self.rejected
                   for a in self.adverts.values())

    def holders(self, now: float, among: frozenset[int] | None = None) -> int:
        """How many nodes (this one included) hold the running (version, sha256)."""
        r = self.running
        peers = self._holders(r.version, r.sha256, now)
        if among is not None:
            peers &= among
        return len(peers) + (1 if r.version > 0 else 0)

    def status(self, now: float) -> dict[str, Any]:
        return {"config_version": self.running.version, "config_sha256": self.running.sha256,
                "config_holders": self.holders(now),
                "conflict": [{"node": p, "version": v, "sha256": s}
                             for p, (v, s) in sorted(self.conflicts.items())],
                "held": self.held,
                "pulling": None if self.pull is None else self.pull.version,
                "validating": None if self.validating is None else self.validating.version}

    # ------------------------------------------------------------------ pulling
    def _holders(self, version: int, sha: str, now: float) -> set[int]:
        return {p for p, a in self.adverts.items()
                if (a.version, a.sha256) == (version, sha) and now - a.heard_at < self.token}

    def _maybe_pull(self, now: float) -> None:
        best = None
        for a in self.adverts.values():
            if now - a.heard_at >= self.token or a.version <= self.running.version:
                continue
            if (a.version, a.sha256) in self.rejected:
                continue
            v = self.validating
            if v is not None and (a.version, a.sha256) <= (v.version, v.sha256):
                continue  # pulled already (or older than that): its validation is due
            if best is None or (a.version, a.sha256) > best:
                best = (a.version, a.sha256)
        if best is None:
            self.pull = None
            return
        if self.pull is not None and (self.pull.version, self.pull.sha256) >= best:
            return
        holder = min(self._holders(*best, now))
        self.pull = _Pull(best[0], best[1], holder, bytearray(), now, {holder})
        logger.info("node %d: node %d holds config_version %d (running %d): pulling it",
                    self.me, holder, best[0], self.running.version)
        self._request(now)

    def _request(self, now: float) -> None:
        p = self.pull
        assert p is not None
        p.deadline = now + self.token / 2
        self._out.send(p.holder, ConfigRequest(p.version, p.sha256, len(p.buf)))

    def _on_chunk(self, sender: int, msg: ConfigChunk, now: float) -> None:
        p = self.pull
        if p is None or (msg.version, msg.sha256) != (p.version, p.sha256) \
                or msg.offset != len(p.buf):
            return
        p.buf += msg.data
        if len(p.buf) < msg.total:
            if not msg.data:
                return  # a holder that sends nothing: time out and try another
            p.holder = sender
            self._request(now)
            return
        data = bytes(p.buf)
        self.pull = None
        key = (msg.version, msg.sha256)
        if msg.version <= self.running.version:
            return  # overtaken (a newer config was accepted meanwhile): never go back
        if sha256_hex(data) != msg.sha256:
            self._reject(key, "the bytes received do not match the advertised sha256")
            return
        if len(data) > MAX_CONFIG_BYTES:
            self._reject(key, f"invalid: config of {len(data)} bytes (over 1 MiB)")
            return
        self.validating = _Validating(msg.version, msg.sha256, data, sender,
                                      now + VALIDATE_TIMEOUT)
        self._out.emit(ValidateConfig(msg.version, msg.sha256, data))  # type: ignore[arg-type]

    def _reject(self, key: tuple[int, str], reason: str) -> None:
        self.rejected[key] = reason
        logger.error("node %d: refusing config_version %d (sha256 %s): %s; keeping version %d "
                     "and staying out of the cluster until a valid newer config exists",
                     self.me, key[0], key[1][:12], reason, self.running.version)
        self._out.emit(ConfigRejected(key[0], key[1], reason))

    def _accept(self, data: bytes, version: int, reason: str) -> None:
        if self.pull is not None and self.pull.version <= version:
            self.pull = None
        if self.validating is not None and self.validating.version <= version:
            self.validating = None  # its outcome, when it comes, is stale
        self.running = Running.of(data, version)
        self.conflicts.clear()
        logger.info("node %d: config_version %d accepted (%s)", self.me, version, reason)
        self._out.emit(WriteConfig(data, version, self.running.sha256, reason))


def _versioned(result: Any) -> Any:
    if type(getattr(result, "version", None)) is not int:
        raise TypeError("the config validator must return an object with an int .version")
    return result
