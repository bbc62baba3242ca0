"""Resource trees (pure): rules from agent meta-data, the tree built from ``<rm>``,
start/stop ordering, rg_test dumps and reconfiguration deltas. Agent runners (edge) live
in ``clusterd.resources.agents`` and implement :class:`~clusterd.resources.agent.ResourceAgent`.
"""

from clusterd.resources.delta import (
    ChangeKind,
    GroupChange,
    format_delta,
    reconfiguration,
)
from clusterd.resources.dump import format_test, format_tree
from clusterd.resources.ordering import Op, Step, plan, start_order, stop_order
from clusterd.resources.recovery import SubtreeRecovery, Verdict, subtree_recovery
from clusterd.resources.rules import (
    DEFAULT_RULES,
    ResourceRule,
    RuleSet,
    rule_from_metadata,
)
from clusterd.resources.tree import Resource, ResourceNode, ResourceTree, build_tree

__all__ = [
    "DEFAULT_RULES",
    "ChangeKind",
    "GroupChange",
    "Op",
    "Resource",
    "ResourceNode",
    "ResourceRule",
    "ResourceTree",
    "RuleSet",
    "Step",
    "SubtreeRecovery",
    "Verdict",
    "build_tree",
    "format_delta",
    "format_test",
    "format_tree",
    "plan",
    "reconfiguration",
    "rule_from_metadata",
    "start_order",
    "stop_order",
    "subtree_recovery",
]
