"""The local executor with recording fake agents (injected factory): rgmanager order,
start aborts and cleans up (recovering, or failed when the cleanup fails), stop runs
through failures (failed), status checks at their intervals, one op per service,
re-adoption of a running service, stop_all."""

from __future__ import annotations

import asyncio

import pytest
from clusterd.conf import parse
from clusterd.placement.model import ServiceState
from clusterd.resources.agents import AgentMeta, AgentRc, AgentResult, MetaDataResult
from clusterd.resources.agents.base import AgentAction
from clusterd.services.executor import Executor
from clusterd.services.model import Command, CommandKind

S = ServiceState
CONF = """<?xml version="1.0"?>
<cluster name="c" config_version="1"><clusternodes>
<clusternode name="n1" nodeid="1"/></clusternodes><rm>
<service name="web"><script name="a" file="/a"/><ip address="198.18.0.50"/>
<script name="b" file="/b"><action name="status" depth="0" interval="1"/></script>
</service></rm></cluster>"""


class Fake:
    def __init__(self, rtype: str, name: str, log: list, rcs: dict) -> None:
        self.rtype, self.name, self.attrs = rtype, name, {}
        self.log, self.rcs = log, rcs

    async def _do(self, action: AgentAction) -> AgentResult:
        self.log.append(f"{action.value} {self.name}")
        rc = self.rcs.get((action.value, self.name), AgentRc.OK)
        return AgentResult(action, rc, f"{self.name}: {action.value} {rc.value}", 0.0)

    async def start(self, timeout=None):
        return await self._do(AgentAction.START)

    async def stop(self, timeout=None):
        return await self._do(AgentAction.STOP)

    async def status(self, depth=0, timeout=None):
        return await self._do(AgentAction.STATUS)

    async def meta_data(self, timeout=None):
        assert self.rtype == "service", "built-in types need no meta-data"
        self.log.append(f"meta-data {self.name}")
        return MetaDataResult(AgentResult(AgentAction.META_DATA, AgentRc.OK, "", 0.0),
                              AgentMeta(name=self.rtype))


def make(rcs: dict | None = None, clock: list | None = None):
    log: list[str] = []
    rcs = rcs if rcs is not None else {}
    now = clock if clock is not None else [100.0]

    def build(rtype, attrs, where, env):
        return Fake(rtype, attrs.get("name") or attrs.get("address"), log, rcs)
    ex = Executor("n1", lambda: None, build=build, clock=lambda: now[0], wall=lambda: 5.0)
    ex.load(parse(CONF.encode()).resource_tree)
    return ex, log, rcs, now


async def run(ex: Executor, kind: CommandKind, op: str = "1.1", count: bool = False) -> None:
    ex.execute(Command(1, op, "service:web", kind, count))
    while ex.busy("service:web"):
        await asyncio.sleep(0)


def state(ex: Executor) -> S:
    return ex.local["service:web"].state


def test_start_runs_in_rgmanager_order_and_stop_in_reverse() -> None:
    async def body():
        ex, log, _, _ = make()
        await run(ex, CommandKind.START)
        assert state(ex) is S.STARTED and ex.local["service:web"].done == "1.1"
        assert log == ["start web", "start 198.18.0.50", "start a", "start b", "meta-data web"]
        log.clear()
        await run(ex, CommandKind.STOP, "1.2")
        assert state(ex) is S.STOPPED
        assert log == ["stop b", "stop a", "stop 198.18.0.50", "stop web"]
    asyncio.run(body())


@pytest.mark.parametrize("rcs,final,stops", [
    ({("start", "a"): AgentRc.FAILED}, S.RECOVERING, ["stop 198.18.0.50", "stop web"]),
    ({("start", "a"): AgentRc.TIMEOUT, ("stop", "198.18.0.50"): AgentRc.FAILED}, S.FAILED,
     ["stop 198.18.0.50", "stop web"]),
])
def test_a_failed_start_stops_what_started(rcs, final, stops) -> None:
    async def body():
        ex, log, _, _ = make(rcs)
        await run(ex, CommandKind.START)
        assert state(ex) is final
        assert log == ["start web", "start 198.18.0.50", "start a", *stops]
        assert "a: start" in ex.local["service:web"].why
    asyncio.run(body())


def test_a_failed_stop_carries_on_and_leaves_the_service_failed() -> None:
    async def body():
        ex, log, rcs, _ = make()
        await run(ex, CommandKind.START)
        log.clear()
        rcs[("stop", "a")] = AgentRc.FAILED
        await run(ex, CommandKind.STOP, "1.2")
        assert state(ex) is S.FAILED
        assert log == ["stop b", "stop a", "stop 198.18.0.50", "stop web"]
        assert ex.running() == 0
    asyncio.run(body())


def test_status_checks_at_their_interval_and_a_failure_is_reported() -> None:
    async def body():
        ex, log, rcs, now = make()
        await run(ex, CommandKind.START)
        log.clear()
        ex.check_due()
        await asyncio.sleep(0)
        assert log == []                      # nothing due right after the start
        now[0] += 1.0
        rcs[("status", "b")] = AgentRc.NOT_RUNNING
        ex.check_due()
        for _ in range(5):
            await asyncio.sleep(0)
        assert log == ["status b"]            # only b has an interval in this config
        assert ex.local["service:web"].status_failed
        await run(ex, CommandKind.RESTART, "1.2", count=True)
        assert state(ex) is S.STARTED and not ex.local["service:web"].status_failed
        assert ex.local["service:web"].restarts == (5.0,)
    asyncio.run(body())


def test_probe_readopts_a_running_service_and_stop_all_stops_it() -> None:
    async def body():
        ex, log, _, _ = make()
        await ex.probe()
        assert state(ex) is S.STARTED and not any(x.startswith("start") for x in log)
        log.clear()
        await ex.stop_all("quorum lost")
        assert state(ex) is S.STOPPED and log[0] == "stop b"
    asyncio.run(body())


def test_one_op_per_service() -> None:
    async def body():
        ex, log, _, _ = make()
        ex.execute(Command(1, "1.1", "service:web", CommandKind.START))
        ex.execute(Command(1, "1.2", "service:web", CommandKind.STOP))
        while ex.busy("service:web"):
            await asyncio.sleep(0)
        assert state(ex) is S.STARTED and "stop b" not in log
    asyncio.run(body())


@pytest.mark.parametrize("flag,after,partial", [
    ("1", ["status b", "stop b", "start b"], False),     # independent: restarted in place
    ("2", ["status b", "stop b"], True),                 # non-critical: left stopped
])
def test_independent_subtrees_recover_in_place(flag, after, partial) -> None:
    conf = CONF.replace('<script name="b" file="/b">',
                        f'<script name="b" file="/b" __independent_subtree="{flag}">')

    async def body():
        log: list[str] = []
        rcs = {("status", "b"): AgentRc.FAILED}
        now = [100.0]

        def build(rtype, attrs, where, env):
            return Fake(rtype, attrs.get("name") or attrs.get("address"), log, rcs)
        ex = Executor("n1", lambda: None, build=build, clock=lambda: now[0], wall=lambda: 5.0)
        ex.load(parse(conf.encode()).resource_tree)
        await run(ex, CommandKind.START)
        log.clear()
        now[0] += 1.0
        ex.check_due()
        for _ in range(20):
            await asyncio.sleep(0)
        while ex.busy("service:web"):
            await asyncio.sleep(0)
        ls = ex.local["service:web"]
        assert log == after
        assert (ls.state, ls.status_failed, ls.partial) == (S.STARTED, False, partial)
        if partial:                                     # its checks are not run any more
            now[0] += 5.0
            log.clear()
            ex.check_due()
            for _ in range(5):
                await asyncio.sleep(0)
            assert log == []
    asyncio.run(body())


def test_enforce_timeouts_is_accepted_and_changes_nothing() -> None:
    """Timeouts are always enforced (module docstring): the flag, set or not, builds the
    same agents with the same attributes and the service runs the same way."""
    def built(flag: str) -> tuple[list, list]:
        seen: list = []
        log: list[str] = []

        def build(rtype, attrs, where, env):
            seen.append((rtype, dict(attrs)))
            return Fake(rtype, attrs.get("name") or attrs.get("address"), log, {})
        conf = CONF.replace('<script name="a" file="/a"/>',
                            f'<script name="a" file="/a"{flag}/>')
        tree = parse(conf.encode()).resource_tree
        node = next(n for n in tree.roots[0].walk() if n.label == "script:a")
        assert node.enforce_timeouts is (flag == ' __enforce_timeouts="1"')
        ex = Executor("n1", lambda: None, build=build, clock=lambda: 1.0, wall=lambda: 5.0)
        ex.load(tree)

        async def body():
            await run(ex, CommandKind.START)
            assert state(ex) is S.STARTED
        asyncio.run(body())
        return seen, log
    plain = built("")
    assert built(' __enforce_timeouts="1"') == plain == built(' __enforce_timeouts="0"')
    assert all(not k.startswith("__") for _t, attrs in plain[0] for k in attrs)


def test_convalesce_starts_the_stopped_non_critical_subtree_again() -> None:
    conf = CONF.replace('<script name="b" file="/b">',
                        '<script name="b" file="/b" __independent_subtree="2">')

    async def body():
        log: list[str] = []
        rcs = {("status", "b"): AgentRc.FAILED}
        now = [100.0]

        def build(rtype, attrs, where, env):
            return Fake(rtype, attrs.get("name") or attrs.get("address"), log, rcs)
        ex = Executor("n1", lambda: None, build=build, clock=lambda: now[0], wall=lambda: 5.0)
        ex.load(parse(conf.encode()).resource_tree)
        await run(ex, CommandKind.START)
        now[0] += 1.0
        ex.check_due()
        for _ in range(20):
            await asyncio.sleep(0)
        while ex.busy("service:web"):
            await asyncio.sleep(0)
        assert ex.local["service:web"].partial
        # still failing to start: the service stays partial and says why
        rcs[("start", "b")] = AgentRc.FAILED
        log.clear()
        await run(ex, CommandKind.CONVALESCE, "1.2")
        assert log == ["start b"]
        ls = ex.local["service:web"]
        assert (ls.state, ls.partial, ls.done) == (S.STARTED, True, "1.2")
        assert "convalesce" in ls.why
        # the resource is fixed: convalesce starts it, and its checks run again
        del rcs[("start", "b")], rcs[("status", "b")]
        log.clear()
        await run(ex, CommandKind.CONVALESCE, "1.3")
        assert log == ["start b"] and not ex.local["service:web"].partial
        now[0] += 5.0
        log.clear()
        ex.check_due()
        for _ in range(20):
            await asyncio.sleep(0)
        assert "status b" in log
        # nothing left to convalesce: a no-op
        log.clear()
        await run(ex, CommandKind.CONVALESCE, "1.4")
        assert log == [] and ex.local["service:web"].state is S.STARTED
    asyncio.run(body())


def test_a_reload_keeps_the_status_checks_of_a_running_service() -> None:
    """A reload builds new agents, and a schedule read from an agent's meta-data at start
    went with the old ones: the running service's resources must get theirs again (they
    were never checked until the next start)."""
    async def body():
        ex, log, _, _ = make()
        await run(ex, CommandKind.START)
        ex.load(parse(CONF.encode()).resource_tree)           # the same config, reloaded
        agents = ex.services["service:web"]
        every = {node.index for node in agents.root.walk()}
        assert set(agents.schedules) != every                 # the meta-data one is gone
        log.clear()
        ex.check_due()
        for _ in range(5):
            await asyncio.sleep(0)
        assert set(agents.schedules) == every and log == ["meta-data web"]
        assert state(ex) is S.STARTED
    asyncio.run(body())
