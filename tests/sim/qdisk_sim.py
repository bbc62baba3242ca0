"""The quorum disk in the simulator: each node's :class:`clusterd.qdisk.election.Election`
on one simulated shared disk, feeding its grant to the node's real core
(``ClusterCore.set_qdisk``), as ``clusterd.qdisk.runner`` does on a real device.

A part of :class:`harness.SimNet` (``sim.parts``): an election starts with its node
(new incarnation) and its block stays on the disk when the node crashes; each node runs a
cycle every ``interval`` of its own clock (a little later at random, never sooner): write
its block (unless its path to the disk is cut), read every block, hand the grant to the
core; after a view change it regrants and reads at once (``Election.regrant``). Paused
and frozen nodes run no cycle. Reads and writes are instant here: the runner
counts slower ones as failed (``runner.py``). Faults: ``cut(i)`` / ``restore(i)`` (the
node's writes fail, its reads still work, as with a lost SAN path in the lab) and
``score(i, n)`` (its heuristics' score).
"""

from __future__ import annotations

from typing import Any

from clusterd.conf.qdisk import QdiskConf
from clusterd.events import ViewInstalled
from clusterd.qdisk.block import Block
from clusterd.qdisk.election import Election


def sim_qdisk_conf(*, votes: int, interval: int = 1, tko: int = 4, heuristics: int = 1,
                   master_wins: bool = False) -> QdiskConf:
    from clusterd.conf.qdisk import Heuristic
    hs = tuple(Heuristic("/usr/local/sbin/check", 1, interval, 1) for _ in range(heuristics))
    return QdiskConf(device="/dev/sim-qdisk", label="", interval=interval, tko=tko,
                     tko_up=max(tko // 3, 1), upgrade_wait=2, master_wait=max(tko // 2, 2),
                     votes=votes, min_score=(len(hs) + 1) // 2, master_wins=master_wins,
                     heuristics=hs)


class SimQdisk:
    def __init__(self, sim: Any, conf: QdiskConf) -> None:
        self.sim = sim
        self.conf = conf
        self.disk: dict[int, Block] = {}
        self.elections: dict[int, Election] = {}
        self.cut_off: set[int] = set()
        self.scores: dict[int, int] = {}
        self.masters: list[tuple[float, int]] = []   # (real time, node) on each change
        sim.parts.append(self)
        for i, node in sim.nodes.items():
            if node.alive:
                self.on_start(i)

    # ------------------------------------------------------------------ faults
    def cut(self, i: int) -> None:
        self.cut_off.add(i)
        self.sim.trace.append(f"{self.sim.now:.3f} qdisk path of {i} cut")

    def restore(self, i: int) -> None:
        self.cut_off.discard(i)
        self.sim.trace.append(f"{self.sim.now:.3f} qdisk path of {i} restored")

    def score(self, i: int, value: int) -> None:
        self.scores[i] = value
        self.sim.trace.append(f"{self.sim.now:.3f} qdisk score of {i} = {value}")

    # ------------------------------------------------------------------ the part's hooks
    def on_start(self, i: int) -> None:
        node = self.sim.nodes[i]
        self.elections[i] = Election(self.conf, i, node.incarnation, self.sim.cfg.nodeids,
                                     self.conf.votes)
        first = self.sim.rng.uniform(0, self.conf.interval)
        self.sim.at(self.sim.now + first, lambda life=node.life: self._cycle(i, life))

    def on_crash(self, i: int) -> None:
        self.elections.pop(i, None)

    def on_tick(self, i: int) -> None:
        pass

    def on_events(self, i: int, events: Any) -> None:
        """A new view: regrant and read at once, between cycles, as the runner does."""
        if any(isinstance(e, ViewInstalled) for e in events):
            node = self.sim.nodes[i]
            delay = self.sim.rng.uniform(0.001, 0.02)
            self.sim.at(self.sim.now + delay, lambda life=node.life: self._between(i, life))

    def _between(self, i: int, life: int, tries: int = 0) -> None:
        node = self.sim.nodes[i]
        e = self.elections.get(i)
        if (not node.alive or node.core is None or node.life != life or e is None
                or node.paused):
            return
        now = self.sim.node_now(i)
        block = e.regrant(now, node.core.membership.view)
        if block is not None:
            ok = i not in self.cut_off
            if ok:
                self.disk[i] = block
            e.wrote(block, now, ok)
        e.observe(now, {n: self.disk.get(n) for n in e.peers}, counted=False)
        e.take_notes()
        grant = e.grant(now)
        self.sim._send(i, node.core.set_qdisk(grant, now))
        # as the runner: read again until the master's grant for the new view is there
        view, master = node.core.membership.view, e.master(now)
        if (view is not None and master is not None and master in view.nodeids
                and (grant is None or grant.vid != view.vid)
                and (tries + 1) * 0.05 < self.conf.interval / 2):
            self.sim.at(self.sim.now + self.sim._node_delay(i, 0.05),
                        lambda: self._between(i, life, tries + 1))

    # ------------------------------------------------------------------ the cycle
    def _cycle(self, i: int, life: int) -> None:
        node = self.sim.nodes[i]
        e = self.elections.get(i)
        if not node.alive or node.core is None or node.life != life or e is None:
            return
        interval = self.conf.interval * self.sim.rng.uniform(1.0, 1.05)
        self.sim.at(self.sim.now + self.sim._node_delay(i, interval),
                    lambda: self._cycle(i, life))
        if node.paused:
            return
        now = self.sim.node_now(i)
        block = e.next_block(now, node.core.membership.view,
                             self.scores.get(i, self.conf.max_score))
        ok = i not in self.cut_off
        if ok:
            self.disk[i] = block
        e.wrote(block, now, ok)
        e.observe(now, {n: self.disk.get(n) for n in e.peers})
        e.take_notes()
        master = e.master(now)
        if master == i and (not self.masters or self.masters[-1][1] != i):
            self.masters.append((self.sim.now, i))
        self.sim._send(i, node.core.set_qdisk(e.grant(now), now))

    def master_of(self, i: int) -> int | None:
        e = self.elections.get(i)
        return e.master(self.sim.node_now(i)) if e is not None else None
