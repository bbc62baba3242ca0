"""Which config a node runs at start: the file, or the copy a quorate view accepted.

Every config a quorate view accepted is kept as the *accepted copy* (``ACCEPTED_FILE`` in
the state dir, canonical bytes, written before cluster.conf itself). At start:

* the file equals the accepted copy: run it, accepted;
* no accepted copy (a cluster's first start, a node that never was a member of a quorate
  view, an upgrade from a release without copies): run the file, *unaccepted*; configsync
  accepts it once every member of a quorate view runs it, and until then a node outside
  such a view adopts the cluster's accepted config instead (``configsync/core.py``);
* the file differs from the accepted copy with the same or a higher version (edited while
  clusterd was stopped, by hand or by a module in file mode): run the accepted copy and keep
  the file as a *pending proposal* next to it, with a message naming both versions and
  hashes and how to propose or discard it. A minority never starts on a config the cluster
  did not accept;
* the file is older than the copy (a write interrupted between the two) or missing or
  unreadable: run the accepted copy and write it back.

Pure: the runtime reads the files, calls :func:`choose` and carries out what it says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clusterd.errors import ConfigError

ACCEPTED_FILE = "cluster.conf.accepted"


@dataclass(frozen=True)
class StartupConfig:
    conf: Any                 # what ``parse`` returned for the config to run
    data: bytes = field(repr=False)  # its canonical bytes
    accepted: bool            # a quorate view accepted it (it is the accepted copy)
    pending: bytes | None = field(default=None, repr=False)  # the file, kept aside
    pending_name: str = ""    # suffix for the kept file: "pending-7" or "pending-invalid"
    rewrite: bool = False     # write ``data`` back as cluster.conf
    message: str = ""         # what to log (empty: nothing worth saying)
    level: str = "info"


def pending_path(config_path: str, choice: StartupConfig | None = None, *,
                 version: int | None = None) -> str:
    """Where a file no quorate view accepted is kept: next to cluster.conf."""
    suffix = choice.pending_name if choice is not None else f"pending-{version}"
    return f"{config_path}.{suffix}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def choose(disk: bytes | None, accepted_copy: bytes | None,
           parse: Callable[[bytes], Any], *, config_path: str = "cluster.conf") -> StartupConfig:
    """``disk``: the bytes of cluster.conf (None: missing); ``accepted_copy``: the accepted
    copy's bytes (None: none); ``parse``: the validator (returns an object with
    ``version`` and ``canonical_bytes()``, raises ConfigError). Raises ConfigError when
    there is nothing valid to run."""
    accepted, copy_problem = None, ""
    if accepted_copy is not None:
        try:
            accepted = parse(accepted_copy)
        except ConfigError as exc:
            copy_problem = f"; the accepted copy is unusable ({exc}) and was ignored"
    conf, disk_error = None, None
    if disk is not None:
        try:
            conf = parse(disk)
        except ConfigError as exc:
            disk_error = exc
    if accepted is None:
        if conf is None:
            raise disk_error or ConfigError([], source=f"{config_path} is missing")
        return StartupConfig(conf, conf.canonical_bytes(), False, message=(
            f"config_version {conf.version} from {config_path} has not been accepted by a "
            "quorate view yet (no accepted copy here: a first start); it is accepted once "
            "every member of a quorate view runs it, and a running cluster's accepted "
            f"config replaces it{copy_problem}"))
    data = accepted.canonical_bytes()
    if conf is not None and conf.canonical_bytes() == data:
        return StartupConfig(accepted, data, True)
    if disk is None:
        return StartupConfig(accepted, data, True, rewrite=True, level="warning", message=(
            f"{config_path} is missing: running the accepted config_version "
            f"{accepted.version} and writing it back"))
    if conf is not None and conf.version < accepted.version:
        return StartupConfig(accepted, data, True, rewrite=True, message=(
            f"{config_path} holds config_version {conf.version}, older than the accepted "
            f"config_version {accepted.version} (a write cut short): running and writing "
            "back the accepted one"))
    if conf is None:
        name, what = "pending-invalid", f"is invalid ({disk_error})"
    else:
        name = f"pending-{conf.version}"
        what = (f"holds config_version {conf.version} (sha256 {_sha(conf.canonical_bytes())}),"
                " which no quorate view accepted (edited while clusterd was stopped?)")
    kept = f"{config_path}.{name}"
    return StartupConfig(accepted, data, True, pending=disk, pending_name=name, rewrite=True,
                         level="error", message=(
        f"{config_path} {what}: running the accepted config_version {accepted.version} "
        f"(sha256 {_sha(data)}) instead, and keeping the file as {kept}. To apply it, once "
        f"this node is a member of the quorate cluster: clusterd conf propose {kept} (its "
        f"config_version must be above the cluster's); or delete {kept}"))
