"""What a running fencing attempt is doing, for the log and the status (pure).

A fence agent against a dead BMC can take its whole timeout before it fails; meanwhile
the operation is ``running`` and an operator must see which method, device and action,
since when and for how long at most, and the agent's error output (already redacted by
the runner) the moment a call fails, not only when the attempt ends.
:func:`clusterd.fencing.methods.fence_node` reports each agent call as an
:class:`AgentStep` (when it starts and when it ends); the fencer keeps the attempt's
:class:`Progress` and the status section shows it (:func:`progress_view`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AgentStep:
    """One agent call of a fencing attempt: started (``took`` None) or ended (``took``
    set; ``error`` empty on success). ``started`` is monotonic seconds."""

    node: str
    method: str
    device: str
    agent: str
    action: str
    started: float
    timeout: float
    took: float | None = None
    error: str = ""

    @property
    def what(self) -> str:
        return f"method {self.method} device {self.device} ({self.agent}) action {self.action}"

    def line(self) -> str:
        if self.took is None:
            return f"{self.what}, agent timeout {self.timeout:g}s"
        if self.error:
            return f"{self.what} failed after {self.took:.2f}s: {self.error}"
        return f"{self.what} succeeded in {self.took:.2f}s"


OnStep = Callable[[AgentStep], None]


@dataclass(frozen=True)
class Progress:
    """The local attempt of ``op_id``: its current (or last) agent call and the errors of
    the calls that failed so far in this attempt."""

    op_id: str
    attempt: int
    step: AgentStep
    errors: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        return f"fencing {self.step.node} ({self.op_id}, attempt {self.attempt})"

    def after(self, step: AgentStep) -> Progress:
        errors = self.errors + ((f"{step.what}: {step.error}",) if step.error else ())
        return Progress(self.op_id, self.attempt, step, errors)


def progress_view(p: Progress, now: float, wall_now: float) -> dict[str, Any]:
    """The ``current`` entry of a running operation in the status document."""
    s = p.step
    return {"method": s.method, "device": s.device, "agent": s.agent, "action": s.action,
            "since": round(wall_now - (now - s.started)), "timeout": s.timeout,
            "running": s.took is None, "errors": list(p.errors)}

