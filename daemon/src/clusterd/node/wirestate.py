"""What the cluster wire keeps across restarts, in the state dir (``/var/lib/clusterd``).

``incarnation``: this node's incarnation. Every start picks one above both the persisted
value and the clock (``new_incarnation``) and writes it (fsync, atomic rename) before the
first packet is sealed: with the file intact the incarnation increases even when the
clock is behind; with the file lost it still increases as long as the clock is not behind
the last start; when both fail, the peers refuse the node and tell it the incarnation they
saw, which the runtime persists here before it restarts above it (docs/security.md,
"Replay and incarnations").

``peers.json``: the highest incarnation and protocol version accepted from each peer,
rewritten whenever one of them changes (a peer restarted or was upgraded) and restored at
start, so that a restarted node still refuses packets of earlier incarnations. Losing the
file loses that floor only (a v3 packet also has to name the receiver's current
incarnation, which no packet from an earlier life of it does).

Blocking file I/O; the daemon calls the writers through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping

from clusterd.conf.files import write_atomic

logger = logging.getLogger(__name__)

INCARNATION_FILE = "incarnation"
PEERS_FILE = "peers.json"
STATE_MODE = 0o640
MAX_U64 = 2**64 - 1
Record = tuple[int, int]  # (incarnation, protocol version)


def new_incarnation(previous: int) -> int:
    """Strictly larger than ``previous`` and than any earlier start (microsecond clock)."""
    return max(previous + 1, time.time_ns() // 1000)


def read_incarnation(state_dir: str, node: str) -> int:
    """The persisted incarnation; 0 when the file is missing or unreadable."""
    path = os.path.join(state_dir, INCARNATION_FILE)
    try:
        with open(path) as fh:
            return int(fh.read().strip() or 0)
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        logger.warning("node %s: ignoring unreadable %s: %s", node, path, exc)
        return 0


def save_incarnation(state_dir: str, incarnation: int) -> None:
    os.makedirs(state_dir, mode=0o750, exist_ok=True)
    write_atomic(os.path.join(state_dir, INCARNATION_FILE), f"{incarnation}\n".encode(),
                 mode=STATE_MODE)


def dump_peers(peers: Mapping[int, Record]) -> bytes:
    doc = {str(nodeid): {"incarnation": inc, "protocol": version}
           for nodeid, (inc, version) in sorted(peers.items())}
    return (json.dumps({"peers": doc}, indent=1, sort_keys=True) + "\n").encode()


def parse_peers(data: bytes) -> dict[int, Record]:
    """The records of ``dump_peers``; ValueError for anything else."""
    doc = json.loads(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("peers"), dict):
        raise ValueError("not an object with a 'peers' object")  # noqa: TRY004 - bad file content
    out: dict[int, Record] = {}
    for key, rec in doc["peers"].items():
        if not (isinstance(rec, dict) and set(rec) == {"incarnation", "protocol"}):
            raise ValueError(f"peer {key!r}: expected incarnation and protocol")
        values = (int(key), rec["incarnation"], rec["protocol"])
        if not all(type(v) is int and 0 <= v <= MAX_U64 for v in values):
            raise ValueError(f"peer {key!r}: values must be unsigned integers")
        out[values[0]] = (values[1], values[2])
    return out


def read_peers(state_dir: str, node: str) -> dict[int, Record]:
    """The persisted peer records; {} (with a warning) when the file is unreadable."""
    path = os.path.join(state_dir, PEERS_FILE)
    try:
        with open(path, "rb") as fh:
            return parse_peers(fh.read(1 << 20))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("node %s: ignoring unreadable %s (earlier incarnations of old-protocol "
                       "peers are accepted until they are heard again): %s", node, path, exc)
        return {}


def save_peers(state_dir: str, peers: Mapping[int, Record]) -> None:
    os.makedirs(state_dir, mode=0o750, exist_ok=True)
    write_atomic(os.path.join(state_dir, PEERS_FILE), dump_peers(peers), mode=STATE_MODE)
