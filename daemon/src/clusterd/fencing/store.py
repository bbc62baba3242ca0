"""Durable storage of the fence-intents record (edge: small synchronous file I/O).

Written atomically (temp file in the same directory, fsync, rename, fsync of the
directory), mode 0600 root: the record names nodes and errors, never secrets, but it is
the daemon's private state. Call from an executor thread if the disk may be slow.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from clusterd.atomicfile import write_atomic
from clusterd.fencing.intents import DEFAULT_PATH, IntentsError

logger = logging.getLogger(__name__)


def write_intents(record: dict[str, Any], path: str = DEFAULT_PATH) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    data = (json.dumps(record, sort_keys=True, indent=1) + "\n").encode()
    write_atomic(path, data, 0o600, prefix=".fence-intents.", root_owned=False)
    logger.debug("fence intents written to %s (%d operations)", path, len(record.get("ops", ())))


def read_intents(path: str = DEFAULT_PATH) -> dict[str, Any] | None:
    """The stored record, None if there is none; IntentsError if it is unreadable (the
    caller must not silently forget intents: keep the file and report)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(16 * 1024 * 1024)
    except FileNotFoundError:
        return None
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise IntentsError(f"{path} is not valid JSON ({exc}); fix or remove it after "
                           f"checking which nodes still need fencing") from None
    if not isinstance(record, dict):
        raise IntentsError(f"{path} does not hold a fence intent record")
    return record
