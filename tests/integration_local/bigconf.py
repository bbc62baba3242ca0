"""Large cluster.conf files for the local cluster (and the validation benchmark), and a
probe of how long a daemon's event loop goes without answering.

``big_conf`` fills ``<rm>`` up to a size: first ``problems`` services that each carry an
unknown attribute (``kind="attribute"``) or unknown elements (``kind="element"``), then
valid services (``autostart="0"``: the daemon loads them and starts none) or failover
domains up to the size, written as the daemon writes them (a valid proposal's canonical
bytes stay under 1 MiB).

``LoopProbe`` sends a request with an unknown op to a daemon's control socket, waits for
the answer, and again, for as long as it runs: the control socket is served by the same
asyncio loop as the heartbeats, so the longest wait for an answer bounds from above how
long that loop was blocked (it adds the scheduling delays of a busy machine).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Self

from localcluster_harness import conf_text

MAX_BYTES = 1024 * 1024


def _problem(i: int, kind: str) -> str:
    if kind == "attribute":
        return f'<service name="b{i}" bogus="x"/>\n'
    return f'<bogus{i % 7} name="b{i}"/>\n'


def _filler(i: int, bulk: str, node: str) -> str:
    """One valid item, written as the daemon writes it (canonical indentation)."""
    if bulk == "services":
        return (f'    <service name="s{i}" autostart="0" recovery="relocate">\n'
                f'      <script name="w{i}" file="/etc/init.d/w{i}"/>\n    </service>\n')
    return (f'      <failoverdomain name="d{i}" ordered="1">\n        <failoverdomainnode '
            f'name="{node}" priority="1"/>\n      </failoverdomain>\n')


def big_conf(version: int, addrs: list[str], port: int, *, size: int, problems: int = 0,
             kind: str = "attribute", bulk: str = "services", token_ms: int = 1000) -> bytes:
    """A cluster.conf of about ``size`` bytes (at most MAX_BYTES) with ``problems``
    problems in ``<rm>`` (each of them one problem), filled up with valid services
    (``bulk="services"``) or failover domains (``bulk="domains"``: cheap to apply)."""
    head = conf_text(version, addrs, port, f'  <totem token="{token_ms}"/>\n  <rm>\n')
    head = head.rsplit("</cluster>", 1)[0]
    open_, close = (("", "") if bulk == "services"
                    else ("    <failoverdomains>\n", "    </failoverdomains>\n"))
    tail = close + "  </rm>\n</cluster>\n"
    parts = [head, *(_problem(i, kind) for i in range(problems)), open_]
    used = sum(map(len, parts)) + len(tail)
    i = problems
    while used + len(item := _filler(i, bulk, addrs[0])) <= min(size, MAX_BYTES):
        parts.append(item)
        used += len(item)
        i += 1
    data = ("".join(parts) + tail).encode()
    if len(data) > MAX_BYTES:
        raise ValueError(f"{problems} problems do not fit in {MAX_BYTES} bytes")
    return data


class LoopProbe:
    """Round trips to a daemon's control socket, back to back, in a thread; ``longest``
    is the longest one seen (see the module doc)."""

    REQUEST = (json.dumps({"v": 1, "op": "probe.loop", "args": {}}) + "\n").encode()

    def __init__(self, path: str) -> None:
        self.path = path
        self.longest = 0.0
        self.count = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(self.path)
                reader = sock.makefile("rb")
                while not self._stop.is_set():
                    started = time.monotonic()
                    sock.sendall(self.REQUEST)
                    if not reader.readline():
                        self.error = "the daemon closed the control connection"
                        return
                    self.longest = max(self.longest, time.monotonic() - started)
                    self.count += 1
                    self._stop.wait(0.005)
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
