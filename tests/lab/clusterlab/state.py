"""The lab's record of what it made: /run/<prefix>-lab/state.json, read and updated under
an flock so the CLI and the BMCs' power program never lose each other's writes."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .spec import LabSpec


def state_path(spec: LabSpec) -> Path:
    return Path(spec.state_dir) / "state.json"


def read(spec: LabSpec) -> dict[str, Any] | None:
    path = state_path(spec)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _write(spec: LabSpec, data: dict[str, Any]) -> None:
    path = state_path(spec)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(spec: LabSpec, create: bool = False) -> Iterator[dict[str, Any]]:
    """Yield the state dict under an exclusive lock; changes are written back on exit.
    With create=False and no state file, yields {} and writes nothing."""
    Path(spec.state_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(Path(spec.state_dir) / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read(spec)
        exists = data is not None
        data = data or {}
        yield data
        if exists or create:
            _write(spec, data)


def set_proc(data: dict[str, Any], key: str, ref_json: dict | None) -> None:
    procs = data.setdefault("procs", {})
    if ref_json is None:
        procs.pop(key, None)
    else:
        procs[key] = ref_json
