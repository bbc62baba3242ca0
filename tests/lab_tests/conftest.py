"""Shared fixtures for tests that need the lab of emulated nodes.

`lab` (session scope) brings one 3-node lab up for the whole run and tears it down at the
end; with RHC_LAB_REUSE=1 it uses the lab that is already up (or brings one up) and
leaves it up for the next run. RHC_LAB_PREFIX and RHC_LAB_SUBNET pick another lab (a
second lab needs both). `lab_clean` (function scope) gives the same lab and, after
the test, powers on every node that is off and heals every partition, so tests can fault
nodes freely and the next test still finds a healthy lab. Mark tests that need the lab with @pytest.mark.lab.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from clusterlab import Lab, LabError
from lab_restore import restore


def _reuse() -> bool:
    return os.environ.get("RHC_LAB_REUSE", "") == "1"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (namespaces, mounts, systemd-nspawn)")
    prefix = os.environ.get("RHC_LAB_PREFIX", "rhc")
    if _reuse():
        try:
            yield Lab.load(prefix)
            return
        except LabError:
            pass  # none up: bring one up (and leave it up)
    subnet = os.environ.get("RHC_LAB_SUBNET")
    the_lab = Lab.up(nodes=3, prefix=prefix, **({"subnet": subnet} if subnet else {}))
    try:
        yield the_lab
    finally:
        if not _reuse():
            the_lab.down()


@pytest.fixture()
def lab_clean(lab: Lab) -> Iterator[Lab]:
    try:
        yield lab
    finally:
        restore(lab)
