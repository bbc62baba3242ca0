"""The lab's shared disk: one block device that every node sees, as a SAN LUN would be.

A sparse file under the lab's nodes directory, attached to a loop device on the host and
formatted ext4 once at bring-up (nothing mounts it on the host). Each node's container
gets the loop device bound in at :data:`DEVICE` (``systemd-nspawn --bind``). Nothing but
fencing and the cluster's ordering keeps two nodes from mounting it at once: the kernel
lets every node mount it, as a real LUN would. (One difference from a real LUN: two
mounts of the same device on one kernel share one superblock, so a double mount corrupts
nothing here. Tests therefore look for double mounts in the nodes' mount tables instead
of waiting for corruption: see :func:`mounted_on`.)

Teardown detaches the loop device (its backing file lies under the lab's directories)
and removes the file with the rest of the nodes directory.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import LabError
from .procs import run
from .spec import LabSpec

logger = logging.getLogger(__name__)

DEVICE = "/dev/cluster-lun0"  # the path inside every node
SIZE_BYTES = 512 * 1024 * 1024
LABEL = "clustershared"


def image_path(spec: LabSpec) -> Path:
    return Path(spec.nodes_dir) / "shared" / "lun0.img"


def create(spec: LabSpec) -> str:
    """Make the backing file, attach it and format it; return the host's loop device."""
    path = image_path(spec)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, SIZE_BYTES)
    finally:
        os.close(fd)
    loop = run(["losetup", "--find", "--show", str(path)],
               what="attaching the shared disk to a loop device").stdout.strip()
    if not loop.startswith("/dev/loop"):
        raise LabError(f"losetup printed {loop!r} for the shared disk, not a loop device")
    # no lazy init: nothing on the host may keep writing to the device after mkfs returns
    run(["mkfs.ext4", "-q", "-F", "-L", LABEL, "-E", "lazy_itable_init=0,lazy_journal_init=0",
         loop], what="formatting the shared disk (ext4)")
    logger.info("shared disk %s on %s (%d MiB, ext4 label %s)", path, loop,
                SIZE_BYTES >> 20, LABEL)
    return loop


def nspawn_args(loop: str | None) -> list[str]:
    """systemd-nspawn arguments that give a node the shared disk at DEVICE."""
    return [f"--bind={loop}:{DEVICE}"] if loop else []


def mounted_on(init_pid: int, device: str = DEVICE) -> list[str]:
    """Mount points of ``device`` in the mount namespace of the process ``init_pid`` (a
    node's container init): read from /proc on the host, no process started in the node,
    so an auditor can sample every node many times a second. [] if the process is gone."""
    try:
        with open(f"/proc/{init_pid}/mounts", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:   # gone, or exiting (EINVAL while its namespaces are torn down)
        return []
    return [words[1] for words in (line.split() for line in lines)
            if len(words) > 1 and words[0] == device]
