"""Tear a lab down: everything recorded in its state file AND everything discoverable by its
prefix (so an `up` killed midway is cleaned too). Also the inventory of leftovers that
tests and `up` use to decide whether anything of the lab exists."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from pathlib import Path

from . import cgroups, state
from .procs import ProcRef, all_pids, cmdline, ns_inode, run, start_time, wait_for
from .spec import LabSpec

logger = logging.getLogger(__name__)


def _lab_netns(spec: LabSpec) -> list[str]:
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(spec.prefix + "-"))


def _lab_links(spec: LabSpec) -> list[str]:
    try:
        names = os.listdir("/sys/class/net")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(spec.prefix + "-"))


def _lab_mounts(spec: LabSpec) -> list[str]:
    roots = (spec.nodes_dir + "/", spec.state_dir + "/", "/run/netns/" + spec.prefix + "-")
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(roots) and not point.startswith("/run/netns/"):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)  # deepest first


def _lab_loops(spec: LabSpec) -> list[str]:
    out = run(["losetup", "-J", "-l"], check=False).stdout
    try:
        devices = json.loads(out)["loopdevices"] if out.strip() else []
    except (ValueError, KeyError):
        return []
    roots = (spec.nodes_dir + "/", spec.state_dir + "/")
    return [d["name"] for d in devices if str(d.get("back-file", "")).startswith(roots)]


def _lab_processes(spec: LabSpec) -> list[tuple[str, ProcRef]]:
    """Processes the lab made: recorded ones, ipmi_sim/nspawn found by their arguments,
    and anything living in one of the lab's network namespaces (never the host's)."""
    me = os.getpid()
    found: dict[int, tuple[str, ProcRef]] = {}
    data = state.read(spec) or {}
    for key, ref_json in data.get("procs", {}).items():
        ref = ProcRef.from_json(ref_json)
        if ref.alive():
            found[ref.pid] = (key, ref)
    host_ns = ns_inode("/proc/self/ns/net")
    lab_ns = {ns_inode(f"/run/netns/{n}") for n in _lab_netns(spec)} - {host_ns, None}
    for pid in all_pids():
        if pid in found or pid == me:
            continue
        args = cmdline(pid)
        if not args:
            continue
        prog = os.path.basename(args[0])
        what = None
        if prog == "ipmi_sim" and any(a.startswith(spec.state_dir + "/") for a in args):
            what = "ipmi_sim"
        elif prog == "systemd-nspawn" and f"--machine={spec.prefix}-node" in " ".join(args):
            what = "nspawn"
        elif prog == "nsenter" and f"--net=/run/netns/{spec.prefix}-" in " ".join(args):
            what = "nsenter"
        elif lab_ns and ns_inode(f"/proc/{pid}/ns/net") in lab_ns:
            what = "in-lab-netns"
        if what:
            start = start_time(pid)
            if start is not None:  # else it exited meanwhile
                found[pid] = (what, ProcRef(pid, start))
    return sorted(found.values(), key=lambda item: item[1].pid)


def leftovers(spec: LabSpec) -> dict[str, list[str]]:
    """Everything of this lab that exists now (empty lists: nothing is left)."""
    nft = run(["nft", "list", "table", "inet", spec.nft_table], check=False).returncode == 0
    return {
        "netns": _lab_netns(spec),
        "links": _lab_links(spec),
        "mounts": _lab_mounts(spec),
        "loops": _lab_loops(spec),
        "processes": [f"{what}:{ref.pid}" for what, ref in _lab_processes(spec)],
        "nft": [spec.nft_table] if nft else [],
        "cgroups": cgroups.lab_cgroups(spec.prefix),
        "dirs": [d for d in (spec.state_dir, spec.nodes_dir) if os.path.exists(d)],
    }


def _kill_all(spec: LabSpec) -> list[str]:
    done = []
    procs = _lab_processes(spec)
    # Container inits first (SIGKILL = power cut); nspawn then exits by itself.
    for what, ref in procs:
        if what.startswith(("init:", "daemon:")) or what == "in-lab-netns":  # daemon: light
            ref.signal(signal.SIGKILL)
    for what, ref in procs:
        if what.startswith(("ipmi_sim", "nsenter")):
            ref.signal(signal.SIGTERM)
    for what, ref in procs:
        try:
            wait_for(lambda r=ref: not r.alive(), 10.0, f"{what} (pid {ref.pid}) to exit")
        except Exception:  # noqa: BLE001 - escalate below
            ref.signal(signal.SIGKILL)
            wait_for(lambda r=ref: not r.alive(), 5.0, f"{what} (pid {ref.pid}) to die")
        done.append(f"process {what} {ref.pid}")
    return done


def teardown(spec: LabSpec) -> list[str]:
    """Remove every trace of the lab; return what was removed. Safe to run repeatedly."""
    removed = []
    for _ in range(2):  # a second pass catches what the first one's kills left behind
        removed += _kill_all(spec)
    for point in _lab_mounts(spec):
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], check=False)
        removed.append(f"mount {point}")
    for dev in _lab_loops(spec):
        run(["losetup", "-d", dev], check=False)
        removed.append(f"loop {dev}")
    for name in _lab_netns(spec):
        run(["ip", "netns", "del", name], check=False)
        removed.append(f"netns {name}")
    for name in _lab_links(spec):
        if os.path.exists(f"/sys/class/net/{name}"):  # a veth's peer may have gone with it
            run(["ip", "link", "del", name], check=False)
        removed.append(f"link {name}")
    for name in cgroups.lab_cgroups(spec.prefix):
        cgroups.remove(name)
        removed.append(f"cgroup {name}")
    if run(["nft", "delete", "table", "inet", spec.nft_table], check=False).returncode == 0:
        removed.append(f"nft table {spec.nft_table}")
    for directory in (spec.nodes_dir, spec.state_dir):
        if os.path.exists(directory):
            _remove_tree(Path(directory))
            removed.append(f"dir {directory}")
    return removed


def _remove_tree(path: Path) -> None:
    """rm -rf that never crosses into a mount (a mount left busy stays, and is reported)."""
    mounted = set(_mounts_under(path))
    if mounted:
        logger.warning("leaving %s: still mounted %s", path, ", ".join(sorted(mounted)))
        return
    shutil.rmtree(path, ignore_errors=True)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
