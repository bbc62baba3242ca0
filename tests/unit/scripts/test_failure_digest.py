"""scripts/failure_digest.py: the failed tasks of a molecule log, unwrapped, last in CI."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "failure_digest.py"
spec = importlib.util.spec_from_file_location("failure_digest", SCRIPT)
assert spec is not None and spec.loader is not None
failure_digest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(failure_digest)

BOX = "  \x1b[2m│\x1b[0m "
LOG = [
    BOX + "TASK [Wait until it rejoined and web failed back (ordered domain, best",
    BOX + "  member)] ****",
    BOX + "FAILED - RETRYING: [localhost]: Wait until it rejoined (90 retries left).",
    "  \x1b[2m\x1b[31m│\x1b[0m \x1b[0;31mfatal: [localhost]: FAILED! => {\"attempts\": 90,",
    BOX + "  \"msg\": \"web answered ''\"}\x1b[0m",
    BOX,
    BOX + "TASK [Probe something optional] ***",
    BOX + "fatal: [node1]: FAILED! => {\"msg\": \"ignored one\"}",
    BOX + "...ignoring",
    "\x1b[31mERROR   \x1b[0m Ansible return code was 2, command was: ansible-playbook x",
]


def test_names_the_failed_task_with_its_unwrapped_message() -> None:
    found = failure_digest.digest(LOG)
    assert found[0] == ("task 'Wait until it rejoined and web failed back (ordered domain, "
                        "best member)' on localhost: FAILED! => {\"attempts\": 90, "
                        "\"msg\": \"web answered ''\"}")
    assert found[1].startswith("ERROR    Ansible return code was 2")
    assert len(found) == 2  # the ignored failure and the retries are not failures


def test_a_clean_log_says_so(tmp_path: Path) -> None:
    log = tmp_path / "ok.log"
    log.write_text("\n".join(LOG[:3]) + "\n")
    out = subprocess.run([sys.executable, str(SCRIPT), str(log)], capture_output=True,
                         text=True, check=True).stdout
    assert "no failed task found" in out


def test_a_missing_log_is_an_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "none.log")],
                          check=False, capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot read" in proc.stderr
