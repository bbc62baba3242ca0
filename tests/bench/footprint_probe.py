"""Run clusterd with probes for bench_footprint (RHC_BENCH_FOOTPRINT_PROBE=DIR).

``python footprint_probe.py -m clusterd.cli.clusterd ARGS...`` runs the daemon as ``-m``
would, with two signal handlers on the main thread (where the event loop runs):

- SIGUSR1: start cProfile on CPU time (time.thread_time: the loop's thread only, worker
  threads are not profiled; a wall clock would count the time others had the CPU), or
  on cProfile's own clock with RHC_BENCH_FOOTPRINT_PROBE_CLOCK=wall, or (=parts) no
  profiler but the CPU time of a few entry points (the loop's iterations, heartbeat
  ticks, reads, node and services cycles), written to ``DIR/<pid>.parts``;
- SIGUSR2: stop it and write ``DIR/<pid>.prof`` (pstats), ``DIR/<pid>.gc`` (garbage
  collections per generation meanwhile, with their CPU time) and ``DIR/<pid>.modules``
  (the modules imported so far, in import order, with the file each came from).

Not part of the daemon: a measuring aid, so that where an idle daemon spends its CPU and
which imports make up its RSS can be seen on the real daemon in the lab.
"""

from __future__ import annotations

import cProfile
import gc
import importlib
import inspect
import json
import os
import runpy
import signal
import sys
import time
from typing import Any

OUT = os.environ.get("RHC_BENCH_FOOTPRINT_PROBE", "/tmp")
# cpu: time.thread_time (a system call per profiled call: small functions look dearer
# than they are); wall: cProfile's own clock (cheap, but counts the time others ran);
# parts: no profiler, the CPU time of a few entry points only (PARTS), nearly free
CLOCK = os.environ.get("RHC_BENCH_FOOTPRINT_PROBE_CLOCK", "cpu")
# name: (module, class or None for a module's function, function). The indented ones run
# inside the one above them (or inside several: "in both"); each one's CPU time on the
# loop's thread, its calls counted. Functions a module imported by name are patched where
# they are called from (wire.guard's own names).
PARTS: dict[str, tuple[str, str | None, str]] = {
    "process, all threads": ("", None, ""),
    "event loop iterations": ("asyncio.base_events", "BaseEventLoop", "_run_once"),
    "  heartbeat timer (ClusterEndpoint._on_timer)": ("clusterd.node.transport",
                                                      "ClusterEndpoint", "_on_timer"),
    "    ClusterCore.tick (membership)": ("clusterd.membership.host", "ClusterCore", "tick"),
    "      MembershipCore.tick (membership)": ("clusterd.membership.core", "MembershipCore",
                                               "tick"),
    "      PacketGuard.seal (wire), also for app sends": ("clusterd.wire.guard",
                                                          "PacketGuard", "seal"),
    "        encode_payload (JSON)": ("clusterd.wire.guard", None, "encode_payload"),
    "        frame (AES-GCM)": ("clusterd.wire.guard", None, "frame"),
    "  socket reads (ClusterEndpoint._read)": ("clusterd.node.transport", "ClusterEndpoint",
                                               "_read"),
    "    socket.recvfrom (one more per read: EAGAIN)": ("socket", "socket", "recvfrom"),
    "    ClusterCore.on_datagram (membership)": ("clusterd.membership.host", "ClusterCore",
                                                 "on_datagram"),
    "      PacketGuard.accept (wire)": ("clusterd.wire.guard", "PacketGuard", "accept"),
    "        unpack_header": ("clusterd.wire.guard", None, "unpack_header"),
    "        open_payload (AES-GCM)": ("clusterd.wire.guard", None, "open_payload"),
    "        decode_payload (JSON)": ("clusterd.wire.guard", None, "decode_payload"),
    "      MembershipCore.on_message (membership)": ("clusterd.membership.core",
                                                    "MembershipCore", "on_message"),
    "      ConfigSyncCore.observe": ("clusterd.configsync.core", "ConfigSyncCore",
                                     "observe"),
    "    Daemon.on_events (events to the node)": ("clusterd.node.daemon", "Daemon",
                                                  "on_events"),
    "  in both: ClusterEndpoint._rearm": ("clusterd.node.transport", "ClusterEndpoint",
                                          "_rearm"),
    "    ClusterCore.next_deadline (membership)": ("clusterd.membership.host", "ClusterCore",
                                                   "next_deadline"),
    "  in both: socket.sendto": ("socket", "socket", "sendto"),
    "  app sends (ClusterEndpoint.send)": ("clusterd.node.transport", "ClusterEndpoint",
                                           "send"),
    "  node cycles (Daemon._cycle_locked)": ("clusterd.node.daemon", "Daemon",
                                             "_cycle_locked"),
    "  services cycles (ServicesGlue.run_cycle)": ("clusterd.node.services_glue",
                                                   "ServicesGlue", "run_cycle"),
}
_profile: cProfile.Profile | None = None
_gc: dict[str, object] = {}
_parts: dict[str, list[float]] = {}
_measuring = False


def _timed(name: str, func: Any) -> Any:
    """``func`` counting its calls and CPU time in _parts (a coroutine function: the time
    of its steps on this thread, awaits included, which an idle cycle does not make)."""
    if inspect.iscoroutinefunction(func):
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return await func(*args, **kwargs)
            finally:
                _count(name, time.thread_time() - t0)
        return timed_async

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            _count(name, time.thread_time() - t0)
    return timed


def _count(name: str, spent: float) -> None:
    if _measuring:
        entry = _parts.setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] += spent


def _install_parts() -> None:
    for name, (module, cls, method) in PARTS.items():
        if not module:
            continue                      # the process total, read in _start and _dump
        owner = importlib.import_module(module)
        owner = getattr(owner, cls) if cls else owner   # None: a module's function
        setattr(owner, method, _timed(name, getattr(owner, method)))


def _gc_watch(phase: str, info: dict[str, int]) -> None:
    """Collections and their CPU time per generation while profiling."""
    if phase == "start":
        _gc["t0"] = time.thread_time()
    elif "t0" in _gc:
        gen = str(info["generation"])
        runs = _gc.setdefault("runs", {})
        n, spent = runs.get(gen, (0, 0.0))
        runs[gen] = (n + 1, spent + time.thread_time() - _gc.pop("t0"))


def _start(_sig: int, _frame: object) -> None:
    global _profile, _measuring
    _gc.clear()
    if CLOCK == "parts":
        _parts.clear()
        _parts["process, all threads"] = [0, -time.process_time()]
        _measuring = True
        return
    _profile = cProfile.Profile(time.thread_time) if CLOCK == "cpu" else cProfile.Profile()
    _gc["objects"] = len(gc.get_objects())
    if _gc_watch not in gc.callbacks:
        gc.callbacks.append(_gc_watch)
    _profile.enable()


def _dump(_sig: int, _frame: object) -> None:
    global _profile, _measuring
    pid = os.getpid()
    if _measuring:
        _measuring = False
        _parts["process, all threads"][1] += time.process_time()
        with open(os.path.join(OUT, f"{pid}.parts"), "w") as fh:
            json.dump(_parts, fh, indent=1)
    if _profile is not None:
        _profile.disable()
        _profile.dump_stats(os.path.join(OUT, f"{pid}.prof"))
        _profile = None
        with open(os.path.join(OUT, f"{pid}.gc"), "w") as fh:
            json.dump({"objects_at_start": _gc.get("objects"), "collections": _gc.get("runs"),
                       "frozen": gc.get_freeze_count()}, fh)
    with open(os.path.join(OUT, f"{pid}.modules"), "w") as fh:
        fh.writelines(f"{name} {getattr(module, '__file__', None) or '-'}\n"   # import order
                      for name, module in list(sys.modules.items()))


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        sys.exit("usage: footprint_probe.py -m MODULE ARGS...")
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
    if CLOCK == "parts":
        _install_parts()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
