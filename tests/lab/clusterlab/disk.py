"""The lab's shared disk: one block device that every node sees, as a SAN LUN would be.

A sparse file under the lab's nodes directory, attached to a loop device on the host and
formatted ext4 once at bring-up (nothing mounts it on the host). Each node's container
gets the loop device bound in at :data:`DEVICE` (``systemd-nspawn --bind``). Nothing but
fencing and the cluster's ordering keeps two nodes from mounting it at once: the kernel
lets every node mount it, as a real LUN would. (One difference from a real LUN: two
mounts of the same device on one kernel share one superblock, so a double mount corrupts
nothing here. Tests therefore look for double mounts in the nodes' mount tables instead
of waiting for corruption: see :func:`mounted_on`.)

The quorum disk (``<quorumd device=QDISK_DEVICE>``) is a second, small file with one loop
device per node, bound in at :data:`QDISK_DEVICE`: the loop driver reads and writes the
one file through its page cache, so every node sees every other's writes, and a node's
own path to the disk can fail alone: :func:`set_qdisk_path` makes that node's loop device
read-only on the host (its writes fail with EPERM at once, as on a lost SAN path; its
reads still work) and back.

Teardown detaches the loop devices (their backing files lie under the lab's directories)
and removes the files with the rest of the nodes directory.
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
QDISK_DEVICE = "/dev/cluster-qdisk0"  # the quorum disk, inside every node
QDISK_BYTES = 16 * 1024 * 1024


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


def qdisk_path(spec: LabSpec) -> Path:
    return Path(spec.nodes_dir) / "shared" / "qdisk.img"


def create_qdisk(spec: LabSpec) -> dict[str, str]:
    """The quorum disk's file (zeroed: ``mkqdisk`` initialises it from a node) and one loop
    device per node on it; returns node name -> host loop device."""
    path = qdisk_path(spec)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, QDISK_BYTES)
    finally:
        os.close(fd)
    loops = {}
    for n in spec.nodes:
        loop = run(["losetup", "--find", "--show", str(path)],
                   what=f"attaching the quorum disk for {n.name}").stdout.strip()
        if not loop.startswith("/dev/loop"):
            raise LabError(f"losetup printed {loop!r} for the quorum disk, not a loop device")
        loops[n.name] = loop
    logger.info("quorum disk %s: %s", path, loops)
    return loops


def set_qdisk_path(loop: str, working: bool) -> None:
    """Cut (``working=False``: the device turns read-only, writes fail) or restore one
    node's path to the quorum disk."""
    run(["blockdev", "--setrw" if working else "--setro", loop],
        what=f"{'restoring' if working else 'cutting'} a node's path to the quorum disk")


def nspawn_args(loop: str | None, qdisk_loop: str | None = None) -> list[str]:
    """systemd-nspawn arguments that give a node the shared disk at DEVICE and its path to
    the quorum disk at QDISK_DEVICE."""
    return ([f"--bind={loop}:{DEVICE}"] if loop else []) + (
        [f"--bind={qdisk_loop}:{QDISK_DEVICE}"] if qdisk_loop else [])


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
