"""The collection's quality gates (scripts/collection_gates.sh) as part of the test suite:
ansible-test sanity and units, ansible-doc for every module, ansible-galaxy build.

Slow (about two minutes when ansible-test's venvs are cached, more on the first run,
which installs the sanity tools from the package index). Gate wall times are printed,
never asserted.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/collection_gates.sh"
IGNORE_FILES = sorted((REPO / "collections/ansible_collections/redhat/cluster/tests/sanity")
                      .glob("ignore-*.txt"))
GATES = ("sanity", "units", "doc", "build")


def test_sanity_ignore_files_are_empty() -> None:
    assert IGNORE_FILES, "tests/sanity/ignore-2.19.txt is missing"
    for path in IGNORE_FILES:
        assert path.read_text().strip() == "", f"{path.name} must stay empty: fix the code"


@pytest.mark.slow
def test_collection_gates_pass() -> None:
    proc = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=1800,
                          check=False, cwd=REPO)
    report = re.findall(r"^gate (\w+): (ok|FAILED) in ([0-9.]+) s$", proc.stdout,
                        re.MULTILINE)
    print("\n".join(f"gate {g}: {s} in {t} s" for g, s, t in report))
    tail = proc.stdout[-8000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, tail
    assert [(g, s) for g, s, _ in report] == [(g, "ok") for g in GATES], tail


def test_unknown_gate_is_refused() -> None:
    proc = subprocess.run([str(SCRIPT), "lint"], capture_output=True, text=True, timeout=120,
                          check=False, cwd=REPO)
    assert proc.returncode == 2
    assert "unknown gate 'lint' (known: sanity units doc build)" in proc.stderr
