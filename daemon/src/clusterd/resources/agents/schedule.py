"""Status-check scheduling: which depth of status check is due now (pure).

rgmanager (``restree.c do_status()``): every status scan, for each resource, run the
*highest* depth whose interval has elapsed since it last ran; running depth d also counts
as a run of every shallower depth (a deep check includes the shallow one). Intervals come
from the agent's meta-data ``<action name="status" depth= interval= timeout=>`` and can be
overridden per instance by a child ``<action name="status" depth= interval= timeout=>``
(``depth="*"`` = every depth). An interval of 0 disables that depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clusterd.errors import Problem
from clusterd.resources.agents.metadata import AgentMeta, parse_time


@dataclass(frozen=True)
class StatusCheck:
    depth: int
    interval: float   # seconds; 0 = never
    timeout: float    # seconds


@dataclass(frozen=True)
class StatusSchedule:
    checks: tuple[StatusCheck, ...]   # sorted by depth, one per depth

    def check(self, depth: int) -> StatusCheck | None:
        return next((c for c in self.checks if c.depth == depth), None)

    @classmethod
    def from_meta(cls, meta: AgentMeta, overrides: Iterable[Mapping[str, str]] = (),
                  default_timeout: float = 20.0) -> StatusSchedule:
        """The agent's status actions, then each instance ``<action>`` override applied
        (raises ``ValueError`` naming the bad value; see ``validate_overrides``)."""
        by_depth: dict[int, StatusCheck] = {}
        for spec in meta.status_actions():
            depth = spec.depth or 0
            by_depth[depth] = StatusCheck(depth, spec.interval or 0.0,
                                          spec.timeout or default_timeout)
        for override in overrides:
            if override.get("name") not in ("status", "monitor"):
                continue
            raw_depth = override.get("depth", "*")
            depths = list(by_depth) if raw_depth == "*" else [int(raw_depth)]
            for depth in depths:
                base = by_depth.get(depth, StatusCheck(depth, 0.0, default_timeout))
                interval = override.get("interval")
                timeout = override.get("timeout")
                by_depth[depth] = StatusCheck(
                    depth,
                    parse_time(interval) if interval else base.interval,
                    parse_time(timeout) if timeout else base.timeout)
        return cls(tuple(sorted(by_depth.values(), key=lambda c: c.depth)))


def validate_overrides(overrides: Iterable[Mapping[str, str]], where: str) -> list[Problem]:
    """Problems in per-instance ``<action>`` overrides (name, depth, interval, timeout)."""
    problems: list[Problem] = []
    for override in overrides:
        name = override.get("name", "")
        if not name:
            problems.append(Problem(where, "<action> needs a name (start, stop, status)"))
        depth = override.get("depth")
        if depth not in (None, "*"):
            try:
                if int(depth) < 0:
                    raise ValueError
            except ValueError:
                problems.append(Problem(where, f"<action name={name!r}> depth {depth!r} is "
                                               "not a non-negative integer or '*'"))
        for key in ("interval", "timeout"):
            value = override.get(key)
            if value is None:
                continue
            try:
                seconds = parse_time(value)
            except ValueError as exc:
                problems.append(Problem(where, f"<action name={name!r}> {key}: {exc}"))
                continue
            if key == "timeout" and seconds <= 0:
                problems.append(Problem(where, f"<action name={name!r}> timeout must be > 0"))
    return problems


def due_checks(last_runs: Mapping[int, float], now: float,
               schedule: StatusSchedule) -> int | None:
    """The highest depth whose interval has elapsed at ``now`` (monotonic seconds), or
    None when nothing is due. A depth missing from ``last_runs`` has never run and is due;
    seed ``last_runs`` with the start time to wait one interval after a start."""
    due: int | None = None
    for check in schedule.checks:
        if check.interval <= 0:
            continue
        last = last_runs.get(check.depth)
        elapsed = last is None or now - last >= check.interval
        if elapsed and (due is None or check.depth > due):
            due = check.depth
    return due


def record_run(last_runs: Mapping[int, float], depth: int, now: float,
               schedule: StatusSchedule) -> dict[int, float]:
    """New ``last_runs`` after a depth-``depth`` check at ``now``: that depth and every
    shallower one count as run."""
    updated = dict(last_runs)
    for check in schedule.checks:
        if check.depth <= depth:
            updated[check.depth] = now
    return updated
