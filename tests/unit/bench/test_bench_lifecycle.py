"""tests/bench/bench_lifecycle.py: the scenario's inventory, the steps' JSON, the figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_lifecycle.py"
_spec = importlib.util.spec_from_file_location("bench_lifecycle", BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def seen(polls: int, failed: int, outage: float, gap: float | None = 0.03) -> dict:
    out = {"polls": polls, "failed_polls": failed, "outage_s": outage, "answered_by": ["node1"]}
    if gap is not None:
        out["longest_gap_s"] = gap
    return out


ADD = {"step": "add", "ok": True, "add_s": 80.5, "step_s": 150.2,
       "client_during_add": {"web": seen(4000, 0, 0.0), "web2": seen(4001, 0, 0.0, 0.2)}}
REMOVE = {"step": "remove", "ok": True, "relocate_s": 12.0, "remove_s": 40.1, "step_s": 90.0,
          "web_after": "node1",
          "client_during_remove": {"web": seen(2000, 35, 1.234, 1.25), "web2": seen(2001, 0, 0.0)}}


def test_the_scenario_platforms_groups_make_the_inventory():
    text = (bench.SCENARIO / "molecule.yml").read_text()
    assert bench.scenario_inventory(text) == {"all": {"children": {"cluster_initial": {
        "hosts": {"node1": {}, "node2": {}, "node3": {}}}}}}


def test_the_step_summary_is_the_last_json_line_with_a_step():
    out = "\n".join(["PLAY [x]", '{"not": "a step"}', json.dumps(ADD), "{broken", ""])
    assert bench.step_summary(out) == ADD
    with pytest.raises(ValueError):
        bench.step_summary('warning\n{"no": "step"}\n')


def test_cycle_figures_per_phase_and_service():
    fig = bench.cycle_figures(ADD, REMOVE)
    assert fig["add_s"] == 80.5 and fig["remove_s"] == 40.1 and fig["web_after"] == "node1"
    assert fig["remove_web"] == {"polls": 2000, "failed": 35, "outage_s": 1.234, "gap_s": 1.25}
    assert fig["add_web2"]["gap_s"] == 0.2


def test_summaries_without_longest_gap_still_give_figures():
    old = {**REMOVE, "client_during_remove": {"web": seen(10, 2, 0.5, None),
                                              "web2": seen(10, 0, 0.0, None)}}
    fig = bench.cycle_figures(ADD, old)
    assert fig["remove_web"]["gap_s"] is None
    assert bench.client_cell([fig["remove_web"]]) == "0.500 s; failed polls 2/10"


def test_span_and_client_cell():
    assert bench.span([3.0]) == "3.00 s"
    assert bench.span([1.0, 3.0, 2.0], digits=1) == "2.0 s (1.0-3.0)"
    cell = bench.client_cell([{"polls": 100, "failed": 0, "outage_s": 0.0, "gap_s": 0.05},
                              {"polls": 120, "failed": 3, "outage_s": 0.1, "gap_s": 0.15}])
    assert cell == ("0.050 s (0.000-0.100); failed polls 0/100, 3/120; "
                    "longest time between two answers 0.10 s (0.05-0.15)")


def test_the_section_splits_the_bare_add_from_the_re_adds_and_names_the_host():
    runs = [{**bench.cycle_figures({**ADD, "add_s": add_s}, REMOVE), "cycle_s": 200.0}
            for add_s in (100.0, 50.0, 52.0)]
    text = bench.section(runs, when="2026-12-07 04:55 UTC", host="vm (2 cores)", others="rhcz",
                         load=(1.4, 4.9), up_s=2, boot_s=102, cycles_s=540, total_s=660)
    assert text.startswith("## Node add and remove (bench_lifecycle.py)\n")
    assert "Measured 2026-12-07 04:55 UTC on vm (2 cores)" in text
    assert "(the labs of other sessions: rhcz)" in text and "3 add/remove cycles of" in text
    assert "| add node4, bare (run 1: site.yml installs it, node4 joins) | 100.0 s |" in text
    assert "| add node4 again (runs 2-3: the software remove_node.yml left on it) | 51.0 s " \
           "(50.0-52.0) |" in text
    two = bench.section(runs[:2], when="w", host="h", others="", load=(0, 0), up_s=1,
                        boot_s=1, cycles_s=1, total_s=1)
    assert "| add node4 again (run 2: the software remove_node.yml left on it) | 50.0 s |" in two
    assert "2 add/remove cycles of the 3 planned" in two
    assert "moves once, to node1) | 1.234 s (1.234-1.234); failed polls 35/2000" in text
    one = bench.section(runs[:1], when="w", host="h", others="", load=(0, 0), up_s=1,
                        boot_s=1, cycles_s=1, total_s=1)
    assert "add node4 again" not in one and "1 add/remove cycle of the 3 planned" in one
    assert "with no other lab up" in one
