"""The plain three-node loopback cluster (``cluster``; a module may define its own) and the
daemons' logs of a failed local-cluster test."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from localcluster_harness import LocalCluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if outcome.get_result().failed:
        item.rep_failed = True


@pytest.fixture
def cluster(request):
    root = Path(tempfile.mkdtemp(prefix="rhc-local-"))
    c = LocalCluster(root)
    yield c
    c.stop_all()
    if getattr(request.node, "rep_failed", False):
        print(c.logs())
    shutil.rmtree(root, ignore_errors=True)
