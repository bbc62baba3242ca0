"""ConfigSyncCore: one cluster.conf cluster-wide, as a sans-IO state machine.

Every node advertises (version, sha256 of the exact bytes) in its heartbeats; the host
feeds each advert to ``observe``. A node that sees a higher version pulls it from a
holder (``transfer.py``: in chunks over the authenticated channel, from another holder
after token/2) and checks the sha256. Validating a pulled config (``clusterd.conf.parse``:
up to a second for 1 MiB) must not hold up the host's event loop, so the core does not
call the validator then: it emits ``ValidateConfig`` and the host validates where it
likes (the daemon in a worker thread, the simulator at once) and feeds the outcome back
to ``on_validated``; if valid, the core emits ``WriteConfig`` (the runtime writes it
atomically 0640 root and applies it). An outcome for anything but the config awaiting
validation (a newer one was pulled meanwhile, or accepted) is ignored; one that never
comes is given up after ``VALIDATE_TIMEOUT`` and the config is pulled again.
``propose`` takes the host's own validation of a proposal (``validated=``); the injected
validator runs only for the config the core starts with and for a proposal the host did
not validate (tests).

Same version with other content is a conflict: nothing is pulled, the old config keeps
running, ``ConfigConflict`` is emitted on each side and ``status()['conflict']`` says so.
A newer config that cannot be validated here is remembered as rejected and never pulled
again; while a peer advertises it this node is ``held``: it steps down (membership keeps
it out of views) instead of looping. The newest side never steps down.

Changed only through quorum. A config is *accepted* when a quorate view has taken it: a
proposal is taken only on a quorate node (``propose``), a pulled config is accepted when
its holder runs it as accepted (heartbeats carry an ``unaccepted`` flag), and a config a
node started with but never saw accepted (its first start, or a node with no accepted
copy) is accepted once every member of a quorate view runs it. Every accepted config is
kept as the accepted copy (``WriteConfig.accepted``, ``ConfigAccepted``), and that copy is
what the node runs at its next start, whatever the file says (``startup.py``). What a
node pulls:

* an accepted config with a higher version, from anyone (the normal catch-up);
* an unaccepted one with a higher version only from a member of its own quorate view (a
  first start where the files differ), or, on a node that has no accepted config while no
  accepted config is in sight either (a new cluster whose files differ), from anyone;
  never from outside its view otherwise;
* when its own config is unaccepted and it is not in a quorate view, the cluster's
  accepted config, whatever its version (*adoption*): a node that comes back with a file
  edited while it was down (or a fresh node) runs what the cluster accepted, and its own
  file is handed back as ``ConfigDisplaced`` (the runtime keeps it as a pending proposal
  and says how to propose it). Until then it is ``held`` (out of views), and accepted
  nodes do not admit a joiner that runs an unaccepted config other than theirs.

So a minority, or a node alone with an edited file, never installs its config anywhere.
"""

from __future__ import annotations

import logging
from typing import Any

from clusterd.configsync.model import (
    Advert,
    Outcome,
    Running,
    ValidateConfig,
    Validating,
    Validator,
    sha256_hex,
    versioned,
)
from clusterd.configsync.transfer import Transfer
from clusterd.errors import ClusterError, ConfigError, ControlError
from clusterd.events import (
    ConfigAccepted,
    ConfigConflict,
    ConfigDisplaced,
    ConfigRejected,
    OutputBuffer,
    Outputs,
    WriteConfig,
)
from clusterd.wire.messages import MAX_CONFIG_BYTES, ConfigChunk, ConfigRequest, Message

logger = logging.getLogger(__name__)

VALIDATE_TIMEOUT = 60.0  # seconds the host may take to answer a ValidateConfig


def _rank(accepted: bool, version: int, sha256: str) -> tuple[bool, int, str]:
    """Which of two candidate configs to pull: an accepted one first, then the newest."""
    return (accepted, version, sha256)


class ConfigSyncCore:
    def __init__(self, nodeid: int, data: bytes | None, validator: Validator, token: float,
                 *, accepted: bool = True):
        """``accepted``: a quorate view accepted ``data`` (it is the node's accepted copy);
        False for a first start or a file no quorate view has accepted yet."""
        self.me = nodeid
        self._validate = validator
        self.token = token
        version = 0
        if data is not None:
            version = self._checked(data).version
        self.running = Running.of(data, version)
        self.accepted = accepted and data is not None
        self.members: frozenset[int] = frozenset()  # my view (host: set_view)
        self.quorate = False                          # ... and whether it is quorate
        self.adverts: dict[int, Advert] = {}
        self.rejected: dict[tuple[int, str], str] = {}
        self.conflicts: dict[int, tuple[int, str]] = {}
        self.unaccepted_peers: dict[int, tuple[int, str]] = {}  # reported, not installed
        self.validating: Validating | None = None
        self._adverts_rev = 0   # bumped when any peer's advertised (version, sha, accepted) changes
        self._held: tuple[tuple, bool] | None = None   # (its inputs, held) last computed
        self._out = OutputBuffer()
        self.transfer = Transfer(nodeid, self._out)  # the pull in progress, if any

    def _checked(self, data: bytes, validated: Any = None) -> Any:
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError([], source=f"config of {len(data)} bytes (over 1 MiB)")
        result = self._validate(data) if validated is None else validated
        return versioned(result)

    # ------------------------------------------------------------------ inputs
    def observe(self, peer: int, version: int, sha256: str, now: float, *,
                accepted: bool = True) -> Outputs:
        prev = self.adverts.get(peer)
        self.adverts[peer] = Advert(version, sha256, now, accepted)
        if prev is None or (prev.version, prev.sha256, prev.accepted) != (version, sha256,
                                                                         accepted):
            self._adverts_rev += 1
        mine = self.running
        if (prev is not None and now - prev.heard_at < self.token
                and (prev.version, prev.sha256, prev.accepted) == (version, sha256, accepted)
                and (version, sha256) == (mine.version, mine.sha256)
                and (self.accepted or not accepted)):
            # the routine heartbeat: a fresh peer that ran my config still runs it, and
            # nothing it says can be news (no pull, no acceptance, no conflict). Skipping
            # the pass over every peer keeps a heartbeat O(1) here: O(n) per heartbeat was
            # O(n^2) per round per node (the simulator at 40 nodes spent more time here
            # than in the membership core)
            return self._out.take()
        if accepted and not self.accepted and (version, sha256) == (mine.version, mine.sha256) \
                and mine.version > 0:
            self._mark_accepted(f"node {peer} runs it as accepted")
        self._note_unaccepted(peer, version, sha256, accepted)
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
        self.transfer.retry(now, self.token, self._holders)
        self._maybe_pull(now)
        return self._out.take()

    def next_deadline(self) -> float:
        """When ``tick`` next has work (a pull to retry on another holder, a validation
        given up)."""
        pull = self.transfer.pull
        return min(pull.deadline if pull is not None else float("inf"),
                   self.validating.deadline if self.validating is not None else float("inf"))

    def on_message(self, sender: int, msg: Message, now: float) -> Outputs:
        if isinstance(msg, ConfigRequest):
            self.transfer.serve(sender, msg, self.running)
        elif isinstance(msg, ConfigChunk):
            self._on_chunk(sender, msg, now)
        return self._out.take()

    def set_view(self, members: frozenset[int], quorate: bool, now: float) -> Outputs:
        """The host's current view (empty: none) and whether it is quorate. A running
        config that every member of a quorate view runs is accepted here."""
        before = (self.members, self.quorate, self.accepted)
        self.members, self.quorate = members, quorate and self.me in members
        r = self.running
        if not self.accepted and self.quorate and r.version > 0:
            peers = members - {self.me}
            if all((a := self.adverts.get(p)) is not None and now - a.heard_at < self.token
                   and (a.version, a.sha256) == (r.version, r.sha256) for p in peers):
                self._mark_accepted(f"every member of quorate view {sorted(members)} runs it")
        if (self.members, self.quorate, self.accepted) != before or not self.accepted:
            # (the same view, quorum and acceptance: what a pull depends on here has not
            # changed since the last pass; the host calls this after every heartbeat)
            self._maybe_pull(now)
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
        self._install(data, parsed.version, f"proposed on quorate node {self.me}",
                      accepted=True)
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
        if not self._still_wanted(v.version, v.sha256, v.accepted):
            pass  # overtaken (a newer config was installed meanwhile): never go back
        elif isinstance(outcome, ClusterError):
            self._reject(key, f"invalid: {outcome}")
        elif versioned(outcome).version != v.version:
            self._reject(key, f"advertised as version {v.version} but the file says "
                         f"{outcome.version}")
        else:
            adopted = not self.accepted and not self.quorate and v.accepted
            self._install(v.data, v.version, f"pulled from node {v.sender}"
                          + (", the cluster's accepted config" if adopted else ""),
                          accepted=v.accepted, adopted=adopted)
        self._maybe_pull(now)
        return self._out.take()

    # ------------------------------------------------------------------ status
    @property
    def held(self) -> bool:
        """Stay out of views: a newer config exists that this node cannot apply, or this
        node's config is unaccepted while the cluster's accepted one is being adopted."""
        r = self.running
        key = (self._adverts_rev, r.version, r.sha256, len(self.rejected), self.accepted,
               self.quorate)
        if self._held is None or self._held[0] != key:
            # memoised: read after every heartbeat, and a pass over every peer's advert
            self._held = (key, self._compute_held())
        return self._held[1]

    def _compute_held(self) -> bool:
        r = self.running
        return any((a.version > r.version and (a.version, a.sha256) in self.rejected)
                   or (self._adopting() and a.accepted
                       and (a.version, a.sha256) != (r.version, r.sha256)
                       and (a.version, a.sha256) not in self.rejected)
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
                "config_accepted": self.accepted,
                "unaccepted_peers": [{"node": p, "version": v, "sha256": s}
                                     for p, (v, s) in sorted(self.unaccepted_peers.items())],
                "config_holders": self.holders(now),
                "conflict": [{"node": p, "version": v, "sha256": s}
                             for p, (v, s) in sorted(self.conflicts.items())],
                "held": self.held,
                "pulling": None if self.transfer.pull is None else self.transfer.pull.version,
                "validating": None if self.validating is None else self.validating.version}

    # ------------------------------------------------------------------ pulling
    def _holders(self, version: int, sha: str, now: float) -> set[int]:
        return {p for p, a in self.adverts.items()
                if (a.version, a.sha256) == (version, sha) and now - a.heard_at < self.token}

    def _adopting(self) -> bool:
        """Unaccepted here and not in a quorate view: the cluster's accepted config wins."""
        return not self.accepted and not self.quorate

    def _wanted(self, peer: int, a: Advert, now: float) -> bool:
        r = self.running
        if now - a.heard_at >= self.token or (a.version, a.sha256) == (r.version, r.sha256):
            return False
        if (a.version, a.sha256) in self.rejected:
            return False
        if a.accepted:
            return a.version > r.version or self._adopting()
        if a.version <= r.version:
            return False
        if self.quorate and peer in self.members and not self.accepted:
            # a first start: the files of my quorate view's members differ. Never once a
            # config is accepted here: a member's unaccepted higher version is then a file
            # edited on a node that lost its accepted copy and restarted (still a member
            # by nodeid until the view drops its old incarnation); the whole quorate
            # cluster installed it (seed 1024797792538) and split from that node for good
            return True
        # no config is accepted here nor anywhere in sight (a new cluster whose files
        # differ, none quorate alone): the newest one wins, as it did before acceptance
        return not self.accepted and not self._accepted_in_sight(now)

    def _accepted_in_sight(self, now: float) -> bool:
        return any(a.accepted and now - a.heard_at < self.token for a in self.adverts.values())

    def _still_wanted(self, version: int, sha256: str, accepted: bool) -> bool:
        """Whether a config pulled as (version, accepted) may still be installed."""
        if (version, sha256) == (self.running.version, self.running.sha256):
            return False
        return version > self.running.version or (accepted and self._adopting())

    def _maybe_pull(self, now: float) -> None:
        best: tuple[bool, int, str] | None = None
        holders: set[int] = set()
        v = self.validating
        for peer, a in self.adverts.items():
            if not self._wanted(peer, a, now):
                continue
            rank = _rank(a.accepted, a.version, a.sha256)
            if v is not None and rank <= _rank(v.accepted, v.version, v.sha256):
                continue  # pulled already (or behind that): its validation is due
            if best is None or rank > best:
                best, holders = rank, {peer}
            elif rank == best:
                holders.add(peer)
        if best is None:
            self.transfer.cancel()
            return
        p = self.transfer.pull
        if p is not None and _rank(p.accepted, p.version, p.sha256) >= best:
            return
        accepted, version, sha = best
        holder = min(holders)
        logger.info("node %d: node %d holds %sconfig_version %d (running %d%s): pulling it",
                    self.me, holder, "" if accepted else "the proposed ", version,
                    self.running.version, "" if self.accepted else ", not accepted here")
        self.transfer.start(version, sha, holder, accepted, now, self.token)

    def _on_chunk(self, sender: int, msg: ConfigChunk, now: float) -> None:
        p = self.transfer.on_chunk(sender, msg, now, self.token)
        if p is None:
            return  # not the pull in progress, or more chunks to come
        data = bytes(p.buf)
        key = (msg.version, msg.sha256)
        if not self._still_wanted(msg.version, msg.sha256, p.accepted):
            return  # overtaken (a newer config was installed meanwhile): never go back
        if sha256_hex(data) != msg.sha256:
            self._reject(key, "the bytes received do not match the advertised sha256")
            return
        if len(data) > MAX_CONFIG_BYTES:
            self._reject(key, f"invalid: config of {len(data)} bytes (over 1 MiB)")
            return
        self.validating = Validating(msg.version, msg.sha256, data, sender,
                                      now + VALIDATE_TIMEOUT, p.accepted)
        self._out.emit(ValidateConfig(msg.version, msg.sha256, data))  # type: ignore[arg-type]

    def _reject(self, key: tuple[int, str], reason: str) -> None:
        self.rejected[key] = reason
        logger.error("node %d: refusing config_version %d (sha256 %s): %s; keeping version %d "
                     "and staying out of the cluster until a valid newer config exists",
                     self.me, key[0], key[1][:12], reason, self.running.version)
        self._out.emit(ConfigRejected(key[0], key[1], reason))

    def _install(self, data: bytes, version: int, reason: str, *, accepted: bool,
                 adopted: bool = False) -> None:
        if self.transfer.pull is not None and self.transfer.pull.version <= version:
            self.transfer.cancel()
        if self.validating is not None and self.validating.version <= version:
            self.validating = None  # its outcome, when it comes, is stale
        old = self.running
        new = Running.of(data, version)
        if adopted and old.version > 0 and old.version >= version:
            why = (f"config_version {old.version} (sha256 {old.sha256[:12]}) here was never "
                   f"accepted by a quorate view; the cluster runs config_version {version} "
                   f"(sha256 {new.sha256[:12]}), which replaces it")
            logger.error("node %d: %s", self.me, why)
            self._out.emit(ConfigDisplaced(old.data, old.version, old.sha256, version,
                                           new.sha256, why))
        self.running = new
        self.accepted = accepted
        self.conflicts.clear()
        self.unaccepted_peers.clear()
        logger.info("node %d: config_version %d installed, %s (%s)", self.me, version,
                    "accepted" if accepted else "awaiting acceptance by the quorate view",
                    reason)
        self._out.emit(WriteConfig(data, version, new.sha256, reason, accepted))

    def _mark_accepted(self, reason: str) -> None:
        r = self.running
        self.accepted = True
        logger.info("node %d: config_version %d (sha256 %s) accepted: %s", self.me, r.version,
                    r.sha256[:12], reason)
        self._out.emit(ConfigAccepted(r.data, r.version, r.sha256, reason))

    def _note_unaccepted(self, peer: int, version: int, sha256: str, accepted: bool) -> None:
        """Say once, on this side, that a peer outside the view runs a config no quorate
        view accepted, and that it is not taken (the peer says so on its side)."""
        r = self.running
        if accepted or (version, sha256) == (r.version, r.sha256) or peer in self.members:
            self.unaccepted_peers.pop(peer, None)
            return
        if self.unaccepted_peers.get(peer) == (version, sha256):
            return
        self.unaccepted_peers[peer] = (version, sha256)
        if not self.accepted:
            logger.error("node %d: node %d runs config_version %d (sha256 %s) and this node "
                         "config_version %d (sha256 %s); no quorate view has accepted either "
                         "(a first start with different files?): they do not join one view, "
                         "and the file that a quorate group of nodes runs is accepted; give "
                         "every node the same cluster.conf", self.me, peer, version,
                         sha256[:12], r.version, r.sha256[:12])
            return
        logger.error("node %d: node %d runs config_version %d (sha256 %s), which no quorate "
                     "view accepted; this cluster runs config_version %d (sha256 %s): not "
                     "installing it and not admitting node %d until it adopts ours (it keeps "
                     "its file as a pending proposal: propose it there once it is a member, "
                     "or delete it)", self.me, peer, version, sha256[:12], r.version,
                     r.sha256[:12], peer)
