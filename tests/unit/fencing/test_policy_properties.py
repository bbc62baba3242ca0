"""Hypothesis over random event sequences: the policy's safety and liveness rules."""

from __future__ import annotations

from clusterd.fencing.policy import next_wakeup, recovery_allowed, step
from clusterd.fencing.state import (
    NEVER,
    FenceAcked,
    FencePhase,
    FenceRequested,
    FenceResult,
    FencingState,
    Origin,
    PolicyConfig,
    RunFence,
    ServicesRunning,
    Tick,
    ViewChanged,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NODES = ("n1", "n2", "n3", "n4")
CONFIG = PolicyConfig(nodeids={n: i for i, n in enumerate(NODES, 1)}, post_fail_delay=2.0,
                      post_join_delay=5.0)


@st.composite
def views(draw):
    members = draw(st.sets(st.sampled_from(NODES[1:]), max_size=3)) | {"n1"}
    incs = {m: f"{m}-{draw(st.integers(0, 2))}" for m in sorted(members)}
    quorate = draw(st.booleans()) if len(members) < 3 else True
    left = draw(st.sets(st.sampled_from(NODES), max_size=2))
    coord = draw(st.one_of(st.just("n1"), st.sampled_from(sorted(members))))  # mostly us
    restarting = draw(st.sets(st.sampled_from(NODES), max_size=1)) - left  # keep services
    return ViewChanged(members=incs, quorate=quorate, coordinator=coord,
                       left_clean=frozenset(left), restarting=frozenset(restarting))


def events(op_ids):
    return st.one_of(
        views(),
        st.builds(FenceRequested, st.sampled_from(NODES), st.sampled_from(["admin", "n2"])),
        st.builds(FenceAcked, st.sampled_from(NODES)),
        st.builds(ServicesRunning, st.dictionaries(st.sampled_from(NODES), st.integers(0, 3))),
        st.just(Tick()),
        st.tuples(st.sampled_from(NODES), st.integers(1, 4), st.booleans()).map(
            lambda t: FenceResult(t[0], f"{t[0]}#{t[1]}", ok=t[2], error="" if t[2] else "boom")),
        # the outcome of whatever operation is current for the node (resolved in the test)
        st.tuples(st.just("current"), st.sampled_from(NODES), st.booleans()),
    )


def resolve(event, state):
    if isinstance(event, tuple):
        _, node, ok = event
        op = state.ops.get(node)
        op_id = op.op_id if op is not None else f"{node}#1"
        return FenceResult(node, op_id, ok=ok, error="" if ok else "boom")
    return event


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(events(None), st.floats(0.0, 40.0)), min_size=1, max_size=40))
def test_random_event_sequences_hold_the_fencing_invariants(sequence):
    state = FencingState.initial("n1", CONFIG)
    now = 0.0
    # oracle kept by the test itself: when each node was last lost uncleanly, and when it
    # was last settled (a fence success or an ack was accepted, or it was seen alive)
    lost_at: dict[str, int] = {}
    settled_at: dict[str, int] = {}
    # a fence success or ack while the node was still listed (its loss not yet seen) settles
    # that incarnation: powered off is powered off, whenever the view catches up
    lost_inc: dict[str, str] = {}
    fenced_inc: dict[str, str] = {}
    for i, (event, dt) in enumerate(sequence):
        now += dt
        before = state
        event = resolve(event, state)
        result = step(state, event, now)
        state = result.state
        assert result.reason
        if isinstance(event, ViewChanged):
            for node in before.members:
                if node not in event.members and node not in event.left_clean:
                    lost_at[node] = i
                    lost_inc[node] = before.members[node]
            for node in event.members:
                settled_at[node] = i
            for node in event.left_clean - set(event.members):
                # a clean leave that arrived after the view change that dropped the node:
                # that incarnation stopped its services before it left
                settled_at[node] = i
        for node, op in state.ops.items():
            prior = before.ops.get(node)
            if op.phase in (FencePhase.DONE, FencePhase.ACKED) and (prior is None or prior.phase != op.phase):
                assert isinstance(event, (FenceResult, FenceAcked)) or \
                    type(event).__name__ == "IntentsLearned"
                if isinstance(event, FenceResult):
                    assert event.ok and event.node == node
                settled_at[node] = i
                if node in before.members:
                    fenced_inc[node] = before.members[node]

        runs = [a for a in result.actions if isinstance(a, RunFence)]
        # only the coordinator of a quorate view runs fences, and never its own: a fence of
        # the coordinator is run by the next member by nodeid
        for r in runs:
            assert state.quorate and state.executor_of(r.node) == "n1"
            assert r.node != "n1" or set(state.members) == {"n1"}
        # merge: at most one run per node per step, never while one is already running
        assert len({r.node for r in runs}) == len(runs)
        for r in runs:
            prior = before.ops.get(r.node)
            assert prior is None or prior.phase is not FencePhase.RUNNING or \
                prior.executor != "n1"
            # a node restarting with its services held is fenced only by hand in its grace
            held = state.nodes.get(r.node)
            assert held is None or held.restart_until is None or \
                state.ops[r.node].origin is Origin.MANUAL
        for node in NODES:
            op = state.ops.get(node)
            # never recovery before success/ack while an intent is open, nor inquorate
            if recovery_allowed(state, node):
                assert state.quorate
                if node not in state.members and node in lost_at:
                    assert settled_at.get(node, -1) >= lost_at[node] or \
                        fenced_inc.get(node) == lost_inc[node], (
                        f"{node} recoverable without fence/ack since its loss")
                assert op is None or not op.phase.open
                info = state.nodes.get(node)
                if node not in state.members and info is not None and info.seen:
                    assert not info.lost
            # retries never stop: an open intent always has a way forward
            if op is not None and op.phase.open and state.executes(node):
                assert op.phase is FencePhase.RUNNING or op.not_before < NEVER or \
                    op.origin is Origin.STARTUP
                if op.phase is not FencePhase.RUNNING and op.not_before < NEVER:
                    wake = next_wakeup(state)
                    assert wake is not None and wake <= op.not_before


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60))
def test_failing_fence_is_retried_forever_with_capped_backoff(outcomes):
    state = FencingState.initial("n1", CONFIG)
    state = step(state, ViewChanged({"n1": "a", "n2": "a", "n3": "a", "n4": "a"}, True, "n1"),
                 0.0).state
    state = step(state, ViewChanged({"n1": "a", "n2": "a", "n3": "a"}, True, "n1"), 1.0).state
    now = next_wakeup(state)
    assert now == 1.0 + CONFIG.post_fail_delay
    for ok in outcomes:
        result = step(state, Tick(), now)
        state = result.state
        if state.ops["n4"].phase is FencePhase.DONE:
            break
        run = [a for a in result.actions if isinstance(a, RunFence)]
        assert run, f"no retry at {now} for {state.ops['n4']}"
        assert not recovery_allowed(state, "n4")
        state = step(state, FenceResult("n4", run[0].op_id, ok=ok, error="x"), now).state
        if not ok:
            wake = next_wakeup(state)
            assert wake is not None and wake - now <= CONFIG.backoff_cap
            now = wake
    assert recovery_allowed(state, "n4") == (state.ops["n4"].phase is FencePhase.DONE)
    assert len({op.op_id for op in state.ops.values()}) == len(state.ops)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.builds(FenceRequested, st.just("n4"), st.sampled_from(["admin", "n2", "n3", "svc"])),
    st.just(ViewChanged({"n1": "a", "n2": "a", "n3": "a"}, True, "n1")),
    st.just(Tick())), min_size=1, max_size=30), st.lists(st.floats(0, 3), min_size=30,
                                                         max_size=30))
def test_concurrent_requests_merge_into_one_operation_and_one_run(events_, gaps):
    state = FencingState.initial("n1", CONFIG)
    state = step(state, ViewChanged({"n1": "a", "n2": "a", "n3": "a", "n4": "a"}, True, "n1"),
                 0.0).state
    now, runs = 0.0, []
    for event, gap in zip(events_, gaps):
        now += gap
        result = step(state, event, now)
        state = result.state
        runs += [a for a in result.actions if isinstance(a, RunFence)]
    if "n4" in state.ops:
        assert {op.op_id for op in state.ops.values() if op.node == "n4"} == {"n4#1"}
        assert len(runs) <= 1                      # no result yet: never a second run
        assert all(r.op_id == "n4#1" and r.attempt == 1 for r in runs)
