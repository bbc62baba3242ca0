"""conf.gcpause: the cyclic collector is paused during validation and comes back as it was."""

from __future__ import annotations

import gc
import threading

from clusterd.conf import gcpause, validate_bytes
from confbuild import small_cluster, to_bytes


def test_paused_inside_resumed_after_nested_blocks():
    assert gc.isenabled()
    with gcpause.gc_paused():
        assert not gc.isenabled()
        with gcpause.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()          # the outer block still runs
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    try:
        with gcpause.gc_paused():
            pass
        validate_bytes(to_bytes(small_cluster()))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_resumed_after_an_exception():
    try:
        with gcpause.gc_paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()


def test_threads_validating_at_once_leave_it_enabled():
    data = to_bytes(small_cluster())
    expected = validate_bytes(data)
    seen: list[tuple] = []

    def work() -> None:
        for _ in range(20):
            seen.append(validate_bytes(data))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [expected] * 80
    assert gc.isenabled() and gcpause._gc_pauses == 0
