"""Run clusterd with probes for bench_footprint (RHC_BENCH_FOOTPRINT_PROBE=DIR).

``python footprint_probe.py -m clusterd.cli.clusterd ARGS...`` runs the daemon as ``-m``
would, with two signal handlers on the main thread (where the event loop runs):

- SIGUSR1: start cProfile on CPU time (time.thread_time: the loop's thread only, worker
  threads are not profiled; a wall clock would count the time others had the CPU), or
  on cProfile's own clock with RHC_BENCH_FOOTPRINT_PROBE_CLOCK=wall;
- SIGUSR2: stop it and write ``DIR/<pid>.prof`` (pstats), ``DIR/<pid>.gc`` (garbage
  collections per generation meanwhile, with their CPU time) and ``DIR/<pid>.modules``
  (the modules imported so far, in import order, with the file each came from).

Not part of the daemon: a measuring aid, so that where an idle daemon spends its CPU and
which imports make up its RSS can be seen on the real daemon in the lab.
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import runpy
import signal
import sys
import time

OUT = os.environ.get("RHC_BENCH_FOOTPRINT_PROBE", "/tmp")
# cpu: time.thread_time (a system call per profiled call: small functions look dearer
# than they are); wall: cProfile's own clock (cheap, but counts the time others ran)
CLOCK = os.environ.get("RHC_BENCH_FOOTPRINT_PROBE_CLOCK", "cpu")
_profile: cProfile.Profile | None = None
_gc: dict[str, object] = {}


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
    global _profile
    _profile = cProfile.Profile(time.thread_time) if CLOCK == "cpu" else cProfile.Profile()
    _gc.clear()
    _gc["objects"] = len(gc.get_objects())
    if _gc_watch not in gc.callbacks:
        gc.callbacks.append(_gc_watch)
    _profile.enable()


def _dump(_sig: int, _frame: object) -> None:
    global _profile
    pid = os.getpid()
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
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
