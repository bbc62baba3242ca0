"""One service's resource tree with its agents and status schedules (edge: builds agents,
reads OCF meta-data once).

A ``samba`` resource also gets the addresses of every ``<ip>`` of its service
(``samba.SERVICE_IPS``, prefix lengths removed), as rgmanager's samba.sh read them from
the service, to bind smbd and nmbd to."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping

from clusterd.errors import ConfigError
from clusterd.resources import Op, ResourceNode, plan
from clusterd.resources.agents import (
    ResourceAgent,
    StatusSchedule,
    build_agent,
    due_checks,
    status_schedule,
)
from clusterd.resources.agents.registry import BUILTIN_META, AgentEnv
from clusterd.resources.agents.samba import SERVICE_IPS

Key = tuple[int, ...]


def _overrides(node: ResourceNode) -> list[dict[str, str]]:
    out = []
    for a in node.actions:
        d = {"name": a.name, "depth": str(a.depth)}
        if a.interval > 0:
            d["interval"] = str(a.interval)
        if a.timeout > 0:
            d["timeout"] = str(a.timeout)
        out.append(d)
    return out


def service_ips(root: ResourceNode) -> str:
    """The addresses of the ``<ip>`` resources in ``root``'s tree, in tree order, without
    their ``/PREFIX`` (``198.18.0.52 fd00::52``)."""
    found = [address.split("/", 1)[0] for node in root.walk()
             if node.type == "ip" and (address := node.attr("address"))]
    return " ".join(dict.fromkeys(found))


@functools.lru_cache(maxsize=1024)
def _builtin_schedule(rtype: str, overrides: tuple[tuple[tuple[str, str], ...], ...]
                      ) -> StatusSchedule:
    """A built-in type's status schedule with these ``<action>`` overrides: the same for
    every resource of the type that has them (8,000 services built it 8,000 times, a
    third of loading their config); a StatusSchedule is immutable, so shared."""
    return status_schedule(rtype, None, [dict(o) for o in overrides])


AgentFactory = Callable[[str, Mapping[str, str], str, AgentEnv], ResourceAgent]


class ServiceAgents:
    """One service's tree and its agents (built once per config)."""

    def __init__(self, name: str, root: ResourceNode, env: AgentEnv,
                 build: AgentFactory) -> None:
        self.name = name
        self.root = root
        self.agents: dict[Key, ResourceAgent] = {}
        self.schedules: dict[Key, StatusSchedule] = {}
        self.error = ""
        ips = service_ips(root)
        for node in root.walk():
            attrs = {k: v for k, v in node.attrs if v is not None}
            if node.type == "samba":
                attrs[SERVICE_IPS] = ips
            try:
                self.agents[node.index] = build(node.type, attrs, node.where, env)
            except ConfigError as exc:
                self.error = str(exc)
                continue
            if node.type in BUILTIN_META:
                self.schedules[node.index] = _builtin_schedule(
                    node.type, tuple(tuple(sorted(o.items())) for o in _overrides(node)))

    @functools.cached_property
    def status_order(self) -> tuple[ResourceNode, ...]:
        """The tree's resources in status order: planned once, not at every services
        cycle (``status_work`` runs twice a second on the node that runs the service, and
        planning the tree was most of its cost). The tree is frozen and this object is
        built per config, so the plan cannot go stale."""
        return tuple(step.node for step in plan(self.root, Op.STATUS))

    async def schedule(self, node: ResourceNode) -> StatusSchedule:
        """The status schedule, reading an OCF/rgmanager agent's meta-data once."""
        sched = self.schedules.get(node.index)
        if sched is None:
            agent = self.agents[node.index]
            loaded = await agent.meta_data()
            sched = status_schedule(node.type, loaded.meta, _overrides(node))
            self.schedules[node.index] = sched
        return sched

    def status_work(self, last: Mapping[Key, Mapping[int, float]], skip: Collection[Key],
                    now: float) -> tuple[list[ResourceNode], list[tuple[ResourceNode, int]]]:
        """What a running service's status checks need now, in status order, leaving out
        ``skip`` (subtrees left stopped): the resources whose schedule is not read yet
        (a reload builds new agents; the meta-data read at start went with the old ones)
        and, once every schedule is read, the (resource, depth) checks due at ``now``
        (``last``: when each resource's depths last ran)."""
        nodes = [node for node in self.status_order if node.index not in skip]
        unarmed = [n for n in nodes if n.index not in self.schedules and n.index in self.agents]
        if unarmed:
            return unarmed, []
        due = [(n, d) for n in nodes if n.index in self.schedules
               and (d := due_checks(last.get(n.index, {}), now,
                                    self.schedules[n.index])) is not None]
        return [], due


def default_build(rtype: str, attrs: Mapping[str, str], where: str,
                  env: AgentEnv) -> ResourceAgent:
    return build_agent(rtype, attrs, where=where, env=env)
