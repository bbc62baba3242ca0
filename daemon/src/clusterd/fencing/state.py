"""Fencing policy values: config, events, state and actions (pure, frozen).

Split from :mod:`clusterd.fencing.policy` (the transitions) and
:mod:`clusterd.fencing.intents` (the persisted record) so each stays small.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: clusterd.conf imports clusterd.fencing (metadata)
    from clusterd.conf import ClusterConf


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def with_item(mapping: Mapping[str, Any], key: str, value: Any) -> Mapping[str, Any]:
    """A new read-only mapping with ``key`` set (the old one is left untouched)."""
    new = dict(mapping)
    new[key] = value
    return MappingProxyType(new)


# How long a node that announced a restart (``Leave.hold``) keeps its services without a
# daemon: neither fenced nor recovered until it is back, or this long has passed (then it
# is a lost node: intent, fence, recovery). A restart takes about a second; the margin
# covers a slow start (package upgrade, loaded host, network-online wait). A constant:
# RHCS's cluster.rng has no attribute for it (see docs/operator-guide.md).
RESTART_GRACE = 60.0


@dataclass(frozen=True)
class PolicyConfig:
    """What the policy needs from cluster.conf (``fence_daemon``, nodes, two_node)."""

    nodeids: Mapping[str, int] = field(default_factory=_empty)
    post_fail_delay: float = 0.0
    post_join_delay: float = 6.0       # -1: never fence never-seen nodes at startup
    clean_start: bool = False
    two_node: bool = False
    two_node_delay: float = 5.0
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    token: float = 1.0                 # seconds of silence before a node is suspected
    restart_grace: float = RESTART_GRACE

    @classmethod
    def from_conf(cls, conf: ClusterConf, **overrides: Any) -> PolicyConfig:
        fd = conf.fence_daemon
        return cls(nodeids=MappingProxyType({n.name: n.nodeid for n in conf.nodes}),
                   post_fail_delay=float(fd.post_fail_delay),
                   post_join_delay=float(fd.post_join_delay),
                   clean_start=bool(fd.clean_start), two_node=bool(conf.two_node),
                   token=conf.token_ms / 1000.0, **overrides)


# --- events ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ViewChanged:
    """A new agreed view. ``members`` maps node name -> incarnation. ``left_clean`` names
    members that announced a clean leave before dropping out. ``joined_running`` is True
    when this node joined a cluster that was already quorate (no startup fencing then).
    ``restarting`` names members whose leave announced a restart holding their services.
    ``not_quorate`` says why a view that is not quorate is not (for the log); it is empty
    while a new view waits one lease round trip for its backing (no note then: the backing
    or the quorum loss that follows is what gets logged)."""

    members: Mapping[str, str]
    quorate: bool
    coordinator: str
    left_clean: frozenset[str] = frozenset()
    joined_running: bool = False
    not_quorate: str = "inquorate"
    restarting: frozenset[str] = frozenset()

    @classmethod
    def from_membership(cls, view: Any, names: Mapping[int, str], quorate: bool,
                        left_clean: Iterable[int] = (), joined_running: bool = False,
                        not_quorate: str = "inquorate",
                        restarting: Iterable[int] = ()) -> ViewChanged:
        """From a membership view (``members`` as (nodeid, incarnation) pairs and a
        ``coordinator`` nodeid) and the config's nodeid -> name map. Nodeids missing from
        the config are kept under the name ``nodeid:N`` so that nothing disappears."""
        def name(nodeid: int) -> str:
            return names.get(nodeid, f"nodeid:{nodeid}")
        return cls(members=MappingProxyType({name(n): str(inc) for n, inc in view.members}),
                   quorate=quorate, coordinator=name(view.coordinator),
                   left_clean=frozenset(name(n) for n in left_clean),
                   joined_running=joined_running, not_quorate=not_quorate,
                   restarting=frozenset(name(n) for n in restarting))


@dataclass(frozen=True)
class ViewLost:
    """This node is in no view any more (dropped while alive): it is not quorate, so it
    neither fences nor allows recovery until a new view is agreed. Nothing is inferred
    about the other nodes: they are not lost, this node only stopped seeing a view."""

    reason: str = ""


@dataclass(frozen=True)
class FenceRequested:
    """fence_node NODE, or a service stop failure (T9)."""

    node: str
    requester: str
    reason: str = ""


@dataclass(frozen=True)
class FenceResult:
    """Outcome of a RunFence, from whichever member executed it. ``ok`` means *off
    confirmed* (recovery may start even while the victim powers back on)."""

    node: str
    op_id: str
    ok: bool
    error: str = ""
    method: str = ""


@dataclass(frozen=True)
class FenceAcked:
    node: str
    by: str = "admin"


@dataclass(frozen=True)
class ServicesRunning:
    """How many services each node runs (for the two_node fence delay)."""

    counts: Mapping[str, int]


@dataclass(frozen=True)
class ConfigChanged:
    config: PolicyConfig


@dataclass(frozen=True)
class IntentsLearned:
    """Open intents held by another member (its persisted record), e.g. from the former
    coordinator, so that any member can take over."""

    record: Mapping[str, Any]
    source: str = ""


@dataclass(frozen=True)
class PeerFenceState:
    """A member's broadcast fence operations (``clusterd.fencing.exchange``), already
    validated: ``message`` is a :class:`~clusterd.fencing.exchange.FenceStateMessage`."""

    source: str
    message: Any


@dataclass(frozen=True)
class Tick:
    """Time passed (delays, backoff)."""


Event = (ViewChanged | ViewLost | FenceRequested | FenceResult | FenceAcked | ServicesRunning
         | ConfigChanged | IntentsLearned | PeerFenceState | Tick)


# --- state ----------------------------------------------------------------------------
class FencePhase(enum.Enum):
    PENDING = "pending"      # waiting for its delay / backoff / an executor
    RUNNING = "running"
    FAILED = "failed"        # last attempt failed; retry after backoff
    DONE = "done"
    ACKED = "acked"          # fence_ack_manual
    CANCELLED = "cancelled"  # victim rejoined with a new incarnation before fencing

    @property
    def open(self) -> bool:
        return self in (FencePhase.PENDING, FencePhase.RUNNING, FencePhase.FAILED)


class Origin(enum.Enum):
    MEMBERSHIP = "membership"
    STARTUP = "startup"
    MANUAL = "manual"        # fence_node, or a service stop failure (T9)


NEVER = float("inf")


@dataclass(frozen=True)
class FenceOp:
    node: str
    generation: int
    origin: Origin
    phase: FencePhase
    since: float
    not_before: float
    incarnation: str | None = None      # the incarnation the intent is about
    attempts: int = 0
    last_error: str = ""
    requesters: tuple[str, ...] = ()
    executor: str = ""
    method: str = ""
    finished: float | None = None
    # when the last attempt began (or the acknowledgement was given): the power was cut at
    # or after it, so it is what a later failure is compared with (``intents.confirms``)
    started: float | None = None
    covers: frozenset[str] = frozenset()

    @property
    def op_id(self) -> str:
        return f"{self.node}#{self.generation}"


@dataclass(frozen=True)
class FenceNode:
    seen: bool = False
    incarnation: str | None = None
    lost: bool = False            # lost uncleanly, no fence/ack/clean-leave covers it yet
    left_clean: bool = False
    lost_at: float | None = None  # when this node saw that incarnation go (monotonic)
    restart_until: float | None = None  # announced a restart holding its services: not
                                        # fenced, not recovered until then (then lost)


@dataclass(frozen=True)
class FencingState:
    local: str
    config: PolicyConfig
    members: Mapping[str, str] = field(default_factory=_empty)
    quorate: bool = False
    coordinator: str = ""
    nodes: Mapping[str, FenceNode] = field(default_factory=_empty)
    ops: Mapping[str, FenceOp] = field(default_factory=_empty)
    services: Mapping[str, int] = field(default_factory=_empty)
    domain_started: bool = False

    @classmethod
    def initial(cls, local: str, config: PolicyConfig) -> FencingState:
        return cls(local=local, config=config)

    @property
    def executing(self) -> bool:
        """This daemon runs fences: the coordinator of a quorate view (see ``executes``)."""
        return self.quorate and self.coordinator == self.local

    def executor_of(self, node: str) -> str:
        """Who runs the fence of ``node`` in this view: the coordinator, except for a fence
        of the coordinator itself, which the other member with the lowest nodeid runs. A
        daemon that powers its own node off never records the result, so the intent would
        stay open and run again at every return (a fence loop). Alone in its view, the
        coordinator runs it itself, as RHCS ``fence_node`` on the victim would."""
        if node != self.coordinator:
            return self.coordinator
        others = sorted((self.config.nodeids.get(m, 1 << 30), m) for m in self.members
                        if m != node)
        return others[0][1] if others else self.coordinator

    def executes(self, node: str) -> bool:
        return self.quorate and self.executor_of(node) == self.local

    def op(self, node: str) -> FenceOp | None:
        return self.ops.get(node)

    def open_ops(self) -> tuple[FenceOp, ...]:
        return tuple(op for op in self.ops.values() if op.phase.open)


@dataclass(frozen=True)
class RunFence:
    node: str
    op_id: str
    attempt: int


@dataclass(frozen=True)
class PersistIntents:
    """The set of open intents changed: write ``to_record(state)`` durably."""


@dataclass(frozen=True)
class FenceStep:
    state: FencingState
    actions: tuple[RunFence | PersistIntents | AckResult, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class AckResult:
    """Reply to a FenceAcked / refused FenceRequested (for the control op)."""

    node: str
    ok: bool
    detail: str = ""
