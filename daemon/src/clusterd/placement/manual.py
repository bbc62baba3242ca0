"""Where would a user's ``clusvcadm -e [-m]``, ``-e -F`` or ``-r [-m]`` go (pure).

RHCS tolerance rules (RHCS-late ``rgmanager/src/daemons/rg_state.c``
``handle_start_req()``, ``handle_relocate_req()``; RHCS-SEMANTICS b5, b7): a user enable
accepts a GOOD node (a non-member of an unrestricted domain), automatic placement and
``-F`` need BEST, a restricted domain is never violated (ILLEGAL -> RG_EDOMAIN). Errors
are rgmanager's RG_E* codes with their rg_strerror() texts; clusvcadm exits with the
code modulo 256 (RG_ERUN "already running" exits 0).

Exclusive: service.sh's description says manual start/relocate "may override"
exclusivity; late rgmanager refused such starts (RG_EEXCL) and so do we: quietly breaking
an exclusive service's isolation is not what an operator asking to start one expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from clusterd.placement.domains import RUNNING, Score, occupancy, pick, score_all
from clusterd.placement.model import ServiceState, Snapshot


class RgError(IntEnum):
    SUCCESS = 0
    EFAIL = -1
    EABORT = -2
    EFORWARD = -3
    ENOSERVICE = -4
    EDEADLCK = -5
    EAGAIN = -6
    EDEPEND = -7
    EINVAL = -8
    EQUORUM = -9
    ERUN = -10
    EFROZEN = -11
    ENODE = -12
    EFENCE = -13
    ESCRIPT = -14
    EDOMAIN = -15
    EEXCL = -16
    ERELO = -17
    EPERM = -18

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def exit_code(self) -> int:
        """What the shell sees from clusvcadm (main() returns the negative code)."""
        return 0 if self is RgError.ERUN else self.value % 256


# rgmanager/src/clulib/rg_strings.c rg_error_strings[]
_MESSAGES = {
    RgError.SUCCESS: "Success",
    RgError.EFAIL: "Failure",
    RgError.EABORT: "Aborted; service failed",
    RgError.EFORWARD: "Request forwarded",
    RgError.ENOSERVICE: "Service does not exist",
    RgError.EDEADLCK: "Operation would cause a deadlock",
    RgError.EAGAIN: "Temporary failure; try again",
    RgError.EDEPEND: "Invalid dependency",
    RgError.EINVAL: "Invalid request",
    RgError.EQUORUM: "Operation requires quorum",
    RgError.ERUN: "Service is already running",
    RgError.EFROZEN: "Service is frozen",
    RgError.ENODE: "Target node dead / nonexistent",
    RgError.EFENCE: "Fencing operation pending; try again later",
    RgError.ESCRIPT: "Event script error",
    RgError.EDOMAIN: "Service not runnable",
    RgError.EEXCL: "Service not runnable: cannot run exclusive",
    RgError.ERELO: "Failed; service running on original owner",
    RgError.EPERM: "Permission denied",
}


@dataclass(frozen=True)
class ManualResult:
    error: RgError
    target: str | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.error is RgError.SUCCESS


def _precheck(snap: Snapshot, service: str) -> ManualResult | None:
    if not snap.quorate:
        return ManualResult(RgError.EQUORUM, None, "the cluster is not quorate")
    if snap.service(service) is None:
        return ManualResult(RgError.ENOSERVICE, None, f"{service} is not in cluster.conf")
    st = snap.state(service)
    if st.frozen:
        return ManualResult(RgError.EFROZEN, None, f"{service} is frozen; unfreeze it (clusvcadm -U) first")
    if snap.busy(service) is not None:
        return ManualResult(RgError.EAGAIN, None, f"{service} has an operation in progress")
    return None


def _check_target(snap: Snapshot, service: str, node: str, tolerance: Score) -> ManualResult:
    info = snap.node(node)
    if info is None or not info.online:
        return ManualResult(RgError.ENODE, None, f"'{node}' not in membership list")
    svc = snap.service(service)
    c = next(c for c in score_all(snap, svc) if c.node == node)
    if c.score >= tolerance:
        return ManualResult(RgError.SUCCESS, node, f"{node}: {c.why}")
    if "exclusive" in c.why:
        return ManualResult(RgError.EEXCL, None, f"{node}: {c.why}")
    return ManualResult(RgError.EDOMAIN, None, f"{node}: {c.why}")


def _dependency(snap: Snapshot, service: str) -> ManualResult | None:
    svc = snap.service(service)
    if svc.depend:
        dep = snap.state(svc.depend)
        if dep.state is not ServiceState.STARTED:
            return ManualResult(RgError.EDEPEND, None, f"{service} depends on {svc.depend}, which is "
                                                       f"{dep.state.value}")
    return None


def enable_target(snap: Snapshot, service: str, member: str | None = None,
                  local: str | None = None, follow_domain: bool = False) -> ManualResult:
    """``clusvcadm -e SERVICE [-m MEMBER | -F]`` run on node ``local``."""
    bad = _precheck(snap, service)
    if bad is not None:
        return bad
    st = snap.state(service)
    if st.state in RUNNING:
        return ManualResult(RgError.ERUN, st.owner, f"{service} is {st.state.value} on {st.owner}")
    if st.state is ServiceState.FAILED:
        return ManualResult(RgError.EINVAL, None, f"{service} is failed (a stop failed); check its "
                                                  f"resources, then disable it before enabling")
    bad = _dependency(snap, service)
    if bad is not None:
        return bad
    if follow_domain:
        svc = snap.service(service)
        c = pick(snap, svc, occupancy(snap))
        if c is None:
            return ManualResult(RgError.EDOMAIN, None, f"no node may run {service} per its domain rules")
        return ManualResult(RgError.SUCCESS, c.node, f"{c.node}: {c.why}")
    target = member or local
    if target is None:
        return ManualResult(RgError.EINVAL, None, "no member given and no local node")
    res = _check_target(snap, service, target, Score.GOOD)
    if res.ok or member is not None:
        return res
    # Enable on the local node failed: rgmanager then behaves like a relocate.
    return relocate_target(snap, service, None, _stopped_ok=True)


def relocate_target(snap: Snapshot, service: str, member: str | None = None,
                    _stopped_ok: bool = False) -> ManualResult:
    """``clusvcadm -r SERVICE [-m MEMBER]``: a node other than the owner."""
    bad = _precheck(snap, service)
    if bad is not None:
        return bad
    st = snap.state(service)
    if st.state is ServiceState.FAILED:
        return ManualResult(RgError.EINVAL, None, f"{service} is failed; disable it first")
    if st.state is not ServiceState.STARTED and not _stopped_ok:
        # rgmanager relocates a stopped service by starting it: same rules as enable -m.
        return enable_target(snap, service, member=member, local=member) if member else \
            enable_target(snap, service, follow_domain=True)
    bad = _dependency(snap, service)
    if bad is not None:
        return bad
    owner = st.owner if st.state is ServiceState.STARTED else None
    if member is not None:
        if member == owner:
            return ManualResult(RgError.ERUN, owner, f"{service} already runs on {owner}")
        return _check_target(snap, service, member, Score.GOOD)
    svc = snap.service(service)
    c = pick(snap, svc, occupancy(snap), exclude={owner} if owner else (), minimum=Score.GOOD)
    if c is None:
        return ManualResult(RgError.ERELO if owner else RgError.EDOMAIN, owner,
                            f"no other node may run {service}")
    return ManualResult(RgError.SUCCESS, c.node, f"{c.node}: {c.why}")


def relocate_walk(snap: Snapshot, service: str, first: str, origin: str | None
                  ) -> tuple[str, ...]:
    """Where a relocation goes if ``first`` cannot start the service (rgmanager
    ``handle_relocate_req()``): every other node that may run it (GOOD or better), best
    first, then the original owner, which gets the service back if nobody else could."""
    svc = snap.service(service)
    if svc is None:
        return ()
    occ = occupancy(snap)
    if origin is not None:      # the service is about to leave the origin: it is free there
        occ = {n: s - {service} for n, s in occ.items()}
    rest = [c.node for c in score_all(snap, svc, occ)
            if c.score >= Score.GOOD and c.node not in (first, origin)]
    return (*rest, origin) if origin is not None and origin != first else tuple(rest)
