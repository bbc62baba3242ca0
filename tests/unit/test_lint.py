"""ruff (pinned in requirements.txt, rules in pyproject.toml) finds nothing in the daemon and
the tests: a finding fails here, in make test-fast, rather than piling up unnoticed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    exe = str(ruff) if ruff.exists() else shutil.which("ruff")
    assert exe, "ruff is not installed: run make setup (requirements.txt pins it)"
    run = subprocess.run([exe, "check", "--output-format", "concise", "daemon/src", "tests"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
