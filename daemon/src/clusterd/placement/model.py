"""Placement inputs and outputs: the frozen Snapshot, typed Actions, the Decision (pure).

The snapshot is everything ``decide()`` may look at: config-derived service definitions
and failover domains, quorum, nodes (online, standby, fencing), per-service state, the
actions already in flight, and ``now`` (seconds, the clock the restart history uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType


class ServiceState(str, Enum):
    """rgmanager ``rg_state_strings`` (rgmanager/src/clulib/rg_strings.c), the subset a
    service can be left in between decisions."""

    STOPPED = "stopped"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    DISABLED = "disabled"
    FAILED = "failed"
    RECOVERING = "recovering"  # stopped cleanly after a failed start; awaits placement


class Recovery(str, Enum):
    RESTART = "restart"
    RELOCATE = "relocate"
    DISABLE = "disable"
    RESTART_DISABLE = "restart-disable"


class DependMode(str, Enum):
    HARD = "hard"
    SOFT = "soft"


class Fence(str, Enum):
    """What is known of a node that is not an online member."""

    NONE = "none"  # nothing started yet (post_fail_delay, or never failed)
    PENDING = "pending"  # fencing requested / running / retrying
    CONFIRMED = "confirmed"  # fenced (off confirmed) or fence_ack_manual


@dataclass(frozen=True)
class NodeInfo:
    name: str
    nodeid: int
    online: bool = True
    standby: bool = False
    fence: Fence = Fence.NONE
    left_cleanly: bool = False  # announced leave: its services were stopped, no fencing
    fencing_configured: bool = True  # has a fence method (or a fence device that can reach it)
    up_since: float | None = None  # when it came online (None: unknown, treated as "just now")

    @property
    def safe_to_take_over(self) -> bool:
        """Its services may run elsewhere: cleanly gone or confirmed fenced."""
        return not self.online and (self.left_cleanly or self.fence is Fence.CONFIRMED)


@dataclass(frozen=True)
class DomainMember:
    name: str
    priority: int = 0


@dataclass(frozen=True)
class FailoverDomain:
    name: str
    members: tuple[DomainMember, ...]
    ordered: bool = False
    restricted: bool = False
    nofailback: bool = False

    def has(self, node: str) -> bool:
        return any(m.name == node for m in self.members)

    def priority(self, node: str) -> int:
        """Effective rank (lower = preferred). Priorities count only in ordered domains;
        values outside 1..100 are "unprioritized" and rank last (fo_domain.c)."""
        if not self.ordered:
            return 0
        for m in self.members:
            if m.name == node:
                return m.priority if 1 <= m.priority <= 100 else 101
        return 102


@dataclass(frozen=True)
class ServiceDef:
    name: str  # "service:web"
    domain: str | None = None
    autostart: bool = True
    exclusive: bool = False
    recovery: Recovery = Recovery.RESTART
    max_restarts: int = 0
    restart_expire_time: float = 0
    depend: str | None = None
    depend_mode: DependMode = DependMode.HARD


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: ServiceState = ServiceState.STOPPED
    owner: str | None = None
    last_owner: str | None = None
    frozen: bool = False
    restarts: tuple[float, ...] = ()  # timestamps of in-place restarts (restart_counter.c)
    status_failed: bool = False  # the owner reported a failed status check
    start_failed: tuple[str, ...] = ()  # nodes where a start failed in this recovery round
    placed_at: float | None = None  # when it started on its current owner (None: unknown)


class InFlightKind(str, Enum):
    START = "start"
    STOP = "stop"
    RELOCATE = "relocate"
    RESTART = "restart"
    FENCE = "fence"


@dataclass(frozen=True)
class InFlight:
    """An action already running. For FENCE, ``node`` is the victim (``service`` may be "")."""

    service: str
    kind: InFlightKind
    node: str | None = None


@dataclass(frozen=True)
class Snapshot:
    quorate: bool
    nodes: tuple[NodeInfo, ...]
    services: tuple[ServiceDef, ...]
    domains: tuple[FailoverDomain, ...] = ()
    states: tuple[ServiceStatus, ...] = ()
    in_flight: tuple[InFlight, ...] = ()
    now: float = 0.0
    _index: Mapping | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        idx = {("node", n.name): n for n in self.nodes}
        idx.update({("svc", s.name): s for s in self.services})
        idx.update({("dom", d.name): d for d in self.domains})
        idx.update({("st", s.name): s for s in self.states})
        idx["exclusive"] = frozenset(s.name for s in self.services if s.exclusive)
        for f in self.in_flight:
            idx.setdefault(("busy", f.service), f)   # the first, as a scan finds it
        object.__setattr__(self, "_index", MappingProxyType(idx))

    @property
    def exclusive(self) -> frozenset[str]:
        """The names of the exclusive services (placement checks them on every node)."""
        return self._index["exclusive"]

    def node(self, name: str | None) -> NodeInfo | None:
        return self._index.get(("node", name)) if name else None

    def service(self, name: str) -> ServiceDef | None:
        return self._index.get(("svc", name))

    def domain(self, name: str | None) -> FailoverDomain | None:
        return self._index.get(("dom", name)) if name else None

    def state(self, name: str) -> ServiceStatus:
        return self._index.get(("st", name)) or ServiceStatus(name)

    @property
    def online(self) -> tuple[NodeInfo, ...]:
        return tuple(n for n in self.nodes if n.online)

    def busy(self, service: str) -> InFlight | None:
        """The first action in flight for ``service`` (looked up, not scanned: decide()
        asks for every service)."""
        return self._index.get(("busy", service))


class ActionKind(str, Enum):
    START = "start"
    STOP = "stop"
    RELOCATE = "relocate"
    RESTART = "restart"
    MARK_STATE = "mark-state"
    FENCE_REQUIRED = "fence-required"


@dataclass(frozen=True)
class Start:
    service: str
    node: str
    reason: str
    kind: ActionKind = field(default=ActionKind.START, init=False)


@dataclass(frozen=True)
class Stop:
    service: str
    node: str
    reason: str
    final_state: ServiceState = ServiceState.STOPPED  # stopped, or disabled for disable
    kind: ActionKind = field(default=ActionKind.STOP, init=False)


@dataclass(frozen=True)
class Relocate:
    service: str
    source: str
    target: str
    reason: str
    kind: ActionKind = field(default=ActionKind.RELOCATE, init=False)


@dataclass(frozen=True)
class Restart:
    """Stop and start in place; the executor records the restart timestamp."""

    service: str
    node: str
    reason: str
    kind: ActionKind = field(default=ActionKind.RESTART, init=False)


@dataclass(frozen=True)
class MarkState:
    service: str
    state: ServiceState
    reason: str
    kind: ActionKind = field(default=ActionKind.MARK_STATE, init=False)


@dataclass(frozen=True)
class FenceRequired:
    node: str
    reason: str
    kind: ActionKind = field(default=ActionKind.FENCE_REQUIRED, init=False)


PlacementAction = Start | Stop | Relocate | Restart | MarkState | FenceRequired


@dataclass(frozen=True)
class Decision:
    actions: tuple[PlacementAction, ...]
    reason: str

    def starts(self) -> dict[str, str]:
        """service -> node for every action that makes a service run somewhere."""
        out: dict[str, str] = {}
        for a in self.actions:
            if isinstance(a, Start | Restart):
                out[a.service] = a.node
            elif isinstance(a, Relocate):
                out[a.service] = a.target
        return out
