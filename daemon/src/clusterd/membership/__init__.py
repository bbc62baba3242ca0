"""Membership and quorum (sans-IO): failure detector, agreed views, cman quorum."""

from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.core import MembershipCore
from clusterd.membership.events import (
    ConfigConflict,
    ConfigRejected,
    IncarnationChanged,
    MustStopServices,
    NodeFailed,
    NodeJoined,
    NodeLeft,
    Outputs,
    QuorumChanged,
    ViewBacked,
    ViewInstalled,
    WriteConfig,
)
from clusterd.membership.quorum import QuorumState, calculate_quorum

__all__ = [
    "ConfigConflict", "ConfigRejected", "IncarnationChanged", "MembershipConfig",
    "MembershipCore", "MustStopServices", "NodeFailed", "NodeJoined", "NodeLeft", "NodeSpec",
    "Outputs", "QuorumChanged", "QuorumState", "ViewBacked", "ViewInstalled", "WriteConfig",
    "calculate_quorum",
]
