"""Resource agents: the edge that starts, stops and checks service resources.

Public API (see ``base`` for the contract, ``registry`` for the type mapping):

    from clusterd.resources.agents import build_agent, validate, AgentRc
    agent = build_agent("ip", {"address": "198.18.0.100"})   # ConfigError if invalid
    result = await agent.start()          # AgentResult(action, rc, message, duration, ...)
    result = await agent.status(depth=0)  # OK / NOT_RUNNING / FAILED / TIMEOUT ...
    problems = validate("ocf", attrs, where)               # list[Problem], pure
    depth = due_checks(last_runs, now, status_schedule("ip"))
"""

from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    Announcer,
    MetaDataResult,
    ResourceAgent,
)
from clusterd.resources.agents.metadata import AgentMeta, parse_metadata
from clusterd.resources.agents.registry import (
    AgentEnv,
    build_agent,
    status_schedule,
    validate,
    validate_with_metadata,
)
from clusterd.resources.agents.runner import Runner
from clusterd.resources.agents.schedule import StatusSchedule, due_checks, record_run

__all__ = [
    "AgentAction",
    "AgentEnv",
    "AgentMeta",
    "AgentRc",
    "AgentResult",
    "Announcer",
    "MetaDataResult",
    "ResourceAgent",
    "Runner",
    "StatusSchedule",
    "build_agent",
    "due_checks",
    "parse_metadata",
    "record_run",
    "status_schedule",
    "validate",
    "validate_with_metadata",
]
