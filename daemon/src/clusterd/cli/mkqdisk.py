"""mkqdisk: initialise or list quorum disks, as RHCS's mkqdisk(8) did.

``mkqdisk -c DEVICE -l LABEL`` writes the quorum disk header and clears the 16 status
blocks (every byte of the first 68 KiB of DEVICE is overwritten: it refuses a device that
carries a file system or a partition table unless ``--force``, and a device that already
has a quorum disk header is left alone unless ``--force``). ``mkqdisk -L`` lists the quorum
disks among the block devices in /proc/partitions (and any ``-d DEVICE`` given), ``-f
LABEL`` prints the device that carries LABEL. Run ``-c`` once, from one node, before
``<quorumd>`` goes into cluster.conf.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from clusterd import __version__
from clusterd.qdisk.block import (
    HEADER_MAGIC,
    MAX_NODEID,
    SIZE,
    SLOT,
    decode_header,
    encode_header,
)
from clusterd.qdisk.runner import (
    DiskError,
    find_label,
    open_device,
    read_slots,
    write_slot,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# what a device may already hold that -c must not overwrite without --force
SIGNATURES = ((1080, b"\x53\xef", "an ext2/3/4 file system"), (0, b"XFSB", "an XFS file system"),
              (510, b"\x55\xaa", "a partition table"), (512, b"EFI PART", "a GPT partition table"),
              (536, b"LVM2 001", "an LVM physical volume"))


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mkqdisk", description="Initialise or list quorum disks.")
    ap.add_argument("-c", dest="create", metavar="DEVICE", help="initialise DEVICE")
    ap.add_argument("-l", dest="label", help="the label to write with -c (at most 64 bytes)")
    ap.add_argument("-L", dest="list", action="store_true", help="list quorum disks")
    ap.add_argument("-f", dest="find", metavar="LABEL", help="print the device with LABEL")
    ap.add_argument("-d", dest="devices", action="append", default=[], metavar="DEVICE",
                    help="also look at DEVICE with -L (e.g. one not in /proc/partitions)")
    ap.add_argument("--force", action="store_true",
                    help="overwrite a device that holds data or a quorum disk already")
    ap.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return ap


def _existing(data: bytes) -> str | None:
    if data.startswith(HEADER_MAGIC):
        return "a quorum disk header"
    for offset, magic, what in SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            return what
    return None


def create(device: str, label: str, force: bool) -> str:
    if not device.startswith("/dev/"):
        raise DiskError(f"{device} is not a device under /dev: name the shared LUN")
    fd = open_device(device)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        if size < SIZE:
            raise DiskError(f"{device} holds {size} bytes; a quorum disk needs at least {SIZE}")
        found = _existing(read_slots(fd, 2))
        if found is not None and not force:
            raise DiskError(f"{device} already holds {found}: nothing written (check it is the "
                            "LUN meant for the quorum disk, then add --force)")
        write_slot(fd, 0, encode_header(label))
        for n in range(1, MAX_NODEID + 1):
            write_slot(fd, n, bytes(SLOT))
        os.fsync(fd)
        header = decode_header(read_slots(fd, 1))
        if header is None or header.label != label:
            raise DiskError(f"{device}: the header did not read back: check the device")
    finally:
        os.close(fd)
    return f"mkqdisk: {device} initialised as a quorum disk, label {label!r}"


def _candidates(extra: Sequence[str]) -> list[str]:
    try:
        with open("/proc/partitions") as f:
            names = [f"/dev/{line.split()[3]}" for line in f.read().splitlines()[2:]
                     if line.split()]
    except OSError:
        names = []
    return [*extra, *(n for n in names if n not in extra)]


def list_disks(extra: Sequence[str]) -> list[str]:
    out = []
    for path in _candidates(extra):
        try:
            fd = open_device(path)
        except OSError:
            continue
        try:
            header = decode_header(read_slots(fd, 1))
        except (OSError, DiskError):
            header = None
        finally:
            os.close(fd)
        if header is not None:
            when = datetime.fromtimestamp(header.created, UTC).strftime(
                "%Y-%m-%d %H:%M:%S UTC")
            out.append(f"{path}:\n\tLabel: {header.label}\n\tCreated: {when}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if sum(bool(x) for x in (args.create, args.list, args.find)) != 1:
        print("mkqdisk: give one of -c DEVICE -l LABEL, -L or -f LABEL", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.create:
            if not args.label:
                print("mkqdisk: -c needs -l LABEL (the label <quorumd label> or mkqdisk -f "
                      "finds the disk by)", file=sys.stderr)
                return EXIT_USAGE
            print(create(args.create, args.label, args.force))
        elif args.list:
            found = list_disks(args.devices)
            print("\n".join(found) if found else "mkqdisk: no quorum disk found")
            return EXIT_OK if found else EXIT_FAILED
        else:
            path = find_label(args.find)
            if path is None:
                print(f"mkqdisk: no quorum disk labelled {args.find!r}", file=sys.stderr)
                return EXIT_FAILED
            print(path)
    except ValueError as exc:
        print(f"mkqdisk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DiskError as exc:
        print(f"mkqdisk: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"mkqdisk: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
