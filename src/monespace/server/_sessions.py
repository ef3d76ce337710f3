"""Server-side sessions and in-memory rate limits.

A session token is ``secrets.token_urlsafe(32)`` (256 bits). The server keeps only its
SHA-256: a copy of the session table (a memory dump, a debugger) yields no usable token. A
new token is issued at every login (the old one, if the browser sent it, is revoked), a
session ends after an idle period and after an absolute lifetime, and logout revokes it at
once. Each session has its own CSRF token for cookie-authenticated changes.

Both structures live in the server process: a restart logs everyone out, and several worker
processes would not share them (the demo server runs one).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from ..actors import AccessMode, Actor, ActorKind

__all__ = ["RateLimiter", "Session", "SessionKind", "SessionStore"]


class SessionKind(StrEnum):
    """Who logged in."""

    PATIENT = "patient"
    """A person, with their carte Vitale (and, through it, the people they represent)."""
    PROFESSIONAL = "professional"
    """A health professional (simulated Pro Santé Connect in the demo)."""


@attrs.define
class Session:
    """One logged-in session (the server keeps the hash of its token, never the token).

    :param person_id: the patient id, or the professional's RPPS number.
    :param emergencies: for a professional, the emergency accesses they declared in this
        session: patient id → (mode, end).
    """

    kind: SessionKind
    person_id: str
    created_at: datetime
    last_seen: datetime
    csrf_token: str
    emergencies: dict[str, tuple[AccessMode, datetime]] = attrs.field(factory=dict)

    def actor_for(self, patient_id: str, now: datetime) -> Actor:
        """The actor this session acts as on *patient_id*'s space.

        A person acts as the holder of their own space and as a legal representative on
        anyone else's (the policy then checks that they do represent them); a professional
        acts in emergency mode on a space where they declared an emergency that still runs.
        """
        if self.kind is SessionKind.PATIENT:
            if patient_id == self.person_id:
                return Actor.patient(self.person_id)
            return Actor(ActorKind.REPRESENTATIVE, self.person_id, on_behalf_of=patient_id)
        mode = AccessMode.NORMAL
        emergency = self.emergencies.get(patient_id)
        if emergency is not None:
            if now < emergency[1]:
                mode = emergency[0]
            else:
                del self.emergencies[patient_id]
        return Actor(ActorKind.PROFESSIONAL, self.person_id, mode=mode)

    def csrf_matches(self, given: str | None) -> bool:
        """Whether *given* is this session's CSRF token (compared in constant time)."""
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token.encode())


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class SessionStore:
    """The sessions of one server process.

    :param now: where time comes from (the space's clock).
    :param idle: a session unused for this long ends.
    :param absolute: a session ends this long after login, however active.
    :param capacity: the most sessions kept; past it, the oldest are dropped.
    """

    def __init__(
        self,
        now: Callable[[], datetime],
        *,
        idle: timedelta = timedelta(minutes=30),
        absolute: timedelta = timedelta(hours=12),
        capacity: int = 100_000,
    ) -> None:
        self._now = now
        self.idle = idle
        self.absolute = absolute
        self._capacity = capacity
        self._sessions: OrderedDict[bytes, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, kind: SessionKind, person_id: str, *, replaces: str | None = None) -> str:
        """Open a session and return its token (shown once; only its hash is kept).

        :param replaces: the token the client held before this login, revoked now.
        """
        now = self._now()
        token = secrets.token_urlsafe(32)
        session = Session(kind, person_id, now, now, secrets.token_urlsafe(32))
        with self._lock:
            if replaces is not None:
                self._sessions.pop(_digest(replaces), None)
            self._sessions[_digest(token)] = session
            while len(self._sessions) > self._capacity:
                self._sessions.popitem(last=False)
        return token

    def get(self, token: str | None) -> Session | None:
        """The live session of *token*, touched; ``None`` when unknown, expired or revoked."""
        if not token or len(token) > 128:
            return None
        key = _digest(token)
        now = self._now()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now >= session.created_at + self.absolute or now >= session.last_seen + self.idle:
                del self._sessions[key]
                return None
            session.last_seen = now
            return session

    def expires_at(self, session: Session) -> datetime:
        """When *session* ends at the latest (if it stays active)."""
        return session.created_at + self.absolute

    def revoke(self, token: str | None) -> bool:
        """End the session of *token* now. Returns whether there was one."""
        if not token:
            return False
        with self._lock:
            return self._sessions.pop(_digest(token), None) is not None

    def revoke_person(self, kind: SessionKind, person_id: str) -> int:
        """End every session of one person (after a block, say). Returns how many."""
        with self._lock:
            keys = [
                k for k, s in self._sessions.items() if s.kind is kind and s.person_id == person_id
            ]
            for key in keys:
                del self._sessions[key]
            return len(keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


class RateLimiter:
    """A sliding-window limit on attempts per key (an IP address, a keyed hash of a NIR).

    Keys are hashed with a key drawn at start, so the table holds no NIR.

    :param limit: attempts allowed per *window*.
    """

    def __init__(
        self,
        now: Callable[[], datetime],
        *,
        limit: int,
        window: timedelta,
        capacity: int = 100_000,
    ) -> None:
        self._now = now
        self.limit = limit
        self.window = window
        self._capacity = capacity
        self._secret = secrets.token_bytes(32)
        self._hits: OrderedDict[bytes, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def waiting(self, key: str) -> float | None:
        """Seconds until *key* may try again, or ``None``; counts nothing (for limits that
        count only failures)."""
        digest = hmac.new(self._secret, key.encode(), hashlib.sha256).digest()
        now = self._now()
        with self._lock:
            hits = self._hits.get(digest)
            if hits is None:
                return None
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1.0, (hits[0] + self.window - now).total_seconds())
            return None

    def hit(self, key: str) -> float | None:
        """Count one attempt for *key*; ``None`` if allowed, else seconds until the next."""
        digest = hmac.new(self._secret, key.encode(), hashlib.sha256).digest()
        now = self._now()
        with self._lock:
            hits = self._hits.get(digest)
            if hits is None:
                hits = self._hits[digest] = deque()
                while len(self._hits) > self._capacity:
                    self._hits.popitem(last=False)
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1.0, (hits[0] + self.window - now).total_seconds())
            hits.append(now)
            self._hits.move_to_end(digest)
            return None
