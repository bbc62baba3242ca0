"""Membership and quorum (sans-IO): failure detector, agreed views, cman quorum.

The events the core emits and its ``Outputs`` are in ``clusterd.events`` (shared with
configsync); ``host.ClusterCore`` composes this core with configsync and the packet guard.
"""

from clusterd.membership.agreement import LocalConfig
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.core import MembershipCore
from clusterd.membership.quorum import QuorumState, calculate_quorum

__all__ = [
    "LocalConfig", "MembershipConfig", "MembershipCore", "NodeSpec", "QuorumState",
    "calculate_quorum",
]
