"""Membership and quorum on the lab (issue 3, item 6), with the real daemon on the shared
3-node lab (the services test's deployment, SvcLab), nodes powered off through their BMCs
as an operator would:

  the three nodes form a quorate cluster;
  node3 powered off -> node1 and node2 report it Offline and stay quorate (web keeps
  running on node1);
  node2 powered off as well -> node1 reports the quorum lost ("Member Status: Inquorate")
  and stops web (a node without quorum runs nothing);
  both powered on and their daemons started -> they rejoin, every node reports three
  members Online and quorate, web runs again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from clusterlab import Lab
from test_services_lab import SvcLab, deployed

pytestmark = pytest.mark.lab


def status(s: SvcLab, via: str) -> dict | None:
    out = s.cli(via, "clustat", "--format", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def states(s: SvcLab, via: str) -> dict[str, str]:
    doc = status(s, via)
    return {n["name"]: n["state"] for n in doc["nodes"]} if doc else {}


def quorate(s: SvcLab, via: str) -> bool | None:
    doc = status(s, via)
    return doc["quorum"]["quorate"] if doc else None


def clustat_text(s: SvcLab, via: str) -> str:
    # plain clustat exits non-zero without quorum (as RHCS's did): keep the text anyway
    return s.cli(via, "clustat").stdout


@pytest.fixture(scope="module")
def msvc(lab: Lab) -> Iterator[SvcLab]:
    with deployed(lab, web_on_node1=True) as s:
        yield s


def test_power_off_one_then_two_loses_quorum_and_power_on_rejoins(msvc: SvcLab) -> None:
    s = msvc
    n1, n2, n3 = s.names
    everyone = {n1: "online", n2: "online", n3: "online"}
    for via in s.names:
        s.wait(f"{via} sees three members online", lambda v=via: states(s, v) == everyone)
        assert quorate(s, via) is True

    s.lab.power(n3, "off")
    for via in (n1, n2):
        s.wait(f"{via} reports {n3} offline",
               lambda v=via: states(s, v).get(n3) == "offline", timeout=30)
        assert quorate(s, via) is True
        text = clustat_text(s, via)
        assert "Member Status: Quorate" in text
        assert any(line.split()[:1] == [n3] and "Offline" in line
                   for line in text.splitlines()), text
    assert s.owner(n2) == n1 and s.answer() == n1

    s.lab.power(n2, "off")
    s.wait(f"{n1} reports the quorum lost", lambda: quorate(s, n1) is False, timeout=30)
    s.wait(f"{n1} clustat says Inquorate",
           lambda: "Member Status: Inquorate" in clustat_text(s, n1), timeout=10)
    s.wait("web stopped without quorum (nobody holds the address)",
           lambda: s.holders() == [], timeout=60)
    assert states(s, n1)[n2] == "offline"

    for name in (n2, n3):
        s.lab.power(name, "on")
        s.stop(name)        # a stale unit record from before the power-off, if any
        s.start(name)
    for via in s.names:
        s.wait(f"{via} sees three members online again",
               lambda v=via: states(s, v) == everyone, timeout=120)
        s.wait(f"{via} quorate again", lambda v=via: quorate(s, v) is True, timeout=30)
    s.wait("web answering again", lambda: s.answer() in s.names, timeout=120)
    assert len(s.holders()) == 1
