"""Server-side sessions and the failed-login limiter (pure: the clock is injected).

A session id is ``secrets.token_urlsafe(32)`` (the cookie ``clusterd_session``); each
session carries its own CSRF token. A session ends ``idle`` seconds after its last request
or ``max_age`` seconds after login, whichever comes first; looking up an ended session
says so once (the page then asks to log in again) and forgets it.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_SESSIONS = 4096


@dataclass
class Session:
    id: str
    user: str
    role: str
    address: str
    created: float
    last_seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flash: dict[str, Any] | None = None     # the last action's result, shown once

    @property
    def label(self) -> str:
        return f"{self.user} ({self.role})"


class SessionStore:
    def __init__(self, idle: float, max_age: float, clock: Callable[[], float],
                 limit: int = MAX_SESSIONS) -> None:
        self.idle, self.max_age, self.clock, self.limit = idle, max_age, clock, limit
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.last_seen > self.idle or now - s.created > self.max_age

    def create(self, user: str, role: str, address: str) -> Session:
        now = self.clock()
        for sid in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[sid]
        while len(self._sessions) >= self.limit:   # the oldest goes first
            del self._sessions[next(iter(self._sessions))]
        s = Session(secrets.token_urlsafe(32), user, role, address, now, now)
        self._sessions[s.id] = s
        return s

    def lookup(self, sid: str | None, *, touch: bool = True) -> tuple[Session | None, bool]:
        """(session, expired): the live session (its idle timer restarted when ``touch``),
        or None and whether ``sid`` named a session that has just ended."""
        if not sid:
            return None, False
        s = self._sessions.get(sid)
        if s is None:
            return None, False
        now = self.clock()
        if self._expired(s, now):
            del self._sessions[sid]
            return None, True
        if touch:
            s.last_seen = now
        return s, False

    def alive(self, s: Session) -> bool:
        """Whether ``s`` is still live, without touching it (the live stream's check)."""
        return s.id in self._sessions and not self._expired(s, self.clock())

    def end(self, sid: str) -> Session | None:
        return self._sessions.pop(sid, None)


class LoginLimiter:
    """After ``limit`` failures within ``window`` seconds for a user name or for a client
    address, logins for it are refused without checking the password until the oldest
    of those failures is ``window`` seconds old."""

    def __init__(self, clock: Callable[[], float], limit: int = 5,
                 window: float = 300.0, max_keys: int = 10000) -> None:
        self.clock, self.limit, self.window, self.max_keys = clock, limit, window, max_keys
        self._fails: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def wait(self, user: str, address: str) -> float:
        """Seconds until a login for ``user`` from ``address`` may be tried (0: now)."""
        now = self.clock()
        waits = [self.window - (now - q[0]) for key in (f"u:{user}", f"a:{address}")
                 if len(q := self._recent(key, now)) >= self.limit]
        return max(waits, default=0.0)

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        if len(self._fails) >= self.max_keys:   # bounded: forget the stalest keys
            for key in sorted(self._fails, key=lambda k: self._fails[k][-1])[:self.max_keys // 10]:
                del self._fails[key]
        for key in (f"u:{user}", f"a:{address}"):
            self._fails.setdefault(key, deque(maxlen=self.limit * 2)).append(now)

    def succeeded(self, user: str, address: str) -> None:
        self._fails.pop(f"u:{user}", None)
