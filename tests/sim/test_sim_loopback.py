"""Three real processes on UDP loopback (127.0.0.11-13): form a quorate cluster, lose one
(SIGKILL) and see it dropped, bring it back, and push a config through the real socket."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import sim_config

HERE = Path(__file__).parent
DEADLINE = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.11", 0))
        return s.getsockname()[1]


def _status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _wait(what: str, cond, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)  # polling interval, not a wait for a state
    raise AssertionError(f"within {deadline}s: {what}")


@pytest.fixture
def cluster(tmp_path: Path):
    port = _free_port()
    key = tmp_path / "authkey"
    key.write_bytes(os.urandom(256))
    key.chmod(0o400)
    procs: dict[int, subprocess.Popen] = {}
    env = dict(os.environ, PYTHONPATH=str(HERE))
    logs = contextlib.ExitStack()

    def start(i: int) -> None:
        conf = tmp_path / f"conf{i}"
        if not conf.exists():
            conf.write_bytes(sim_config(1))
        procs[i] = subprocess.Popen(
            [sys.executable, str(HERE / "loopback_node.py"), str(i), str(port), str(key),
             str(conf), str(tmp_path / f"status{i}.json")],
            env=env, stdout=subprocess.DEVNULL,
            stderr=logs.enter_context((tmp_path / f"log{i}").open("ab")))

    for i in (1, 2, 3):
        start(i)
    yield tmp_path, procs, start
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    logs.close()


def _view(tmp: Path, i: int) -> tuple[list[int], bool]:
    doc = _status(tmp / f"status{i}.json")
    if not doc or not doc["view"]:
        return [], False
    return doc["view"]["members"], doc["quorum"]["instant"]


def test_three_processes_form_lose_and_regain_a_node(cluster) -> None:
    tmp, procs, start = cluster
    _wait("three nodes in one quorate view",
          lambda: all(_view(tmp, i) == ([1, 2, 3], True) for i in (1, 2, 3)))
    procs[3].kill()
    procs[3].wait(timeout=10)
    _wait("nodes 1 and 2 drop node 3 and stay quorate",
          lambda: all(_view(tmp, i) == ([1, 2], True) for i in (1, 2)))
    (tmp / "status3.json").unlink()
    start(3)
    _wait("node 3 rejoins", lambda: all(_view(tmp, i)[0] == [1, 2, 3] for i in (1, 2, 3)))
    doc = _status(tmp / "status1.json")
    assert doc["wire"]["drops"].get("bad mac", 0) == 0


def test_config_pushed_through_the_socket_reaches_every_node(cluster) -> None:
    tmp, procs, _start = cluster
    _wait("quorate cluster", lambda: all(_view(tmp, i) == ([1, 2, 3], True) for i in (1, 2, 3)))
    # node 2's file changes on disk and node 2 restarts with it (a config written by the
    # admin tool); the others pull it over the authenticated UDP channel
    procs[2].terminate()
    procs[2].wait(timeout=10)
    (tmp / "conf2").write_bytes(sim_config(2, "pushed"))
    _cluster_start = cluster[2]
    _cluster_start(2)
    _wait("every node holds version 2",
          lambda: all((_status(tmp / f"status{i}.json") or {}).get("cluster", {})
                      .get("config_version") == 2 for i in (1, 2, 3)))
    assert (tmp / "conf1").read_bytes() == sim_config(2, "pushed")


def test_datagrams_the_kernel_drops_are_reported_as_overflow() -> None:
    """The endpoint reads its own socket; when the daemon falls behind, the kernel's
    receive buffer bounds what waits and the datagrams it drops show as overflow."""
    import asyncio
    import socket

    from clusterd.membership.config import MembershipConfig, NodeSpec
    from clusterd.membership.host import ClusterCore
    from clusterd.node.transport import ClusterEndpoint
    from harness import sim_validator

    port = random.randrange(20000, 40000)
    cfg = MembershipConfig("inbox", (NodeSpec("127.0.0.11", 1), NodeSpec("127.0.0.12", 2)),
                           port=port)
    core = ClusterCore(cfg, 1, key=b"k" * 256, incarnation=1, config_data=sim_config(1),
                       validator=sim_validator)

    async def scenario() -> tuple[int, int, int]:
        endpoint = ClusterEndpoint(core, on_events=lambda evs: None)
        await endpoint.start()
        assert endpoint._sock is not None
        endpoint._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        before = endpoint.overflow
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.12", 0))
            for _ in range(200):  # not running: nothing reads, the buffer fills
                peer.sendto(b"x" * 512, ("127.0.0.11", port))
        dropped = endpoint.overflow - before
        runner = asyncio.create_task(endpoint.run())
        async with asyncio.timeout(10):  # run() reads what waited: garbage, counted
            while sum(core.guard.drops.values()) == 0:
                await asyncio.sleep(0.01)
        runner.cancel()
        status = endpoint.status()["wire"]
        endpoint.close()
        return dropped, status["inbox_overflow"], sum(core.guard.drops.values())

    dropped, reported, read = asyncio.run(scenario())
    assert dropped > 0 and reported >= dropped
    assert read + dropped <= 200 and read > 0
