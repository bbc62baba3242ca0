"""Fixtures for fencing tests: a root-owned agent directory holding fence_fake copies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FAKE = Path(__file__).with_name("fence_fake")
FAKE_NAMES = ("fence_fake", "fence_fake_noreboot", "fence_fake_nooff", "fence_fake_required",
              "fence_fake2", "fence_fake_nostatus")


def _install(directory: Path) -> Path:
    directory.mkdir(mode=0o755, exist_ok=True)
    os.chmod(directory, 0o755)
    for name in FAKE_NAMES:
        target = directory / name
        shutil.copyfile(FAKE, target)
        os.chown(target, 0, 0)
        os.chmod(target, 0o755)
    return directory


@pytest.fixture
def agent_dir(tmp_path: Path) -> Path:
    """A directory the runner trusts (root-owned 0755) with the fake agents (0755 root)."""
    if os.geteuid() != 0:
        pytest.skip("agent path checks need root-owned files (run the tests as root)")
    for parent in [tmp_path, *tmp_path.parents]:
        if parent.stat().st_uid != 0:
            pytest.skip(f"{parent} is not root-owned; the runner would refuse it")
    return _install(tmp_path / "agents")
