"""Emulated BMCs: one OpenIPMI ipmi_sim per node, in its own namespace, whose chassis
control is a small sh script per node (bmc/<node>/chassis, rendered by
render.chassis_script): `get power` and `set power 0` are answered there in milliseconds,
from the lab's state, as a real BMC would; power-on and reset go to clusterlab.power.
Also the ipmitool client the lab's `power` command uses."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import state
from .errors import LabError
from .procs import ProcRef, wait_for
from .render import EMU_FILE, chassis_script, lan_conf
from .spec import BMC_CIPHER, BMC_PORT, BMC_USER, LabSpec, NodeSpec

IPMI_TIMEOUT = 30.0


@dataclass(frozen=True)
class BmcParams:
    """How to reach a node's BMC (what a fence device entry needs). password is a
    lab-only secret: never print it."""

    address: str
    port: int
    user: str
    password: str
    cipher: int

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return (f"BmcParams(address={self.address!r}, port={self.port}, user={self.user!r}, "
                f"password='***', cipher={self.cipher})")

    def fence_stdin(self, action: str, **extra: str) -> str:
        """fence_ipmilan options as stdin lines (the way a fencing daemon runs it)."""
        opts = {"action": action, "ip": self.address, "ipport": str(self.port),
                "username": self.user, "password": self.password, "lanplus": "1",
                "cipher": str(self.cipher), **extra}
        return "".join(f"{k}={v}\n" for k, v in opts.items())


def bmc_dir(spec: LabSpec, node: NodeSpec) -> Path:
    return Path(spec.state_dir) / "bmc" / node.name


def power_command(spec: LabSpec, node: NodeSpec) -> str:
    """The Python chassis program (power-on, reset, and settling a power-off)."""
    return shlex.join([sys.executable, "-m", "clusterlab.power", spec.prefix, str(node.index)])


def chassis_path(spec: LabSpec, node: NodeSpec) -> Path:
    """The chassis_control program ipmi_sim runs (next to lan.conf)."""
    return bmc_dir(spec, node) / "chassis"


def off_marker(spec: LabSpec, node: NodeSpec) -> Path:
    """Present from a `set power 0` of the chassis script until its bookkeeping is done
    (node.settle_power_off): the node counts as off meanwhile."""
    return bmc_dir(spec, node) / "off-pending"


def write_chassis_script(spec: LabSpec, node: NodeSpec) -> Path:
    path = chassis_path(spec, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = chassis_script(node=node.name, state_file=str(state.state_path(spec)),
                          marker=str(off_marker(spec, node)),
                          log=str(Path(spec.state_dir) / "power.log"),
                          host_netns=spec.host_netns_alias, veth=node.veth,
                          slow_command=power_command(spec, node))
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)  # whatever the umask
    os.replace(tmp, path)
    return path


def _udp_listening(pid: int, port: int) -> bool:
    """True if the network namespace of pid has a UDP socket bound to port."""
    try:
        with open(f"/proc/{pid}/net/udp", encoding="ascii") as f:
            next(f)
            return any(int(line.split()[1].split(":")[1], 16) == port for line in f)
    except (OSError, StopIteration, IndexError, ValueError):
        return False


def start(spec: LabSpec, node: NodeSpec, password: str) -> ProcRef:
    """Write lan.conf, the chassis script and the emulator file, and start ipmi_sim inside
    the BMC's namespace."""
    base = bmc_dir(spec, node)
    (base / "state").mkdir(parents=True, exist_ok=True)
    script = write_chassis_script(spec, node)
    conf = base / "lan.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(lan_conf(spec, node, password, str(script)))
    (base / "sim.emu").write_text(EMU_FILE)
    argv = ["nsenter", f"--net=/run/netns/{node.bmc_netns}", "ipmi_sim", "-n",
            "-c", str(conf), "-f", str(base / "sim.emu"), "-s", str(base / "state")]
    with open(base / "ipmi_sim.log", "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True)
    ref = ProcRef.of(proc.pid)
    with state.locked(spec) as data:
        state.set_proc(data, f"ipmi_sim:{node.name}", ref.to_json())

    def listening() -> bool:
        if proc.poll() is not None:
            raise LabError(f"ipmi_sim for {node.name} exited with rc {proc.returncode}: see "
                           f"{base / 'ipmi_sim.log'}")
        return _udp_listening(proc.pid, BMC_PORT)

    wait_for(listening, 10.0, f"the BMC of {node.name} to listen on UDP {BMC_PORT}")
    return ref


def recorded(spec: LabSpec, node: NodeSpec) -> ProcRef | None:
    ref = (state.read(spec) or {}).get("procs", {}).get(f"ipmi_sim:{node.name}")
    return ProcRef.from_json(ref) if ref else None


def running(spec: LabSpec, node: NodeSpec) -> bool:
    ref = recorded(spec, node)
    return ref is not None and ref.alive()


def stop(spec: LabSpec, node: NodeSpec) -> bool:
    """Stop a node's BMC (ipmi_sim): it no longer answers, as a BMC that lost power or
    network; the node itself keeps running. Returns whether one was running."""
    ref = recorded(spec, node)
    if ref is None or not ref.alive():
        return False
    ref.stop()
    return True


def ipmitool_power(params: BmcParams, action: str, timeout: float = IPMI_TIMEOUT) -> str:
    """`ipmitool chassis power <action>` against a BMC, like an operator would.
    The password goes through the environment (-E), never argv."""
    argv = ["ipmitool", "-I", "lanplus", "-C", str(params.cipher), "-H", params.address,
            "-p", str(params.port), "-U", params.user, "-E", "-N", "1", "-R", "3",
            "chassis", "power", action]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False, env={**os.environ, "IPMI_PASSWORD": params.password})
    except subprocess.TimeoutExpired:
        raise LabError(f"BMC {params.address} did not answer within {timeout:g} s") from None
    if proc.returncode != 0:
        msg = (proc.stderr.strip() or proc.stdout.strip()).replace(params.password, "***")
        raise LabError(f"BMC {params.address}: chassis power {action} failed: "
                       f"{msg.splitlines()[-1] if msg else 'rc ' + str(proc.returncode)}")
    return proc.stdout.strip()


def params_for(node: NodeSpec, password: str) -> BmcParams:
    return BmcParams(node.bmc_address, BMC_PORT, BMC_USER, password, BMC_CIPHER)

