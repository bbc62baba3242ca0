"""``nfsexport`` agent (RHCS's ``<nfsexport>``): the NFS server its ``<nfsclient>``s need.

What rgmanager's ``nfsexport.sh.in`` (ClusterLabs/resource-agents) did: it exported
nothing itself (each ``<nfsclient>`` child runs ``exportfs``; here heartbeat:exportfs, see
``rhcs_nfs``). ``start`` checked that the NFS daemons ran (``nfsd``, ``rpc.mountd``,
``rpc.statd``) and, if one did not, restarted the node's ``nfslock`` and ``nfs``
services; ``status`` checked the same and never restarted anything; ``stop`` ran the
start check again (it never stopped the server, which other services on the node may
export through). Its ``device``, ``path`` and ``fsid`` are inherited from the parent
``<fs>`` for the nfsclients below; it read ``path``/``device`` only in ``validate-all``,
which refused an empty path.

Here, on Debian's units (:data:`UNITS`, through ``systemctl`` as ``systemd.py`` runs it):

- start: ``systemctl start`` each unit and wait until it is active (starting an active
  unit changes nothing; a unit systemd does not know is NOT_INSTALLED: install
  nfs-kernel-server). Then a marker in ``HA_RSCTMP`` records that this export runs here.
- stop: removes the marker, nothing else: the server keeps running for the other exports
  on the node (nfsexport.sh's stop did not stop it either; it restarted dead daemons,
  which this stop does not do: a stop that fails fences the node, over a server the
  service is leaving anyway).
- status: without the marker NOT_RUNNING (not started on this node: the server may well
  run for another service); with it OK while every unit is active, else FAILED.
- ``rpc.statd`` (NFSv3 locking) is not checked: ``nfs-server.service`` pulls in
  ``rpc-statd.service`` where it is used, and an NFSv4-only server masks it.

``path`` must be set and absolute (nfsexport.sh's validate-all refused an empty one; set
by inheritance under an ``<fs>``): the marker is keyed by ``name`` and ``path``, one per
export in the tree, so the same global ``<nfsexport>`` under two file systems is two.
The node's NFS server must not be enabled at boot (docs/rhcs-migration.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Mapping

from clusterd.errors import Problem
from clusterd.resources.agents.base import (
    AgentAction,
    AgentRc,
    AgentResult,
    MetaDataResult,
    Outcome,
    guarded,
)
from clusterd.resources.agents.metadata import AgentMeta, validate_params
from clusterd.resources.agents.runner import Runner
from clusterd.resources.agents.script import printable
from clusterd.resources.agents.systemd import CALL_TIMEOUT, SystemdAgent
from clusterd.resources.rules import ActionSpec, ParamSpec

logger = logging.getLogger(__name__)

NFS_SERVER_UNIT = "nfs-server.service"
NFS_MOUNTD_UNIT = "nfs-mountd.service"
UNITS = (NFS_MOUNTD_UNIT, NFS_SERVER_UNIT)  # mountd answers the kernel's export lookups
PACKAGE = "nfs-kernel-server"
RUNNING = frozenset({"active", "reloading"})

META = AgentMeta(
    name="nfsexport",
    shortdesc="The NFS server an export needs (its nfsclients export)",
    params=(
        ParamSpec("name", required=True, primary=True),
        ParamSpec("device", shortdesc="inherited from the fs, for the nfsclients"),
        ParamSpec("path", shortdesc="inherited: the fs mountpoint"),
        ParamSpec("fsid", shortdesc="inherited from the fs, for the nfsclients"),
    ),
    actions=(
        ActionSpec("start", timeout=60.0), ActionSpec("stop", timeout=10.0),
        ActionSpec("status", timeout=20.0, interval=30.0, depth=0),
        ActionSpec("meta-data", timeout=5.0),
    ),
)


def validate(attrs: Mapping[str, str], where: str) -> list[Problem]:
    problems = validate_params(META, attrs, where)
    path = attrs.get("path", "")
    if not path.strip():
        problems.append(Problem(where, "nfsexport: path is not set: an <nfsexport> takes the "
                                       "mountpoint of the <fs> it sits in; put it inside that "
                                       "<fs>, or set path=\"/srv/dir\""))
    elif not path.startswith("/"):
        problems.append(Problem(where, f"nfsexport: path {path!r} must be an absolute path "
                                       "(inherited from the <fs> mountpoint unless set here)"))
    return problems


def marker_name(name: str, path: str) -> str:
    """The marker file of one export (``name`` and ``path`` with trailing slashes cut)."""
    key = f"{name}\0{path.rstrip('/') or '/'}".encode()
    return f"nfsexport-{hashlib.sha256(key).hexdigest()[:32]}"


class NfsExportAgent:
    rtype = "nfsexport"

    def __init__(self, attrs: Mapping[str, str], *, runner: Runner | None = None,
                 rsctmp: str = "/run/resource-agents"):
        self.attrs = dict(attrs)
        self.name = self.attrs.get("name", "")
        self.path = self.attrs.get("path", "")
        self._runner = runner or Runner()
        self._rsctmp = rsctmp
        self._marker = os.path.join(rsctmp, marker_name(self.name, self.path))
        self._units = tuple(SystemdAgent({"name": self.name, "unit": unit}, runner=self._runner)
                            for unit in UNITS)
        self._who = f"nfsexport:{self.name} ({self.path})"

    def _timeout(self, action: str, timeout: float | None) -> float:
        return timeout if timeout is not None else META.action_timeout(action, 20.0)

    async def start(self, timeout: float | None = None) -> AgentResult:
        limit = self._timeout("start", timeout)
        deadline = time.monotonic() + limit

        async def body() -> Outcome:
            for unit in self._units:
                left = max(deadline - time.monotonic(), 0.1)
                started = await unit.start(left)
                if not started.ok:
                    hint = f" (install {PACKAGE})" if started.rc is AgentRc.NOT_INSTALLED else ""
                    return Outcome(started.rc, f"{self._who}: the NFS server did not start: "
                                               f"{started.message}{hint}")
            await asyncio.to_thread(self._write_marker)
            return Outcome(AgentRc.OK, f"{self._who}: NFS server running "
                                       f"({', '.join(UNITS)})")
        return await guarded(AgentAction.START, self._who,
                             limit + len(UNITS) * 2 * CALL_TIMEOUT, body)

    async def stop(self, timeout: float | None = None) -> AgentResult:
        async def body() -> Outcome:
            await asyncio.to_thread(self._remove_marker)
            return Outcome(AgentRc.OK, f"{self._who}: stopped (the NFS server keeps running "
                                       "for the node's other exports)")
        return await guarded(AgentAction.STOP, self._who, self._timeout("stop", timeout), body)

    async def status(self, depth: int = 0, timeout: float | None = None) -> AgentResult:
        async def body() -> Outcome:
            if not await asyncio.to_thread(os.path.exists, self._marker):
                return Outcome(AgentRc.NOT_RUNNING, f"{self._who}: not started on this node")
            for unit in self._units:
                state = await unit.active_state()
                if state not in RUNNING:
                    return Outcome(AgentRc.FAILED, f"{self._who}: {unit.unit} is "
                                                   f"{printable(state)}: the NFS server "
                                                   "this export needs is down")
            return Outcome(AgentRc.OK, f"{self._who}: NFS server running")
        return await guarded(AgentAction.STATUS, self._who, self._timeout("status", timeout),
                             body)

    async def meta_data(self, timeout: float | None = None) -> MetaDataResult:
        result = AgentResult(AgentAction.META_DATA, AgentRc.OK,
                             "nfsexport: built-in meta-data", 0.0)
        return MetaDataResult(result, META)

    def _write_marker(self) -> None:
        os.makedirs(self._rsctmp, 0o755, exist_ok=True)
        with open(self._marker, "w") as handle:
            handle.write(f"{self.name}\n{self.path}\n")

    def _remove_marker(self) -> None:
        try:
            os.unlink(self._marker)
        except FileNotFoundError:
            pass
