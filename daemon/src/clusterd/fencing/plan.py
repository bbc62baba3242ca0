"""Fence plans from the current config (pure).

The policy names only nodes; the executor asks for a plan **at execution time** from the
config in force then, so a reconfigured device is used at once and the old one never
again (RELIABILITY T26, pacemaker PR #2262). Options are the device's parameters with the
node's device-ref parameters on top (node wins); ``action`` is taken out (it is the step,
not an option) and ``nodename`` is added as RHCS libfence did (storage agents need it).

Typed against the ``conf`` contract (docs/architecture.md) with Protocols, so the tests can
use small builders and the daemon the real :class:`clusterd.conf.ClusterConf`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from clusterd.errors import ConfigError, Problem

_NOT_OPTIONS = frozenset({"name", "agent", "action"})


class DeviceRefLike(Protocol):
    name: str
    params: Mapping[str, str]


class MethodLike(Protocol):
    name: str
    devices: tuple[DeviceRefLike, ...]


class NodeLike(Protocol):
    name: str
    nodeid: int
    fence_methods: tuple[MethodLike, ...]
    unfence: tuple[DeviceRefLike, ...]


class DeviceLike(Protocol):
    name: str
    agent: str
    params: Mapping[str, str]


class ConfLike(Protocol):
    fencedevices: Mapping[str, DeviceLike]

    def node_by_name(self, name: str) -> NodeLike | None: ...


@dataclass(frozen=True)
class DeviceCall:
    """One agent call: which device, which agent, merged options, explicit action."""

    device: str
    agent: str
    options: Mapping[str, str] = field(default_factory=dict)
    action: str | None = None

    def __repr__(self) -> str:  # never print option values (secrets)
        return f"DeviceCall({self.device!r}, {self.agent!r}, action={self.action!r})"


@dataclass(frozen=True)
class MethodPlan:
    name: str
    calls: tuple[DeviceCall, ...]


def _where(node: str) -> str:
    return f"/cluster/clusternodes/clusternode[@name='{node}']"


def _call(conf: ConfLike, node: str, ref: DeviceRefLike, where: str,
          problems: list[Problem]) -> DeviceCall | None:
    device = conf.fencedevices.get(ref.name)
    if device is None:
        problems.append(Problem(where, f"fence device {ref.name!r} is not defined in "
                                       f"<fencedevices>; add it or fix the name"))
        return None
    options = {k: v for k, v in device.params.items() if k not in _NOT_OPTIONS}
    options.update({k: v for k, v in ref.params.items() if k not in _NOT_OPTIONS})
    options.setdefault("nodename", node)
    action = ref.params.get("action") or device.params.get("action") or None
    return DeviceCall(device=ref.name, agent=device.agent, options=options, action=action)


def fence_plan(conf: ConfLike, node: str) -> tuple[MethodPlan, ...]:
    """The node's fence methods in order; ConfigError if the node or a device is unknown
    or the node has no fence method (the policy keeps retrying and shows the reason)."""
    conf_node = conf.node_by_name(node)
    if conf_node is None:
        raise ConfigError([Problem(_where(node), f"node {node} is not in cluster.conf")])
    if not conf_node.fence_methods:
        raise ConfigError([Problem(_where(node), f"node {node} has no fence method; fence "
                                                 f"it by hand and run fence_ack_manual {node}")])
    problems: list[Problem] = []
    plans = []
    for index, method in enumerate(conf_node.fence_methods, 1):
        where = f"{_where(node)}/fence/method[@name='{method.name}']"
        if not method.devices:
            problems.append(Problem(where, "fence method lists no device"))
            continue
        calls = tuple(c for ref in method.devices
                      if (c := _call(conf, node, ref, where, problems)) is not None)
        plans.append(MethodPlan(method.name or str(index), calls))
    if problems:
        raise ConfigError(problems)
    return tuple(plans)


def unfence_plan(conf: ConfLike, node: str) -> tuple[DeviceCall, ...]:
    """The node's ``<unfence>`` devices with their explicit action (default ``on``); empty
    when the node has no unfence section (unfencing is then a no-op, as in RHCS)."""
    conf_node = conf.node_by_name(node)
    if conf_node is None:
        raise ConfigError([Problem(_where(node), f"node {node} is not in cluster.conf")])
    problems: list[Problem] = []
    calls = []
    for ref in conf_node.unfence:
        call = _call(conf, node, ref, f"{_where(node)}/unfence", problems)
        if call is not None:
            calls.append(DeviceCall(call.device, call.agent, call.options,
                                    call.action or "on"))
    if problems:
        raise ConfigError(problems)
    return tuple(calls)
