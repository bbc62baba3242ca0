"""A local cluster of real ``clusterd`` processes on loopback (127.0.0.11 ...), no lab.

Each node gets its own cluster.conf copy, state dir and control socket under one temp
dir; the authkey is shared (0400 root, as the daemon requires). The UDP port is picked
per cluster so that parallel runs do not collide. Everything waits with deadlines and
fails with what it last saw; every process is ended by PID in ``stop_all``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PY = sys.executable
START_TIMEOUT = 20.0


def conf_text(version: int, addrs: list[str], port: int, extra: str = "") -> str:
    nodes = "\n".join(f'    <clusternode name="{a}" nodeid="{i}"/>'
                      for i, a in enumerate(addrs, 1))
    return (f'<?xml version="1.0"?>\n<cluster name="loopback" config_version="{version}">\n'
            f"  <clusternodes>\n{nodes}\n  </clusternodes>\n"
            f'  <cman port="{port}"/>\n{extra}</cluster>\n')


def wait_until(what: str, probe: Callable[[], Any], timeout: float = START_TIMEOUT,
               interval: float = 0.1) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except Exception as exc:                 # noqa: BLE001 - reported on timeout
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; "
                                 f"last seen: {last!r}")
        time.sleep(interval)


@dataclass
class Node:
    nodeid: int
    addr: str
    home: Path
    proc: subprocess.Popen | None = None

    @property
    def sock(self) -> str:
        return str(self.home / "ctl.sock")

    @property
    def conf(self) -> Path:
        return self.home / "cluster.conf"

    @property
    def log(self) -> Path:
        return self.home / "clusterd.log"

    def run(self, module: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([PY, "-m", module, *args], check=False, capture_output=True,
                              text=True, timeout=60)

    def clustat(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("clusterd.cli.clustat", "--control-socket", self.sock, *args)

    def admin(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("clusterd.cli.clusterd", "--control-socket", self.sock, *args)

    def status(self) -> dict:
        out = self.clustat("--format", "json")
        if out.returncode:
            raise RuntimeError(out.stderr.strip())
        return json.loads(out.stdout)


@dataclass
class LocalCluster:
    root: Path
    size: int = 3
    port: int = field(default_factory=lambda: random.randrange(20000, 40000, 2))
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        addrs = [f"127.0.0.{11 + i}" for i in range(self.size)]
        key = self.root / "authkey"
        key.write_bytes(os.urandom(256))
        key.chmod(0o400)
        for i, addr in enumerate(addrs, 1):
            home = self.root / f"node{i}"
            home.mkdir()
            conf = home / "cluster.conf"
            conf.write_text(conf_text(1, addrs, self.port))
            conf.chmod(0o640)
            self.nodes.append(Node(i, addr, home))
        self.addrs = addrs

    def start(self, node: Node, env: dict[str, str] | None = None) -> None:
        log = open(node.log, "ab")              # noqa: SIM115 - handed to the child
        node.proc = subprocess.Popen(
            [PY, "-m", "clusterd.cli.clusterd", "--foreground", "--config", str(node.conf),
             "--authkey", str(self.root / "authkey"), "--node", node.addr,
             "--control-socket", node.sock, "--state-dir", str(node.home / "state")],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        log.close()

    def start_all(self, env: dict[str, str] | None = None) -> None:
        for node in self.nodes:
            self.start(node, env)

    def signal(self, node: Node, sig: signal.Signals) -> None:
        assert node.proc is not None
        os.kill(node.proc.pid, sig)

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {n.addr} ---\n{n.log.read_text(errors='replace')[-4000:]}"
                         for n in self.nodes if n.log.exists())

    # -- observations ---------------------------------------------------------------------
    def members_online(self, node: Node) -> str | None:
        """clustat's text on ``node`` when it is quorate with every node Online."""
        out = node.clustat()
        if out.returncode:
            return None
        text = out.stdout
        online = [line for line in text.splitlines() if " Online" in line]
        return text if ("Member Status: Quorate" in text
                        and len(online) == self.size) else None
