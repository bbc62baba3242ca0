"""tests/bench/run.py: running some topics replaces only their sections of the report."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"
_spec = importlib.util.spec_from_file_location("bench_run", RUN)
run = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = run  # dataclasses look their module up while decorating
_spec.loader.exec_module(run)

TOPICS = ["failover", "lab", "membership", "playbooks"]
LEGACY = """# Benchmarks

Written by `make bench` on 2026-11-26 00:31 UTC, vm: 2 cores, 24 GiB, Linux 6, Python 3.11.7.
Figures are medians of several runs with min and max; timings are never asserted in tests.
This run overlapped make test.

## Failover (bench_failover.py)

| case | outage |
|---|---|
| power off | 1.55 s |

## Lab

- boot 0.3 s

## Membership (issue 3)

- idle CPU 2.1%

## Playbooks (bench_playbooks.py)

- re-run 9 s
"""
NEW = "## Membership (issue 3)\n\n- idle CPU 0.6%\n"
WHEN = "2026-11-26 02:59 UTC"


def _update(text: str, new: dict, failed: tuple = ()) -> str:
    sections = run.merge_report(run.parse_report(text, TOPICS), new, failed, WHEN, TOPICS)
    return run.render_report(sections, WHEN, list(new) + list(failed), "vm")


def test_running_one_topic_replaces_its_section_and_keeps_the_others() -> None:
    out = _update(LEGACY, {"membership": NEW})
    assert "idle CPU 0.6%" in out and "idle CPU 2.1%" not in out
    for kept in ("| power off | 1.55 s |", "- boot 0.3 s", "- re-run 9 s"):
        assert out.count(kept) == 1
    assert out.index("## Failover") < out.index("## Lab") < out.index("## Membership") \
        < out.index("## Playbooks")
    assert "membership 2026-11-26 02:59 UTC" in out and "lab 2026-11-26 00:31 UTC" in out
    # the old header's remark stays with the figures it describes, not with the new run
    assert out.count("This run overlapped make test.") == 3
    membership = out[out.index("## Membership"):out.index("## Playbooks")]
    assert "overlapped" not in membership


def test_the_updated_report_parses_back_to_the_same_sections() -> None:
    once = _update(LEGACY, {"membership": NEW})
    again = _update(once, {})
    assert [(s.topic, s.when) for s in run.parse_report(again, TOPICS)] == [
        ("failover", "2026-11-26 00:31 UTC"), ("lab", "2026-11-26 00:31 UTC"),
        ("membership", WHEN), ("playbooks", "2026-11-26 00:31 UTC")]
    assert again.split("-->", 1)[1] == once.split("-->", 1)[1]


def test_a_failed_topic_keeps_its_old_figures_under_a_note() -> None:
    out = _update(LEGACY, {}, failed=("lab",))
    lab = out[out.index("## Lab"):out.index("## Membership")]
    assert "- boot 0.3 s" in lab and f"The run of {WHEN} failed" in lab
    fresh = _update("# Benchmarks\n", {}, failed=("lab",))
    assert "## lab" in fresh and "failed" in fresh


def test_a_new_topic_is_added_and_an_unknown_section_is_kept() -> None:
    text = LEGACY + "\n## Something hand-written\n\nkeep me\n"
    out = _update(text, {"membership": NEW})
    assert "keep me" in out and out.index("keep me") > out.index("## Playbooks")
    empty = _update("", {"lab": "## Lab\n\n- boot 0.2 s\n"})
    assert "- boot 0.2 s" in empty and "<!-- bench: lab" in empty
