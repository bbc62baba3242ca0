"""The node base image: debootstrap minbase of bookworm plus the pinned package list,
cached under /var/cache/rhc-lab/image-<key>/ and rebuilt when the list changes.

A build goes to a temporary directory and is renamed into place only when complete, so an
interrupted build never leaves a half image that looks done."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from .errors import LabError
from .procs import run
from .render import mirror_from_sources

logger = logging.getLogger(__name__)

BUILD_VERSION = "7"  # bump when the build steps below change
CACHE_ROOT = Path("/var/cache/rhc-lab")
PACKAGES_FILE = Path(__file__).resolve().parent.parent / "image-packages.txt"
SUITE = "bookworm"
# Units a node must not start on its own (the cluster starts nginx, MariaDB, Apache and
# Samba, whose data lives on the shared disk; the rest costs memory).
DISABLED_UNITS = ("nginx.service", "mariadb.service", "mariadb.socket", "apache2.service",
                  "apache-htcacheclean.service", "smbd.service", "nmbd.service", "logd.service", "e2scrub_reap.service",
                  "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                  "fstrim.timer")
MASKED_UNITS = ("console-getty.service", "getty@.service", "systemd-networkd.service",
                "systemd-resolved.service", "systemd-timesyncd.service")


def read_packages(path: Path = PACKAGES_FILE) -> list[tuple[str, str]]:
    """(name, version) pairs from the pinned list; raise LabError on a malformed line."""
    pins = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("=")
        if not sep or not name or not version:
            raise LabError(f"{path}:{lineno}: expected name=version, got {line!r}")
        pins.append((name, version))
    return pins


def image_key(path: Path = PACKAGES_FILE) -> str:
    digest = hashlib.sha256(path.read_bytes() + b"\0build-" + BUILD_VERSION.encode())
    return digest.hexdigest()[:16]


def image_dir(key: str | None = None) -> Path:
    return CACHE_ROOT / f"image-{key or image_key()}"


def cached_image() -> Path | None:
    """The rootfs of the current image if it is built, else None."""
    root = image_dir() / "rootfs"
    return root if (image_dir() / "meta.json").is_file() else None


def image_meta() -> dict:
    try:
        return json.loads((image_dir() / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def host_mirror() -> str:
    files = []
    for name in sorted(glob.glob("/etc/apt/sources.list.d/*")) + ["/etc/apt/sources.list"]:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            files.append((name, Path(name).read_text()))
    return mirror_from_sources(files, SUITE)


def ensure_image() -> Path:
    """Return the cached image's rootfs, building it first if needed (about 2-3 min)."""
    found = cached_image()
    if found:
        return found
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / "build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another lab building the same image: wait
        found = cached_image()
        if found:
            return found
        return _build(image_key())


def _build(key: str) -> Path:
    if not shutil.which("debootstrap"):
        raise LabError("debootstrap is not installed (run make setup)")
    pins = read_packages()
    mirror = host_mirror()
    for stale in CACHE_ROOT.glob(".build-*"):  # left by an interrupted build (we hold the lock)
        logger.info("removing interrupted image build %s", stale)
        shutil.rmtree(stale, ignore_errors=True)
    work = CACHE_ROOT / f".build-{key}-{os.getpid()}"
    rootfs = work / "rootfs"
    debs = CACHE_ROOT / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    logger.info("building node image %s from %s (debootstrap, 2-3 minutes)", key, mirror)
    started = time.monotonic()
    try:
        work.mkdir(parents=True)
        with open(work / "debootstrap.log", "w") as log:
            rc = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
                 "--include=" + ",".join(name for name, _ in pins), SUITE, str(rootfs), mirror],
                stdout=log, stderr=subprocess.STDOUT, check=False, timeout=1800).returncode
        if rc != 0:
            tail = (work / "debootstrap.log").read_text().strip().splitlines()[-3:]
            raise LabError(f"debootstrap failed (rc {rc}): {' | '.join(tail)}")
        versions = _check_versions(rootfs, pins)
        _customize(rootfs)
        seconds = round(time.monotonic() - started, 1)
        meta = {"key": key, "mirror": mirror, "suite": SUITE, "build_seconds": seconds,
                "built_at": int(time.time()), "build_version": BUILD_VERSION,
                "packages": versions}
        (work / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        final = image_dir(key)
        if final.exists():
            shutil.rmtree(final)
        os.rename(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    prune_old_images(keep=final)
    logger.info("node image %s built in %.1f s", key, seconds)
    return final / "rootfs"


def _check_versions(rootfs: Path, pins: list[tuple[str, str]]) -> dict[str, str]:
    out = run(["chroot", str(rootfs), "dpkg-query", "-W", "-f", "${Package}=${Version}\n"],
              what="dpkg-query in the new image").stdout
    have = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    wrong = [f"{n} (pinned {v}, got {have.get(n, 'nothing')})"
             for n, v in pins if have.get(n) != v]
    if wrong:
        raise LabError("the mirror serves other versions than tests/lab/image-packages.txt: "
                       + "; ".join(wrong) + " - update the pins")
    return {n: have[n] for n, _ in pins}


def _customize(rootfs: Path) -> None:
    """Units off, empty machine-id (set per node), root login by key only, no apt caches."""
    # systemctl works offline in a chroot and also removes SysV rc links (nginx has both).
    run(["chroot", str(rootfs), "systemctl", "disable", "--quiet", *DISABLED_UNITS],
        what="disabling units in the new image")
    run(["chroot", str(rootfs), "systemctl", "mask", "--quiet", *MASKED_UNITS],
        what="masking units in the new image")
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    conf = rootfs / "etc/ssh/sshd_config.d/rhc-lab.conf"
    conf.write_text("PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                    "UseDNS no\n")
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (rootfs / sub).glob("*.deb" if "archives" in sub else "*_*"):
            entry.unlink()


def prune_old_images(keep: Path) -> None:
    """Remove images of older package lists, unless a running lab still uses one."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        mounts = f.read()
    for old in CACHE_ROOT.glob("image-*"):
        if old != keep and str(old) not in mounts:
            logger.info("removing old node image %s", old)
            shutil.rmtree(old, ignore_errors=True)
