"""Web status page figures (issue 17) on a private lab (prefix ``rhch``, 198.18.15.0/24,
3 nodes; the deployment of tests/lab_tests/test_web_lab.py: the daemon with
``--web-user clusterd-web`` and clusterd-web as its own user with Debian's aiohttp), with
Debian's chromium driven headless by selenium from the host:

* node loss -> the page shows it Offline: a node (not the one whose page is open) is
  powered off through its BMC; the page records (a MutationObserver, Date.now() on the
  same host clock) when its row turns offline. RUNS runs, median with min/max;
* clusterd-web at rest on node1: CPU (% of one core, utime+stime from /proc/PID/stat over
  IDLE_S seconds) and RSS (VmRSS), with no browser, then with one browser logged in and its
  live stream (SSE) open;
* page load in the browser (Navigation Timing level 2, ms from navigation start):
  responseStart, domContentLoadedEventEnd, loadEventEnd of the logged-in status page;
  median of LOADS loads with min/max.

The lab is brought up for the run and removed afterwards.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from clusterlab import Lab
from clusterlab.spec import LabSpec
from clusterlab.teardown import teardown

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab_tests"))
from test_web_lab import (  # the lab test's deployment
    CA,
    USERS,
    WEB_UNIT,
    Page,
    WebLab,
    chromium,
)

PREFIX, SUBNET, NODES = "rhch", "198.18.15.0/24", 3
RUNS = 3
LOADS = 10
IDLE_S = 60.0

_WATCH = """
const node = arguments[0];
window.__offlineAt = null;
const seen = () => {
  const row = document.querySelector(`table#members tr[data-member="${node}"]`);
  if (row && row.getAttribute('data-state') === 'offline' && window.__offlineAt === null)
    window.__offlineAt = Date.now();
};
new MutationObserver(seen).observe(document.body, {subtree: true, childList: true,
                                                   attributes: true});
"""


def _proc(s: WebLab, name: str) -> tuple[int, float, float]:
    """(pid, utime+stime in s, VmRSS in MiB) of clusterd-web on ``name``."""
    pid = int(s.lab.exec(name, ["systemctl", "show", "-p", "MainPID", "--value",
                                WEB_UNIT]).stdout.strip())
    out = s.lab.exec(name, ["sh", "-c", (f"cat /proc/{pid}/stat; getconf CLK_TCK; "
                                        f"grep VmRSS /proc/{pid}/status")]).stdout.splitlines()
    fields = out[0].rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])          # utime, stime (fields 14, 15)
    hz = int(out[1])
    rss_kb = int(out[2].split()[1])
    return pid, ticks / hz, rss_kb / 1024


def _idle(s: WebLab, name: str) -> tuple[float, float]:
    """(% of one core over IDLE_S, RSS MiB at the end)."""
    pid0, cpu0, _ = _proc(s, name)
    t0 = time.monotonic()
    time.sleep(IDLE_S)
    pid1, cpu1, rss = _proc(s, name)
    assert pid0 == pid1, "clusterd-web restarted while it was measured"
    return 100 * (cpu1 - cpu0) / (time.monotonic() - t0), rss


def _stats(values: list[float], fmt: str = "{:.0f}") -> str:
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))} - {fmt.format(max(values))})")


def main() -> str:
    spec = LabSpec.create(PREFIX, NODES, SUBNET)
    teardown(spec)
    tmp = Path(tempfile.mkdtemp(prefix="rhc-bench-web-"))
    lab = Lab.up(nodes=NODES, prefix=PREFIX, subnet=SUBNET, progress=lambda _m: None)
    driver = None
    try:
        s = WebLab(lab, CA(tmp))
        s.install()
        for name in s.names:
            s.start(name)
            s.start_web(name)
        n1, n2, n3 = s.names
        for name in s.names:
            s.wait(f"{name}'s page", lambda n=name: s.https_ok(n), timeout=60)
        s.wait("web started", lambda: s.owner(n2) == n1, timeout=120)
        cpu_alone, rss_alone = _idle(s, n1)
        print(f"clusterd-web alone: {cpu_alone:.2f} % of a core, {rss_alone:.1f} MiB", flush=True)

        driver = chromium(str(tmp / "profile"))
        page = Page(driver, s, tmp / "shots")
        page.login(n1, "alice", USERS["alice"][1])
        page.logged_in(n1, "alice", "admin")
        loads: dict[str, list[float]] = {"responseStart": [], "domContentLoadedEventEnd": [],
                                         "loadEventEnd": []}
        for _ in range(LOADS):
            page.open(n1, "/")
            nav = page.until("the navigation's timing", lambda: driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return n && n.loadEventEnd > 0 ? n.toJSON() : null;"))
            for key, values in loads.items():
                values.append(float(nav[key]) - float(nav["startTime"]))
        page.until("the live stream connected", page.live)
        cpu_browser, rss_browser = _idle(s, n1)
        print(f"clusterd-web, one browser: {cpu_browser:.2f} % of a core, "
              f"{rss_browser:.1f} MiB", flush=True)

        offline: list[float] = []
        for run in range(RUNS):
            victim = (n2, n3)[run % 2]
            page.open(n1, "/")
            page.until("the live stream connected", page.live)
            page.until(f"{victim} Online", lambda v=victim: page.member_state(v) == "Online")
            driver.execute_script(_WATCH, victim)
            t0 = time.time()
            lab.power(victim, "off", wait=False)
            at = page.until(f"{victim} Offline on the page", lambda: driver.execute_script(
                "return window.__offlineAt;"), timeout=120)
            offline.append(at / 1000 - t0)
            print(f"{victim} off -> Offline on the page: {offline[-1]:.2f} s", flush=True)
            s.wait(f"{victim} fenced and back on", lambda v=victim: lab.is_on(v) and
                   lab.ssh_ok(v), timeout=180)
            lab.wait_ready(victim)
            s.stop(victim)
            s.start(victim)
            s.start_web(victim)
            s.wait(f"{victim} back in the view", lambda: s.members(n1) == [1, 2, 3],
                   timeout=120)
    finally:
        if driver is not None:
            driver.quit()
        lab.down()
    return "\n".join([
        "## web (bench_web.py)",
        "",
        (f"The web status page (clusterd-web, Debian's aiohttp on the nodes) on a {NODES}-node "
        "lab, Debian's chromium headless on the host (selenium)."),
        "",
        "| figure | value |",
        "|---|---|",
        (f"| node powered off -> the page shows it Offline (s, median (min - max) of {RUNS}) "
        f"| {_stats(offline, '{:.2f}')} |"),
        (f"| clusterd-web CPU at rest, no browser (% of one core over {IDLE_S:.0f} s) "
        f"| {cpu_alone:.2f} |"),
        (f"| clusterd-web CPU at rest, one browser on the live page (% of one core over "
        f"{IDLE_S:.0f} s) | {cpu_browser:.2f} |"),
        f"| clusterd-web RSS, no browser (MiB) | {rss_alone:.1f} |",
        f"| clusterd-web RSS, one browser (MiB) | {rss_browser:.1f} |",
        (f"| page load: responseStart (ms, median (min - max) of {LOADS}) "
        f"| {_stats(loads['responseStart'])} |"),
        f"| page load: DOMContentLoaded (ms) | {_stats(loads['domContentLoadedEventEnd'])} |",
        f"| page load: load (ms) | {_stats(loads['loadEventEnd'])} |",
        "",
        ("clusterd-web reads the daemon's status only while a live stream (GET /events) is "
        "open, twice a second, and pushes only changes: hence no CPU at all without a browser."),
        "",
    ])


if __name__ == "__main__":
    print(main())
