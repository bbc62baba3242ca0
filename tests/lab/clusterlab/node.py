"""One emulated node: its overlay root, its identity files, booting it with systemd-nspawn
(detached, so ipmi_sim's power program can return), killing it (or finishing a power-off
the BMC's chassis script began), and waiting until ready."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from . import bmc, cgroups, disk, net, state
from .errors import LabError
from .procs import ProcRef, container_leader, run, wait_for
from .render import hosts_file, machine_id
from .spec import LabSpec, NodeSpec

logger = logging.getLogger(__name__)
BOOT_TIMEOUT = 90.0
# nspawn's default set lacks CAP_NET_ADMIN; resource agents (IPaddr2, pyroute2) need it.
CAPABILITIES = "CAP_NET_ADMIN,CAP_NET_RAW,CAP_SYS_RESOURCE"
# Commands run inside a node get a node's environment, not the caller's (venv PATH etc.).
NODE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}


def node_dir(spec: LabSpec, node: NodeSpec) -> Path:
    return Path(spec.nodes_dir) / node.name


def merged_dir(spec: LabSpec, node: NodeSpec) -> Path:
    return node_dir(spec, node) / "merged"


def console_log(spec: LabSpec, node: NodeSpec) -> Path:
    return Path(spec.state_dir) / f"{node.name}-console.log"


def prepare_root(spec: LabSpec, node: NodeSpec, image_root: Path, pubkey: str,
                 generation: int = 0) -> None:
    """Mount overlay(image lower, per-node upper) and write the node's identity into it
    (``generation``: how many servers replaced the first one, see wipe_root)."""
    base = node_dir(spec, node)
    for sub in ("upper", "work", "merged"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "overlay", node.machine, "-o",
         f"lowerdir={image_root},upperdir={base / 'upper'},workdir={base / 'work'}",
         str(base / "merged")], what=f"mounting the overlay root of {node.name}")
    root = base / "merged"
    (root / "etc/hostname").write_text(node.name + "\n")
    (root / "etc/hosts").write_text(hosts_file(spec))
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("# no DNS in the lab: names are in /etc/hosts\n")
    (root / "etc/machine-id").write_text(machine_id(spec.prefix, node.name, generation) + "\n")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(pubkey)
    keys.chmod(0o600)
    (root / "run/resource-agents").mkdir(parents=True, exist_ok=True)


def wipe_root(spec: LabSpec, node: NodeSpec) -> None:
    """Unmount the node's overlay root and delete everything the node ever wrote (its
    upper and work layers): prepare_root then makes a bare root from the image, as a new
    server with the same name would be. The node must be off."""
    base = node_dir(spec, node)
    merged = base / "merged"
    if os.path.ismount(merged):
        run(["umount", str(merged)], what=f"unmounting the overlay root of {node.name}")
    for sub in ("upper", "work"):
        if (base / sub).exists():
            shutil.rmtree(base / sub)
    logger.info("%s: root wiped", node.name)


def is_dead(spec: LabSpec, node: NodeSpec, data: dict | None = None) -> bool:
    """The node's server died for good (Lab.die): its BMC answers but cannot power it on
    until Lab.replace put a new server in its place."""
    data = data if data is not None else (state.read(spec) or {})
    return bool(data.get("dead", {}).get(node.name))


def boot(spec: LabSpec, node: NodeSpec) -> ProcRef:
    """Create the node's network and start its container detached; record nspawn and init.
    Returns the container init. The caller waits for readiness (wait_ready). A power-off
    the BMC's chassis script left pending is settled first (never after: it would undo
    this boot)."""
    settle_power_off(spec, node)
    with state.locked(spec) as data:
        old = data.get("procs", {}).get(f"nspawn:{node.name}")
        shared_loop = (data.get("shared_disk") or {}).get("loop")
        qdisk_loop = ((data.get("qdisk") or {}).get("loops") or {}).get(node.name)
    if old and ProcRef.from_json(old).alive():
        ref = ProcRef.from_json(old)
        wait_for(lambda: not ref.alive(), 20.0, f"the old container of {node.name} to exit")
    net.remove_node_network(node)
    net.create_node_network(spec, node)
    cgroups.remove(node.machine)  # the old boot's tree, if any
    cgroup_dirs = [str(p) for p in cgroups.create(node.machine)]
    argv = ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--quiet",
            f"--network-namespace-path={net.NETNS_DIR / node.netns}",
            f"--machine={node.machine}", f"--hostname={node.name}",
            f"--directory={merged_dir(spec, node)}", "--console=read-only",
            "--link-journal=no", "--resolv-conf=off", "--timezone=off",
            f"--capability={CAPABILITIES}", *disk.nspawn_args(shared_loop, qdisk_loop)]
    # Enter the node's own cgroup(s) first, then become nspawn (same pid).
    argv = ["sh", "-c", ('for c in $RHC_CGROUPS; do echo $$ > "$c/cgroup.procs" || exit 125; '
            'done; exec "$@"'), "rhc-boot", *argv]
    with open(console_log(spec, node), "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True,
                                env={**os.environ, "RHC_CGROUPS": " ".join(cgroup_dirs)})
    nspawn = ProcRef.of(proc.pid)

    def leader() -> int | None:
        if proc.poll() is not None:
            raise LabError(f"systemd-nspawn for {node.name} exited with rc {proc.returncode}"
                           f": see {console_log(spec, node)}")
        return container_leader(proc.pid)

    try:
        init = ProcRef.of(wait_for(leader, 20.0, f"the container of {node.name} to start",
                                   interval=0.02))
    finally:
        with state.locked(spec) as data:
            state.set_proc(data, f"nspawn:{node.name}", nspawn.to_json())
    with state.locked(spec) as data:
        state.set_proc(data, f"init:{node.name}", init.to_json())
        data.setdefault("power", {})[node.name] = 1
    logger.info("%s: booting (nspawn pid %d, init pid %d)", node.name, nspawn.pid, init.pid)
    return init


def _cut_power(data: dict, node: NodeSpec) -> None:
    data.setdefault("power", {})[node.name] = 0
    init = data.get("procs", {}).get(f"init:{node.name}")
    if init:
        ProcRef.from_json(init).signal(signal.SIGKILL)
    net.remove_node_network(node)


def power_off(spec: LabSpec, node: NodeSpec) -> None:
    """Hard power-off: SIGKILL the container's init and remove its network at once."""
    with state.locked(spec) as data:
        _cut_power(data, node)
        bmc.off_marker(spec, node).unlink(missing_ok=True)
    logger.info("%s: powered off", node.name)


def settle_power_off(spec: LabSpec, node: NodeSpec) -> bool:
    """Finish a power-off the BMC's chassis script began (it wrote the off-pending marker,
    SIGKILLed init and deleted the veth): record power 0, remove the namespace (SIGKILL
    again if init still runs), drop the marker. All under the state lock, so a boot
    (which settles first) never interleaves. Returns whether one was pending."""
    marker = bmc.off_marker(spec, node)
    with state.locked(spec) as data:
        pending = marker.exists()
        if pending:
            _cut_power(data, node)
            marker.unlink(missing_ok=True)
    if pending:
        logger.info("%s: power-off settled", node.name)
    return pending


def is_on(spec: LabSpec, node: NodeSpec, data: dict | None = None) -> bool:
    """Powered on: the lab says so, the container's init is alive and no power-off is
    pending (what the BMC's chassis script answers to `get power`)."""
    data = data if data is not None else (state.read(spec) or {})
    init = data.get("procs", {}).get(f"init:{node.name}")
    return bool(data.get("power", {}).get(node.name)) and bool(init) and \
        ProcRef.from_json(init).alive() and not bmc.off_marker(spec, node).exists()


def leader_pid(spec: LabSpec, node: NodeSpec) -> int:
    data = state.read(spec) or {}
    if not is_on(spec, node, data):
        raise LabError(f"{node.name} is powered off (cluster-lab power {node.name} on)")
    return int(data["procs"][f"init:{node.name}"]["pid"])


def nsenter_argv(pid: int, argv: list[str]) -> list[str]:
    return ["nsenter", "-t", str(pid), "-a", "--"] + argv


def system_state(pid: int) -> str:
    proc = subprocess.run(nsenter_argv(pid, ["systemctl", "is-system-running"]),
                          capture_output=True, text=True, timeout=10, check=False,
                          env=NODE_ENV)
    return proc.stdout.strip() or "unknown"


def wait_ready(spec: LabSpec, node: NodeSpec, timeout: float = BOOT_TIMEOUT) -> None:
    """Poll until systemd reports running/degraded and sshd answers, or raise."""
    hint = f"see {console_log(spec, node)}"

    def booted() -> bool:
        pid = leader_pid(spec, node)
        return system_state(pid) in ("running", "degraded")

    wait_for(booted, timeout, f"{node.name} to boot (systemctl is-system-running)",
             interval=0.1, hint=hint)
    wait_for(lambda: net.ssh_banner(node.address), timeout,
             f"sshd on {node.name} ({node.address}:22)", interval=0.1, hint=hint)


def exec_in(spec: LabSpec, node: NodeSpec, argv: list[str], *, check: bool = True,
            timeout: float = 60.0, input: str | None = None) -> subprocess.CompletedProcess[str]:
    pid = leader_pid(spec, node)
    try:
        proc = subprocess.run(nsenter_argv(pid, argv), input=input, capture_output=True,
                              text=True, timeout=timeout, check=False,
                              env=NODE_ENV)
    except subprocess.TimeoutExpired:
        raise LabError(f"{node.name}: {argv[0]} did not finish within {timeout:g} s") from None
    if check and proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
        command = shlex.join(argv).replace("\n", " ")
        command = command if len(command) <= 60 else command[:57] + "..."
        raise LabError(f"{node.name}: {command} failed (rc {proc.returncode}): {tail[0]}")
    return proc
