"""The values config sync is about, shared by the core, the transfer and the host: the
running config, a peer's advert of its own, and the validation the host is asked for.

Pure: no I/O. ``sha256_hex`` is the one config hash (of the exact bytes, which for a
config built by ``clusterd.conf`` are its canonical bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Validator = Callable[[bytes], Any]  # returns an object with ``.version``; raises ConfigError
Outcome = Any  # what the validator returned, or the ClusterError it raised


@dataclass(frozen=True)
class ValidateConfig:
    """Validate these pulled bytes off the event loop; answer with ``on_validated``."""

    version: int
    sha256: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Validating:
    """A pulled config awaiting the host's answer to its ``ValidateConfig`` until
    ``deadline``; ``sender`` is the holder it came from."""

    version: int
    sha256: str
    data: bytes
    sender: int
    deadline: float
    accepted: bool = True


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Running:
    version: int
    sha256: str
    data: bytes

    @classmethod
    def of(cls, data: bytes | None, version: int) -> Running:
        return cls(0, "", b"") if data is None else cls(version, sha256_hex(data), data)


@dataclass(frozen=True)
class Advert:
    """What a peer's latest heartbeat says it runs, and when it arrived."""

    version: int
    sha256: str
    heard_at: float
    accepted: bool = True


def versioned(result: Any) -> Any:
    """``result`` if it keeps the validator's contract (an int ``.version``)."""
    if type(getattr(result, "version", None)) is not int:
        raise TypeError("the config validator must return an object with an int .version")
    return result
