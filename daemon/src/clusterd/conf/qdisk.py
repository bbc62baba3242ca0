"""``<quorumd>``: the quorum disk's settings, as qdisk(5) defines them, and their rules.

:class:`QdiskConf` is what ``clusterd.qdisk`` runs with, read from a validated tree by
:func:`qdisk_conf` (None without ``<quorumd>``); :func:`qdisk_problems` holds the rules
cluster.rng cannot express (pure, part of every validation). Defaults follow qdisk(5):

* ``interval`` 1 s per read/write cycle, ``tko`` 10 missed cycles before a node is dead
  on the disk, ``tko_up`` ``tko // 3`` good cycles before it is alive, ``upgrade_wait`` 2
  cycles of a sufficient score before a bid, ``master_wait`` ``tko // 2`` (at least 2)
  cycles of bidding before a node declares itself master;
* ``votes``: the number of nodes minus one (at least one);
* ``min_score``: ``floor((n + 1) / 2)`` of the heuristics' total score ``n``;
* ``master_wins``: on by default in a two-node cluster with no heuristics and no votes set;
  a ``master_wins="1"`` with heuristics or more than two nodes is switched off (qdisk(5)
  does the same), with a warning.

Refused (qdisk(5)'s limits, or a disk that could never give its votes): no ``device`` or
``label``; more than 16 nodes or a node id above 16; a node with more than one vote;
``two_node="1"`` beside a quorum disk (qdisk(5)'s tie-breaker recipe is two_node="0",
expected_votes="3"); ``master_wait`` below 2 or not above ``tko_up``; a ``min_score`` above
the heuristics' total; more than 10 heuristics. A heuristic's ``program`` is a program
parameter (``clusterd.trust``): one root-owned executable, run without a shell.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from clusterd.conf.rng import RawProblem

MAX_NODES = 16          # qdisk(5) 1.4: node ids 1..16, one status block each
MAX_HEURISTICS = 10     # qdisk(5) 2.2


@dataclass(frozen=True)
class Heuristic:
    program: str
    score: int = 1
    interval: int = 2
    tko: int = 1


@dataclass(frozen=True)
class QdiskConf:
    device: str
    label: str
    interval: int
    tko: int
    tko_up: int
    upgrade_wait: int
    master_wait: int
    votes: int
    min_score: int
    master_wins: bool
    heuristics: tuple[Heuristic, ...]

    @property
    def max_score(self) -> int:
        return sum(h.score for h in self.heuristics)

    @property
    def name(self) -> str:
        """What clustat shows for the disk: the device, else ``LABEL=...``."""
        return self.device or f"LABEL={self.label}"



def _int(el: etree._Element, key: str, default: int) -> int:
    text = (el.get(key) or "").strip()
    return int(text) if text.lstrip("-").isdigit() else default


def _heuristics(el: etree._Element, interval: int) -> tuple[Heuristic, ...]:
    return tuple(Heuristic(h.get("program", ""), max(_int(h, "score", 1), 0),
                           max(_int(h, "interval", 2 * interval), 1), max(_int(h, "tko", 1), 1))
                 for h in el.iterfind("heuristic"))


def qdisk_conf(root: etree._Element) -> QdiskConf | None:
    """The quorum disk's settings from a validated tree; None without ``<quorumd>``."""
    el = root.find("quorumd")
    if el is None:
        return None
    nodes = root.findall("clusternodes/clusternode")
    interval = max(_int(el, "interval", 1), 1)
    tko = max(_int(el, "tko", 10), 2)
    tko_up = max(_int(el, "tko_up", tko // 3), 1)
    heuristics = _heuristics(el, interval)
    total = sum(h.score for h in heuristics)
    min_score = _int(el, "min_score", 0) or (total + 1) // 2
    votes_set = el.get("votes") is not None
    votes = _int(el, "votes", max(len(nodes) - 1, 1))
    wins = el.get("master_wins")
    if wins is None:
        master_wins = len(nodes) == 2 and not heuristics and not votes_set
    else:
        master_wins = wins.strip() == "1" and len(nodes) <= 2 and not heuristics
    return QdiskConf(
        device=el.get("device", ""), label=el.get("label", ""), interval=interval, tko=tko,
        tko_up=tko_up, upgrade_wait=max(_int(el, "upgrade_wait", 2), 1),
        master_wait=max(_int(el, "master_wait", max(tko // 2, 2)), 2), votes=votes,
        min_score=min_score, master_wins=master_wins, heuristics=heuristics)


def qdisk_votes(root: etree._Element) -> int:
    """The votes the quorum disk adds to the expected total (0 without one)."""
    conf = qdisk_conf(root)
    return conf.votes if conf is not None else 0


def qdisk_problems(root: etree._Element) -> list[RawProblem]:
    """The rules of ``<quorumd>`` cluster.rng cannot express (pure)."""
    el = root.find("quorumd")
    if el is None:
        return []
    out: list[RawProblem] = []
    if not (el.get("device") or "").strip() and not (el.get("label") or "").strip():
        out.append(RawProblem(el, "a quorum disk needs device=\"/dev/...\" (the shared block "
                                  "device, the same path on every node) or label=\"...\" (as "
                                  "written by mkqdisk -l): set one"))
    device = el.get("device")
    if device is not None and device.strip() and not device.startswith("/dev/"):
        out.append(RawProblem(el, f"device {device!r} is not a block device path under /dev: "
                                  "name the shared LUN, e.g. /dev/disk/by-id/..."))
    nodes = root.findall("clusternodes/clusternode")
    if len(nodes) > MAX_NODES:
        out.append(RawProblem(el, f"a quorum disk serves at most {MAX_NODES} nodes (qdisk(5)), "
                                  f"this cluster has {len(nodes)}: remove <quorumd>"))
    for node in nodes:
        nodeid = _int(node, "nodeid", 0)
        if nodeid > MAX_NODES:
            out.append(RawProblem(node, f"nodeid {nodeid} is above {MAX_NODES}: with a quorum "
                                        f"disk node ids must be 1..{MAX_NODES} (one status "
                                        "block each); renumber the node"))
        if _int(node, "votes", 1) != 1:
            out.append(RawProblem(node, "with a quorum disk every node must have votes=\"1\" "
                                        "(qdisk(5) 1.4): give the disk the extra votes instead"))
    cman = root.find("cman")
    if cman is not None and cman.get("two_node") == "1":
        out.append(RawProblem(cman, "two_node=\"1\" beside a quorum disk: the disk breaks the "
                                    "tie instead; set two_node=\"0\" and expected_votes=\"3\" "
                                    "and leave <quorumd votes> unset (qdisk(5) 1.4)"))
    conf = qdisk_conf(root)
    assert conf is not None
    if el.get("master_wait") is not None and conf.master_wait <= conf.tko_up:
        out.append(RawProblem(el, f"master_wait ({conf.master_wait}) must be greater than "
                                  f"tko_up ({conf.tko_up}): raise master_wait"))
    heuristics = el.findall("heuristic")
    if len(heuristics) > MAX_HEURISTICS:
        out.append(RawProblem(el, f"{len(heuristics)} heuristics: qdisk(5) allows at most "
                                  f"{MAX_HEURISTICS}; combine some into one program"))
    for h in heuristics:
        if not (h.get("program") or "").strip():
            out.append(RawProblem(h, "a heuristic needs program=\"/path/to/check\": one "
                                     "root-owned executable that exits 0 when this node is fit"))
    total = conf.max_score
    if heuristics and conf.min_score > total:
        out.append(RawProblem(el, f"min_score {conf.min_score} exceeds the heuristics' total "
                                  f"score {total}: the quorum disk could never count; lower "
                                  "min_score or raise the scores"))
    if not heuristics and _int(el, "min_score", 0) > 0:
        out.append(RawProblem(el, f"min_score {conf.min_score} without any <heuristic>: the "
                                  "score is always 0, so the disk could never count; add "
                                  "heuristics or remove min_score"))
    return out


def qdisk_warnings(root: etree._Element) -> list[tuple[etree._Element, str]]:
    """What is accepted but adjusted, as qdisk(5) adjusts it."""
    el = root.find("quorumd")
    if el is None or (el.get("master_wins") or "").strip() != "1":
        return []
    conf = qdisk_conf(root)
    if conf is None or conf.master_wins:
        return []
    why = "heuristics are defined" if el.find("heuristic") is not None else \
        "the cluster has more than two nodes"
    text = (f"master_wins=\"1\" is switched off because {why} (qdisk(5)): every node the "
            "master sees on the disk and in its view counts the disk's votes")
    return [(el, text)]
