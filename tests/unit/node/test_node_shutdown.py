"""Leave or restart on SIGTERM (systemd's job on our unit), and an exit that waits for
nothing stale (``clusterd.node.shutdown``)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from clusterd.node import shutdown as sd
from clusterd.node.shutdown import Mode
from clusterd.resources.agents.runner import RunResult

CGROUPS = [
    ("0::/system.slice/clusterd.service\n", "clusterd.service"),
    (("12:pids:/system.slice/clusterd.service\n1:name=systemd:/system.slice/clusterd.service\n"
     "0::/system.slice/clusterd.service\n"), "clusterd.service"),
    ("0::/system.slice/system-clusterd.slice/clusterd@a.service\n", "clusterd@a.service"),
    ("9:name=systemd:/\n4:memory:/process_api/d799\n0::/\n", None),     # no systemd unit
    ("0::/user.slice/user-0.slice/session-3.scope\n", None),
]


@pytest.mark.parametrize(("text", "unit"), CGROUPS)
def test_the_unit_is_read_from_the_cgroup(text, unit):
    assert sd.unit_of(text) == unit


# `systemctl list-jobs --no-legend --no-pager clusterd.service` (columns JOB UNIT TYPE STATE)
JOBS = [
    ("1234 clusterd.service restart running\n", Mode.RESTART,
     "systemd runs a restart job on clusterd.service: restart, keeping services"),
    ("77 clusterd.service try-restart running\n", Mode.RESTART,
     "systemd runs a try-restart job on clusterd.service: restart, keeping services"),
    ("1235 clusterd.service stop running\n", Mode.LEAVE,
     "systemd runs a stop job on clusterd.service: leave"),
    ("9 shutdown.target start waiting\n10 clusterd.service stop running\n", Mode.LEAVE,
     "systemd runs a stop job on clusterd.service: leave"),
    ("", Mode.LEAVE, "no systemd job on clusterd.service (a signal sent by hand): leave"),
    ("5 clusterd-other.service restart running\n", Mode.LEAVE,
     "no systemd job on clusterd.service (a signal sent by hand): leave"),
]


@pytest.mark.parametrize(("out", "mode", "why"), JOBS)
def test_the_job_on_our_unit_decides(out, mode, why):
    assert sd.mode_of(sd.job_of(out, "clusterd.service"), "clusterd.service") == (mode, why)


class FakeRunner:
    def __init__(self, result=None, exc=None):
        self.result, self.exc = result, exc
        self.calls = []

    async def run(self, argv, *, timeout):
        self.calls.append((tuple(argv), timeout))
        if self.exc is not None:
            raise self.exc
        return self.result


def ask(runner, env=None, tmp_path=None, cgroup="0::/system.slice/clusterd.service\n"):
    path = tmp_path / "cgroup"
    path.write_text(cgroup)
    return asyncio.run(sd.ask_systemd({"INVOCATION_ID": "abc"} if env is None else env,
                                      str(path), runner))


def result(out="", rc=0, **kw):
    return RunResult(("systemctl",), rc, out, "", 0.01, **kw)


def test_asking_systemd(tmp_path):
    runner = FakeRunner(result("1234 clusterd.service restart running\n"))
    assert ask(runner, tmp_path=tmp_path)[0] is Mode.RESTART
    assert runner.calls == [(("systemctl", "list-jobs", "--no-legend", "--no-pager",
                              "clusterd.service"), sd.SYSTEMCTL_TIMEOUT)]
    # the unit is ours, whatever its name
    runner = FakeRunner(result("3 web-ha.service restart running\n"))
    assert ask(runner, tmp_path=tmp_path, cgroup="0::/system.slice/web-ha.service\n")[0] \
        is Mode.RESTART


FALLBACKS = [
    ({}, FakeRunner(result("1 clusterd.service restart running\n")),
     "not run by systemd: leave ('clusterd leave --restart' restarts keeping the services)"),
    (None, FakeRunner(result(timed_out=True, rc=-9)),
     "cannot ask systemd which job runs on clusterd.service (no answer within 2s): leave"),
    (None, FakeRunner(result(rc=1)),
     "cannot ask systemd which job runs on clusterd.service (exit 1): leave"),
    (None, FakeRunner(result(rc=None, error="systemctl: not found or not executable")),
     ("cannot ask systemd which job runs on clusterd.service (systemctl: not found or not "
     "executable): leave")),
    (None, FakeRunner(exc=RuntimeError("boom")), "cannot ask systemd (boom): leave"),
]


@pytest.mark.parametrize(("env", "runner", "why"), FALLBACKS)
def test_any_doubt_is_a_leave(env, runner, why, tmp_path):
    assert ask(runner, env, tmp_path) == (Mode.LEAVE, why)
    if env == {}:
        assert runner.calls == []                # no systemd: nobody to ask


def test_a_restart_keeps_services_only_if_every_member_decodes_the_announcement():
    names = {1: "node1", 2: "node2", 3: "node3"}
    versions = {2: 3, 3: 3}
    assert sd.hold_refused([2, 3], versions.get, names) is None
    versions[3] = 2
    assert sd.hold_refused([2, 3], versions.get, names) == (
        "node3 speak(s) a protocol older than v3, which does not know restarts that keep "
        "services")


def test_on_signal_asks_once_and_requests_the_mode(monkeypatch):
    asked = []

    async def fake_ask():
        asked.append(1)
        return Mode.RESTART, "systemd runs a restart job on clusterd.service: restart"

    monkeypatch.setattr(sd, "ask_systemd", fake_ask)
    requests = []

    async def scenario():
        handler = sd.OnSignal(lambda reason, mode: requests.append((reason, mode)))
        handler("SIGTERM")
        handler("SIGTERM")                     # a second signal while asking: ignored
        await handler.task

    asyncio.run(scenario())
    assert asked == [1]
    assert requests == [(("signal SIGTERM: systemd runs a restart job on clusterd.service: "
                         "restart"), Mode.RESTART)]


def test_close_all_bounds_every_step_and_names_the_slow_ones(caplog):
    done = []

    async def quick():
        done.append("quick")

    async def hangs():
        await asyncio.sleep(3600)

    async def fails():
        raise RuntimeError("broken")

    async def slow():
        await asyncio.sleep(0.6)
        done.append("slow")

    with caplog.at_level(logging.INFO, logger="clusterd.node.shutdown"):
        asyncio.run(sd.close_all("n1", [("hangs", hangs), ("fails", fails), ("slow", slow),
                                        ("quick", quick)], budget=0.8))
    assert done == ["slow", "quick"]                # every step ran, in order
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "node n1: shutdown: hangs did not finish within 0.8s; exiting anyway"
    assert lines[1] == "node n1: shutdown: fails failed"
    assert lines[2].startswith("node n1: shutdown: slow took 0.")


def test_run_does_not_wait_for_a_worker_thread_stuck_in_a_blocking_call():
    release = threading.Event()

    def stuck():                              # e.g. a stat on a hung NFS mount
        release.wait(30)

    async def main():
        loop = asyncio.get_running_loop()
        loop.create_task(asyncio.to_thread(stuck))   # nobody awaits it: a leftover
        await asyncio.sleep(0.05)
        return 7

    try:
        assert sd.run(main()) == 7               # asyncio.run would wait for the thread
        stuck_now = sd.busy_threads(grace=0.1)
        # named, with where it blocks (the innermost frame: threading's Event.wait)
        assert len(stuck_now) == 1 and stuck_now[0].startswith("clusterd-worker") \
            and stuck_now[0].endswith(" wait")
    finally:
        release.set()
    assert sd.busy_threads(grace=2.0) == []
