"""Deterministic simulator: N ClusterCores on a virtual clock and a faulty network.

Everything random comes from one ``random.Random(seed)``. The network can lose, delay,
duplicate and reorder packets, partition nodes symmetrically or one way; nodes can be
paused (no ticks; packets wait in the socket buffer), crashed and restarted (new
incarnation; config, incarnation and the peers' incarnations kept on "disk" unless wiped
or lost). After every step ``check_safety`` asserts the invariants; ``check_converged``
asserts convergence after faults heal. A broken invariant raises ``Violation`` (an
AssertionError) that carries the invariant's name.

Time. ``SimNet.now`` is the real (virtual) time that orders events; every node reads its
own clocks (``NodeClock``): a monotonic clock ``offset + rate * t`` (what the core gets as
``now``, via ``node_now``) and a wall clock (incarnations and the heartbeat grid at start).
Per-node faults beyond the network: clock offset and rate drift, freezes (a suspended VM:
its monotonic clock stops, see ``freeze``), wall-clock jumps, receiver (socket) restarts,
and the loss of the state dir. A per-node part added later (e.g. the services layer)
keeps its state in ``SimNode.parts`` and reads time only through ``node_now``. Packets
are real bytes: sealed (v3 and later: encrypted; older versions: HMAC) and opened by the
receiver's guard; each carries the real time it was sent (``_deliver``). ``tap`` (a list)
receives every datagram sent, for tests that inspect the traffic. A node that learns a peer has seen a
later incarnation of it restarts above it, as systemd restarts clusterd.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clusterd.conf import ClusterConf, parse
from clusterd.configsync.model import ValidateConfig, sha256_hex
from clusterd.configsync.startup import choose
from clusterd.errors import ClusterError
from clusterd.events import (
    ConfigAccepted,
    ConfigDisplaced,
    ViewInstalled,
    WriteConfig,
)
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.host import (
    ClusterCore,
    HostOutput,
    IncarnationOutdated,
    PeersSeen,
)
from clusterd.node.transport import READ_BATCH
from clusterd.wire.codec import PROTOCOL_VERSION

KEY = b"k" * 256
TICK_FRACTION = 8  # ticks per token
INCREMENTAL_FULL_EVERY = 0.25  # virtual seconds between whole checks in incremental mode
# the wall clock at virtual time 0, far from zero as a real one is: a wall clock stepped
# back (or an RTC behind) must not clamp incarnations (ms of wall time) to one value that
# an earlier life of the node already used (a sim artifact that seed 799335356054 hit)
WALL_EPOCH = 1_000_000.0


class Violation(AssertionError):
    """A broken invariant: ``name`` says which (the shrinker keeps a subset of faults only
    if it breaks the same one)."""

    def __init__(self, name: str, detail: str):
        super().__init__(f"invariant {name!r} violated: {detail}")
        self.name = name


def violated(name: str, detail: str) -> None:
    raise Violation(name, detail)


@dataclass
class NodeClock:
    """One node's clocks at real time ``t``: monotonic ``offset + rate * t`` (CLOCK_MONOTONIC:
    what every ``now`` the core gets comes from), wall ``WALL_EPOCH + wall_offset + t``
    (CLOCK_REALTIME: NTP keeps it near real time; a jump moves ``wall_offset``). Defaults:
    the shared clock."""
    offset: float = 0.0
    rate: float = 1.0
    wall_offset: float = 0.0

    def mono(self, t: float) -> float:
        return self.offset + self.rate * t

    def wall(self, t: float) -> float:
        return WALL_EPOCH + self.wall_offset + t


@functools.lru_cache(maxsize=4096)
def sim_config(version: int, body: str = "", *, n: int = 3, extra: str = "") -> bytes:
    """A real cluster.conf (canonical bytes) for the simulated cluster: ``body`` makes
    configs of one version differ (it names an idle service); ``"INVALID"`` in it adds an
    element the real validator refuses; ``extra`` is raw XML inside ``<cluster>``."""
    nodes = "".join(f'<clusternode name="node{i}" nodeid="{i}" votes="1"/>'
                    for i in range(1, n + 1))
    tag = hashlib.sha256(body.encode()).hexdigest()[:10]
    bogus = "<INVALID/>" if "INVALID" in body else ""
    xml = (f'<?xml version="1.0"?>\n<cluster name="simcluster" config_version="{version}">'
           f'{extra}{bogus}<clusternodes>{nodes}</clusternodes>'
           f'<rm><service name="s-{tag}" autostart="0"/></rm></cluster>\n')
    if bogus:
        return xml.encode()
    return parse(xml.encode(), source="sim").canonical_bytes()


@functools.lru_cache(maxsize=1024)
def sim_validator(data: bytes) -> ClusterConf:
    """The real validator (clusterd.conf.parse), as the daemon runs it on a pulled config
    (memoised: thousands of schedules validate the same few files; a ClusterConf is
    immutable, and a refusal is raised again each time, never cached)."""
    return parse(data, source="cluster.conf")


def validated(core: ClusterCore, data: bytes) -> Any:
    """What the runtime feeds back for a ValidateConfig: the validator's result, or the
    ClusterError it raised."""
    try:
        return core.validate(data)
    except ClusterError as exc:
        return exc


def make_config(n: int, *, token_ms: int = 1000, two_node: bool = False,
                votes: dict[int, int] | None = None) -> MembershipConfig:
    nodes = tuple(NodeSpec(f"node{i}", i, (votes or {}).get(i, 1), f"198.18.0.{i}")
                  for i in range(1, n + 1))
    return MembershipConfig("simcluster", nodes, token_ms=token_ms, two_node=two_node,
                            expected_votes=1 if two_node else 0)


@dataclass
class SimNode:
    nodeid: int
    core: ClusterCore | None = None
    alive: bool = False
    paused: bool = False
    disk: bytes | None = None          # cluster.conf
    copy: bytes | None = None          # the accepted copy (STATE_DIR/cluster.conf.accepted)
    pending: list[bytes] = field(default_factory=list)  # files kept as pending proposals
    incarnation: int = 0
    seen: dict[int, tuple[int, int]] = field(default_factory=dict)  # persisted peers
    life: int = 0  # bumped at every start; stale timers of an older life are ignored
    buffered: list[tuple[bytes, tuple[str, int], float]] = field(default_factory=list)
    events: list[tuple[float, Any]] = field(default_factory=list)  # (real time, event)
    clock: NodeClock = field(default_factory=NodeClock)
    frozen: bool = False               # a suspended VM (paused, and its clock stopped)
    rx_epoch: int = 0                  # bumped when the receiving socket restarts
    rx_down_until: float = float("-inf")  # the socket is closed until then (real time)
    met_all: bool = False              # in a view with every configured node since start
    resumed_at: float = float("-inf")  # real time of the last resume from a freeze
    # resumed from a freeze with a stopped clock (its clock reading then) and not yet read
    # a packet sent after the resume: how much time it lost is unknown to it (see
    # check_safety); None otherwise
    blind_since: float | None = None
    parts: dict[str, Any] = field(default_factory=dict)  # per-node parts added later


class SimNet:
    def __init__(self, n: int, seed: int, *, token_ms: int = 1000, two_node: bool = False,
                 configs: dict[int, bytes | None] | None = None, loss: float = 0.0,
                 dup: float = 0.0, delay: tuple[float, float] = (0.0005, 0.005),
                 votes: dict[int, int] | None = None, start: bool = True,
                 validators: dict[int, Callable[[bytes], Any]] | None = None,
                 versions: dict[int, int] | None = None, fresh: bool = False,
                 clocks: dict[int, NodeClock] | None = None, incremental: bool = False):
        """``fresh``: a cluster's first start (no node has an accepted copy); otherwise
        each node's initial config is also its accepted copy (a cluster that ran).
        ``clocks``: per-node clocks (default: every node reads the shared clock).
        ``incremental``: check the invariants incrementally (``_check_node``), for
        clusters of tens or hundreds of nodes where a whole check after every event is
        quadratic."""
        self.rng = random.Random(seed)
        self.seed = seed
        self.cfg = make_config(n, token_ms=token_ms, two_node=two_node, votes=votes)
        self.now = 0.0
        self.loss, self.dup, self.delay = loss, dup, delay
        self.blocked: set[tuple[int, int]] = set()  # (src, dst) pairs that drop
        self.nodes = {i: SimNode(i, disk=(configs or {}).get(i, sim_config(1)))
                      for i in self.cfg.nodeids}
        for node in self.nodes.values():
            node.copy = None if fresh else node.disk
            node.clock = dataclasses.replace((clocks or {}).get(node.nodeid) or NodeClock())
        self.offline: set[str] = set()   # sha256 of files edited on stopped nodes
        self.accepted_seen: dict[str, int] = {}  # sha256 -> version of every accepted config
        self.addr_of = self.cfg.addresses()     # node -> its address (never changes)
        self.by_addr = {a: i for i, a in self.addr_of.items()}
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self.accepted: list[tuple[int, str]] = []  # configs accepted by propose()
        self.trace: list[str] = []
        self.captured: list[tuple[tuple[str, int], Any]] = []  # recent datagrams (T28)
        self.validators = validators or {}
        self.versions = versions or {}
        self.tap: list[tuple[int, int, bytes]] | None = None  # (src, dst, bytes) of all sent
        self.applied: list[tuple[float, str, int]] = []  # (time, kind, node) of node faults
        # extra named invariants, checked after the built-in ones at every step
        self.invariants: list[tuple[str, Callable[[SimNet], str | None]]] = []
        # incremental invariant checks (large clusters, see _check_node): off by default
        self.incremental = incremental
        self._full_due = float("-inf")
        self._quorate_in: dict[int, Any] = {}      # node -> the view it is quorate in
        self._views_seen: dict[Any, frozenset] = {}
        # per-node parts beside the cluster core (the services layer: services_sim.py),
        # told of starts, crashes, ticks and every batch of core events
        self.parts: list[Any] = []
        if start:
            for i in self.nodes:
                self.start(i)

    # ------------------------------------------------------------------ scheduling
    def _push(self, at: float, kind: str, arg: Any) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), kind, arg))

    def run_until(self, t: float, check: bool = True) -> None:
        while self._heap and self._heap[0][0] <= t:
            at, _, kind, arg = heapq.heappop(self._heap)
            self.now = at
            if kind == "tick":
                self._tick(*arg)
            elif kind == "deliver":
                self._deliver(*arg)
            elif kind == "call":
                arg()
            if not check:
                continue
            if self.incremental and kind != "call" and at < self._full_due:
                self._check_node(arg[0])
            else:
                self.check_safety()
                self._full_due = at + INCREMENTAL_FULL_EVERY
        self.now = t

    def _check_node(self, i: int) -> None:
        """``incremental`` mode (large clusters): after an event at node ``i``, check the
        invariants for it alone against what the others were at their last check (a
        node's view and quorum change only at its own events, or fall back with time);
        a second quorate view anywhere, and every ``INCREMENTAL_FULL_EVERY`` of virtual
        time, runs the whole ``check_safety`` (exact: stale entries never fail a run)."""
        node = self.nodes[i]
        if not node.alive or node.core is None:
            self._quorate_in.pop(i, None)
            return
        view = node.core.membership.view
        if view is not None:
            seen = self._views_seen.setdefault(view.vid, view.members)
            if seen != view.members:
                violated("view-agreement", f"t={self.now:.3f}: view {view.vid} has members "
                         f"{seen} on one node and {view.members} on node {i}")
        counted = view is not None and self._counts_quorate(node, view)
        if counted:
            self._quorate_in[i] = view.vid
        else:
            self._quorate_in.pop(i, None)
        if len(set(self._quorate_in.values())) > 1:
            self.check_safety()
            self._full_due = self.now + INCREMENTAL_FULL_EVERY

    def run_for(self, dt: float, check: bool = True) -> None:
        self.run_until(self.now + dt, check)

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self._push(t, "call", fn)

    def node_now(self, i: int) -> float:
        """Node ``i``'s monotonic clock now: the only time its core (and any later
        per-node part) is given."""
        return self.nodes[i].clock.mono(self.now)

    def _node_delay(self, i: int, dt: float) -> float:
        """Real seconds until node ``i``'s clock has advanced by ``dt``."""
        return dt / self.nodes[i].clock.rate

    # ------------------------------------------------------------------ node lifecycle
    def start(self, i: int) -> None:
        node = self.nodes[i]
        wall = node.clock.wall(self.now)
        node.incarnation = max(node.incarnation + 1, int(wall * 1000) + 1)
        validator = self.validators.get(i, sim_validator)
        try:
            data, accepted = self._startup(node, validator)
        except ClusterError as exc:  # clusterd exits: nothing valid to run
            self.trace.append(f"{self.now:.3f} node {i} cannot start: {str(exc)[:60]}")
            return
        node.core = ClusterCore(self.cfg, i, key=KEY, incarnation=node.incarnation,
                                config_data=data, config_accepted=accepted,
                                validator=validator,
                                version=self.versions.get(i, PROTOCOL_VERSION),
                                peers_seen=node.seen,
                                grid_offset=wall - node.clock.mono(self.now))
        node.alive, node.paused, node.frozen, node.met_all = True, False, False, False
        node.blind_since = None
        node.life += 1
        node.buffered.clear()
        self.trace.append(f"{self.now:.3f} start {i} inc {node.incarnation}")
        for part in self.parts:
            part.on_start(i)
        first = self.rng.uniform(0, self.cfg.token / TICK_FRACTION)
        self._push(self.now + self._node_delay(i, first), "tick", (i, node.life))

    def _startup(self, node: SimNode, validator: Callable[[bytes], Any]
                 ) -> tuple[bytes | None, bool]:
        """What the daemon's wiring does at start (configsync/startup.py)."""
        if node.disk is None and node.copy is None:
            return None, False
        choice = choose(node.disk, node.copy, validator)
        if choice.pending is not None:
            node.pending.append(choice.pending)
        if choice.rewrite:
            node.disk = choice.data
        if sha256_hex(choice.data) in self.offline:
            violated("no-offline-edit-runs", f"t={self.now:.3f}: node {node.nodeid} starts "
                     "on a file edited while it was down although it has an accepted copy")
        if choice.accepted:
            self.accepted_seen.setdefault(sha256_hex(choice.data), choice.conf.version)
        return choice.data, choice.accepted

    def edit_offline(self, i: int, data: bytes) -> None:
        """An operator (or a module in file mode) rewrites a stopped node's cluster.conf."""
        node = self.nodes[i]
        assert not node.alive, "edit_offline is for a stopped node"
        node.disk = data
        if node.copy is not None:
            self.offline.add(sha256_hex(data))
        self.trace.append(f"{self.now:.3f} node {i} file edited offline "
                          f"({'with' if node.copy else 'no'} accepted copy)")

    def crash(self, i: int) -> None:
        self.nodes[i].alive = False
        self.nodes[i].core = None
        self.trace.append(f"{self.now:.3f} crash {i}")
        for part in self.parts:
            part.on_crash(i)

    def stop(self, i: int) -> None:
        """Clean stop: the node announces its leave, then exits."""
        node = self.nodes[i]
        if node.alive and node.core is not None and not node.paused:
            self._send(i, node.core.leave("daemon stopped", self.node_now(i)))
        self.crash(i)

    def pause(self, i: int, duration: float) -> None:
        node = self.nodes[i]
        if not node.alive or node.paused:
            return
        node.paused = True
        life = node.life
        self.trace.append(f"{self.now:.3f} pause {i} for {duration:.2f}")
        self._push(self.now + duration, "call", lambda: self._resume(i, life))

    def freeze(self, i: int, duration: float, clock_stops: bool = True) -> None:
        """The node's VM is suspended for ``duration``: it runs nothing, packets wait in
        its socket buffer. ``clock_stops``: its monotonic (and wall) clock stands still
        meanwhile and then continues from where it stopped, as a KVM guest's kvmclock does
        across a QEMU stop/cont (the clock is saved at stop and restored at cont), so the
        node is behind by ``duration`` until NTP steps its wall clock; otherwise the
        clock jumps ahead on resume (the time passed), as for a stopped process."""
        node = self.nodes[i]
        if not node.alive or node.paused:
            return
        node.paused, node.frozen = True, True
        life = node.life
        self.trace.append(f"{self.now:.3f} freeze {i} for {duration:.2f} "
                          f"(clock {'stops' if clock_stops else 'jumps'})")

        def thaw() -> None:
            if node.alive and node.life == life and node.frozen and clock_stops:
                node.clock.offset -= node.clock.rate * duration
                node.clock.wall_offset -= duration
                node.blind_since = self.node_now(i)
                node.resumed_at = self.now
            node.frozen = False
            self._resume(i, life)
        self._push(self.now + duration, "call", thaw)

    def wall_jump(self, i: int, delta: float) -> None:
        """The node's wall clock is stepped by ``delta`` seconds (NTP, an operator)."""
        self.nodes[i].clock.wall_offset += delta
        self.trace.append(f"{self.now:.3f} node {i} wall clock steps {delta:+.1f}s")

    def restart_receiver(self, i: int, down: float) -> None:
        """The node's socket is closed and reopened ``down`` seconds later: what its
        buffer held, what is in flight to it and what arrives meanwhile is lost."""
        node = self.nodes[i]
        node.rx_epoch += 1
        node.rx_down_until = self.now + down
        node.buffered.clear()
        self.trace.append(f"{self.now:.3f} node {i} receiver restarts ({down:.2f}s down)")

    def lose_state_dir(self, i: int, *, reboot: bool = False, wall_behind: float = 0.0
                       ) -> None:
        """Node ``i`` restarts having lost STATE_DIR: its accepted copy, pending files,
        persisted incarnation and peers' incarnations (cluster.conf in /etc stays).
        ``reboot``: the machine rebooted too (a new monotonic clock) with its wall clock
        ``wall_behind`` seconds behind (an RTC that NTP has not corrected yet)."""
        node = self.nodes[i]
        if node.alive:
            self.crash(i)
        if node.disk is not None:
            # an offline edit on this node is no longer one "beside an accepted copy"
            self.offline.discard(sha256_hex(node.disk))
        self._forget_accepted_only_on(node)
        node.copy, node.seen, node.incarnation = None, {}, 0
        node.pending.clear()
        if reboot:
            node.clock.offset = self.rng.uniform(10.0, 1e5) - node.clock.rate * self.now
            node.clock.wall_offset -= wall_behind
        self.trace.append(f"{self.now:.3f} node {i} lost its state dir"
                          f"{f' (reboot, wall {wall_behind:.1f}s behind)' if reboot else ''}")
        self.start(i)

    def _forget_accepted_only_on(self, node: SimNode) -> None:
        """Configs a quorate view accepted that only ``node``'s lost state dir held as
        accepted (no other node has that version or a later one accepted) are no longer
        provably accepted: the file in /etc survives and the node keeps it as a pending
        proposal (an operator proposes it again), so "no accepted config is lost" cannot
        cover them (seeds 571456359654, 390201947717: a node accepted versions on leases
        still valid after its peer went quiet, then lost its state dir)."""
        others = [sim_validator(o.copy).version for o in self.nodes.values()
                  if o is not node and o.copy is not None]
        held = max(others, default=0)
        gone = sorted({v for v, _h in self.accepted if v > held}
                      | {v for v in self.accepted_seen.values() if v > held})
        if not gone:
            return
        self.accepted = [(v, h) for v, h in self.accepted if v <= held]
        self.accepted_seen = {h: v for h, v in self.accepted_seen.items() if v <= held}
        self.trace.append(f"{self.now:.3f} accepted config(s) {gone} were only on node "
                          f"{node.nodeid}'s lost state dir: now a pending proposal there")

    def _resume(self, i: int, life: int) -> None:
        node = self.nodes[i]
        if not node.alive or node.life != life or not node.paused or node.frozen:
            return
        node.paused = False
        self.trace.append(f"{self.now:.3f} resume {i}")
        # The first loop iteration after a resume finds the socket readable and its
        # timers due: asyncio runs the I/O callbacks of a select() before the timers that
        # expired meanwhile, and the endpoint's reader takes up to READ_BATCH datagrams
        # in one callback, oldest first, before the tick (all within this one step: the
        # node acts on nothing in between). What is left waits for the next iterations.
        waiting, node.buffered = node.buffered, []
        for data, addr, sent in waiting[:READ_BATCH]:
            self._deliver(i, data, addr, node.rx_epoch, sent)
        self._tick(i, life, reschedule=False)
        for data, addr, sent in waiting[READ_BATCH:]:
            self._push(self.now, "deliver", (i, data, addr, node.rx_epoch, sent))

    def wipe(self, i: int) -> None:
        """The node's cluster.conf and state dir (its accepted copy) are gone."""
        self.nodes[i].disk = None
        self.nodes[i].copy = None

    def lose_state(self, i: int, clock_behind: int) -> None:
        """The node's state dir is lost and its clock is ``clock_behind`` incarnation
        units behind: its next start picks a lower incarnation than its last one."""
        node = self.nodes[i]
        node.seen = {}
        node.incarnation = max(0, node.incarnation - clock_behind)

    def _restart_above(self, i: int, seen: int) -> None:
        """What systemd does after clusterd exits on IncarnationOutdated."""
        node = self.nodes[i]
        node.incarnation = max(node.incarnation, seen)
        self.trace.append(f"{self.now:.3f} node {i} restarts above incarnation {seen}")
        self.crash(i)
        self.start(i)

    # ------------------------------------------------------------------ network faults
    def partition(self, *groups: set[int]) -> None:
        self.blocked = {(a, b) for g in groups for h in groups if g is not h
                        for a in g for b in h}
        self.trace.append(f"{self.now:.3f} partition {[sorted(g) for g in groups]}")

    def one_way(self, src: int, dst: int) -> None:
        self.blocked.add((src, dst))
        self.trace.append(f"{self.now:.3f} drop {src}->{dst}")

    def heal(self) -> None:
        self.blocked.clear()
        self.loss = self.dup = 0.0
        self.trace.append(f"{self.now:.3f} heal")

    # ------------------------------------------------------------------ driving cores
    def _tick(self, i: int, life: int, reschedule: bool = True) -> None:
        node = self.nodes[i]
        if not node.alive or node.core is None or node.life != life:
            return
        if reschedule:
            jitter = self.rng.uniform(0.9, 1.1)
            self._push(self.now + self._node_delay(i, jitter * self.cfg.token / TICK_FRACTION),
                       "tick", (i, life))
        if node.paused:
            return
        self._send(i, node.core.tick(self.node_now(i)))
        for part in self.parts:
            if node.alive and node.core is not None:
                part.on_tick(i)

    def _deliver(self, i: int, data: bytes, addr: tuple[str, int], epoch: int = -1,
                 sent: float = float("-inf")) -> None:
        """``sent``: when (real time) the datagram left its sender."""
        node = self.nodes[i]
        if not node.alive or node.core is None:
            return
        if epoch >= 0 and (epoch != node.rx_epoch or self.now < node.rx_down_until):
            return  # sent to a socket that has restarted since, or is closed now
        if node.paused:
            if len(node.buffered) < 256:  # the socket buffer
                node.buffered.append((data, addr, sent))
            return
        self._send(i, node.core.on_datagram(data, addr, self.node_now(i)))
        if node.blind_since is not None and sent >= node.resumed_at:
            node.blind_since = None

    def _send(self, i: int, out: HostOutput) -> None:
        node = self.nodes[i]
        requests = []
        for ev in out.events:
            node.events.append((self.now, ev))
            if isinstance(ev, ViewInstalled) and ev.view.nodeids >= set(self.cfg.nodeids):
                node.met_all = True
            if isinstance(ev, ValidateConfig):
                requests.append(ev)
            if isinstance(ev, WriteConfig | ConfigAccepted):
                if ev.sha256 in self.offline:
                    violated("no-offline-edit-installed", f"t={self.now:.3f}: node {i} "
                             f"installs config_version {ev.version}, a file edited on a "
                             "stopped node that no quorate view accepted")
                if isinstance(ev, WriteConfig):
                    node.disk = ev.data
                if isinstance(ev, ConfigAccepted) or ev.accepted:
                    node.copy = ev.data
                    self.accepted_seen.setdefault(ev.sha256, ev.version)
                self.trace.append(f"{self.now:.3f} node {i} "
                                  f"{'writes' if isinstance(ev, WriteConfig) else 'accepts'} "
                                  f"config {ev.version}")
            if isinstance(ev, ConfigDisplaced):
                node.pending.append(ev.data)
                self.trace.append(f"{self.now:.3f} node {i} keeps config {ev.version} pending")
            if isinstance(ev, ViewInstalled):
                self.trace.append(f"{self.now:.3f} node {i} installs {ev.view}")
            if isinstance(ev, PeersSeen):
                node.seen = dict(ev.peers)
            if isinstance(ev, IncarnationOutdated):  # clusterd exits; RestartSec=1
                self.at(self.now + 1.0, lambda life=node.life, seen=ev.seen: (
                    node.life == life and node.alive and self._restart_above(i, seen)))
        if out.events and node.alive and node.core is not None:
            for part in self.parts:
                part.on_events(i, out.events)
        src_addr = self.addr_of[i]
        self.captured.extend((src_addr, g) for g in out.datagrams[:4])
        del self.captured[:-512]
        for gram in out.datagrams:
            dst = self.by_addr[gram.addr]
            if self.tap is not None:
                self.tap.append((i, dst, gram.data))
            if (i, dst) in self.blocked or self.rng.random() < self.loss:
                continue
            copies = 2 if self.rng.random() < self.dup else 1
            for _ in range(copies):
                at = self.now + self.rng.uniform(*self.delay)
                self._push(at, "deliver",
                           (dst, gram.data, src_addr, self.nodes[dst].rx_epoch, self.now))
        for request in requests:  # the daemon validates in a thread; here at once
            self._send(i, node.core.on_validated(request.sha256,
                                                 validated(node.core, request.data),
                                                 self.node_now(i)))

    def propose(self, i: int, data: bytes) -> bool:
        node = self.nodes[i]
        if not node.alive or node.paused or node.core is None:
            return False
        out = node.core.propose_config(data, self.node_now(i))  # raises when refused
        info = sim_validator(data)
        self.accepted.append((info.version, sha256_hex(data)))
        self.trace.append(f"{self.now:.3f} node {i} accepts config version {info.version}")
        self._send(i, out)
        return True

    def events(self, i: int, kind: type, since: float = 0.0) -> list[Any]:
        return [ev for t, ev in self.nodes[i].events if isinstance(ev, kind) and t >= since]

    def core(self, i: int) -> ClusterCore:
        core = self.nodes[i].core
        assert core is not None, f"node {i} is not running"
        return core

    def fail_message(self, test: str, exc: BaseException) -> str:
        tail = "\n  ".join(self.trace[-25:])
        name = exc.name if isinstance(exc, Violation) else type(exc).__name__
        return (f"SEED={self.seed} invariant={name}: {exc}\nreplay: RHC_SIM_SEED={self.seed} "
                f".venv/bin/pytest tests/sim -k {test}\nlast steps:\n  {tail}")

    # ------------------------------------------------------------------ invariants
    def live(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.alive and n.core is not None]

    def check_safety(self) -> None:
        """Every invariant that must hold at every instant (names in ``Violation``):

        * ``view-agreement``: one view id, one member set on every node in it;
        * ``one-quorate-group`` (not two_node): at most one view is quorate at a time,
          not counting a node resumed from a freeze with a stopped clock that has not yet
          read a packet sent after its resume: until then it cannot know how much time it
          lost (it may have read what its peers sent early in the freeze, then been cut
          off), the one limit of leases timed by the holder's clock (docs/architecture.md,
          "Clocks"); bounded by ``stale-lease-bounded``;
        * ``stale-lease-bounded`` (not two_node): such a node is quorate for at most one
          token of its clock after the resume (a lease is one token from a heartbeat sent
          before it);
        * two_node: quorum is 1, so both halves of a split are quorate and fencing decides
          (cman two_node, DESIGN.md section 4): membership alone has no one-group
          invariant there (two views quorate at once, even each holding the other while a
          commit is in flight, is allowed); the fencing and services checks hold it;
        * ``two-node-wait-for-all`` (two_node, wait_for_all): a node is quorate only after
          it has been, since its start, in a view with both nodes (no fence loop, T19);
        * plus ``self.invariants`` (name, fn -> message or None) added by a test.
        Each node is asked at its own clock's ``now``; paused and frozen nodes act on
        nothing and are not asked."""
        views: dict[Any, frozenset] = {}
        quorate: dict[Any, list[int]] = {}
        self._quorate_in = {}
        for node in self.live():
            m = node.core.membership
            view = m.view
            if view is None:
                continue
            seen = views.setdefault(view.vid, view.members)
            if seen != view.members:
                violated("view-agreement", f"t={self.now:.3f}: view {view.vid} has members "
                         f"{seen} on one node and {view.members} on node {node.nodeid}")
            if self.incremental:
                self._views_seen.setdefault(view.vid, view.members)
            if self._counts_quorate(node, view):
                quorate.setdefault(view.vid, []).append(node.nodeid)
                self._quorate_in[node.nodeid] = view.vid
        if len(quorate) > 1 and not self.cfg.two_node:
            violated("one-quorate-group",
                     f"t={self.now:.3f}: two quorate groups act at once: {quorate}")
        for name, check in self.invariants:
            problem = check(self)
            if problem:
                violated(name, f"t={self.now:.3f}: {problem}")

    def _counts_quorate(self, node: SimNode, view: Any) -> bool:
        """Whether ``node`` (live, in ``view``) is quorate and counts for
        'one-quorate-group'; raises for 'stale-lease-bounded' and
        'two-node-wait-for-all' (see ``check_safety``)."""
        now = self.node_now(node.nodeid)
        if node.paused or not node.core.membership.is_quorate(now):
            return False
        if node.blind_since is not None and not self.cfg.two_node:
            if now > node.blind_since + self.cfg.token:
                violated("stale-lease-bounded", f"t={self.now:.3f}: node "
                         f"{node.nodeid} is quorate in {view.vid} "
                         f"{now - node.blind_since:.3f}s of its clock after "
                         "resuming with a stopped clock, on leases older than that")
            return False
        if self.cfg.two_node and self.cfg.waits_for_all and not node.met_all:
            violated("two-node-wait-for-all", f"t={self.now:.3f}: node "
                     f"{node.nodeid} is quorate in {view.vid} without having been "
                     "in a view with both nodes since it started")
        return True

    def check_converged(self) -> None:
        try:
            self._converged()
        except Violation:
            raise
        except AssertionError as exc:
            raise Violation("convergence", str(exc)) from None

    def _converged(self) -> None:
        live = [n for n in self.live() if not n.paused]
        views = {n.core.membership.view.vid if n.core.membership.view else None for n in live}
        assert len(views) == 1 and None not in views, (
            f"t={self.now:.3f}: live nodes are in different views: "
            f"{ {n.nodeid: str(n.core.membership.view) for n in live} }")
        members = live[0].core.membership.view.nodeids
        assert members == {n.nodeid for n in live}, (
            f"t={self.now:.3f}: view {sorted(members)} is not every live node "
            f"{sorted(n.nodeid for n in live)}")
        votes = {spec.nodeid: spec.votes for spec in self.cfg.nodes}
        # two_node: quorate alone, but with wait_for_all only once it was in a view with
        # both nodes since it started (a survivor whose peer cannot start, its file made
        # invalid offline and its accepted copy lost, rightly waits for the operator)
        two_node = self.cfg.two_node and (not self.cfg.waits_for_all
                                          or all(n.met_all for n in live))
        if sum(votes[n.nodeid] for n in live) * 2 > sum(votes.values()) or two_node:
            assert all(n.core.membership.is_quorate(self.node_now(n.nodeid)) for n in live), (
                "not quorate")
        running = {(n.core.configsync.running.version, n.core.configsync.running.sha256)
                   for n in live}
        assert len(running) == 1, f"configs differ: {running}"
        (version, _sha), = running
        if self.accepted:
            best = max(self.accepted)
            if version < best[0]:
                violated("accepted-config-kept", f"accepted config {best} lost: running "
                         f"{running}")
        if self.accepted_seen:
            best_seen = max(self.accepted_seen.values())
            if version < best_seen:
                violated("accepted-config-kept", f"accepted config_version {best_seen} "
                         f"lost: running {running}")
        if all(n.core.membership.is_quorate(self.node_now(n.nodeid)) for n in live):
            assert all(n.core.configsync.accepted for n in live), (
                "a quorate view runs a config it has not accepted: "
                f"{ {n.nodeid: n.core.configsync.accepted for n in live} }")

    def settle(self, limit: float, step: float = 0.5) -> float:
        """Run until converged (checked every ``step``); returns the time it took."""
        start = self.now
        last: AssertionError | None = None
        while self.now - start < limit:
            self.run_for(step)
            try:
                self.check_converged()
                return self.now - start
            except AssertionError as exc:
                last = exc
        raise Violation("convergence", f"no convergence within {limit}s virtual: {last}")


def failure_detection_time(seed: int, n: int = 3, token_ms: int = 1000) -> float:
    """Virtual seconds from a node's crash to every survivor installing a view without
    it (for the benchmark; default token 1 s)."""
    sim = SimNet(n, seed, token_ms=token_ms)
    sim.settle(20)
    return time_to_drop(sim, n)


def time_to_drop(sim: SimNet, victim: int, step: float = 0.005, limit: float = 30) -> float:
    """Crash ``victim`` and return the virtual seconds until every survivor runs a view
    without it."""
    crash_at = sim.now
    sim.crash(victim)
    while sim.now - crash_at < limit:
        sim.run_for(step, check=False)
        views = [x.core.membership.view for x in sim.live()]
        if all(v is not None and victim not in v.nodeids for v in views):
            return sim.now - crash_at
    raise AssertionError(f"SEED={sim.seed}: survivors never dropped node {victim}")


def config_propagation_time(seed: int, n: int = 3, size: int = 4096,
                            token_ms: int = 1000) -> float:
    """Virtual seconds from a config accepted on node 1 to every node holding it (for the
    benchmark; network delay 0.5-5 ms per packet)."""
    sim = SimNet(n, seed, token_ms=token_ms)
    sim.settle(20)
    data = sim_config(2, "x" * size)
    start = sim.now
    sim.propose(1, data)
    while sim.now - start < 30:
        sim.run_for(0.001, check=False)
        if all(node.disk == data for node in sim.live()):
            return sim.now - start
    raise AssertionError(f"SEED={seed}: config version 2 never reached every node")
