"""The one exception tree of clusterd.

Exceptions carry structured fields (and ``kwargs`` for logging); they are caught where
policy is decided, not where they are raised. Only ``FatalError`` ends the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass


class ClusterError(Exception):
    """Base of every error clusterd raises on purpose."""

    @property
    def kwargs(self) -> dict:
        return dict(vars(self))


class FatalError(ClusterError):
    """The daemon cannot go on (bad key, unusable config at start): exit non-zero."""


@dataclass(frozen=True)
class Problem:
    """One validation finding: where (an element path such as
    ``/cluster/clusternodes/clusternode[@name='node2']``) and why, with a hint."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class ConfigError(ClusterError):
    """A cluster.conf was refused; ``problems`` lists every reason at once."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], source: str = "cluster.conf"):
        self.problems = tuple(problems)
        self.source = source
        super().__init__(f"{source} is invalid: " + "; ".join(str(p) for p in self.problems))


class WireError(ClusterError):
    """A packet was dropped (malformed, unauthenticated, replayed, foreign, too big)."""

    def __init__(self, reason: str, peer: str = "?"):
        self.reason = reason
        self.peer = peer
        super().__init__(f"packet from {peer} dropped: {reason}")


class AgentError(ClusterError):
    """A fence or resource agent failed, timed out or answered garbage."""

    def __init__(self, agent: str, action: str, rc: int | None, stdout: str = "", stderr: str = "",
                 reason: str = ""):
        self.agent = agent
        self.action = action
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.reason = reason
        super().__init__(f"{agent} {action} failed (rc={rc}): {reason or stderr.strip()[:200]}")


class ControlError(ClusterError):
    """A control-socket request was refused; ``code`` is stable for CLI exit codes."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
