"""Service placement (pure): ``decide(snapshot) -> Decision``, the candidate explainer,
and the targets of manual operations (clusvcadm) with RG_E* error codes."""

from clusterd.placement.config import services_from_rm
from clusterd.placement.decide import decide
from clusterd.placement.domains import Score, candidates
from clusterd.placement.manual import (
    ManualResult,
    RgError,
    enable_target,
    relocate_target,
)
from clusterd.placement.model import (
    ActionKind,
    Decision,
    DependMode,
    DomainMember,
    FailoverDomain,
    Fence,
    FenceRequired,
    InFlight,
    InFlightKind,
    MarkState,
    NodeInfo,
    PlacementAction,
    Recovery,
    Relocate,
    Restart,
    ServiceDef,
    ServiceState,
    ServiceStatus,
    Snapshot,
    Start,
    Stop,
)

__all__ = [
    "ActionKind", "Decision", "DependMode", "DomainMember", "FailoverDomain", "Fence",
    "FenceRequired", "InFlight", "InFlightKind", "ManualResult", "MarkState", "NodeInfo",
    "PlacementAction", "Recovery", "Relocate", "Restart", "RgError", "Score", "ServiceDef", "ServiceState",
    "ServiceStatus", "Snapshot", "Start", "Stop", "candidates", "decide", "enable_target",
    "relocate_target", "services_from_rm",
]
