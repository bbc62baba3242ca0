"""Agent meta-data: the parameters a resource type takes and its action timings.

Pure: parses OCF / rgmanager ``<resource-agent>`` meta-data XML into frozen
``AgentMeta`` and validates a resource's attributes against it, reporting every problem at
once as ``clusterd.errors.Problem``. Built-in agents (ip, fs, script, systemd) declare their
``AgentMeta`` in code with the same types, so one validator serves all of them. The
parameter and action types are the resource rules' (``clusterd.resources.rules``): one
model of agent meta-data for the tree builder and the agents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clusterd.errors import Problem
from clusterd.resources.rules import ActionSpec, ParamSpec
from clusterd.truth import WORDS_HINT, is_secret_param, parse_bool

if TYPE_CHECKING:
    from lxml import etree

MAX_METADATA_BYTES = 1024 * 1024
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|msec|s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)
_TIME_UNITS = {None: 1.0, "ms": 0.001, "msec": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0,
               "min": 60.0, "h": 3600.0, "hr": 3600.0}
# Attributes rgmanager itself reads on every resource; never agent parameters.
RGMANAGER_ATTRS = frozenset({"ref", "__independent_subtree", "__enforce_timeouts",
                             "__max_failures", "__failure_expire_time", "__max_restarts",
                             "__restart_expire_time"})


class MetaDataError(ValueError):
    """Meta-data text that is not usable agent meta-data (the message says why)."""


def parse_time(text: str) -> float:
    """Seconds from an rgmanager/OCF time: ``20``, ``20s``, ``1m``, ``500ms``, ``1h``."""
    match = _TIME.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a time (examples: 20, 20s, 1m, 500ms)")
    unit = match.group(2).lower() if match.group(2) else None
    return float(match.group(1)) * _TIME_UNITS[unit]


# Booleans (``parse_bool``) and secret names are clusterd.truth's, as everywhere else.
def is_secret_name(name: str) -> bool:
    """Parameter names whose values must never reach logs (clusterd.truth's rule)."""
    return is_secret_param(name)


@dataclass(frozen=True)
class AgentMeta:
    name: str
    params: tuple[ParamSpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    shortdesc: str = ""
    extra_ok: frozenset[str] = field(default_factory=frozenset)  # attrs allowed, not params

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def primary(self) -> str:
        """The identifying attribute (rgmanager ``primary="1"``), else ``name``."""
        return next((p.name for p in self.params if p.primary), "name")

    def action_timeout(self, action: str, fallback: float) -> float:
        for spec in self.actions:
            if spec.name == action and spec.timeout:
                return spec.timeout
        return fallback

    def status_timeout(self, depth: int, fallback: float) -> float:
        """Timeout of the status check at ``depth`` (else the shallowest one's)."""
        checks = self.status_actions()
        exact = [a.timeout for a in checks if (a.depth or 0) == depth and a.timeout]
        if exact:
            return exact[0]
        return next((a.timeout for a in checks if a.timeout), fallback)

    def status_actions(self) -> tuple[ActionSpec, ...]:
        """Status checks (``status`` for rgmanager agents, else OCF ``monitor``)."""
        status = tuple(a for a in self.actions if a.name == "status")
        return status or tuple(a for a in self.actions if a.name == "monitor")

    def defaults(self) -> dict[str, str]:
        return {p.name: p.default for p in self.params if p.default is not None}

    def with_defaults(self, attrs: Mapping[str, str]) -> dict[str, str]:
        merged = self.defaults()
        merged.update(attrs)
        return merged


def parse_metadata(data: bytes | str) -> AgentMeta:
    """Parse ``<resource-agent>`` meta-data; raises ``MetaDataError`` on garbage."""
    from lxml import etree  # lazily: built-in agents never need it

    raw = data.encode() if isinstance(data, str) else data
    if not raw.strip():
        raise MetaDataError("meta-data is empty")
    if len(raw) > MAX_METADATA_BYTES:
        raise MetaDataError(f"meta-data is larger than {MAX_METADATA_BYTES} bytes")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(raw.strip(), parser)
    except etree.XMLSyntaxError as exc:
        raise MetaDataError(f"meta-data is not XML: {exc}") from None
    if root.tag != "resource-agent":
        raise MetaDataError(f"meta-data root is <{root.tag}>, expected <resource-agent>")
    name = root.get("name", "")
    if not name:
        raise MetaDataError("meta-data <resource-agent> has no name")
    params = tuple(_param(p) for p in root.iterfind("parameters/parameter"))
    actions = []
    for elem in root.iterfind("actions/action"):
        try:
            actions.append(_action(elem))
        except ValueError as exc:
            raise MetaDataError(f"meta-data action {elem.get('name')!r}: {exc}") from None
    return AgentMeta(name=name, params=params, actions=tuple(actions),
                     shortdesc=(root.findtext("shortdesc") or "").strip())


def _param(elem: etree._Element) -> ParamSpec:
    name = elem.get("name", "")
    if not name:
        raise MetaDataError("meta-data has a <parameter> without a name")
    content = elem.find("content")
    ctype = content.get("type", "string") if content is not None else "string"
    default = content.get("default") if content is not None else None
    options: tuple[str, ...] = ()
    if content is not None:
        options = tuple(o.get("value", "") for o in content.iterfind("option"))
    return ParamSpec(name=name, content_type=ctype, required=elem.get("required") == "1",
                     unique=elem.get("unique") == "1", primary=elem.get("primary") == "1",
                     default=default, options=options,
                     shortdesc=(elem.findtext("shortdesc") or "").strip())


def _action(elem: etree._Element) -> ActionSpec:
    name = elem.get("name", "")
    timeout = elem.get("timeout")
    interval = elem.get("interval")
    depth = elem.get("depth")
    return ActionSpec(name=name,
                      timeout=parse_time(timeout) if timeout else 0,
                      interval=parse_time(interval) if interval else 0,
                      depth=int(depth) if depth not in (None, "", "*") else 0)


def validate_params(meta: AgentMeta, attrs: Mapping[str, str], where: str,
                    allow: Iterable[str] = ()) -> list[Problem]:
    """Every problem with ``attrs`` against ``meta``: missing required parameters, values
    of the wrong type, select values not offered, attributes the agent does not take."""
    problems: list[Problem] = []
    allowed = set(allow) | RGMANAGER_ATTRS | meta.extra_ok
    for spec in meta.params:
        value = attrs.get(spec.name)
        if value is None or value == "":
            if spec.required and spec.default is None:
                problems.append(Problem(where, f"{meta.name}: required parameter "
                                               f"'{spec.name}' is missing"
                                               + (f" ({spec.shortdesc})" if spec.shortdesc else "")))
            continue
        reason = _bad_value(spec, value)
        if reason:
            shown = "(hidden)" if is_secret_name(spec.name) else repr(value)
            problems.append(Problem(where, f"{meta.name}: parameter '{spec.name}' = {shown} "
                                           f"{reason}"))
    known = {p.name for p in meta.params}
    for name in sorted(attrs):
        if name not in known and name not in allowed:
            problems.append(Problem(where, f"{meta.name}: unknown parameter '{name}' "
                                           f"(known: {', '.join(sorted(known)) or 'none'})"))
    return problems


def _bad_value(spec: ParamSpec, value: str) -> str:
    if spec.content_type == "integer":
        try:
            int(value)
        except ValueError:
            return "is not an integer"
    elif spec.content_type == "boolean":
        try:
            parse_bool(value)
        except ValueError:
            return f"is not a boolean ({WORDS_HINT})"
    elif spec.content_type == "time":
        try:
            parse_time(value)
        except ValueError:
            return "is not a time (examples: 20, 20s, 1m)"
    elif spec.content_type == "select" and spec.options and value not in spec.options:
        return f"is not one of {', '.join(spec.options)}"
    return ""
