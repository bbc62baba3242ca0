"""sd_notify(3) without a dependency: one datagram to $NOTIFY_SOCKET (no-op without it)."""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send e.g. ``READY=1`` or ``STOPPING=1``; True if a notify socket was there."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]          # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        logger.warning("sd_notify %s failed: %s", state.split("=", 1)[0], exc)
        return False
    return True
