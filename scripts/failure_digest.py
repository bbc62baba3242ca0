#!/usr/bin/env python3
"""Print the failed tasks of an Ansible/molecule log, last thing in a CI run.

CI shows only the tail of a failed run, and the tail of a failed molecule scenario is its
destroy step. This prints, after it, which task failed and why, in a few lines:

    scripts/failure_digest.py var/molecule/failover.log
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FRAME = re.compile(r"^\s*[│┌└]\s?")  # molecule's box in front of each line of a playbook
FAILED = re.compile(r"^(fatal|failed): \[(?P<host>[^\]]+)\]")
ERROR = re.compile(r"^ERROR[!\s]")
WIDTH = 1500  # characters of one failure message


def _records(lines: list[str]) -> list[str]:
    """Undo molecule's wrapping: a line starting with two spaces continues the previous."""
    out: list[str] = []
    for raw in lines:
        line = FRAME.sub("", ANSI.sub("", raw)).rstrip()
        if line.startswith("  ") and out and out[-1]:
            out[-1] += " " + line.strip()
        else:
            out.append(line.strip())
    return out


def digest(lines: list[str], limit: int = 8) -> list[str]:
    """The failures in ``lines`` (task name, host, message), most recent last."""
    out: list[str] = []
    task = "?"
    for line in _records(lines):
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.split("[", 1)[1].rsplit("]", 1)[0]
        elif line.startswith("...ignoring") and out:
            out.pop()  # the failure just before was ignored (ignore_errors)
        elif m := FAILED.match(line):
            out.append(f"task '{task}' on {m.group('host')}: "
                       f"{line[m.end():].lstrip(': ')}"[:WIDTH])
        elif ERROR.match(line):
            out.append(line[:WIDTH])
    return out[-limit:]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: failure_digest.py LOG", file=sys.stderr)
        return 2
    path = Path(argv[1])
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        print(f"failure_digest: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    found = digest(lines)
    print(f"==== what failed ({path}) ====")
    print("\n".join(found) if found else "no failed task found in the log; see above")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
