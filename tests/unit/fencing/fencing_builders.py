"""Small builders for fencing-policy tests (no dependency on clusterd.conf)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from clusterd.fencing.policy import step
from clusterd.fencing.state import (
    Event,
    FenceStep,
    FencingState,
    PolicyConfig,
    ViewChanged,
)

NODES3 = {"node1": 1, "node2": 2, "node3": 3}


def cfg(nodes: dict[str, int] | None = None, **kw) -> PolicyConfig:
    return PolicyConfig(nodeids=dict(nodes or NODES3), **kw)


def view(*members: str, quorate: bool = True, coord: str | None = None, left: Iterable[str] = (),
         joined: bool = False, inc: dict[str, str] | None = None) -> ViewChanged:
    incs = {m: (inc or {}).get(m, f"{m}-a") for m in members}
    return ViewChanged(members=incs, quorate=quorate,
                       coordinator=coord or (min(members) if members else ""),
                       left_clean=frozenset(left), joined_running=joined)


@dataclass
class Run:
    """Feeds events in order and keeps every step (state, actions, reason)."""

    state: FencingState
    steps: list[FenceStep] = field(default_factory=list)

    def at(self, now: float, event: Event) -> FenceStep:
        result = step(self.state, event, now)
        self.state = result.state
        self.steps.append(result)
        return result

    def op(self, node: str):
        return self.state.ops.get(node)


def started(local: str = "node1", config: PolicyConfig | None = None,
            members: Iterable[str] = ("node1", "node2", "node3")) -> Run:
    run = Run(FencingState.initial(local, config or cfg()))
    run.at(0.0, view(*members))
    return run


def runs(result: FenceStep) -> list[tuple[str, int]]:
    from clusterd.fencing.state import RunFence
    return [(a.node, a.attempt) for a in result.actions if isinstance(a, RunFence)]


# --- config builders (the conf contract, without clusterd.conf) -----------------------

@dataclass(frozen=True)
class Dev:
    name: str
    agent: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Ref:
    name: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    name: str
    devices: tuple = ()


@dataclass(frozen=True)
class Node:
    name: str
    nodeid: int
    fence_methods: tuple = ()
    unfence: tuple = ()


@dataclass(frozen=True)
class Conf:
    fencedevices: dict
    nodes: tuple

    def node_by_name(self, name):
        return next((n for n in self.nodes if n.name == name), None)
