"""Light lab nodes: a network namespace plus one clusterd process, no systemd, no sshd.

A light lab puts up to LIGHT_MAX_NODES real daemons side by side on one host (docs/lab-light.md):

  <prefix>-br0            the bridge, host address .1 of the /24 (as the full lab)
  <prefix>-lN             node N's network namespace, eth0 = .10+N (N = 1..240)
  <prefix>-lN-h           the host end of its veth, on the bridge
  /run/<prefix>-lab/light/lN/   cluster.conf, authkey (a copy), state/, ctl.sock, clusterd.log

Each daemon is the host venv's ``python -m clusterd.cli.clusterd --foreground``, started in
the node's namespace through ``nsenter --net`` (which execs, so the recorded PID is the
daemon's), in a session of its own (process group = its PID). Power: ``off`` SIGKILLs that
process group (a crash: the address stays, the port answers ICMP unreachable), ``on`` starts
the daemon again, ``die`` is off plus a flag that refuses ``on`` until ``replace`` (new
state dir, started again). Partitions are the full lab's nft table inside the namespace.
Every PID goes into the lab's state file under ``daemon:lN`` (pid + start time), so
``cluster-lab down`` ends exactly those processes (and anything else living in the lab's
namespaces) and removes namespaces, veths, bridge, nft table and directories.

Fencing: light nodes have no BMC; their cluster.conf has no fence methods and
``<fence_daemon clean_start="1"/>``. A crashed node's fence intent then retries (and shows
"no fence method") until the node comes back with a new incarnation, which cancels it; the
membership figures (views, suspicions, packets) do not depend on fencing.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import net, state, teardown
from .errors import LabError, UsageError
from .procs import ProcRef, run, wait_for
from .spec import DEFAULT_PREFIX, LabSpec, NodeSpec

logger = logging.getLogger(__name__)
LIGHT_MAX_NODES = 240
KIND = "light"
REQUIRED_TOOLS = ("ip", "nft", "nsenter")
CLUSTER_NAME = "light"
START_BATCH = 10  # daemons started together (a python start costs ~0.5 s of CPU each)


@dataclass(frozen=True)
class LightSpec:
    """Names and addresses of a light lab: the full lab's LabSpec (bridge, host address,
    state dir, nft table) plus node_count light nodes at .11 ... .10+N."""

    base: LabSpec
    node_count: int

    @classmethod
    def create(cls, prefix: str = DEFAULT_PREFIX, node_count: int = 3,
               subnet: str = "198.18.0.0/24") -> LightSpec:
        base = LabSpec.create(prefix, 1, subnet)  # validates prefix and subnet
        if not 1 <= node_count <= LIGHT_MAX_NODES:
            raise UsageError(f"bad node count {node_count}: a light lab has 1 to "
                             f"{LIGHT_MAX_NODES} nodes")
        return cls(LabSpec(prefix=base.prefix, node_count=1, subnet=base.subnet), node_count)

    @property
    def prefix(self) -> str:
        return self.base.prefix

    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        return tuple(self.node(i) for i in range(1, self.node_count + 1))

    def node(self, index: int) -> NodeSpec:
        address = str(ipaddress.ip_network(self.base.subnet)[10 + index])
        name = f"l{index}"
        return NodeSpec(index=index, name=name, machine=f"{self.prefix}-{name}",
                        netns=f"{self.prefix}-{name}", veth=f"{self.prefix}-{name}-h",
                        address=address, mac=LabSpec._mac(address), bmc_netns="",
                        bmc_veth="", bmc_address="", bmc_mac="")

    def find(self, name: str) -> NodeSpec:
        """By name (l17), namespace (rhcx-l17), index (17) or address."""
        for n in self.nodes:
            if name in (n.name, n.netns, str(n.index), n.address):
                return n
        raise UsageError(f"unknown node {name!r}: this light lab has l1 to l{self.node_count}")

    def home(self, node: NodeSpec) -> Path:
        return Path(self.base.state_dir) / "light" / node.name


def cluster_conf(spec: LightSpec, version: int = 1, token_ms: int | None = None) -> str:
    """cluster.conf of a light lab: every node by its address (no DNS needed), no fence
    methods, clean_start (no startup fencing of nodes not seen yet)."""
    nodes = "\n".join(f'    <clusternode name="{n.address}" nodeid="{n.index}"/>'
                      for n in spec.nodes)
    totem = f'  <totem token="{token_ms}"/>\n' if token_ms else ""
    return (f'<?xml version="1.0"?>\n<cluster name="{CLUSTER_NAME}" '
            f'config_version="{version}">\n  <clusternodes>\n{nodes}\n  </clusternodes>\n'
            f'  <cman/>\n{totem}  <fence_daemon clean_start="1"/>\n</cluster>\n')


def static_neighbours(spec: LightSpec, node: NodeSpec) -> None:
    """Permanent ARP entries for every other light node in node's namespace. The kernel's
    neighbour table is shared by all namespaces and its garbage collector refuses new
    dynamic entries beyond net.ipv4.neigh.default.gc_thresh3 (1024) in all of them
    together: 100 nodes learning 99 peers each (9,900) would overflow it, sends would fail
    with ENOBUFS, on this lab and on every other lab of the host. Permanent entries are not
    counted (Linux >= 4.19), need no ARP traffic and the MACs are fixed by the address."""
    lines = [f"neigh replace {p.address} lladdr {p.mac} dev eth0 nud permanent"
             for p in spec.nodes if p.index != node.index]
    if lines:
        run(["ip", "-n", node.netns, "-batch", "-"], input="\n".join(lines) + "\n",
            what=f"static neighbours in {node.netns}")


def is_light(prefix: str) -> bool:
    """True if the lab recorded under prefix is a light lab."""
    try:
        data = state.read(LabSpec.create(prefix=prefix)) or {}
    except LabError:
        return False
    return data.get("kind") == KIND


class LightLab:
    """A running light lab. Get one with LightLab.up(...) or LightLab.load(prefix)."""

    def __init__(self, spec: LightSpec) -> None:
        self.spec = spec
        self.python = sys.executable

    # --- life cycle ------------------------------------------------------------------------
    @classmethod
    def load(cls, prefix: str = DEFAULT_PREFIX) -> LightLab:
        data = state.read(LabSpec.create(prefix=prefix))
        if not data or data.get("kind") != KIND or data.get("phase") != "up":
            raise LabError(f"no light lab is up with prefix {prefix!r} "
                           "(cluster-lab up --light)")
        return cls(LightSpec.create(prefix, int(data["nodes"]), data["subnet"]))

    @classmethod
    def up(cls, nodes: int = 3, prefix: str = DEFAULT_PREFIX, subnet: str = "198.18.0.0/24",
           progress: Callable[[str], None] | None = None, token_ms: int | None = None,
           start_timeout: float | None = None) -> LightLab:
        """Namespaces, veths, bridge and one clusterd per node; returns once every daemon's
        control socket answers (not waiting for a view: see wait_agreed). On any failure
        everything made so far is removed before the error is raised."""
        spec = LightSpec.create(prefix, nodes, subnet)
        say = progress or (lambda msg: logger.info("%s", msg))
        preflight(spec)
        started = time.monotonic()
        try:
            with state.locked(spec.base, create=True) as data:
                data.update(phase="starting", kind=KIND, prefix=spec.prefix, nodes=nodes,
                            subnet=spec.base.subnet, procs={}, power={},
                            started_at=time.time())
            lab = cls(spec)
            say(f"network: bridge {spec.base.bridge} {spec.base.host_address}/24, "
                f"{nodes} namespaces")
            net.create_bridge(spec.base)
            key = secrets.token_bytes(256)
            conf = cluster_conf(spec, token_ms=token_ms)
            for n in spec.nodes:
                net.create_node_network(spec.base, n)
                lab._prepare_home(n, conf, key)
            for n in spec.nodes:
                static_neighbours(spec, n)
            say(f"starting {nodes} clusterd processes, {START_BATCH} at a time")
            for first in range(0, nodes, START_BATCH):
                batch = spec.nodes[first:first + START_BATCH]
                for n in batch:
                    lab._start(n)
                lab.wait_sockets(batch, start_timeout or 120.0)
            with state.locked(spec.base) as data:
                data["phase"] = "up"
                data["up_seconds"] = round(time.monotonic() - started, 2)
        except BaseException:
            say("bring-up failed: removing what was made")
            teardown.teardown(spec.base)
            raise
        return lab

    def down(self) -> list[str]:
        return teardown.teardown(self.spec.base)

    def _prepare_home(self, n: NodeSpec, conf: str, key: bytes) -> None:
        home = self.spec.home(n)
        (home / "state").mkdir(parents=True, exist_ok=True)
        conf_path = home / "cluster.conf"
        conf_path.write_text(conf)
        conf_path.chmod(0o640)
        key_path = home / "authkey"
        if key_path.exists():
            key_path.chmod(0o600)
        key_path.write_bytes(key)
        key_path.chmod(0o400)

    def argv(self, n: NodeSpec) -> list[str]:
        home = self.spec.home(n)
        return ["nsenter", f"--net={net.NETNS_DIR / n.netns}", "--",
                self.python, "-m", "clusterd.cli.clusterd", "--foreground",
                "--config", str(home / "cluster.conf"), "--authkey", str(home / "authkey"),
                "--node", n.address, "--control-socket", str(home / "ctl.sock"),
                "--state-dir", str(home / "state")]

    def _start(self, n: NodeSpec) -> ProcRef:
        home = self.spec.home(n)
        with open(home / "clusterd.log", "ab") as log:
            proc = subprocess.Popen(self.argv(n), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd=str(home))
        ref = ProcRef.of(proc.pid)
        with state.locked(self.spec.base) as data:
            state.set_proc(data, f"daemon:{n.name}", ref.to_json())
            data.setdefault("power", {})[n.name] = 1
        return ref

    # --- paths, lookups --------------------------------------------------------------------
    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        return self.spec.nodes

    def node(self, name: str) -> NodeSpec:
        return self.spec.find(name)

    def socket_path(self, name: str) -> str:
        return str(self.spec.home(self.node(name)) / "ctl.sock")

    def log_path(self, name: str) -> Path:
        return self.spec.home(self.node(name)) / "clusterd.log"

    def log_tail(self, name: str, lines: int = 3) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def ref(self, name: str) -> ProcRef | None:
        raw = (state.read(self.spec.base) or {}).get("procs", {}).get(
            f"daemon:{self.node(name).name}")
        return ProcRef.from_json(raw) if raw else None

    def pid(self, name: str) -> int | None:
        """PID of the node's daemon if it runs, else None."""
        ref = self.ref(name)
        return ref.pid if ref and ref.alive() else None

    def is_on(self, name: str) -> bool:
        return self.pid(name) is not None

    def is_dead(self, name: str) -> bool:
        return bool((state.read(self.spec.base) or {}).get("dead", {}).get(
            self.node(name).name))

    # --- power -----------------------------------------------------------------------------
    def power(self, name: str, action: str, wait: bool = True, timeout: float = 30.0) -> str:
        """off: SIGKILL the daemon's process group (a crash); on: start it again (with wait,
        until its control socket answers); status. Returns 'on' or 'off'."""
        if action not in ("on", "off", "status"):
            raise UsageError(f"bad power action {action!r}: use on, off or status")
        n = self.node(name)
        if action == "status":
            return "on" if self.is_on(n.name) else "off"
        if action == "off":
            self._kill(n)
            return "off"
        if self.is_dead(n.name):
            raise LabError(f"{n.name} died for good: it cannot be powered on (cluster-lab "
                           f"replace {n.name})")
        if not self.is_on(n.name):
            self._start(n)
            if wait:
                self.wait_sockets([n], timeout)
        return "on"

    def _kill(self, n: NodeSpec, timeout: float = 10.0) -> None:
        ref = self.ref(n.name)
        if ref is not None and ref.alive():
            try:
                if os.getpgid(ref.pid) == ref.pid:
                    os.killpg(ref.pid, signal.SIGKILL)
                else:
                    ref.signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(ref.pid)
            wait_for(lambda: not ref.alive() or _reap(ref.pid), timeout,
                     f"the daemon of {n.name} (pid {ref.pid}) to die")
        with state.locked(self.spec.base) as data:
            data.setdefault("power", {})[n.name] = 0

    def pull_plug(self, name: str) -> None:
        """Light nodes have no BMC: the same as power off."""
        self._kill(self.node(name))

    def die(self, name: str) -> None:
        """Powered off for good: power on is refused until replace."""
        n = self.node(name)
        with state.locked(self.spec.base) as data:
            data.setdefault("dead", {})[n.name] = True
        self._kill(n)

    def replace(self, name: str, timeout: float = 30.0) -> float:
        """A new node in the place of this one: daemon killed if it runs, its state dir
        and log deleted, started again; returns the seconds until its socket answers."""
        n = self.node(name)
        started = time.monotonic()
        self._kill(n)
        home = self.spec.home(n)
        shutil.rmtree(home / "state", ignore_errors=True)
        (home / "state").mkdir()
        with state.locked(self.spec.base) as data:
            data.setdefault("dead", {}).pop(n.name, None)
        self._start(n)
        self.wait_sockets([n], timeout)
        return round(time.monotonic() - started, 2)

    # --- network ---------------------------------------------------------------------------
    def partition(self, name: str, direction: str = "both",
                  peers: Sequence[str] | None = None) -> tuple[str, ...]:
        """Drop the node's traffic with its peers (default: every other light node),
        inside its namespace, with the full lab's nft table."""
        n = self.node(name)
        if peers is None:
            targets = tuple(p.address for p in self.nodes if p.index != n.index)
        else:
            chosen = [self.node(p) for p in peers]
            if any(p.index == n.index for p in chosen) or not chosen:
                raise UsageError("bad --peers: give other nodes than the one partitioned")
            targets = tuple(p.address for p in chosen)
        net.partition(self.spec.base, n, targets, direction)
        return targets

    def heal(self, name: str) -> bool:
        return net.heal(self.spec.base, self.node(name))

    def exec(self, name: str, argv: Sequence[str], *, check: bool = True,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run argv in the node's network namespace (the host's filesystem)."""
        n = self.node(name)
        return run(["nsenter", f"--net={net.NETNS_DIR / n.netns}", "--", *argv], check=check,
                   timeout=timeout, what=f"{argv[0]} in {n.name}")

    # --- the daemons' views ----------------------------------------------------------------
    def call(self, name: str, op: str = "status", timeout: float = 5.0) -> dict[str, Any]:
        """One control request to the node's daemon (as root); raises on failure."""
        from clusterd.control.client import ControlClient

        return ControlClient(self.socket_path(name), timeout=timeout).call(op)

    def view(self, name: str, timeout: float = 5.0) -> tuple[int, tuple[int, ...]] | None:
        """(epoch, member nodeids) the node's daemon reports, None if it does not answer."""
        try:
            view = self.call(name, "status", timeout)["view"]
            return int(view["epoch"]), tuple(sorted(int(m) for m in view["members"]))
        except Exception:  # noqa: BLE001 - not answering is an answer here
            return None

    def views(self, names: Iterable[str] | None = None, timeout: float = 5.0,
              workers: int = 16) -> dict[str, tuple[int, tuple[int, ...]] | None]:
        """Every named node's view (default: all), asked concurrently."""
        names = [self.node(x).name for x in names] if names is not None else \
            [n.name for n in self.nodes]
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(names)))) as pool:
            results = list(pool.map(lambda x: self.view(x, timeout), names))
        return dict(zip(names, results, strict=True))

    def agreed(self, names: Iterable[str] | None = None, timeout: float = 5.0
               ) -> tuple[int, tuple[int, ...]] | None:
        """The view, if every named node (default: all) reports the same one and its
        members are exactly those nodes; else None."""
        names = [self.node(x).name for x in names] if names is not None else \
            [n.name for n in self.nodes]
        want = tuple(sorted(self.node(x).index for x in names))
        seen = set(self.views(names, timeout).values())
        if len(seen) == 1:
            only = seen.pop()
            if only is not None and only[1] == want:
                return only
        return None

    def wait_agreed(self, names: Iterable[str] | None = None, timeout: float = 60.0
                    ) -> tuple[int, tuple[int, ...]]:
        """Wait until the named nodes (default: all) agree on a view of exactly them."""
        names = list(names) if names is not None else [n.name for n in self.nodes]
        return wait_for(lambda: self.agreed(names), timeout,
                        f"{len(names)} light nodes to agree on one view of themselves",
                        interval=0.5)

    def wait_sockets(self, nodes: Iterable[NodeSpec], timeout: float) -> None:
        pending = {n.name for n in nodes}

        def answered() -> bool:
            for name in sorted(pending):
                if not self.is_on(name):
                    raise LabError(f"the daemon of {name} exited: {self.log_tail(name)}")
                if self.view(name, 2.0) is not None:
                    pending.discard(name)
            return not pending

        wait_for(answered, timeout, "the light nodes' control sockets to answer",
                 interval=0.5)

    def status(self) -> dict[str, Any]:
        data = state.read(self.spec.base) or {}
        views = self.views(timeout=2.0)
        nodes = []
        for n in self.nodes:
            pid = self.pid(n.name)
            entry: dict[str, Any] = {
                "name": n.name, "netns": n.netns, "address": n.address,
                "power": "on" if pid else "dead" if self.is_dead(n.name) else "off",
                "pid": pid, "partition": net.partition_state(self.spec.base, n)}
            if pid:
                entry["rss_mb"] = round(_rss_kib(pid) / 1024, 1)
            view = views.get(n.name)
            entry["view"] = {"epoch": view[0], "members": len(view[1])} if view else None
            nodes.append(entry)
        return {"prefix": self.spec.prefix, "kind": KIND, "subnet": self.spec.base.subnet,
                "bridge": self.spec.base.bridge, "host": self.spec.base.host_address,
                "up_seconds": data.get("up_seconds"), "nodes": nodes}


def _reap(pid: int) -> bool:
    """Collect our own child's exit status (a killed child of this process would stay a
    zombie); True if it was reaped. Not our child: False, nothing happens."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def preflight(spec: LightSpec) -> None:
    if os.geteuid() != 0:
        raise LabError("the light lab needs root (network namespaces): run as root")
    missing = [t for t in REQUIRED_TOOLS if not shutil.which(t)]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (run make setup)")
    data = state.read(spec.base)
    if data is not None:
        raise LabError(f"a lab with prefix {spec.prefix!r} is already up (phase "
                       f"{data.get('phase', '?')}): use it, or run cluster-lab down first")
    left = {k: v for k, v in teardown.leftovers(spec.base).items() if v}
    if left:
        what = "; ".join(f"{k}: {', '.join(v[:3])}" for k, v in left.items())
        raise LabError(f"leftovers of a lab with prefix {spec.prefix!r} exist ({what}): "
                       "run cluster-lab down first")
    if net.address_in_use(spec.base.host_address):
        raise LabError(f"{spec.base.host_address} is already in use on this host (another "
                       f"lab on {spec.base.subnet}?): pick another --subnet")
