"""Fence-agent metadata (``fence_X -o metadata``): parse and check (pure).

Capabilities are read from the agent's own ``<actions>`` list and branched on by name
(STYLE principle 16), never from version strings. Required parameters come from the
``required="1"`` flags; aliases (``obsoletes=`` / ``deprecated=``) satisfy each other, so
``port=`` satisfies the required ``plug`` and ``ipaddr=`` the required ``ip``.

:func:`parameter_problems` judges the parameters a config gives an agent the way
fence-agents' ``fencing.py`` reads them from stdin: a name the agent does not declare is
ignored by it (so a typo silently drops a setting), and a value its ``<content type=...>``
refuses makes it fail, or (booleans) is ignored. Both are reported at validation instead.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clusterd.errors import AgentError, Problem
from clusterd.fencing.redact import normalize_key

# Options that clusterd itself supplies or consumes (``action`` is the step, ``nodename``
# is added as RHCS libfence did and fencing.py skips it silently where undeclared, the
# password scripts are run by clusterd): never missing, always accepted.
SUPPLIED = frozenset({"action", "nodename", "passwd_script", "password_script"})
MAX_METADATA_BYTES = 1024 * 1024
# How fencing.py reads a boolean option from stdin; any other value is ignored.
BOOLEAN_VALUES = ("1", "0", "yes", "no", "on", "off", "true", "false")
_INTEGER = re.compile(r"-?[0-9]+")
_SECONDS = re.compile(r"[0-9]+")


class Capability(enum.Enum):
    """Actions that change how clusterd drives an agent."""

    OFF = "off"
    ON = "on"
    REBOOT = "reboot"
    STATUS = "status"
    MONITOR = "monitor"
    LIST = "list"
    VALIDATE_ALL = "validate-all"


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    required: bool = False
    deprecated: bool = False
    obsoletes: str = ""
    content_type: str = "string"
    default: str | None = None
    choices: tuple[str, ...] = ()

    def value_problem(self, value: str) -> str | None:
        """Why the agent refuses or ignores ``value`` (per its declared content type, read
        as fencing.py reads it), or None. Types other than these are not checked."""
        default = f" (default {self.default})" if self.default else ""
        if self.content_type == "boolean" and value.lower() not in BOOLEAN_VALUES:
            return ("takes a boolean: 1 or 0 (also yes/no, on/off, true/false); the agent "
                    "ignores any other value")
        if self.content_type == "integer" and not _INTEGER.fullmatch(value):
            return f"takes a whole number{default}"
        if self.content_type == "second" and not _SECONDS.fullmatch(value):
            return f"takes a whole number of seconds, 0 or more{default}"
        if (self.content_type == "select" and self.choices
                and value.upper() not in {c.upper() for c in self.choices}):
            return f"takes one of: {', '.join(self.choices)}{default}"
        return None


@dataclass(frozen=True)
class AgentMetadata:
    agent: str
    parameters: tuple[ParameterSpec, ...]
    actions: frozenset[str]
    shortdesc: str = ""

    def supports(self, capability: Capability) -> bool:
        return capability.value in self.actions

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset(c for c in Capability if c.value in self.actions)

    @property
    def parameter_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.parameters)

    def parameter(self, name: str) -> ParameterSpec | None:
        """The declared parameter ``name`` (``-`` read as ``_``, as fencing.py reads it)."""
        wanted = name.replace("-", "_")
        return next((p for p in self.parameters if p.name.replace("-", "_") == wanted), None)

    def to_record(self) -> dict[str, Any]:
        """A JSON-able record (the validation cache on disk); :meth:`from_record` reads it."""
        return {"agent": self.agent, "shortdesc": self.shortdesc,
                "actions": sorted(self.actions),
                "parameters": [{**dataclasses.asdict(p), "choices": list(p.choices)}
                               for p in self.parameters]}

    @classmethod
    def from_record(cls, record: Any) -> AgentMetadata:
        """The metadata of a :meth:`to_record` record; ValueError for anything else."""
        try:
            params = tuple(ParameterSpec(**{**p, "choices": tuple(p["choices"])})
                           for p in record["parameters"])
            meta = cls(agent=record["agent"], parameters=params,
                       actions=frozenset(record["actions"]), shortdesc=record["shortdesc"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a metadata record ({exc!r})") from None
        if meta.to_record() != record:     # e.g. a string where a list belongs
            raise ValueError("not a metadata record (a field of another shape)")
        return meta

    def aliases(self, name: str) -> frozenset[str]:
        """``name`` and every parameter linked to it by ``obsoletes``, transitively."""
        group = {name}
        changed = True
        while changed:
            changed = False
            for p in self.parameters:
                if p.obsoletes and (p.name in group) != (p.obsoletes in group):
                    group |= {p.name, p.obsoletes}
                    changed = True
        return frozenset(group)

    def missing_required(self, options: Mapping[str, str]) -> tuple[str, ...]:
        """Required parameters not given (one entry per alias group, preferred name first,
        e.g. ``"plug (or port)"``)."""
        given = {normalize_key(k) for k, v in options.items() if v != ""}
        missing: list[str] = []
        seen: set[frozenset[str]] = set()
        deprecated = {p.name for p in self.parameters if p.deprecated}
        for p in self.parameters:
            if not p.required or p.name in SUPPLIED:
                continue
            group = self.aliases(p.name)
            if group in seen:
                continue
            seen.add(group)
            if group & given:
                continue
            names = sorted(group, key=lambda n: (n in deprecated, n))
            missing.append(names[0] if len(names) == 1
                           else f"{names[0]} (or {', '.join(names[1:])})")
        return tuple(missing)


def parse_metadata(agent: str, xml_text: str | bytes) -> AgentMetadata:
    """Parse ``-o metadata`` output; raise AgentError naming the agent on garbage."""
    if isinstance(xml_text, str):
        xml_text = xml_text.encode("utf-8", "replace")
    if len(xml_text) > MAX_METADATA_BYTES:
        raise AgentError(agent, "metadata", 0, reason="metadata output is larger than 1 MiB")
    if b"<!DOCTYPE" in xml_text or b"<!ENTITY" in xml_text:
        raise AgentError(agent, "metadata", 0, reason="metadata declares a DOCTYPE/ENTITY; refused")
    # lxml, as for resource agents' meta-data and cluster.conf: the daemon has it loaded
    # anyway, and xml.etree would be 0.5 MB more in every daemon (issue 18's footprint)
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(xml_text, parser)
    except etree.XMLSyntaxError as exc:
        raise AgentError(agent, "metadata", 0,
                         reason=f"metadata is not valid XML ({exc})") from None
    if root.tag != "resource-agent":
        raise AgentError(agent, "metadata", 0,
                         reason=f"metadata root is <{root.tag}>, expected <resource-agent>")
    params: list[ParameterSpec] = []
    for el in root.findall("./parameters/parameter"):
        name = el.get("name", "").strip()
        if not name:
            continue
        content = el.find("content")
        content = content if content is not None else etree.Element("content")
        params.append(ParameterSpec(
            name=name,
            required=el.get("required", "0") == "1",
            deprecated=el.get("deprecated", "0") == "1",
            obsoletes=el.get("obsoletes", ""),
            content_type=content.get("type", "string"),
            default=content.get("default"),
            choices=tuple(o.get("value", "") for o in content.findall("option")
                          if o.get("value")),
        ))
    actions = frozenset(a.get("name", "") for a in root.findall("./actions/action")) - {""}
    if not actions:
        raise AgentError(agent, "metadata", 0, reason="metadata lists no <actions>")
    return AgentMetadata(agent=root.get("name") or agent, parameters=tuple(params),
                         actions=actions, shortdesc=root.get("shortdesc", ""))


def check_device_params(device: str, agent: str, metadata: AgentMetadata,
                        device_params: Mapping[str, str],
                        node_refs: Mapping[str, Mapping[str, str]]) -> list[Problem]:
    """Every missing required parameter, for each node that uses the device.

    ``node_refs`` maps node name -> the node's device-ref parameters (merged over the
    device's own, as the runner does). With no node refs, the device alone is checked.
    """
    where = f"/cluster/fencedevices/fencedevice[@name='{device}']"
    problems: list[Problem] = []
    targets = node_refs or {"": {}}
    for node, ref in sorted(targets.items()):
        merged = {**device_params, **ref}
        for name in metadata.missing_required(merged):
            who = f" for node {node}" if node else ""
            problems.append(Problem(where, f"{agent} requires parameter {name}{who}; "
                                           f"set it on the fencedevice or the node's device"))
    return problems


def parameter_problems(metadata: AgentMetadata, params: Mapping[str, str],
                       agent: str) -> list[str]:
    """Why each of ``params`` (a device's or a node's device-ref parameters, without the
    ``name``/``agent`` fenced itself reads) is not something ``agent`` takes: a name it
    does not declare, or a value its declared type refuses. ``agent`` is how the agent is
    named in the sentences (e.g. "fence_ipmilan (the agent of fence device 'bmc1')")."""
    problems = []
    for key, value in params.items():
        spec = metadata.parameter(key)
        if spec is None and key.replace("-", "_") not in SUPPLIED:
            problems.append(_unknown_parameter(metadata, key, agent))
        elif spec is not None and (why := spec.value_problem(value)) is not None:
            problems.append(f"{key}=\"{value}\" is not valid for {agent}: {key} {why}")
        if key == "action" and value:
            try:
                fence_steps(metadata, value)
            except AgentError as exc:
                problems.append(f"action=\"{value}\" cannot be used with {agent}: "
                                f"{exc.reason}; fix or remove it")
    return problems


def _unknown_parameter(metadata: AgentMetadata, key: str, agent: str) -> str:
    names = sorted(p.name for p in metadata.parameters if not p.deprecated)
    import difflib  # only for a mistake: not in an idle daemon's memory

    close = difflib.get_close_matches(key, metadata.parameter_names, n=1, cutoff=0.7)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return (f"{agent} declares no parameter '{key}'{hint}: the agent would ignore it; "
            f"remove or rename it. The agent's parameters are: {', '.join(names)}")


def fence_steps(metadata: AgentMetadata, requested: str | None) -> tuple[str, bool]:
    """How to fence with this agent: (action to run now, whether to power on afterwards).

    ``reboot`` (the default) runs as ``off`` (confirmed) and then ``on`` so that recovery
    waits for off only (DESIGN 5); an agent without ``reboot`` in its actions (storage
    fencing such as fence_scsi) is only turned off, never re-enabled by a fence.
    """
    name = (requested or "reboot").lower()
    if name == "disable":
        name = "off"
    if name == "enable":
        name = "on"
    if name == "reboot":
        if metadata.supports(Capability.OFF):
            then_on = metadata.supports(Capability.REBOOT) and metadata.supports(Capability.ON)
            return "off", then_on
        if metadata.supports(Capability.REBOOT):
            return "reboot", False
        raise AgentError(metadata.agent, "reboot", None,
                         reason="the agent supports neither off nor reboot (per its metadata)")
    cap = {"off": Capability.OFF, "on": Capability.ON}.get(name)
    if cap is None:
        raise AgentError(metadata.agent, name, None,
                         reason=f"action {name!r} is not a fencing action (off, on, reboot)")
    if not metadata.supports(cap):
        raise AgentError(metadata.agent, name, None,
                         reason=f"the agent does not support action {name} (per its metadata)")
    return name, False
