"""clusterlab.Lab: the Python API over a lab (what the CLI, tests and the demo use)."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from . import bmc, cgroups, disk, image, net, state, teardown
from . import node as node_ops
from .errors import LabError, UsageError
from .procs import ProcRef, pids_in_pidns, rss_kib, run, wait_for
from .render import inventory, partition_targets, ssh_common_args
from .spec import DEFAULT_PREFIX, DEFAULT_SUBNET, LabSpec, NodeSpec

logger = logging.getLogger(__name__)
T = TypeVar("T")
REQUIRED_TOOLS = ("ip", "nft", "nsenter", "mount", "losetup", "mkfs.ext4", "systemd-nspawn",
                  "ipmi_sim", "ipmitool", "ssh-keygen")


class Lab:
    """A running lab. Get one with Lab.up(...) or Lab.load(prefix)."""

    def __init__(self, spec: LabSpec, data: dict[str, Any]) -> None:
        self.spec = spec
        self._password = str(data.get("bmc_password", ""))

    # --- life cycle ------------------------------------------------------------------------
    @classmethod
    def load(cls, prefix: str = DEFAULT_PREFIX) -> Lab:
        """The lab that is up with this prefix; LabError if none is."""
        probe = LabSpec.create(prefix=prefix)
        data = state.read(probe)
        if not data or data.get("phase") != "up":
            raise LabError(f"no lab is up with prefix {prefix!r} (cluster-lab up)")
        return cls(LabSpec.create(prefix, int(data["nodes"]), data["subnet"]), data)

    @classmethod
    def up(cls, nodes: int = 3, prefix: str = DEFAULT_PREFIX, subnet: str = DEFAULT_SUBNET,
           progress: Callable[[str], None] | None = None) -> Lab:
        """Bring a lab up: image, network, BMCs, nodes; wait until every sshd answers.
        On any failure everything made so far is removed before the error is raised."""
        spec = LabSpec.create(prefix, nodes, subnet)
        say = progress or (lambda msg: logger.info("%s", msg))
        preflight(spec)
        say("node image: " + ("cached" if image.cached_image() else "building (2-3 min)"))
        image_root = image.ensure_image()
        image.prune_old_images(keep=image_root.parent)
        started = time.monotonic()
        try:
            with state.locked(spec, create=True) as data:
                data.update(phase="starting", prefix=spec.prefix, nodes=spec.node_count,
                            subnet=spec.subnet, image=str(image_root),
                            bmc_password=secrets.token_hex(8), procs={}, power={},
                            started_at=time.time())
                password = data["bmc_password"]
            lab = cls(spec, {"bmc_password": password})
            lab._build(image_root, say)
            with state.locked(spec) as data:
                data["phase"] = "up"
                data["up_seconds"] = round(time.monotonic() - started, 2)
        except BaseException:
            say("bring-up failed: removing what was made")
            teardown.teardown(spec)
            raise
        lab.write_inventory(lab.inventory_path)
        return lab

    def _build(self, image_root: Path, say: Callable[[str], None]) -> None:
        spec = self.spec
        key = self.ssh_key_path
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{spec.prefix}-lab",
             "-f", str(key)], what="creating the lab SSH key")
        pubkey = Path(str(key) + ".pub").read_text()
        say(f"network: bridge {spec.bridge} {spec.host_address}/24")
        net.create_bridge(spec)
        net.alias_host_netns(spec)
        net.create_namespace_with_link(spec, spec.client_netns, spec.client_veth,
                                       spec.client_address, LabSpec._mac(spec.client_address))
        for n in spec.nodes:
            node_ops.prepare_root(spec, n, image_root, pubkey)
            net.create_namespace_with_link(spec, n.bmc_netns, n.bmc_veth, n.bmc_address,
                                           n.bmc_mac)
            bmc.start(spec, n, self._password)
        loop = disk.create(spec)
        with state.locked(spec) as data:
            data["shared_disk"] = {"loop": loop, "file": str(disk.image_path(spec)),
                                   "device": disk.DEVICE}
        say(f"shared disk: {disk.DEVICE} on every node ({loop} on the host)")
        qloops = disk.create_qdisk(spec)
        with state.locked(spec) as data:
            data["qdisk"] = {"file": str(disk.qdisk_path(spec)), "loops": qloops,
                             "device": disk.QDISK_DEVICE}
        say(f"quorum disk: {disk.QDISK_DEVICE} on every node (one loop device each)")
        say(f"booting {spec.node_count} nodes")
        for n in spec.nodes:
            node_ops.boot(spec, n)
        for n in spec.nodes:
            node_ops.wait_ready(spec, n)
            say(f"{n.name} up: {n.address}, BMC {n.bmc_address}")

    def down(self) -> list[str]:
        return teardown.teardown(self.spec)

    # --- paths and parameters --------------------------------------------------------------
    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        return self.spec.nodes

    @property
    def ssh_key_path(self) -> Path:
        return Path(self.spec.state_dir) / "id_ed25519"

    @property
    def inventory_path(self) -> Path:
        return Path(self.spec.state_dir) / "inventory.yml"

    def node(self, name: str) -> NodeSpec:
        return self.spec.find(name)

    def bmc(self, name: str) -> bmc.BmcParams:
        """BMC parameters of a node (address, port, user, password, cipher)."""
        return bmc.params_for(self.node(name), self._password)

    def ssh_argv(self, name: str, *command: str) -> list[str]:
        """argv of a real ssh client reaching the node as root with the lab key."""
        n = self.node(name)
        return ["ssh", "-i", str(self.ssh_key_path), *ssh_common_args().split(),
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"root@{n.address}",
                *command]

    def write_inventory(self, path: Path | str) -> Path:
        path = Path(path)
        data = inventory(self.spec, str(self.ssh_key_path), self._password)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# Written by cluster-lab. Holds lab-only BMC credentials (mode 0600).\n")
            yaml.safe_dump(data, f, sort_keys=False)
        return path

    # --- operations ------------------------------------------------------------------------
    def exec(self, name: str, argv: Sequence[str], *, check: bool = True,
             timeout: float = 60.0, input: str | None = None
             ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the node (nsenter -t <init> -a); LabError if check and rc != 0."""
        return node_ops.exec_in(self.spec, self.node(name), list(argv), check=check,
                            timeout=timeout, input=input)

    def argv_in(self, name: str, argv: Sequence[str]) -> list[str]:
        """argv that runs argv inside the node, for subprocess.Popen (background work).
        Pass env=Lab.node_env so the node's PATH is used."""
        return node_ops.nsenter_argv(node_ops.leader_pid(self.spec, self.node(name)), list(argv))

    node_env = node_ops.NODE_ENV

    def power(self, name: str, action: str, wait: bool = True, timeout: float = 90.0) -> str:
        """Power a node on/off or ask its status, through its BMC (ipmitool -I lanplus -C 3).
        Returns 'on' or 'off'. With wait, 'on' returns once sshd answers and 'off' once
        the container is gone."""
        if action not in ("on", "off", "status"):
            raise UsageError(f"bad power action {action!r}: use on, off or status")
        n = self.node(name)
        if action == "on" and wait and node_ops.is_dead(self.spec, n):
            raise LabError(f"{n.name} died for good: its BMC cannot power it on (cluster-lab "
                           f"replace {n.name} puts a new server in its place)")
        out = bmc.ipmitool_power(self.bmc(n.name), action)
        if action == "status":
            return "on" if out.endswith("on") else "off"
        if wait and action == "on":
            node_ops.wait_ready(self.spec, n, timeout)
        if wait and action == "off":
            try:
                wait_for(lambda: not self._nspawn_alive(n), timeout,
                         f"the container of {n.name} to exit")
            except LabError as exc:   # say what is still there (a process in D state?)
                left = cgroups.members(n.machine)
                raise LabError(f"{exc}; still in its cgroup (pid state wchan command): "
                               f"{'; '.join(left) or 'nothing'}") from None
        return action

    def bmc_control(self, name: str, action: str) -> str:
        """Stop or start a node's emulated BMC (the node keeps running), or ask whether it
        runs. Returns 'running' or 'stopped'."""
        if action not in ("start", "stop", "status"):
            raise UsageError(f"bad bmc action {action!r}: use start, stop or status")
        n = self.node(name)
        if action == "stop":
            bmc.stop(self.spec, n)
        elif action == "start" and not bmc.running(self.spec, n):
            bmc.start(self.spec, n, self._password)
        return "running" if bmc.running(self.spec, n) else "stopped"

    def pull_plug(self, name: str, timeout: float = 90.0) -> None:
        """Power a node off without its BMC (an operator pulling the plug, e.g. before
        fence_ack_manual when the BMC is dead); returns once the container is gone."""
        n = self.node(name)
        node_ops.power_off(self.spec, n)
        wait_for(lambda: not self._nspawn_alive(n), timeout, f"the container of {n.name} to exit")

    def die(self, name: str, timeout: float = 90.0) -> None:
        """The node's server dies for good: powered off through its BMC (pulled, when the
        BMC is stopped). The BMC keeps answering (`power status`: off) and accepts a
        power-on, but the power stays off, as on a server that cannot boot any more: a
        fence's power-on fails, the fence itself (power off, confirmed) succeeds. Until
        replace puts a new server in its place."""
        n = self.node(name)
        with state.locked(self.spec) as data:
            data.setdefault("dead", {})[n.name] = True
        if bmc.running(self.spec, n):
            bmc.ipmitool_power(self.bmc(n.name), "off")
        else:
            node_ops.power_off(self.spec, n)
        wait_for(lambda: not self._nspawn_alive(n), timeout, f"the container of {n.name} to exit")

    def replace(self, name: str, timeout: float = 90.0) -> float:
        """A new server in the place of a node, with the same name, address and BMC: the old
        one powered off if it is on (without the cluster: as if unplugged), its root
        deleted (everything it wrote), a bare root made from the cached image as `up` does
        (a new machine-id), then booted; returns once sshd answers, with the seconds it
        took. The BMC stays as it was (bmc_control start, if it was stopped: the new
        server's BMC set up). No BMC power-on boots anything meanwhile."""
        n = self.node(name)
        started = time.monotonic()
        with state.locked(self.spec) as data:
            data.setdefault("dead", {})[n.name] = True   # a fence's power-on waits for us
            generations = data.setdefault("generation", {})
            generations[n.name] = generation = int(generations.get(n.name, 0)) + 1
            image_root = Path(str(data.get("image") or ""))
        if not (image_root / "etc").is_dir():
            image_root = image.ensure_image()
        node_ops.settle_power_off(self.spec, n)
        if self._nspawn_alive(n):
            node_ops.power_off(self.spec, n)
            wait_for(lambda: not self._nspawn_alive(n), timeout,
                     f"the container of {n.name} to exit")
        node_ops.wipe_root(self.spec, n)
        pubkey = Path(str(self.ssh_key_path) + ".pub").read_text()
        node_ops.prepare_root(self.spec, n, image_root, pubkey, generation)
        with state.locked(self.spec) as data:
            data.setdefault("dead", {}).pop(n.name, None)
        node_ops.boot(self.spec, n)
        node_ops.wait_ready(self.spec, n, timeout)
        logger.info("%s: replaced by a new server (generation %d)", n.name, generation)
        return round(time.monotonic() - started, 2)

    def _nspawn_alive(self, n: NodeSpec) -> bool:
        ref = (state.read(self.spec) or {}).get("procs", {}).get(f"nspawn:{n.name}")
        return bool(ref) and ProcRef.from_json(ref).alive()

    def is_on(self, name: str) -> bool:
        return node_ops.is_on(self.spec, self.node(name))

    def qdisk_path(self, name: str, working: bool) -> None:
        """Cut (False) or restore (True) node ``name``'s path to the quorum disk: its
        writes fail while cut, as on a lost SAN path (``disk.set_qdisk_path``)."""
        with state.locked(self.spec) as data:
            loop = ((data.get("qdisk") or {}).get("loops") or {}).get(self.node(name).name)
        if loop is None:
            raise LabError("this lab has no quorum disk (brought up before it had one): "
                           "cluster-lab down, then up")
        disk.set_qdisk_path(loop, working)

    def is_dead(self, name: str) -> bool:
        """The node's server died for good (die) and was not replaced yet."""
        return node_ops.is_dead(self.spec, self.node(name))

    def wait_ready(self, name: str, timeout: float = 90.0) -> None:
        """Wait until a node that is on has booted (systemd running, sshd answering): a
        node the cluster's fence just rebooted is on long before it can run a command
        through systemd (systemd-run fails with "Failed to connect to bus")."""
        node_ops.wait_ready(self.spec, self.node(name), timeout)

    def partition(self, name: str, direction: str = "both",
                  peers: Sequence[str] | None = None) -> tuple[str, ...]:
        """Drop node<->node traffic inside the node's namespace; returns the cut addresses."""
        n = self.node(name)
        targets = partition_targets(self.spec, n, peers)
        net.partition(self.spec, n, targets, direction)
        return targets

    def heal(self, name: str) -> bool:
        return net.heal(self.spec, self.node(name))

    def wait_for(self, predicate: Callable[[], T], timeout: float, what: str,
                 interval: float = 0.1) -> T:
        """Poll predicate until truthy; LabError naming `what` after timeout seconds."""
        return wait_for(predicate, timeout, what, interval=interval)

    def ssh_ok(self, name: str) -> bool:
        return net.ssh_banner(self.node(name).address)

    def status(self) -> dict[str, Any]:
        data = state.read(self.spec) or {}
        nodes = []
        for n in self.nodes:
            on = node_ops.is_on(self.spec, n, data)
            entry: dict[str, Any] = {
                "name": n.name, "machine": n.machine, "address": n.address, "mac": n.mac,
                "power": "on" if on else "dead" if node_ops.is_dead(self.spec, n, data)
                else "off", "bmc": n.bmc_address,
                "bmc_alive": ProcRef.from_json(data["procs"][f"ipmi_sim:{n.name}"]).alive()
                if f"ipmi_sim:{n.name}" in data.get("procs", {}) else False}
            if on:
                pid = int(data["procs"][f"init:{n.name}"]["pid"])
                entry.update(init_pid=pid, system=node_ops.system_state(pid),
                             ssh=net.ssh_banner(n.address),
                             rss_mb=round(rss_kib(pids_in_pidns(pid)) / 1024, 1),
                             partition=net.partition_state(self.spec, n))
            nodes.append(entry)
        return {"prefix": self.spec.prefix, "subnet": self.spec.subnet,
                "bridge": self.spec.bridge, "host": self.spec.host_address,
                "client": {"netns": self.spec.client_netns,
                           "address": self.spec.client_address},
                "floating": "-".join(self.spec.floating_range),
                "up_seconds": data.get("up_seconds"), "nodes": nodes}

    def shared_disk_mounts(self) -> dict[str, list[str]]:
        """Per node that is on, where the shared disk is mounted right now ([] if nowhere).
        Cheap (reads /proc on the host): an auditor can call it many times a second."""
        procs = (state.read(self.spec) or {}).get("procs", {})
        out = {}
        for n in self.nodes:
            init = procs.get(f"init:{n.name}")
            if init and ProcRef.from_json(init).alive():
                out[n.name] = disk.mounted_on(int(init["pid"]))
        return out

    def node_rss_mb(self, name: str) -> float:
        pid = node_ops.leader_pid(self.spec, self.node(name))
        return rss_kib(pids_in_pidns(pid)) / 1024


def preflight(spec: LabSpec) -> None:
    """Refuse clearly, before anything is made: not root, missing tools or kernel features,
    a lab (or its leftovers) already present, the lab's addresses already in use."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, mounts, systemd-nspawn): run as root")
    missing = [t for t in REQUIRED_TOOLS if not shutil.which(t)]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (run make setup)")
    with open("/proc/filesystems", encoding="ascii") as f:
        if "overlay" not in f.read():
            run(["modprobe", "overlay"], check=False)
            with open("/proc/filesystems", encoding="ascii") as g:
                if "overlay" not in g.read():
                    raise LabError("the kernel has no overlayfs (modprobe overlay failed)")
    if not os.path.exists("/proc/self/ns/net"):
        raise LabError("the kernel has no network namespaces")
    data = state.read(spec)
    if data is not None:
        raise LabError(f"a lab with prefix {spec.prefix!r} is already up (phase "
                       f"{data.get('phase', '?')}): use it, or run cluster-lab down first")
    left = {k: v for k, v in teardown.leftovers(spec).items() if v}
    if left:
        what = "; ".join(f"{k}: {', '.join(v[:3])}" for k, v in left.items())
        raise LabError(f"leftovers of a lab with prefix {spec.prefix!r} exist ({what}): "
                       "run cluster-lab down first")
    if net.address_in_use(spec.host_address):
        raise LabError(f"{spec.host_address} is already in use on this host (another lab on "
                       f"{spec.subnet}?): pick another --subnet")

