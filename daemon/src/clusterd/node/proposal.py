"""Accepting a new cluster.conf on this node (control op ``conf.propose``, SIGHUP).

Rules (DESIGN.md section 3, corosync PR #248): the proposal must validate (every problem
reported at once), keep the cluster name, and raise ``config_version``; the same version
with the same content is a no-op, with different content a conflict; a lower version is
stale. The name of a running cluster never changes (:func:`rename_refusal`: the cluster id
and every node's membership derive from it; a new name is for a new cluster, bootstrapped). The local node must stay in the file (remove a node from another node). A secret
parameter may not hold the mask ``conf.get`` shows in its place (``********``): that is a
masked copy written back, which would replace the real password (unless the running file
holds the same placeholder there already). :func:`check_proposal` is pure;
:func:`refuse_untrusted_programs` looks at this node's files (``conf.programs``) and
:func:`refuse_unknown_fence_params` asks this node's fence agents (``conf.fenceparams``);
:func:`refuse_shared_addresses` resolves the node names as this node's daemon does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from clusterd.conf import ClusterConf, fence_agent_problems
from clusterd.conf.paths import element_path
from clusterd.conf.programs import local_problems
from clusterd.conf.refusals import Resolver, address_problems, system_resolver
from clusterd.conf.secrets import MASK, in_secret_scope, is_secret_param
from clusterd.control import protocol as p
from clusterd.errors import ConfigError, ControlError
from clusterd.fencing.agent import AgentRunner
from clusterd.fencing.catalog import prefetch

Parse = Callable[..., ClusterConf]


@dataclass(frozen=True)
class ProposalVerdict:
    conf: ClusterConf
    changed: bool
    reason: str


def check_proposal(running: ClusterConf, data: bytes, *, local_name: str, parse: Parse,
                   source: str = "proposed cluster.conf") -> ProposalVerdict:
    """Validate ``data`` against the running config; ControlError says why it is refused."""
    try:
        new = parse(data, source=source)
    except ConfigError as exc:
        raise ControlError(p.E_INVALID_CONFIG, str(exc)) from None
    cur_v, new_v = running.version, new.version
    if new.name != running.name:
        raise rename_refusal(running.name, new.name, source)
    if new.node_by_name(local_name) is None:    
        raise ControlError(p.E_INVALID_CONFIG,
                           f"{source}: /cluster/clusternodes: this node ({local_name}) is not "
                           "in it; remove a node from another member")
    masked = sorted(_placeholders(new.root) - _placeholders(running.root))
    if masked:
        where = "; ".join(f"{path} {key}" for path, key in masked)
        raise ControlError(p.E_INVALID_CONFIG,
                           f"{source}: {where}: holds the mask {MASK!r} that conf.get shows "
                           "instead of a secret; a masked copy cannot be written back: set "
                           "the real value (root reads it with `clusterd conf get "
                           "--reveal-secrets`) or use a secret:// reference")
    if new_v == cur_v:
        if new.sha256 == running.sha256:        
            return ProposalVerdict(running, False, f"config_version {cur_v} is already "
                                                   "running with this content")
        raise ControlError(p.E_CONFLICT, f"config_version {new_v} is already running with "
                                         "different content; raise config_version")
    if new_v < cur_v:
        raise ControlError(p.E_STALE_VERSION, f"config_version {new_v} is older than the "
                                              f"running {cur_v}; raise config_version")
    return ProposalVerdict(new, True, f"config_version {cur_v} -> {new_v} accepted")


def rename_refusal(running: str, proposed: str,
                   source: str = "proposed cluster.conf") -> ControlError:
    """Why a running cluster cannot take a new name, and what to do instead."""
    return ControlError(p.E_INVALID_CONFIG, (
        f"{source}: /cluster/@name: the running cluster \"{running}\" cannot be renamed to "
        f"\"{proposed}\": its cluster id (in every heartbeat) and every node's membership "
        "derive from the name, so the nodes would stop recognising each other; keep "
        f"name=\"{running}\", or stop clusterd on every node, tear the cluster down and "
        f"bootstrap a new one named \"{proposed}\" (a cluster is named only at bootstrap)"))


def refuse_shared_addresses(conf: ClusterConf, source: str = "proposed cluster.conf",
                            resolve: Resolver | None = None) -> None:
    """ControlError when two node names resolve to one address as this node's daemon
    resolves them (``conf.refusals``). Blocking (DNS): call it in a thread."""
    found = address_problems(conf.root, resolve or system_resolver())
    if found:
        raise ControlError(p.E_INVALID_CONFIG, f"{source}: " + "; ".join(
            f"{element_path(raw.element)}: {raw.reason}" for raw in found))


def refuse_untrusted_programs(conf: ClusterConf, source: str = "proposed cluster.conf") -> None:
    """ControlError when a program parameter names a file on this node that root must not
    run (``conf.programs.local_problems``). Blocking (stat): call it in a thread."""
    found = local_problems(conf.root)
    if found:
        raise ControlError(p.E_INVALID_CONFIG, f"{source}: " + "; ".join(
            f"{element_path(raw.element)}: {raw.reason}" for raw in found))


async def refuse_unknown_fence_params(conf: ClusterConf, runner: AgentRunner,
                                      source: str = "proposed cluster.conf") -> None:
    """ControlError naming every fence device parameter this node's agents do not take
    and every agent that cannot be asked. The metadata is read asynchronously, at most 5 s
    per agent, through ``runner`` (the fencer's: its cache then serves fencing too)."""
    agents = await prefetch((d.agent for d in conf.fencedevices.values()), runner)
    found = fence_agent_problems(conf, agents)
    if found:
        raise ControlError(p.E_INVALID_CONFIG, f"{source}: " + "; ".join(map(str, found)))


def _placeholders(root: etree._Element) -> set[tuple[str, str]]:
    """``(element path, parameter)`` of every secret parameter whose value is the mask."""
    return {(element_path(el), key) for el in root.iter(etree.Element)
            if in_secret_scope(el) for key, value in el.attrib.items()
            if value == MASK and is_secret_param(key)}
