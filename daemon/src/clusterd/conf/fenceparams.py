"""Fence device parameters, checked against what each agent declares about itself.

RHCS's ``cluster.rng`` lists the parameters of the fence agents of its day in
``FENCEDEVICEOPTIONS``, a choice of fixed groups with no tie to ``agent=``; RHCS-late's
``ccs_update_schema`` regenerated it from every installed agent's ``-o metadata``. Both
refuse parameters today's agents take (``power_wait``, ``method``, ``ipport`` ...). clusterd
asks the agents themselves instead:

* :func:`extend_schema` opens ``FENCEDEVICEOPTIONS`` in the schema: any attribute besides
  ``name`` and ``agent`` (so ``ccs_config_validate --print-schema`` still accepts every file
  clusterd accepts).
* :func:`agent_problems` checks every ``<fencedevice>`` and every node's ``<device>`` (the
  agent of the device it names) against that agent's metadata: a parameter the agent does
  not declare (it would ignore it), a value its declared type refuses (boolean,
  integer/second, select), an ``action`` it cannot do, and an agent that cannot be asked
  (not installed here, no answer to ``-o metadata`` within 5 s, garbage). Besides the
  agent's own parameters, fenced's ``name``/``agent`` and what clusterd supplies itself
  (``action``, ``nodename``, ``passwd_script``) are accepted.

The metadata comes from ``agents`` (:class:`FenceAgents`), so this module stays pure. It
runs where a change is validated on a node (``ccs_config_validate``, ``conf.propose`` and
SIGHUP reload in the daemon, ``cluster_admin`` edits); a config a node loads at start or
receives from its peers is not checked against this node's agents (the cluster accepted
it; ``fence.verify`` shows what this node cannot run).
"""

from __future__ import annotations

from typing import Protocol

from lxml import etree

from clusterd.conf.rng import RNG_NS, RawProblem
from clusterd.conf.validate import FENCE_AGENT
from clusterd.errors import AgentError
from clusterd.fencing.metadata import AgentMetadata, parameter_problems

OPTIONS_DEFINE = "FENCEDEVICEOPTIONS"
FENCED_OWN = ("name", "agent")   # fenced reads them; never passed to the agent
_REFS = ("clusternodes/clusternode/fence/method/device", "clusternodes/clusternode/unfence/device")


class FenceAgents(Protocol):
    """Where the agents' metadata comes from (``clusterd.fencing.catalog``)."""

    def metadata(self, agent: str) -> AgentMetadata:
        """The agent's metadata; AgentError (with a reason) when it cannot be had."""
        ...


def _rng(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{RNG_NS}{tag}", attrs)


def extend_schema(rng: etree._Element) -> etree._Element:
    """``rng`` (a cluster.rng root, changed in place and returned) with the fence device
    parameters open: any attribute but ``name`` and ``agent``, on ``<fencedevice>`` and
    ``<device>``. Raises ValueError if the schema has no FENCEDEVICEOPTIONS."""
    define = rng.find(f"{RNG_NS}define[@name='{OPTIONS_DEFINE}']")
    if define is None:
        raise ValueError(f"schema has no <define name='{OPTIONS_DEFINE}'>")
    for child in list(define):
        define.remove(child)
    any_name = _rng(_rng(_rng(define, "zeroOrMore"), "attribute"), "anyName")
    excluded = _rng(any_name, "except")
    for taken in FENCED_OWN:
        _rng(excluded, "name").text = taken
    return rng


def _metadata(agents: FenceAgents, agent: str) -> AgentMetadata | AgentError:
    try:
        return agents.metadata(agent)
    except AgentError as exc:
        return exc


def agent_problems(root: etree._Element, agents: FenceAgents) -> list[RawProblem]:
    """Every fence device parameter of a canonical ``<cluster>`` tree that its agent does
    not take, and every agent that cannot be asked (see the module docstring)."""
    out: list[RawProblem] = []
    metas: dict[str, AgentMetadata | AgentError] = {}
    agent_of: dict[str, str] = {}
    for dev in root.iterfind("fencedevices/fencedevice"):
        name, agent = dev.get("name", ""), dev.get("agent", "")
        if not FENCE_AGENT.match(agent):
            continue                      # the semantic rules report it
        if agent not in metas:
            metas[agent] = _metadata(agents, agent)
        meta = metas[agent]
        agent_of.setdefault(name, agent)
        if isinstance(meta, AgentError):
            out.append(RawProblem(dev, f"the parameters of fence device '{name}' cannot be "
                                       f"checked: {meta.reason or meta}; install a working "
                                       f"{agent} on this node (every node that may fence "
                                       "needs it) or fix agent="))
        else:
            out.extend(_judge(dev, meta, agent))
    for path in _REFS:
        for ref in root.iterfind(path):
            name = ref.get("name", "")
            meta = metas.get(agent_of.get(name, ""))
            if isinstance(meta, AgentMetadata):
                out.extend(_judge(ref, meta, f"{agent_of[name]} (the agent of fence device "
                                             f"'{name}')"))
    return out


def device_problems(root: etree._Element) -> list[RawProblem]:
    """``agent=`` on a node's ``<device>`` (pure, every validation): the schema refuses it,
    and the agent is chosen by the ``<fencedevice>`` the device names."""
    return [RawProblem(ref, f"agent=\"{ref.get('agent')}\" does not belong on a node's "
                            f"<device>: the agent is set on <fencedevice "
                            f"name=\"{ref.get('name', '')}\">; remove it here")
            for path in _REFS for ref in root.iterfind(path) if ref.get("agent") is not None]


def _judge(el: etree._Element, meta: AgentMetadata, agent: str) -> list[RawProblem]:
    params = {k: v for k, v in el.attrib.items() if k not in FENCED_OWN}
    return [RawProblem(el, reason) for reason in parameter_problems(meta, params, agent)]
