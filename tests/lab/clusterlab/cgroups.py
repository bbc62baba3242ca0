"""One cgroup per node container. With --keep-unit and no systemd on the host, nspawn
creates its `supervisor`/`payload` cgroups under the cgroup it was started in; containers
started from the same place would share one payload cgroup and their systemds would remove
each other's units' cgroups ("Failed to attach to cgroup ..."). So each nspawn enters,
before exec, a cgroup of its own named after the container (<prefix>-nodeN; node.boot)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)
CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """Roots nspawn uses: the unified (v2) tree, plus name=systemd on v1/hybrid hosts."""
    if (CGROUP_ROOT / "cgroup.procs").exists():  # pure cgroup v2
        return [CGROUP_ROOT]
    return [CGROUP_ROOT / name for name in ("systemd", "unified")
            if (CGROUP_ROOT / name / "cgroup.procs").exists()]


def paths(name: str) -> list[Path]:
    return [root / name for root in hierarchies()]


def create(name: str) -> list[Path]:
    made = []
    for path in paths(name):
        path.mkdir(exist_ok=True)
        made.append(path)
    return made


def remove(name: str) -> bool:
    """rmdir the cgroup tree bottom-up; True if it is gone (busy ones are left)."""
    gone = True
    for path in paths(name):
        if not path.exists():
            continue
        for sub, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
            try:
                os.rmdir(sub)
            except OSError as exc:
                logger.debug("cgroup %s not removed: %s", sub, exc)
                gone = False
    return gone


def lab_cgroups(prefix: str) -> list[str]:
    found = set()
    for root in hierarchies():
        try:
            found.update(n for n in os.listdir(root) if n.startswith(prefix + "-")
                         and (root / n).is_dir())
        except OSError:
            continue
    return sorted(found)


def members(name: str, limit: int = 20) -> list[str]:
    """What still runs in a node's cgroup: ``PID STATE WCHAN COMM`` of each process (at
    most ``limit``), for the message when a powered-off container does not exit (a
    process in D state names the kernel function it waits in)."""
    seen: dict[str, str] = {}          # a pid is in both trees on a hybrid host
    for path in paths(name):
        for sub, _dirs, _files in os.walk(path):
            try:
                pids = (Path(sub) / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                if pid not in seen and len(seen) < limit:
                    seen[pid] = _describe(pid)
    return list(seen.values())


def _describe(pid: str) -> str:
    proc = Path("/proc") / pid
    try:
        stat = proc.joinpath("stat").read_text()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        state = stat[stat.rindex(")") + 2:].split()[0]
    except (OSError, ValueError, IndexError):
        return f"{pid} (gone)"
    try:
        wchan = proc.joinpath("wchan").read_text() or "-"
    except OSError:
        wchan = "?"
    return f"{pid} {state} {wchan} {comm}"
