"""What an executed operation does to a service's local state (pure).

The executor (``executor.py``) runs the resource agents; these functions decide what the
outcome means for the ``LocalService`` it reports, so that the real executor and the
simulator's fake one (``tests/sim/services_sim.py``) move a service the same way.
rgmanager semantics (``clusterd.resources.ordering.plan`` gives the order):

* a start stops at the first failing resource, then stops what it started in reverse; if
  that cleanup stops cleanly the service is ``recovering`` (placement tries another
  node), otherwise ``failed`` (its resources may still run here);
* a stop runs through every resource even after a failure; any failure leaves the
  service ``failed`` (placement fences the node when fencing is configured, else it is
  blocked);
* a failed status check (or a resource restarted in place that does not start) sets
  ``status_failed`` and leaves the recovery decision to the coordinator;
* a failed stop of part of a service (a changed resource, an independent subtree) is a
  failed service, like a failed stop of the whole.

Every step takes the service as it is and returns it as it becomes, changing only the
fields its docstring names; reasons (``why``) are cut to ``MAX_WHY`` where the text comes
from an agent. Logging stays with the caller, which knows the node and the resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from clusterd.placement.model import ServiceState
from clusterd.services.model import MAX_RESTARTS_KEPT, MAX_WHY, LocalService


# ------------------------------------------------------------------ every operation
def begun(ls: LocalService, op: str) -> LocalService:
    """An operation was accepted: ``busy`` names it until it ends (one at a time)."""
    return replace(ls, busy=op)


def finished(ls: LocalService, op: str) -> LocalService:
    """An operation ended, however it went (cancelled too): not busy, ``done`` names it so
    the coordinator does not send it again."""
    return replace(ls, busy="", done=op)


def crashed(ls: LocalService, error: str) -> LocalService:
    """The operation raised (a bug): ``failed``, since what its resources do is unknown."""
    return replace(ls, state=ServiceState.FAILED, why=f"internal error: {error}")


# ------------------------------------------------------------------ start
def starting(ls: LocalService) -> LocalService:
    """A start begins: what an earlier run left (failed check, reason, partial) is gone."""
    return replace(ls, state=ServiceState.STARTING, status_failed=False, why="",
                   partial=False)


def started(ls: LocalService) -> LocalService:
    """Every resource started (or, at probe, every resource was found running)."""
    return replace(ls, state=ServiceState.STARTED)


def start_failed(ls: LocalService, message: str,
                 cleanup_failures: Sequence[str] = ()) -> LocalService:
    """A start failed with ``message`` and what it had started was stopped again: with no
    ``cleanup_failures`` nothing runs here any more (``recovering``: try another node),
    else something may (``failed``). A service whose agents cannot be built here fails
    its start the first way, with nothing to clean up."""
    state = ServiceState.FAILED if cleanup_failures else ServiceState.RECOVERING
    return replace(ls, state=state, why=message[:MAX_WHY])


def restart_counted(ls: LocalService, wall: float) -> LocalService:
    """A restart that counts toward ``max_restarts`` stopped cleanly at ``wall`` (seconds,
    wall clock: the history crosses nodes in reports)."""
    return replace(ls, restarts=remember(ls.restarts, wall))


def remember(history: tuple[float, ...], wall: float) -> tuple[float, ...]:
    """A restart history (a service's, or an independent subtree's) with one more restart
    at ``wall``: only the last ``MAX_RESTARTS_KEPT`` count, so it stays bounded."""
    return (*history, wall)[-MAX_RESTARTS_KEPT:]


# ------------------------------------------------------------------ stop
def stopping(ls: LocalService) -> LocalService:
    """A stop begins. The reason and flags stay until it ends: while it runs, they still
    say why the service is being stopped."""
    return replace(ls, state=ServiceState.STOPPING)


def stopped(ls: LocalService) -> LocalService:
    """Every resource stopped: nothing of the last run is left to report."""
    return replace(ls, state=ServiceState.STOPPED, status_failed=False, why="",
                   partial=False)


def stop_failed(ls: LocalService, failures: Sequence[str]) -> LocalService:
    """At least one resource did not stop (``failures``, in stop order; the first is
    reported): ``failed``, the resources may still run. A failed check no longer matters,
    the failed stop is what recovery must handle."""
    return replace(ls, state=ServiceState.FAILED, status_failed=False,
                   why=f"stop failed: {failures[0]}"[:MAX_WHY])


def nothing_to_stop(ls: LocalService) -> LocalService:
    """No agent of the service could be built here, so none ran: ``stopped``; the reason
    (why it cannot run here) stays."""
    return replace(ls, state=ServiceState.STOPPED)


# ------------------------------------------------------------------ part of a service
def part_stop_failed(ls: LocalService, what: str) -> LocalService:
    """Stopping part of a running service (``what``: a changed resource, an independent
    subtree) failed: the whole service is ``failed``, as for a failed stop."""
    return replace(ls, state=ServiceState.FAILED, why=f"stop of {what} failed")


def check_failed(ls: LocalService, message: str) -> LocalService:
    """A status check failed, or a resource restarted in place did not start: the
    coordinator decides the recovery (``status_failed``); the state stays as it is."""
    return replace(ls, status_failed=True, why=message[:MAX_WHY])


def subtree_left_stopped(ls: LocalService, reason: str) -> LocalService:
    """A failed non-critical subtree was stopped: the service runs on as ``partial``."""
    return replace(ls, partial=True, why=reason[:MAX_WHY])


def convalesce_failed(ls: LocalService, message: str) -> LocalService:
    """clusvcadm -c could not start a subtree left stopped: still ``partial``, and why."""
    return replace(ls, why=f"convalesce: {message}"[:MAX_WHY])


def convalesced(ls: LocalService) -> LocalService:
    """Every non-critical subtree left stopped runs again: no longer ``partial``."""
    return replace(ls, partial=False, why="")
