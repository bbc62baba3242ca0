"""Persistence of the replicated admin state (edge): ``STATE_DIR/services.json``.

Written atomically (0640) on every accepted change; read once at start. A corrupt file
is refused loudly (the daemon does not start): forgetting that a service was disabled
would start it behind the operator's back.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace

from clusterd.conf.files import write_atomic
from clusterd.errors import FatalError
from clusterd.services.model import AdminState

logger = logging.getLogger(__name__)

FILENAME = "services.json"


def load_admin(state_dir: str) -> AdminState:
    path = os.path.join(state_dir, FILENAME)
    try:
        with open(path, "rb") as fh:
            data = fh.read(1024 * 1024 + 1)
    except FileNotFoundError:
        return AdminState()
    except OSError as exc:
        raise FatalError(f"cannot start: cannot read {path}: {exc.strerror}") from None
    try:
        # the service lock (clusvcadm -l) does not survive a restart: rgmanager's
        # lock ended with the quorum it was taken under
        return replace(AdminState.from_wire(json.loads(data)), locked=False)
    except (ValueError, TypeError) as exc:
        raise FatalError(f"cannot start: {path} is corrupt ({exc}); fix or remove it "
                         "(removing it forgets disabled/frozen services)") from None


def save_admin(state_dir: str, admin: AdminState) -> None:
    os.makedirs(state_dir, mode=0o750, exist_ok=True)
    data = json.dumps(admin.to_wire(), sort_keys=True, indent=1).encode() + b"\n"
    write_atomic(os.path.join(state_dir, FILENAME), data, mode=0o640)
