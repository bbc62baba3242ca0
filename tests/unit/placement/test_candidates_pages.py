"""``svc.candidates`` in pages: every reply fits one cluster message, at any size.

The coordinator answers the placement explainer for 1,000 services on 300 nodes in pages
of services (``clusterd.services.ops._candidates``): each page's forwarded reply fits
``MAX_APP_PAYLOAD``, every service comes exactly once and in cluster.conf's order, and a
service whose nodes alone are too many keeps the best of them and counts the rest.
"""

from __future__ import annotations

import pytest
from clusterd.errors import ControlError
from clusterd.placement import candidates as placement_candidates
from clusterd.services.ops import _candidates
from clusterd.wire.limit import oversize
from test_placement_fast import random_snapshot


def _pages(snap, **kw):
    start, pages = 0, []
    while start is not None:
        page = _candidates(snap, start, **kw)
        # the whole forwarded reply, as ServiceOps._reply builds it
        assert oversize({"rid": "12.345678", "result": page}) is None
        pages.append(page)
        assert page["next"] is None or page["next"] > start
        start = page["next"]
    return pages


@pytest.mark.parametrize(("n_nodes", "n_services"), [(3, 5), (30, 200), (300, 40)])
def test_pages_cover_every_service_once_and_fit_one_message(n_nodes, n_services):
    snap = random_snapshot(7, n_nodes, n_services)
    pages = _pages(snap)
    seen = [name for page in pages for name in page["services"]]
    assert seen == [svc.name for svc in snap.services]
    assert all(page["total"] == n_services for page in pages)
    if n_services <= 5:
        assert len(pages) == 1
    for page in pages:
        for name, rows in page["services"].items():
            full = placement_candidates(snap, name)
            left_out = page.get("more", {}).get(name, 0)
            assert len(rows) + left_out == len(full)
            assert [r["node"] for r in rows] == [node for node, _s, _w in full[:len(rows)]]
            assert [r["why"] for r in rows] == [why for _n, _s, why in full[:len(rows)]]


def test_a_service_whose_nodes_do_not_fit_keeps_the_best_and_counts_the_rest():
    snap = random_snapshot(3, 300, 2)
    page = _candidates(snap, 0, budget=2000)
    name = snap.services[0].name
    rows, more = page["services"][name], page["more"][name]
    assert rows and more and len(rows) + more == 300
    assert page["next"] == 1                     # the next service goes in the next page


def test_one_service_a_bad_start_and_no_snapshot():
    snap = random_snapshot(5, 4, 6)
    one = _candidates(snap, 0, "s3")
    assert list(one["services"]) == ["service:s3"] and one["next"] is None
    with pytest.raises(ControlError, match="no such service"):
        _candidates(snap, 0, "nosuch")
    with pytest.raises(ControlError, match="'start' must be 0 or more"):
        _candidates(snap, -1)
    assert _candidates(snap, 99)["services"] == {}
    assert _candidates(None)["ready"] is False


def test_brief_pages_hold_many_services_of_a_300_node_cluster():
    """The web page's reading: the best BRIEF_NODES nodes of each service and the other
    nodes' reasons grouped: about twenty services of a 300-node cluster a page (1,000
    services take 35 pages; 300 here to keep the unit tests fast)."""
    from clusterd.services.ops import BRIEF_NODES

    snap = random_snapshot(7, 300, 300)
    pages = _pages(snap, brief=True)
    assert len(pages) < 20
    seen = [name for page in pages for name in page["services"]]
    assert seen == [svc.name for svc in snap.services]
    for page in pages:
        for name, rows in page["services"].items():
            full = placement_candidates(snap, name)
            assert [r["node"] for r in rows] == [n for n, _s, _w in full[:BRIEF_NODES]]
            assert page["more"][name] == len(full) - BRIEF_NODES
            assert page["rest"][name] and len(page["rest"][name]) < 1000
    small = _candidates(random_snapshot(7, 5, 3), 0, brief=True)
    assert "more" not in small and "rest" not in small


def test_forwarded_page_arguments_are_checked():
    from clusterd.services.ops import _forwarded_args_problem

    assert _forwarded_args_problem({"start": 3, "brief": True}) is None
    assert "'start'" in _forwarded_args_problem({"start": -1})
    assert "'start'" in _forwarded_args_problem({"start": True})
    assert "'start'" in _forwarded_args_problem({"start": "3"})
    assert "'brief'" in _forwarded_args_problem({"brief": "yes"})
