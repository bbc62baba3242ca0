"""Fencer (asyncio adapter) with the fake agent: loss -> fence -> recovery; retries until the
device works again; ack; restart from the intents file; control ops on a registry."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from clusterd.control.protocol import OpRegistry, Request
from clusterd.fencing.agent import AgentRunner
from clusterd.fencing.runtime import Fencer
from clusterd.fencing.state import FencePhase
from fencing_builders import Conf, Dev, Method, Node, Ref, cfg, view


async def until(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def conf_for(agent_dir_log: Path, **params) -> Conf:
    nodes = tuple(Node(n, i, (Method("m", (Ref("d", {"port": n}),)),))
                  for n, i in (("node1", 1), ("node2", 2), ("node3", 3)))
    return Conf({"d": Dev("d", "fence_fake", {"fake_log": str(agent_dir_log), **params})}, nodes)


def calls(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    return [(e["options"]["port"], e["options"]["action"])
            for e in map(json.loads, log.read_text().splitlines())]


@dataclass
class Peer:
    pid: int = 1
    uid: int = 0
    gid: int = 0
    who: str = "uid 0"     # control.protocol.Peer.who of a caller not acting for anyone


@pytest.fixture
def fencer_factory(agent_dir, tmp_path):
    def make(conf_holder, **kw):
        return Fencer("node1", cfg(backoff_base=0.05, backoff_cap=0.2, **kw),
                      lambda: conf_holder["conf"],
                      AgentRunner(search_dirs=[str(agent_dir)], timeout=10),
                      intents_path=str(tmp_path / "fence-intents.json"))
    return make


def test_lost_node_is_fenced_off_first_and_recovery_follows(fencer_factory, tmp_path):
    log = tmp_path / "calls"
    holder = {"conf": conf_for(log)}

    async def scenario():
        f = fencer_factory(holder)
        f.handle(view("node1", "node2", "node3"))
        f.handle(view("node1", "node2"))
        assert not f.recovery_allowed("node3")
        await until(lambda: f.recovery_allowed("node3"), "node3 fenced")
        await until(lambda: len(calls(log)) == 2, "power back on")
        assert calls(log) == [("node3", "off"), ("node3", "on")]
        (entry,) = f.status_section()
        assert entry["state"] == "done" and entry["method"] == "m"
        await f.close()
    asyncio.run(scenario())


def test_failing_device_blocks_recovery_and_retries_until_it_works(fencer_factory, tmp_path):
    log = tmp_path / "calls"
    holder = {"conf": conf_for(log, fake_mode="fail")}

    async def scenario():
        f = fencer_factory(holder)
        f.handle(view("node1", "node2", "node3"))
        f.handle(view("node1", "node2"))
        await until(lambda: len(calls(log)) >= 3, "three failed attempts")
        assert not f.recovery_allowed("node3")
        op = f.state.ops["node3"]
        assert op.attempts >= 3 and "reported failure" in op.last_error
        holder["conf"] = conf_for(log)                 # the BMC answers again
        await until(lambda: f.recovery_allowed("node3"), "fence after the BMC came back")
        assert f.state.ops["node3"].phase is FencePhase.DONE
        await f.close()
    asyncio.run(scenario())


def test_intents_survive_a_restart_of_the_fencer(fencer_factory, tmp_path):
    log = tmp_path / "calls"
    holder = {"conf": conf_for(log, fake_mode="fail")}

    async def first_life():
        f = fencer_factory(holder)
        f.handle(view("node1", "node2", "node3"))
        f.handle(view("node1", "node2"))
        await until(lambda: f.state.ops["node3"].attempts >= 1 and
                    f.state.ops["node3"].phase is FencePhase.FAILED, "a failed attempt")
        await f.close()

    async def second_life():
        holder["conf"] = conf_for(log)
        f = fencer_factory(holder)
        f.load()
        assert f.state.ops["node3"].phase is FencePhase.PENDING
        f.handle(view("node1", "node2", joined=True))
        assert not f.recovery_allowed("node3")
        await until(lambda: f.recovery_allowed("node3"), "fence after restart")
        await f.close()
    asyncio.run(first_life())
    asyncio.run(second_life())


def test_control_ops_through_the_registry(fencer_factory, tmp_path):
    log = tmp_path / "calls"
    holder = {"conf": conf_for(log, fake_mode="fail")}

    async def scenario():
        f = fencer_factory(holder)
        registry = OpRegistry()
        f.register(registry)
        f.handle(view("node1", "node2", "node3"))

        async def call(op, args):
            spec, checked = registry.resolve(Request(1, op, args))
            return await spec.handler(checked, Peer())

        reply = await call("fence.node", {"node": "node2", "reason": "test"})
        assert reply["op_id"] == "node2#1" and reply["executing"]
        await until(lambda: f.state.ops["node2"].last_error, "first failure")
        doc = await call("fence.status", {"node": "node2"})
        assert doc["fencing"][0]["state"] in ("failed", "running", "pending")
        assert doc["fencing"][0]["requesters"] == ["uid 0"]
        f.handle(view("node1", "node3"))                  # node2 now gone from the view
        reply = await call("fence.ack", {"node": "node2"})
        assert reply["op_id"] == "node2#1" and f.recovery_allowed("node2")
        await f.close()
    asyncio.run(scenario())
