"""Scale figures (issue 18): real clusterd daemons on light lab nodes (a network namespace
plus one daemon each, docs/lab-light.md) at 3, 8, 30 and 100 nodes, with today's all-to-all
heartbeats (every token/3 to every peer): the baseline a SWIM-style membership must beat.

Per size: packets per second per daemon (the node's veth counters over a 30 s idle window),
idle CPU (% of a core, /proc/PID/stat) and RSS (/proc/PID/status) per daemon, time from a
node's SIGKILL to the survivors' agreed view without it (every survivor's control socket
polled with `status`, concurrently, deadline-bounded), and false suspicions (peers reported
"silent", view changes, quorum losses) over 60 s with both cores saturated by busy loops
this script starts and ends by PID. A size whose daemons never agree on one view is
measured as it is (CPU, packets, view churn, how many answer) and reported as such.

Own light lab: prefix rhcsc, subnet 198.18.25.0/24. Runnable alone (root):
``.venv/bin/python tests/bench/bench_scale.py``; RHC_BENCH_SCALE_SIZES=3,8 picks sizes,
RHC_BENCH_SCALE_TOKEN_MS sets totem@token (default: the daemon's 1 s),
RHC_BENCH_SCALE_IDLE_S / _LOAD_S the windows (default 30 / 60 s). Plots go to
docs/images/scale-*.png.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from clusterlab.light import LightLab, LightSpec
from clusterlab.procs import ProcRef
from clusterlab.teardown import teardown

PREFIX, SUBNET = "rhcsc", "198.18.25.0/24"
SIZES = tuple(int(x) for x in os.environ.get("RHC_BENCH_SCALE_SIZES", "3,8,30,100").split(","))
TOKEN_MS = int(os.environ.get("RHC_BENCH_SCALE_TOKEN_MS", "0")) or None
IDLE_S = float(os.environ.get("RHC_BENCH_SCALE_IDLE_S", "30"))
LOAD_S = float(os.environ.get("RHC_BENCH_SCALE_LOAD_S", "60"))
CRASH_RUNS = 3
TICKS = os.sysconf("SC_CLK_TCK")
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _veth(lab: LightLab, name: str) -> tuple[int, int]:
    """(packets the node sent, packets delivered to it): the host end's rx and tx."""
    base = Path(f"/sys/class/net/{lab.node(name).veth}/statistics")
    return int((base / "rx_packets").read_text()), int((base / "tx_packets").read_text())


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _idle(lab: LightLab) -> dict[str, Any]:
    names = [n.name for n in lab.nodes]
    pids = {x: lab.pid(x) for x in names}
    live = [x for x in names if pids[x]]
    epochs0 = lab.views(names, timeout=3.0)
    cpu0 = {x: _cpu_s(pids[x]) for x in live}
    pk0 = {x: _veth(lab, x) for x in live}
    t0 = time.monotonic()
    time.sleep(IDLE_S)  # the measurement window
    dt = time.monotonic() - t0
    cpu = [(_cpu_s(pids[x]) - cpu0[x]) / dt * 100 for x in live]
    pk1 = {x: _veth(lab, x) for x in live}
    sent = [(pk1[x][0] - pk0[x][0]) / dt for x in live]
    recv = [(pk1[x][1] - pk0[x][1]) / dt for x in live]
    rss = [_rss_mb(pids[x]) for x in live]
    epochs1 = lab.views(names, timeout=3.0)
    churn = [e1[0] - e0[0] for x in names
             if (e0 := epochs0[x]) is not None and (e1 := epochs1[x]) is not None]
    return {"cpu": cpu, "cpu_total": sum(cpu), "sent": sent, "recv": recv, "rss": rss,
            "view_changes": max(churn) if churn else None,
            "answering": sum(v is not None for v in epochs1.values()),
            "largest_view": max((len(v[1]) for v in epochs1.values() if v), default=0)}


def _crash_to_view(lab: LightLab, victim: str, deadline: float = 60.0) -> float:
    """SIGKILL of victim's daemon to every survivor reporting the same view, without it;
    the time is the latest first sighting of that final view among the survivors."""
    v = lab.node(victim)
    survivors = [n.name for n in lab.nodes if n.index != v.index]
    want = tuple(sorted(n.index for n in lab.nodes if n.index != v.index))
    first_seen: dict[str, dict[tuple[int, tuple[int, ...]], float]] = {x: {} for x in survivors}
    t0 = time.monotonic()
    lab.power(victim, "off")
    with ThreadPoolExecutor(max_workers=16) as pool:
        while time.monotonic() - t0 < deadline:
            def probe(x: str) -> tuple[str, Any, float]:
                view = lab.view(x, 2.0)
                return x, view, time.monotonic()
            seen = list(pool.map(probe, survivors))
            for x, view, at in seen:
                if view is not None:
                    first_seen[x].setdefault(view, at)
            views = {view for _, view, _ in seen}
            if len(views) == 1:
                final = views.pop()
                if final is not None and final[1] == want:
                    return max(first_seen[x][final] for x in survivors) - t0
            time.sleep(0.02)  # the observer's polling interval
    raise RuntimeError(f"no agreed view without {victim} within {deadline:g} s")


def _saturated(lab: LightLab) -> dict[str, Any]:
    """Both cores busy for LOAD_S: peers reported silent, view changes, quorum losses."""
    names = [n.name for n in lab.nodes]
    marks = {x: lab.log_path(x).stat().st_size for x in names}
    before = lab.views(names, timeout=3.0)
    burners = [ProcRef.of(subprocess.Popen([sys.executable, "-c", "while True: pass"]).pid)
               for _ in range(os.cpu_count() or 2)]
    load_before = _load()
    try:
        time.sleep(LOAD_S)  # the load window
    finally:
        for ref in burners:
            ref.signal(signal.SIGKILL)
            try:
                os.waitpid(ref.pid, 0)
            except ChildProcessError:
                pass
    load_after = _load()
    after = lab.views(names, timeout=5.0)
    silent = losses = 0
    for x in names:
        with open(lab.log_path(x), "rb") as fh:
            fh.seek(marks[x])
            text = fh.read().decode(errors="replace")
        silent += len(re.findall(r"silent for \d+ ms", text))
        losses += text.count("quorum lost")
    changes = [a[0] - b[0] for x in names
               if (b := before[x]) is not None and (a := after[x]) is not None]
    return {"silent": silent, "quorum_lost": losses,
            "view_changes": max(changes) if changes else None,
            "load": f"{load_before} -> {load_after}"}


def measure(size: int) -> dict[str, Any]:
    spec = LightSpec.create(PREFIX, size, SUBNET)
    teardown(spec.base)
    out: dict[str, Any] = {"size": size, "load_before": _load()}
    t0 = time.monotonic()
    try:
        try:
            lab = LightLab.up(size, PREFIX, SUBNET, token_ms=TOKEN_MS)
        except Exception as exc:  # noqa: BLE001 - a size that cannot start is a finding
            out["up_error"] = f"{exc} (after {time.monotonic() - t0:.0f} s)"
            print(f"  {size}: bring-up failed: {out['up_error']}", flush=True)
            return out
        out["up_s"] = time.monotonic() - t0
        print(f"  {size}: {size} daemons answering after {out['up_s']:.1f} s", flush=True)
        t1 = time.monotonic()
        try:
            lab.wait_agreed(timeout=60.0 + size)
            out["formed_s"] = time.monotonic() - t1
        except Exception as exc:  # noqa: BLE001 - not forming is a finding
            out["formed_s"] = None
            out["form_error"] = str(exc)
        print(f"  {size}: agreed view: {out['formed_s']}", flush=True)
        out["idle"] = _idle(lab)
        print(f"  {size}: idle {_summary(out['idle'])}", flush=True)
        if out["formed_s"] is not None:
            crashes = []
            for run in range(CRASH_RUNS):
                victim = lab.nodes[-1 - run].name
                crashes.append(_crash_to_view(lab, victim))
                lab.power(victim, "on")
                lab.wait_agreed(timeout=60.0 + size)
            out["crash"] = crashes
            print(f"  {size}: crash -> agreed view {crashes}", flush=True)
            out["saturated"] = _saturated(lab)
            print(f"  {size}: saturated {out['saturated']}", flush=True)
    finally:
        teardown(spec.base)
    return out


def _summary(idle: dict[str, Any]) -> str:
    return (f"sent {_med(idle['sent']):.1f} pkt/s, recv {_med(idle['recv']):.1f} pkt/s, "
            f"cpu {_med(idle['cpu']):.2f}% (total {idle['cpu_total']:.0f}%), "
            f"rss {_med(idle['rss']):.1f} MB, view changes {idle['view_changes']}, "
            f"answering {idle['answering']}, largest view {idle['largest_view']}")


def _plots(results: list[dict[str, Any]]) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMAGES.mkdir(parents=True, exist_ok=True)
    sizes = [r["size"] for r in results]
    formed = [r["formed_s"] is not None for r in results]
    note = "hollow marker: no agreed view formed at that size"
    files = []

    def plot(name: str, title: str, ylabel: str, series: dict[str, list[float | None]],
             total: list[float] | None = None) -> None:
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
        if total is not None:  # CPU of all daemons together, on a second axis
            ax2 = ax.twinx()
            ax2.plot(sizes, total, ":", color="grey", marker="s", label="all daemons together")
            ax2.axhline(100 * (os.cpu_count() or 2), color="grey", lw=0.5)
            ax2.set_ylabel(f"all daemons, % of a core ({os.cpu_count()} cores)", fontsize=8)
            ax2.set_ylim(bottom=0)
            ax2.legend(fontsize=8, loc="center left")
        for label, ys in series.items():
            xs = [s for s, y in zip(sizes, ys, strict=True) if y is not None]
            vs = [y for y in ys if y is not None]
            ok = [f for f, y in zip(formed, ys, strict=True) if y is not None]
            line = ax.plot(xs, vs, "-", label=label)[0]
            for x, v, good in zip(xs, vs, ok, strict=True):
                ax.plot([x], [v], "o", color=line.get_color(),
                        mfc=line.get_color() if good else "white")
        ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))
        for x, good in zip(sizes, formed, strict=True):
            if not good:
                ax.annotate("no agreed\nview", (x, 0.03), xycoords=("data", "axes fraction"),
                            ha="right", fontsize=8, color="firebrick")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlabel("cluster size (real daemons, light lab nodes)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", title=note if not all(formed) else None, title_fontsize=7)
        fig.tight_layout()
        fig.savefig(IMAGES / name)
        plt.close(fig)
        files.append(f"docs/images/{name}")

    plot("scale-packets.png", "Packets per second per daemon, idle (median)", "packets/s",
         {"sent": [_med(r["idle"]["sent"]) for r in results],
          "received": [_med(r["idle"]["recv"]) for r in results]})
    plot("scale-cpu.png", "Idle CPU per daemon (median)", "% of a core",
         {"CPU per daemon": [_med(r["idle"]["cpu"]) for r in results]},
         total=[r["idle"]["cpu_total"] for r in results])
    plot("scale-rss.png", "RSS per daemon (median)", "MB",
         {"RSS": [_med(r["idle"]["rss"]) for r in results]})
    plot("scale-crash-view.png", "SIGKILL of a node to the survivors' agreed view (median)",
         "seconds", {"crash -> agreed view": [_med(r["crash"]) if r.get("crash") else None
                                               for r in results]})
    plot("scale-false-suspicions.png", f"False suspicions, both cores saturated {LOAD_S:.0f} s",
         "count", {"peers reported silent": [r["saturated"]["silent"] if r.get("saturated")
                                             else None for r in results],
                   "view changes": [r["saturated"]["view_changes"] if r.get("saturated")
                                    else None for r in results]})
    return files


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> str:
    results = []
    failed = []
    for size in SIZES:
        print(f"== scale: {size} light nodes (load average {_load()})", flush=True)
        result = measure(size)
        (failed if "up_error" in result else results).append(result)
    files = _plots(results)
    token = f"token {TOKEN_MS} ms" if TOKEN_MS else "default token 1 s"
    lines = [
        "## Scale: real daemons on light lab nodes (bench_scale.py, issue 18)", "",
        (f"One `clusterd` per light lab node (a network namespace, no systemd; "
         f"docs/lab-light.md), {token}, all-to-all heartbeats (every token/3 to every "
         f"peer): the baseline for a SWIM-style membership. {os.cpu_count()} cores; other "
         "work shares the machine (load average before each size in the table). Idle: "
         f"{IDLE_S:.0f} s window, medians over the daemons (packets from each node's veth "
         "counters). Crash: SIGKILL of a daemon to every survivor's `status` reporting the "
         f"same view without it, median (min-max) of {CRASH_RUNS}. Saturated: two busy "
         f"loops for {LOAD_S:.0f} s; peers reported silent (suspicions, summed over the "
         "daemons' logs), view changes (largest epoch increase seen by a daemon) and "
         "quorum losses."), "",
        ("| daemons | load before | bring-up | agreed view | sent pkt/s | recv pkt/s | CPU % "
        "(total) | RSS MB | crash -> view s | saturated: silent / view changes / quorum "
        "lost |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        idle = r["idle"]
        formed = (f"{r['formed_s']:.1f} s" if r["formed_s"] is not None else
                  f"**none** ({idle['answering']} of {r['size']} answered status, largest "
                  f"view {idle['largest_view']}, {idle['view_changes']} view changes in "
                  f"{IDLE_S:.0f} s)")
        sat = r.get("saturated")
        sat_text = (f"{sat['silent']} / {sat['view_changes']} / {sat['quorum_lost']} "
                    f"(load {sat['load']})" if sat else "-")
        lines.append(
            f"| {r['size']} | {r['load_before']} | {r['up_s']:.1f} s | {formed} | "
            f"{_med(idle['sent']):.1f} | {_med(idle['recv']):.1f} | "
            f"{_med(idle['cpu']):.2f} ({idle['cpu_total']:.0f}) | {_med(idle['rss']):.1f} | "
            f"{_fmt(r['crash']) if r.get('crash') else '-'} | {sat_text} |")
    lines += [f"| {r['size']} | {r['load_before']} | **failed**: {r['up_error']} | "
              "| | | | | | |" for r in failed]
    lines += ["", "Plots (each against cluster size): " +
              ", ".join(f"![{Path(f).stem}]({Path(f).relative_to('docs')})" for f in files), ""]
    section = "\n".join(lines)
    print(section)
    return section


if __name__ == "__main__":
    main()
