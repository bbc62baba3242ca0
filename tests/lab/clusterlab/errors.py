"""The lab's two errors: a failure (exit 1) and bad usage (exit 2).

The lab is a test tool, separate from the daemon, so it does not use clusterd's exception
tree. Every message is one line that says what is wrong and, where possible, what to do.
"""

from __future__ import annotations


class LabError(Exception):
    """Something the lab tried failed, or the host cannot run a lab (exit code 1)."""

    exit_code = 1


class UsageError(LabError):
    """Bad input: unknown node, bad direction, address outside the allowed range (exit 2)."""

    exit_code = 2
