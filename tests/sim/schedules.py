"""Random fault schedules for the simulator, all drawn from one seed.

A schedule is a setup (cluster size, votes, network quality, per-node clocks) and a plan:
a list of ``Fault``s, each drawn in full (time, kind, node, the kind's own parameters)
before anything runs. Executing a subset of the plan with the same seed is what the
shrinker does (``shrink.py``): everything else (the network's randomness, the setup) keeps
the seed. ``RHC_SIM_SEED=n`` replays a schedule; ``RHC_SIM_KEEP=i,j,...`` with it replays
only those faults of its plan (the shrunk trace a failure prints).
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from clusterd.errors import ClusterError
from harness import NodeClock, SimNet, Violation, sim_config

# fault kinds drawn in plans (each equally likely; "edit" replaces one with ``edits``)
KINDS = ("crash", "restart", "partition", "one_way", "pause", "propose", "heal", "stop",
         "invalid", "bounce", "freeze", "wall_jump", "rx_restart", "state_loss")
# what a setup can add: per-node clock offsets, rate drift, a two-node cluster, a lossy net
SETUP_KINDS = ("clock_offset", "clock_drift", "two_node", "lossy_net", "fresh")
# the volume run's mix: (share, faults, horizon); short schedules are most of them
MIX = ((0.8, 4, 6.0), (0.2, 8, 20.0))
# The share of freezes whose clock stops (a KVM guest's, see SimNet.freeze) rather than
# jumps. A resumed node learns the time it lost from its peers' heartbeat send times
# (PeerTable._check_clock); what it cannot learn while it reads nothing sent after its
# resume is the one limit check_safety allows for, bounded (docs/architecture.md, "Clocks").
CLOCK_STOPS = float(os.environ.get("RHC_SIM_CLOCK_STOPS", "0.5"))

Invariant = tuple[str, Callable[[SimNet], str | None]]


def seeds(default: range | int) -> list[int]:
    """The seeds to run: RHC_SIM_SEED replays one; else ``default``: a range, or a count
    of NEW seeds (consecutive from a random base, printed on failure)."""
    env = os.environ.get("RHC_SIM_SEED")
    if env:
        return [int(env)]
    if isinstance(default, int):
        return new_seeds(default)
    return list(default)


def new_seeds(count: int) -> list[int]:
    base = random.SystemRandom().randrange(1 << 40) ^ time.time_ns() % (1 << 20)
    return list(range(base, base + count))


def kept() -> list[int] | None:
    """RHC_SIM_KEEP: the indices of the plan's faults to run (a shrunk replay)."""
    env = os.environ.get("RHC_SIM_KEEP")
    return None if env is None else [int(x) for x in env.split(",") if x.strip()]


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    node: int
    arg: tuple = ()

    def __str__(self) -> str:
        args = ", ".join(f"{a:.2f}" if isinstance(a, float) else str(a) for a in self.arg)
        return f"{self.at:.3f} {self.kind} node {self.node}" + (f" ({args})" if args else "")


@dataclass(frozen=True)
class Schedule:
    seed: int
    n: int
    net: dict
    plan: tuple[Fault, ...]
    horizon: float
    setup_kinds: frozenset[str]


def draw(seed: int, *, faults: int | None = None, horizon: float | None = None,
         edits: float = 0.0, clock_stops: float | None = None) -> Schedule:
    """The whole schedule of ``seed`` (no simulation yet). ``faults``/``horizon`` None:
    drawn from ``MIX`` (the volume run). ``clock_stops``: the share of freezes whose clock
    stops (default ``CLOCK_STOPS``)."""
    stops = CLOCK_STOPS if clock_stops is None else clock_stops
    rng = random.Random(seed)
    if faults is None or horizon is None:
        roll, acc = rng.random(), 0.0
        for share, mix_faults, mix_horizon in MIX:
            acc += share
            if roll < acc:
                break
        faults, horizon = mix_faults, mix_horizon
    n = rng.choice([2, 3, 3, 4, 5, 5])
    votes = {rng.randint(1, n): 2} if n > 2 and rng.random() < 0.25 else None
    net = {"loss": rng.choice([0.0, 0.0, 0.05, 0.2]), "dup": rng.choice([0.0, 0.05]),
           "delay": rng.choice([(0.0005, 0.005), (0.001, 0.05), (0.001, 0.2)]),
           "two_node": n == 2, "votes": votes, "fresh": rng.random() < 0.3}
    setup = {k for k, on in (("two_node", n == 2), ("lossy_net", net["loss"] > 0),
                             ("fresh", net["fresh"])) if on}
    net["clocks"] = _clocks(rng, n, setup)
    nodes = list(range(1, n + 1))
    plan = []
    for t in sorted(rng.uniform(0.5, horizon) for _ in range(faults)):
        kind = rng.choice(KINDS)
        if rng.random() < edits:
            kind = "edit"
        a = rng.choice(nodes)
        plan.append(Fault(round(t, 6), kind, a, _args(rng, kind, a, nodes, stops)))
    return Schedule(seed, n, net, tuple(plan), horizon, frozenset(setup))


def _clocks(rng: random.Random, n: int, setup: set[str]) -> dict[int, NodeClock]:
    """Per-node clocks: monotonic clocks start at each machine's boot (an offset of up to
    a day), run at 1 +- up to 100 or 500 ppm (a crystal's error; 500 ppm is the most NTP
    slews a clock by), wall clocks NTP-synced within 50 ms."""
    offsets = rng.random() < 0.7
    drift_ppm = rng.choice([0, 0, 100, 500])
    clocks = {}
    for i in range(1, n + 1):
        clocks[i] = NodeClock(offset=rng.uniform(0, 86400) if offsets else 0.0,
                              rate=1 + rng.uniform(-drift_ppm, drift_ppm) * 1e-6,
                              wall_offset=rng.uniform(-0.05, 0.05) if offsets else 0.0)
    if offsets:
        setup.add("clock_offset")
    if drift_ppm:
        setup.add("clock_drift")
    return clocks


def _args(rng: random.Random, kind: str, a: int, nodes: list[int], stops: float) -> tuple:
    """The kind's own parameters, drawn now (so a subset of the plan keeps them)."""
    if kind == "partition":
        k = rng.randint(1, max(1, len(nodes) - 1))
        return (tuple(sorted(rng.sample(nodes, k))),)
    if kind == "one_way":
        return (rng.choice([x for x in nodes if x != a]),)
    if kind == "pause":
        return (rng.uniform(0.2, 3.0),)
    if kind == "freeze":  # a suspended VM; its clock stops (kvmclock) or jumps, see harness
        return (rng.uniform(0.2, 5.0), rng.random() < stops)
    if kind == "wall_jump":
        return (rng.choice([-1, 1]) * rng.choice([0.5, 30.0, 3600.0]) * rng.random(),)
    if kind == "rx_restart":
        return (rng.uniform(0.0, 1.0),)
    if kind == "state_loss":
        reboot = rng.random() < 0.5
        return (reboot, rng.uniform(0, 120) if reboot and rng.random() < 0.5 else 0.0)
    if kind == "edit":
        return (rng.random(), rng.randint(1, 5), rng.random() < 0.5, rng.random() < 0.7)
    return ()


def random_schedule(seed: int, *, faults: int | None = 6, horizon: float | None = 20.0,
                    test: str = "random", edits: float = 0.0, shrink: bool = True,
                    invariants: Iterable[Invariant] = (),
                    keep: list[int] | None = None, clock_stops: float | None = None
                    ) -> SimNet:
    """Start 2-5 nodes, inject the plan's faults for ``horizon`` virtual seconds, heal, and
    require convergence. Safety invariants are checked after every step. A failure is
    reported with its seed, the invariant's name, the command that replays it and the
    shortest subset of the plan that still breaks that invariant (``shrink``). ``edits``:
    the share of faults that are configs edited on a stopped node (the simulator's
    invariants: no such file is ever installed or accepted anywhere, no accepted config
    is lost). ``invariants``: extra (name, check) pairs; ``keep``: run only those faults
    of the plan (default RHC_SIM_KEEP, else all)."""
    sched = draw(seed, faults=faults, horizon=horizon, edits=edits, clock_stops=clock_stops)
    if keep is None and os.environ.get("RHC_SIM_SEED") == str(seed):
        keep = kept()
    invariants = list(invariants)
    try:
        return execute(sched, keep, invariants)
    except Exception as exc:  # noqa: BLE001 - a core exception is a failure too
        raise AssertionError(failure_message(sched, keep, exc, test, shrink, invariants)
                             ) from None


def execute(sched: Schedule, keep: list[int] | None = None,
            invariants: Iterable[Invariant] = ()) -> SimNet:
    """Run the schedule's setup and the plan's faults (only ``keep``'s indices if given);
    raises on a broken invariant (the SimNet is on the exception as ``exc.sim``)."""
    sim = SimNet(sched.n, sched.seed, **sched.net, start=False)
    sim.invariants.extend(invariants)
    sim.kinds = set(sched.setup_kinds)
    try:
        for i in sim.nodes:
            sim.start(i)
        version = [1]
        plan = sched.plan if keep is None else [sched.plan[k] for k in sorted(set(keep))]
        for fault in plan:
            sim.run_until(fault.at)
            if _apply(sim, fault, version):
                sim.applied.append((fault.at, fault.kind, fault.node))
                sim.kinds.add(fault.kind)
                if fault.kind == "freeze" and fault.arg[1]:
                    sim.kinds.add("clock_stop")
        sim.run_until(sched.horizon)
        sim.heal()
        for i in sim.nodes:
            if not sim.nodes[i].alive:
                sim.start(i)
        sim.settle(limit=30.0)
    except Exception as exc:
        exc.sim = sim  # type: ignore[attr-defined]
        raise
    return sim


def _apply(sim: SimNet, f: Fault, version: list[int]) -> bool:
    """Apply one fault if it applies in the current state; True if it did."""
    a, node = f.node, sim.nodes[f.node]
    running = node.alive and node.core is not None
    kind = f.kind
    if kind == "edit":
        return _edit(sim, a, version[0], f)
    if kind == "crash" and node.alive:
        sim.crash(a)
    elif kind == "stop" and node.alive:
        sim.stop(a)
    elif kind == "restart" and not node.alive:
        sim.start(a)
    elif kind == "bounce" and node.alive:  # crash and restart at once
        sim.crash(a)
        sim.start(a)
    elif kind == "partition":
        left = set(f.arg[0])
        sim.partition(left, set(sim.nodes) - left)
    elif kind == "one_way":
        sim.one_way(a, f.arg[0])
    elif kind == "pause" and running and not node.paused:
        sim.pause(a, f.arg[0])
    elif kind == "freeze" and running and not node.paused:
        sim.freeze(a, f.arg[0], clock_stops=f.arg[1])
    elif kind == "wall_jump":
        sim.wall_jump(a, f.arg[0])
    elif kind == "rx_restart" and running and not node.paused:
        # the daemon reopens its socket: a stopped or suspended process reopens nothing
        sim.restart_receiver(a, f.arg[0])
    elif kind == "state_loss":
        if _loss_leaves_a_same_version_conflict(sim, a):
            return False
        sim.lose_state_dir(a, reboot=f.arg[0], wall_behind=f.arg[1])
    elif kind == "heal":
        sim.heal()
    elif kind in ("propose", "invalid"):
        body = "INVALID" if kind == "invalid" else f"seed {sim.seed} t {f.at:.3f}"
        try:
            if sim.propose(a, sim_config(version[0] + 1, body)):
                version[0] += 1
                return True
        except ClusterError:
            pass  # refused (invalid, not quorate, version): nothing may change
        return kind == "invalid" and running
    else:
        return False
    return True


def _edit(sim: SimNet, a: int, version: int, f: Fault) -> bool:
    """Stop node ``a`` if it runs, and rewrite its file: a higher version (the dangerous
    case), the same version with other content, or an invalid file."""
    roll, delta, stop, restart = f.arg
    if sim.nodes[a].copy is None and sim.cfg.two_node:
        # alone, a two_node node is quorate and accepts its own file (a first start): two
        # such files would be a conflict between two accepted configs (reported, never
        # merged; fencing settles a two-node split), not what this checks
        return False
    if sim.nodes[a].alive:
        (sim.stop if stop else sim.crash)(a)
    body = f"edited offline on node {a} at {f.at:.3f}"
    kinds = ["higher", "higher", "same", "invalid"]
    if sim.nodes[a].copy is None:
        # no accepted copy to fall back on: an invalid file and clusterd refuses to start
        # (the unit tests cover it); the same version with other content is a conflict
        # with the cluster's config that is reported and never merged, so that node stays
        # out until an operator raises a version (seed 17185426869): neither converges
        kinds.remove("invalid")
        kinds.remove("same")
        # ... and "higher" must be higher than every file in the cluster: with nothing
        # accepted yet, an earlier offline edit's version is what the nodes run (the newest
        # unaccepted file wins in a new cluster), so version + delta could equal it, with
        # other content: that excluded "same" case again (seed 1032922267955)
        version = max(version, _highest_file(sim))
    kind = kinds[int(roll * len(kinds))]
    new = version + delta if kind != "same" else version
    sim.edit_offline(a, sim_config(new, "INVALID" if kind == "invalid" else body))
    if restart:
        sim.start(a)
    return True


def _loss_leaves_a_same_version_conflict(sim: SimNet, a: int) -> bool:
    """Whether node ``a`` losing its state dir leaves no accepted copy on any node while
    two nodes' files are one version with different content (an offline edit of the same
    version, kept beside an accepted copy until now): the conflict that ``_edit`` keeps
    "same" edits without a copy from, reached by losing every copy instead. clusterd
    reports it on both sides and merges nothing; an operator raises a version (seed
    844547472733: two_node, both nodes lost their state dirs after node 1's edit)."""
    if any(o.copy is not None for i, o in sim.nodes.items() if i != a):
        return False
    seen: dict[int, bytes] = {}
    for o in sim.nodes.values():
        if o.disk is None:
            continue
        v = _file_version(o.disk)
        if seen.setdefault(v, o.disk) != o.disk:
            return True
    return False


def _file_version(data: bytes) -> int:
    m = re.search(rb'config_version="(\d+)"', data)
    return int(m.group(1)) if m else 0


def _highest_file(sim: SimNet) -> int:
    """The highest config_version on any node's disk or running on a live node."""
    files = [n.disk for n in sim.nodes.values() if n.disk is not None]
    files += [n.core.configsync.running.data for n in sim.nodes.values()
              if n.alive and n.core is not None and n.core.configsync.running.data]
    return max(map(_file_version, files), default=0)


def failure_message(sched: Schedule, keep: list[int] | None, exc: BaseException, test: str,
                    shrink: bool, invariants: list[Invariant]) -> str:
    """Seed, invariant, replay command, and the shrunk plan with its run's trace."""
    from shrink import shrink_schedule

    name = failure_name(exc)
    env = f"RHC_SIM_CLOCK_STOPS={CLOCK_STOPS} " if CLOCK_STOPS else ""
    cmd = f"{env}RHC_SIM_SEED={sched.seed} .venv/bin/pytest tests/sim -k {test}"
    lines = [f"SEED={sched.seed} invariant={name}: {str(exc)[:600]}", f"replay: {cmd}"]
    if shrink:
        start = list(range(len(sched.plan))) if keep is None else sorted(set(keep))
        result = shrink_schedule(sched, name, start, invariants)
        lines.append(f"shrunk from {len(start)} to {len(result.keep)} faults in "
                     f"{result.runs} runs; replay the shrunk schedule: "
                     f"RHC_SIM_KEEP={','.join(map(str, result.keep))} {cmd}")
        lines += ["faults kept:"] + [f"  [{k}] {sched.plan[k]}" for k in result.keep]
        lines += ["trace of the shrunk run (up to the violation):"]
        lines += [f"  {line}" for line in result.trace[-60:]]
    else:
        sim = getattr(exc, "sim", None)
        lines += ["last steps:"] + [f"  {line}" for line in (sim.trace[-25:] if sim else [])]
    return "\n".join(lines)


def failure_name(exc: BaseException) -> str:
    """The broken invariant's name, or ``exception:<type>`` for anything else raised."""
    return exc.name if isinstance(exc, Violation) else f"exception:{type(exc).__name__}"


def violation_of(sched: Schedule, keep: list[int] | None,
                 invariants: Iterable[Invariant] = ()) -> tuple[str | None, list[str]]:
    """Run the schedule; (the broken invariant's name or None, the run's trace)."""
    try:
        sim = execute(sched, keep, invariants)
    except Exception as exc:  # noqa: BLE001 - a core exception is a failure too
        sim = getattr(exc, "sim", None)
        return failure_name(exc), sim.trace if sim else []
    return None, sim.trace
