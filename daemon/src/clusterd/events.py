"""Events the membership and config cores emit for the runtime (each with a reason), and
the ``Outputs`` both cores return.

The two sans-IO cores (``membership.core``, ``configsync.core``) share this vocabulary
here, so neither core imports the other; ``membership.host.ClusterCore`` composes them
and hands their events on to the runtime (``tests/unit/test_package_layers.py`` holds
configsync free of membership). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clusterd.wire.messages import Send, View, ViewId


@dataclass(frozen=True)
class ViewInstalled:
    view: View
    reason: str


@dataclass(frozen=True)
class QuorumChanged:
    quorate: bool
    votes: int
    quorum: int
    reason: str


@dataclass(frozen=True)
class ViewBacked:
    """The installed view is backed by a quorum of live leases for the first time (the
    flag may have stayed true through the view change: ``QuorumChanged`` is not sent).
    Acting on the new view's quorum, fencing above all, waits for this."""

    vid: ViewId
    votes: int
    quorum: int


@dataclass(frozen=True)
class NodeJoined:
    nodeid: int
    incarnation: int
    reason: str = "joined the view"


@dataclass(frozen=True)
class NodeFailed:
    nodeid: int
    incarnation: int
    reason: str
    clean: bool = False


@dataclass(frozen=True)
class NodeLeft:
    """``hold``: the node announced a restart that keeps its services running (its next
    incarnation re-adopts them): neither fenced nor recovered for a grace period."""

    nodeid: int
    incarnation: int
    reason: str = "left cleanly"
    clean: bool = True
    hold: bool = False


@dataclass(frozen=True)
class MustStopServices:
    reason: str


@dataclass(frozen=True)
class WriteConfig:
    """Write these bytes atomically (0640 root) as cluster.conf, then apply them."""

    data: bytes = field(repr=False)
    version: int = 0
    sha256: str = ""
    reason: str = ""
    accepted: bool = True  # a quorate view accepted it: also keep it as the accepted copy


@dataclass(frozen=True)
class ConfigAccepted:
    """The running config is now accepted by a quorate view (every member of a quorate
    view runs it, or a peer runs it as accepted): the runtime keeps these bytes as the
    accepted copy, which is what it runs at its next start."""

    data: bytes = field(repr=False)
    version: int = 0
    sha256: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ConfigDisplaced:
    """A config no quorate view accepted was replaced by the cluster's accepted one; the
    runtime keeps ``data`` as a pending proposal file and tells the operator how to apply
    or discard it."""

    data: bytes = field(repr=False)
    version: int = 0
    sha256: str = ""
    by_version: int = 0
    by_sha256: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ConfigConflict:
    peer: int
    version: int
    local_sha256: str
    peer_sha256: str
    reason: str


@dataclass(frozen=True)
class ConfigRejected:
    version: int
    sha256: str
    reason: str


Event = (ViewInstalled | QuorumChanged | NodeJoined | NodeFailed | NodeLeft | MustStopServices
         | WriteConfig | ConfigConflict | ConfigRejected | ConfigAccepted | ConfigDisplaced)


@dataclass(frozen=True)
class Outputs:
    sends: tuple[Send, ...] = ()
    events: tuple[Event, ...] = ()

    def __add__(self, other: Outputs) -> Outputs:
        # frozen, so an empty side is shared rather than copied: most of an idle node's
        # inputs add nothing (each heartbeat adds three or four of these)
        if not (other.sends or other.events):
            return self
        if not (self.sends or self.events):
            return other
        return Outputs(self.sends + other.sends, self.events + other.events)


NOTHING = Outputs()


class OutputBuffer:
    """Collects sends and events during one call of a core."""

    def __init__(self) -> None:
        self.sends: list[Send] = []
        self.events: list[Event] = []

    def send(self, dest: int, msg: object) -> None:
        self.sends.append(Send(dest, msg))  # type: ignore[arg-type]

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def take(self) -> Outputs:
        if not (self.sends or self.events):
            return NOTHING
        out = Outputs(tuple(self.sends), tuple(self.events))
        self.sends.clear()
        self.events.clear()
        return out
