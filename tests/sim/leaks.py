"""Find secrets in captured datagrams: raw, hex and base64 (every alignment) forms.

Shared by the simulator's and the loopback cluster's traffic tests. A secret counts as
leaked when any of its forms appears in any datagram; the patterns are built so that a
secret embedded anywhere in a base64 stream (e.g. a config chunk of protocol v1/v2) is
still found.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping


def _b64_forms(secret: bytes) -> set[bytes]:
    """The base64 characters that depend on ``secret`` alone, for each of the three
    offsets (mod 3) at which it can sit in a longer encoded stream."""
    forms = set()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            enc = encode(bytes(pad) + secret)
            start = -(-8 * pad // 6)                     # ceil: chars touched by the pad
            end = 8 * (pad + len(secret)) // 6           # floor: chars before the tail
            if end - start >= 4:
                forms.add(enc[start:end])
    return forms


def leak_patterns(secret: bytes) -> set[bytes]:
    return {secret, secret.hex().encode(), secret.hex().upper().encode(), *_b64_forms(secret)}


def find_leaks(datagrams: Iterable[bytes], secrets: Mapping[str, bytes]) -> list[str]:
    """``name: form`` for every secret form found in any datagram (empty: no leak)."""
    patterns = {(name, p) for name, secret in secrets.items() for p in leak_patterns(secret)}
    found = set()
    for data in datagrams:
        for name, pattern in patterns:
            if pattern in data:
                found.add(f"{name}: {pattern[:24]!r}")
    return sorted(found)


def conf_secrets(name: str, text: bytes, min_len: int = 16) -> dict[str, bytes]:
    """Every line of a config file long enough to be recognisable, as secrets."""
    return {f"{name} line {i}": line.strip() for i, line in enumerate(text.splitlines(), 1)
            if len(line.strip()) >= min_len}


def key_secrets(key: bytes) -> dict[str, bytes]:
    """Slices of the authkey (any 32 bytes of it in a datagram would be a leak)."""
    return {f"authkey[{i}:{i + 32}]": key[i:i + 32] for i in range(0, len(key) - 31, 32)}
