"""Per-peer replay protection: (incarnation, seq) with a sliding window.

A sender's incarnation never decreases (it is chosen above the last one at every start);
within an incarnation every packet has a fresh, increasing seq. The window accepts each
seq at most once, tolerates reordering within ``WINDOW`` packets and refuses anything
older. ``check`` does not change state; ``commit`` records a packet once it has been
fully accepted, so a packet dropped later in decoding leaves no trace. After a restart the
receiver starts each peer's window at the incarnation it persisted (``floor``): earlier
incarnations stay refused, every seq of that one is still new.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW = 128


@dataclass(frozen=True)
class ReplayState:
    incarnation: int
    highest: int
    bitmap: int  # bit i set: seq (highest - i) was seen

    def check(self, incarnation: int, seq: int) -> str | None:
        """Return a drop reason, or None if (incarnation, seq) is new."""
        if incarnation < self.incarnation:
            return "stale incarnation"
        if incarnation > self.incarnation or seq > self.highest:
            return None
        age = self.highest - seq
        if age >= WINDOW:
            return "replay"
        if self.bitmap >> age & 1:
            return "replay"
        return None

    def commit(self, incarnation: int, seq: int) -> ReplayState:
        if incarnation > self.incarnation:
            return ReplayState(incarnation, seq, 1)
        if seq > self.highest:
            shift = seq - self.highest
            bitmap = ((self.bitmap << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            return ReplayState(incarnation, seq, bitmap)
        return ReplayState(incarnation, self.highest, self.bitmap | 1 << (self.highest - seq))


def first_seen(incarnation: int, seq: int) -> ReplayState:
    return ReplayState(incarnation, seq, 1)


def floor(incarnation: int) -> ReplayState:
    """Nothing seen yet, but nothing from before ``incarnation`` accepted either."""
    return ReplayState(incarnation, 0, 0)
