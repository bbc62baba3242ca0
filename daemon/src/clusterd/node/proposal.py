"""Accepting a new cluster.conf on this node (control op ``conf.propose``, SIGHUP). Pure.

Rules (DESIGN.md section 3, corosync PR #248): the proposal must validate (every problem
reported at once), keep the cluster name, and raise ``config_version``; the same version
with the same content is a no-op, with different content a conflict; a lower version is
stale. The local node must stay in the file (remove a node from another node).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clusterd.conf import ClusterConf
from clusterd.control import protocol as p
from clusterd.errors import ConfigError, ControlError

Parse = Callable[..., ClusterConf]


@dataclass(frozen=True)
class Verdict:
    conf: ClusterConf
    changed: bool
    reason: str


def check_proposal(running: ClusterConf, data: bytes, *, local_name: str, parse: Parse,
                   source: str = "proposed cluster.conf") -> Verdict:
    """Validate ``data`` against the running config; ControlError says why it is refused."""
    try:
        new = parse(data, source=source)
    except ConfigError as exc:
        raise ControlError(p.E_INVALID_CONFIG, str(exc)) from None
    cur_v, new_v = running.version, new.version
    if new.name != running.name:
        raise ControlError(p.E_INVALID_CONFIG,
                           f"{source}: /cluster/@name: the cluster name cannot change "
                           f"(running {running.name!r}, proposed {new.name!r})")
    if new.node_by_name(local_name) is None:    
        raise ControlError(p.E_INVALID_CONFIG,
                           f"{source}: /cluster/clusternodes: this node ({local_name}) is not "
                           "in it; remove a node from another member")
    if new_v == cur_v:
        if new.sha256 == running.sha256:        
            return Verdict(running, False, f"config_version {cur_v} is already running "
                                           "with this content")
        raise ControlError(p.E_CONFLICT, f"config_version {new_v} is already running with "
                                         "different content; raise config_version")
    if new_v < cur_v:
        raise ControlError(p.E_STALE_VERSION, f"config_version {new_v} is older than the "
                                              f"running {cur_v}; raise config_version")
    return Verdict(new, True, f"config_version {cur_v} -> {new_v} accepted")
