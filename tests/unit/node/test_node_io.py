"""Edge helpers: tracked tasks, sd_notify, logging setup."""

from __future__ import annotations

import asyncio
import io
import logging
import socket

import pytest
from clusterd import logsetup
from clusterd.node import sdnotify
from clusterd.node.tasks import TrackedTasks


def test_tracked_tasks_one_per_subject_with_timeout(caplog):
    async def scenario():
        tasks = TrackedTasks("n1")
        gate = asyncio.Event()
        assert tasks.try_start("web", "stop", gate.wait, timeout=5) is None
        assert tasks.try_start("web", "start", gate.wait, timeout=5) == "busy: stop web"
        assert [i.subject for i in tasks.in_flight()] == ["web"]
        gate.set()
        async with asyncio.timeout(5):
            while tasks.in_flight():
                await asyncio.sleep(0.01)
        assert tasks.try_start("db", "stop", lambda: asyncio.sleep(60), timeout=0.05) is None
        async with asyncio.timeout(5):
            while tasks.in_flight():
                await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR, logger="clusterd.node.tasks"):
        asyncio.run(scenario())
    assert "node n1: stop db timed out after 0.05s" in caplog.text


def test_sd_notify_sends_one_datagram(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.notify("READY=1")
    assert sock.recv(100) == b"READY=1"
    sock.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sdnotify.notify("READY=1")


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    test_logger = logging.getLogger("clusterd.test")
    test_logger.setLevel(logging.DEBUG)      # independent of what other suites set
    yield
    test_logger.setLevel(logging.NOTSET)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_lines_carry_node_and_view_and_no_password(restore_root_logger):
    out = io.StringIO()
    rt = logsetup.setup_logging("n1", stream=out)
    log = logging.getLogger("clusterd.test")
    log.info("before any view")
    rt.context.view = "7"
    log.warning("agent said passwd=hunter2 ipaddr=10.0.0.1")
    rt.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("INFO [n1 view -] clusterd.test: before any view")
    assert lines[1].endswith("WARNING [n1 view 7] clusterd.test: agent said passwd=*** "
                             "ipaddr=10.0.0.1")
    assert "hunter2" not in out.getvalue()


def test_full_log_queue_drops_counts_and_reports(restore_root_logger):
    out = io.StringIO()
    rt = logsetup.setup_logging("n1", stream=out, queue_size=3)
    rt.listener.stop()                       # nothing drains: the queue fills up
    log = logging.getLogger("clusterd.test")
    for i in range(10):
        log.info("line %d", i)
    assert rt.lost == 7
    while not rt.handler.queue.empty():
        rt.handler.queue.get_nowait()
    log.info("after")
    rt.listener.start()
    rt.stop()
    text = out.getvalue()
    assert "7 log records lost (log queue full)" in text and "after" in text
