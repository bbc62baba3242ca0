"""One real clusterd core on a UDP loopback socket, for tests/sim/test_sim_loopback.py.

Usage: python loopback_node.py NODEID PORT KEYFILE CONFFILE STATUSFILE [N]
Nodes are 127.0.0.11 .. 127.0.0.(10+N); the status document is rewritten atomically
every 100 ms so the test can poll it. Ends on SIGTERM (clean leave) or SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from clusterd.events import WriteConfig
from clusterd.membership.config import MembershipConfig, NodeSpec
from clusterd.membership.host import ClusterCore
from clusterd.node.transport import ClusterEndpoint
from clusterd.wire.auth import load_authkey
from harness import sim_validator


def _write_atomic(path: str, data: bytes, mode: int) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)


async def main(nodeid: int, port: int, keyfile: str, conffile: str, statusfile: str,
               n: int) -> None:
    nodes = tuple(NodeSpec(f"127.0.0.{10 + i}", i, 1) for i in range(1, n + 1))
    cfg = MembershipConfig("loopback", nodes, port=port)
    key = load_authkey(keyfile, require_root_owner=os.geteuid() == 0)
    data = Path(conffile).read_bytes()

    def on_events(events: tuple) -> None:
        for ev in events:
            if isinstance(ev, WriteConfig):
                _write_atomic(conffile, ev.data, 0o640)

    core = ClusterCore(cfg, nodeid, key=key.secret, incarnation=time.time_ns(),
                       config_data=data, validator=sim_validator)
    endpoint = ClusterEndpoint(core, on_events=on_events)
    await endpoint.start()
    runner = asyncio.create_task(endpoint.run())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    while not stop.is_set():
        doc = endpoint.status()
        doc["quorum"]["instant"] = core.membership.is_quorate(time.monotonic())
        _write_atomic(statusfile, json.dumps(doc).encode(), 0o644)
        try:
            async with asyncio.timeout(0.1):
                await stop.wait()
        except TimeoutError:
            pass
    await endpoint.leave("SIGTERM")
    runner.cancel()
    endpoint.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=f"node {sys.argv[1]} %(message)s")
    a = sys.argv[1:]
    asyncio.run(main(int(a[0]), int(a[1]), a[2], a[3], a[4], int(a[5]) if len(a) > 5 else 3))
