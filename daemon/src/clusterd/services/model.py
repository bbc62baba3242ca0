"""Services layer messages and state as frozen data (pure): what a node reports, what the
coordinator commands, and the replicated admin state.

Wire form (application channel, ``clusterd.wire.messages.AppMessage``): compact JSON
objects, every field checked on the way in (``from_wire`` raises ``TypeError``/``ValueError`` with the
field named). Times that cross nodes (restart history) are wall-clock seconds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from clusterd.placement.model import ServiceState

CH_REPORT = "svc.report"    # node -> every member: its local services (on change + periodic)
CH_COMMAND = "svc.cmd"      # coordinator -> node: start / stop / restart one service
CH_REQUEST = "svc.req"      # node -> coordinator: a forwarded control op
CH_RESPONSE = "svc.resp"    # coordinator -> node: the op's outcome
MAX_RESTARTS_KEPT = 32
MAX_WHY = 200
LOCAL_STATES = frozenset({ServiceState.STOPPED, ServiceState.STARTING, ServiceState.STARTED,
                          ServiceState.STOPPING, ServiceState.FAILED,
                          ServiceState.RECOVERING})
CLAIMS = frozenset({ServiceState.STARTING, ServiceState.STARTED, ServiceState.STOPPING,
                    ServiceState.FAILED})
_NOTABLE = CLAIMS | {ServiceState.RECOVERING}   # what a merged row is made of


class CommandKind(str, Enum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    CONVALESCE = "convalesce"   # clusvcadm -c: start the non-critical subtrees left stopped


def _str(d: Mapping[str, Any], key: str, limit: int = 256) -> str:
    v = d.get(key, "")
    if not isinstance(v, str) or len(v) > limit:
        raise TypeError(f"{key!r} must be a string of at most {limit} characters")
    return v


def _timestamp(t: Any) -> bool:
    """A finite wall-clock number (a huge JSON integer, NaN or infinity is none: float()
    of the first raises OverflowError, the others break every comparison and the status
    document's JSON)."""
    if isinstance(t, bool) or not isinstance(t, int | float):
        return False
    try:
        return math.isfinite(t)
    except OverflowError:
        return False


def _names(d: Mapping[str, Any], key: str) -> frozenset[str]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and len(x) <= 256 for x in v):
        raise TypeError(f"{key!r} must be a list of names")
    return frozenset(v)


@dataclass(frozen=True)
class LocalService:
    """One service as its node sees it. ``busy`` is the op being executed, ``done`` the
    last one finished; ``restarts`` counts in-place restarts (rgmanager restart_counter)."""

    state: ServiceState = ServiceState.STOPPED
    busy: str = ""
    done: str = ""
    restarts: tuple[float, ...] = ()
    status_failed: bool = False
    why: str = ""
    partial: bool = False          # a non-critical subtree is stopped (clustat [P])

    def to_wire(self) -> dict[str, Any]:
        return {"st": self.state.value, "b": self.busy, "d": self.done,
                "rs": list(self.restarts[-MAX_RESTARTS_KEPT:]),
                "sf": self.status_failed, "w": self.why[:MAX_WHY], "p": self.partial}

    @classmethod
    def from_wire(cls, d: Any) -> LocalService:
        if not isinstance(d, dict):
            raise TypeError("a service entry must be an object")
        state = ServiceState(_str(d, "st"))
        if state not in LOCAL_STATES:
            raise TypeError(f"state {state.value!r} is not a local state")
        rs = d.get("rs", [])
        if not isinstance(rs, list) or len(rs) > MAX_RESTARTS_KEPT or not all(
                _timestamp(t) for t in rs):
            raise TypeError("'rs' must be a list of timestamps")
        sf, partial = d.get("sf", False), d.get("p", False)
        if not isinstance(sf, bool) or not isinstance(partial, bool):
            raise TypeError("'sf' and 'p' must be booleans")
        return cls(state, _str(d, "b", 64), _str(d, "d", 64), tuple(float(t) for t in rs), sf,
                   _str(d, "w", MAX_WHY), partial)


_IDLE = LocalService()   # what a report that does not name a service says of it


@dataclass(frozen=True)
class AdminState:
    """Operator decisions every node persists (services.json); the highest version wins."""

    version: int = 0
    disabled: frozenset[str] = frozenset()
    stopped: frozenset[str] = frozenset()     # clusvcadm -s: stopped until enabled
    frozen: frozenset[str] = frozenset()
    standby: frozenset[str] = frozenset()     # node names that take no service
    # clusvcadm -l: no service starts anywhere (stops still run), for a cluster shutdown;
    # rgmanager resets it when quorum dissolves: a node that loses quorum drops it (without
    # a new version) and it is never read back from services.json
    locked: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"ver": self.version, "disabled": sorted(self.disabled),
                "stopped": sorted(self.stopped), "frozen": sorted(self.frozen),
                "standby": sorted(self.standby), "lk": self.locked}

    @classmethod
    def from_wire(cls, d: Any) -> AdminState:
        if not isinstance(d, dict):
            raise TypeError("admin state must be an object")
        ver = d.get("ver", 0)
        if type(ver) is not int or ver < 0:
            raise TypeError("'ver' must be a non-negative integer")
        locked = d.get("lk", False)
        if not isinstance(locked, bool):
            raise TypeError("'lk' must be a boolean")
        return cls(ver, _names(d, "disabled"), _names(d, "stopped"), _names(d, "frozen"),
                   _names(d, "standby"), locked)

    def change(self, **sets: frozenset[str] | bool) -> AdminState:
        """A new version with some sets replaced (same object when nothing changes)."""
        if all(getattr(self, k) == v for k, v in sets.items()):
            return self
        return replace(self, version=self.version + 1, **sets)


@dataclass(frozen=True)
class Ghost:
    """What a reporter last heard a node outside its view claim (that node's report, as
    sent by ``incarnation``): the claims a coordinator that never heard that node must
    still respect (issue 11: a fresh daemon must not take "never heard of" for "stopped")."""

    incarnation: int
    services: Mapping[str, ServiceState] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {"i": self.incarnation,
                "s": {k: v.value for k, v in sorted(self.services.items())}}

    @classmethod
    def from_wire(cls, d: Any) -> Ghost:
        if not isinstance(d, dict) or type(d.get("i")) is not int or d["i"] < 0 \
                or not isinstance(d.get("s"), dict):
            raise TypeError("a ghost must be an object with an incarnation 'i' and claims 's'")
        claims = {}
        for k, v in d["s"].items():
            state = ServiceState(v) if isinstance(v, str) else None
            if state not in CLAIMS:
                raise TypeError(f"ghost claim {v!r} is not a claiming state")
            claims[str(k)[:256]] = state
        return cls(d["i"], claims)


@dataclass(frozen=True)
class NodeReport:
    """One node's report. ``blocked``: configured nodes outside the reporter's view whose
    services its fencer does not allow to be recovered (lost and not yet fenced, restarting,
    never seen and not yet startup-fenced): the coordinator recovers a node only if no
    member blocks it. ``ghosts``: the claims the reporter last heard from nodes outside its
    view. Both are absent in reports of older versions (read as empty). ``epoch``: the
    view the reporter was in when it wrote the report (0: none, or an older version that
    does not say): a coordinator decides only on reports written in its own view."""

    ready: bool = False            # local probing (re-adoption) done
    leaving: bool = False
    admin: AdminState = field(default_factory=AdminState)
    services: Mapping[str, LocalService] = field(default_factory=dict)
    blocked: frozenset[str] = frozenset()
    ghosts: Mapping[str, Ghost] = field(default_factory=dict)
    epoch: int = 0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"r": self.ready, "l": self.leaving,
                               "adm": self.admin.to_wire(),
                               "s": {k: v.to_wire() for k, v in sorted(self.services.items())}}
        if self.blocked:
            out["bk"] = sorted(self.blocked)
        if self.ghosts:
            out["gh"] = {k: v.to_wire() for k, v in sorted(self.ghosts.items())}
        if self.epoch:
            out["ep"] = self.epoch
        return out

    @classmethod
    def from_wire(cls, d: Any) -> NodeReport:
        if not isinstance(d, dict) or not isinstance(d.get("s"), dict):
            raise TypeError("a report must be an object with 's'")
        if not isinstance(d.get("r"), bool) or not isinstance(d.get("l"), bool):
            raise TypeError("'r' and 'l' must be booleans")
        ghosts = d.get("gh", {})
        if not isinstance(ghosts, dict):
            raise TypeError("'gh' must be an object")
        epoch = d.get("ep", 0)
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**63:
            raise TypeError("'ep' must be a view epoch")
        return cls(d["r"], d["l"], AdminState.from_wire(d.get("adm")),
                   {str(k)[:256]: LocalService.from_wire(v) for k, v in d["s"].items()},
                   _names(d, "bk"),
                   {str(k)[:256]: Ghost.from_wire(v) for k, v in ghosts.items()}, epoch)

    def get(self, service: str) -> LocalService:
        return self.services.get(service) or _IDLE

    @functools.cached_property
    def notable(self) -> frozenset[str]:
        """The services this report shows claimed, recovering or busy: the only ones whose
        merged row it can change (``services.merge``). Read once per report."""
        return frozenset(svc for svc, local in self.services.items()
                         if local.busy or local.state in _NOTABLE)


@dataclass(frozen=True)
class Command:
    """Coordinator -> node. Valid only in view ``epoch`` from that view's coordinator."""

    epoch: int
    op_id: str
    service: str
    kind: CommandKind
    count: bool = False            # a restart that counts toward max_restarts
    final: ServiceState = ServiceState.STOPPED

    def to_wire(self) -> dict[str, Any]:
        return {"ep": self.epoch, "id": self.op_id, "svc": self.service,
                "do": self.kind.value, "n": self.count, "f": self.final.value}

    @classmethod
    def from_wire(cls, d: Any) -> Command:
        if not isinstance(d, dict):
            raise TypeError("a command must be an object")
        ep, n = d.get("ep"), d.get("n", False)
        if type(ep) is not int or ep < 0 or not isinstance(n, bool):
            raise TypeError("'ep' must be an epoch and 'n' a boolean")
        return cls(ep, _str(d, "id", 64), _str(d, "svc"), CommandKind(_str(d, "do")), n,
                   ServiceState(_str(d, "f") or "stopped"))


def accept_command(cmd: Command, src: int, *, epoch: int, coordinator: int | None,
                   quorate: bool, leaving: bool, local: LocalService) -> str | None:
    """Why this node must ignore ``cmd`` from node ``src`` (None: execute it). Pure."""
    if not quorate:
        return "this node is not in a quorate view"
    if cmd.epoch != epoch:
        return f"stale command from view {cmd.epoch} (current view {epoch})"
    if src != coordinator:
        return f"node {src} is not the coordinator of view {epoch}"
    if leaving and cmd.kind is not CommandKind.STOP:
        return "this node is leaving the cluster"
    if cmd.op_id in (local.busy, local.done):
        return f"op {cmd.op_id} already {'running' if cmd.op_id == local.busy else 'done'}"
    if local.busy:
        return f"busy with op {local.busy}"
    return None
