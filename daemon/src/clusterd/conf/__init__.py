"""The one cluster.conf model: parse, validate, canonical bytes, diff, edit.

Public API (see docs/architecture.md, "conf contract")::

    conf = parse(data, source="cluster.conf")   # ConfigError lists every problem
    conf = load(path)
    conf.services, conf.domains, conf.resource_tree, conf.tree_warnings   # <rm>, typed once
    problems = validate_bytes(data)             # () when valid
    problems = validate_bytes(data, fence_agents=catalog)   # + fence parameters vs agents
    problems = fence_agent_problems(conf, catalog)          # the same, of a built config
    d = diff(old, new)
    conf = edit.set_service(conf, "web", {...}, [...])   # and set_cluster, ...; new_cluster()
    args = export(conf)                                  # the arguments of the edit functions
"""

from clusterd.conf import edit
from clusterd.conf.diff import ConfDiff, diff
from clusterd.conf.edit import new_cluster
from clusterd.conf.export import export
from clusterd.conf.model import (
    ClusterConf,
    FenceDaemonConf,
    FenceDevice,
    FenceDeviceRef,
    FenceMethod,
    NodeConf,
    Params,
)
from clusterd.conf.parse import (
    DEFAULT_PATH,
    MAX_BYTES,
    fence_agent_problems,
    load,
    parse,
    validate_bytes,
)
from clusterd.conf.rmcheck import TreeWarning

__all__ = [
    "DEFAULT_PATH", "MAX_BYTES", "ClusterConf", "ConfDiff", "FenceDaemonConf", "FenceDevice",
    "FenceDeviceRef", "FenceMethod", "NodeConf", "Params", "TreeWarning", "diff", "edit",
    "export", "fence_agent_problems", "load", "new_cluster", "parse", "validate_bytes",
]
