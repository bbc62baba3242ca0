"""node/memory.py: the compiled schema is given back after a quiet while, never while a
validation runs, and a validation after that gives the same answers."""

from __future__ import annotations

import threading

from clusterd.conf import gcpause, parse, rng, validate_bytes
from clusterd.node.memory import MemoryKeeper

GOOD = b"""<?xml version="1.0"?>
<cluster name="c" config_version="1">
  <clusternodes><clusternode name="n1" nodeid="1"/><clusternode name="n2" nodeid="2"/>
  </clusternodes>
  <rm><service name="web"><ip address="198.18.0.200/24"/></service></rm>
</cluster>
"""
BAD = GOOD.replace(b'<service name="web">', b'<service name="web" colour="blue">')


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _held() -> bool:
    return rng.schema.cache_info().currsize + rng._linear.cache_info().currsize > 0


def test_released_only_after_the_quiet_while_then_validation_gives_the_same_answers(
        ) -> None:
    before = validate_bytes(BAD)
    assert before and _held()
    ended = gcpause.quiet_for(0.0)
    assert ended is not None
    clock = Clock(-ended + 29.0)          # 29 s after the last validation ended
    keeper = MemoryKeeper(quiet_s=30.0, clock=clock)
    assert not keeper.tick() and _held()
    clock.now += 2.0
    assert keeper.tick() and not _held() and keeper.releases == 1
    assert not keeper.tick()            # nothing left to give back
    assert validate_bytes(BAD) == before and _held()
    assert parse(GOOD).services[0].name == "service:web"


def test_never_released_while_a_validation_runs() -> None:
    validate_bytes(GOOD)
    keeper = MemoryKeeper(quiet_s=0.0)
    with gcpause.gc_paused():            # what every validation runs inside
        assert gcpause.quiet_for(1e12) is None
        assert not keeper.tick() and _held()
    assert keeper.tick() and not _held()


def test_a_release_beside_validating_threads_changes_no_answer() -> None:
    want = validate_bytes(BAD)
    answers: list[object] = []

    def work() -> None:
        for _ in range(20):
            answers.append(validate_bytes(BAD))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    keeper = MemoryKeeper(quiet_s=0.0)
    while any(t.is_alive() for t in threads):
        keeper.tick()
        rng.release()
    for t in threads:
        t.join()
    assert answers == [want] * 40
