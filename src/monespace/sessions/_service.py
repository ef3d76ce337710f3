"""Sessions and attempt counters through the storage layer (no SQL here)."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..actors import AccessMode
from ..storage import WebSessionRow, from_db_time, to_db_time
from ._model import Session, SessionKind

if TYPE_CHECKING:
    from .._unit import Core

__all__ = ["RateLimitService", "SessionService"]

#: Tokens longer than this are refused before hashing (a session token is 43 characters).
_MAX_TOKEN = 128
#: Each login deletes up to this many ended sessions, and each counted attempt up to this
#: many counters of ended windows of its bucket: the tables stay small without a job.
_SWEEP = 100


def token_digest(token: str) -> bytes:
    """The SHA-256 of a session token: what the storage keeps."""
    return hashlib.sha256(token.encode()).digest()


def _emergencies_to_text(emergencies: dict[str, tuple[AccessMode, datetime]]) -> str:
    return json.dumps(
        {pid: [str(mode), to_db_time(end)] for pid, (mode, end) in sorted(emergencies.items())}
    )


def _emergencies_from_text(text: str) -> dict[str, tuple[AccessMode, datetime]]:
    raw = json.loads(text)
    return {pid: (AccessMode(mode), from_db_time(end)) for pid, (mode, end) in raw.items()}


def _session(row: WebSessionRow) -> Session:
    return Session(
        SessionKind(row.kind),
        row.person_id,
        row.created_at,
        row.last_seen,
        row.csrf_token,
        ends_at=row.ends_at,
        emergencies=_emergencies_from_text(row.emergencies),
    )


class SessionService:
    """The demo server's sessions, in the space's storage.

    A session token is ``secrets.token_urlsafe(32)`` (256 bits); only its SHA-256 is stored.
    A session ends after *idle* without use and *absolute* after login, and logout deletes
    it at once. Each has its own CSRF token. Session rows are the server's bookkeeping, not
    access to anyone's record: the logins and logouts themselves are audited by the
    operations that open and close them.

    .. versionadded:: 0.3
    """

    def __init__(
        self,
        core: Core,
        *,
        idle: timedelta = timedelta(minutes=30),
        absolute: timedelta = timedelta(hours=12),
    ) -> None:
        self._core = core
        self.idle = idle
        self.absolute = absolute

    def create(self, kind: SessionKind, person_id: str, *, replaces: str | None = None) -> str:
        """Open a session and return its token (shown once; only its hash is kept).

        :param replaces: the token the client held before this login, revoked now.
        """
        now = self._core.now()
        token = secrets.token_urlsafe(32)
        row = WebSessionRow(
            token_hash=token_digest(token),
            kind=str(kind),
            person_id=person_id,
            created_at=now,
            last_seen=now,
            ends_at=now + self.absolute,
            csrf_token=secrets.token_urlsafe(32),
        )
        with self._core.storage.write() as tx:
            if replaces and len(replaces) <= _MAX_TOKEN:
                tx.sessions.delete(token_digest(replaces))
            tx.sessions.purge(ended_before=now, idle_before=now - self.idle, limit=_SWEEP)
            tx.sessions.add(row)
        return token

    def get(self, token: str | None) -> Session | None:
        """The live session of *token*, touched; ``None`` when unknown, ended or revoked."""
        if not token or len(token) > _MAX_TOKEN:
            return None
        key = token_digest(token)
        now = self._core.now()
        with self._core.storage.read() as tx:
            row = tx.sessions.get(key)
        if row is None:
            return None
        if now >= row.ends_at or now >= row.last_seen + self.idle:
            with self._core.storage.write() as tx:
                tx.sessions.delete(key)
            return None
        # Touching writes once a second at most per session: a page and its assets, or
        # two workers serving one browser, do not each take the write lock.
        if now - row.last_seen >= timedelta(seconds=1):
            with self._core.storage.write() as tx:
                tx.sessions.touch(key, now)
        session = _session(row)
        session.last_seen = max(now, row.last_seen)
        return session

    def expires_at(self, session: Session) -> datetime:
        """When *session* ends at the latest (if it stays active)."""
        return session.ends_at or session.created_at + self.absolute

    def add_emergency(
        self, token: str | None, patient_id: str, mode: AccessMode, end: datetime
    ) -> bool:
        """Record, in the session of *token*, an emergency access declared on *patient_id*
        (the access itself is decided and audited by ``space.access.break_glass``).
        Returns whether the session exists."""
        if not token or len(token) > _MAX_TOKEN:
            return False
        key = token_digest(token)
        with self._core.storage.write() as tx:
            row = tx.sessions.get(key)
            if row is None:
                return False
            now = self._core.now()
            current = {
                pid: value
                for pid, value in _emergencies_from_text(row.emergencies).items()
                if value[1] > now
            }
            current[patient_id] = (mode, end)
            return tx.sessions.set_emergencies(key, _emergencies_to_text(current))

    def revoke(self, token: str | None) -> bool:
        """End the session of *token* now. Returns whether there was one."""
        if not token or len(token) > _MAX_TOKEN:
            return False
        with self._core.storage.write() as tx:
            return tx.sessions.delete(token_digest(token))

    def revoke_person(self, kind: SessionKind, person_id: str) -> int:
        """End every session of one person (after a block, say). Returns how many."""
        with self._core.storage.write() as tx:
            return tx.sessions.delete_person(str(kind), person_id)

    def purge(self, *, batch: int = 1000) -> int:
        """Delete the sessions that ended (by idleness or age); return how many. (Each
        login also deletes a few.)"""
        now = self._core.now()
        total = 0
        while True:
            with self._core.storage.write() as tx:
                done = tx.sessions.purge(ended_before=now, idle_before=now - self.idle, limit=batch)
            total += done
            if done < batch:
                return total

    def count(self) -> int:
        """How many sessions are stored."""
        with self._core.storage.read() as tx:
            return tx.sessions.count()


class RateLimitService:
    """Attempt limits per key in fixed windows, counted in the space's storage.

    Keys (an IP address, a NIR) are stored as a keyed hash (the space's blind index for
    ``"rate-limit"``), so the table holds no NIR and every server process hashes alike.
    A window starts at a multiple of *window* since the Unix epoch; the counter of a key
    is incremented in one statement, so two processes counting at once both count.

    .. versionadded:: 0.3
    """

    def __init__(self, core: Core) -> None:
        self._core = core

    @staticmethod
    def _window_start(now: datetime, window: timedelta) -> datetime:
        seconds = int(window.total_seconds())
        epoch = int(now.timestamp())
        return datetime.fromtimestamp(epoch - epoch % seconds, UTC)

    def hit(self, bucket: str, key: str, *, limit: int, window: timedelta) -> float | None:
        """Count one attempt of *key* in *bucket*; ``None`` when allowed, else the seconds
        until the window ends.

        The increment comes first and the comparison after, on the value the increment
        returned: processes counting the same key at once can never all pass the limit.
        An attempt refused still counts, which changes nothing: the window ends when it ends.
        """
        now = self._core.now()
        start = self._window_start(now, window)
        with self._core.storage.write() as tx:
            digest = self._core.keyring.blind_index(tx, "rate-limit", f"{bucket}\0{key}", now)
            hits = tx.rate_limits.hit(bucket, digest, start)
            tx.rate_limits.purge(start, limit=_SWEEP, bucket=bucket)
        return self._wait(now, start, window) if hits > limit else None

    def waiting(self, bucket: str, key: str, *, limit: int, window: timedelta) -> float | None:
        """Seconds until *key* may try again in *bucket*, or ``None``; counts nothing."""
        now = self._core.now()
        start = self._window_start(now, window)
        with self._core.storage.write() as tx:
            digest = self._core.keyring.blind_index(tx, "rate-limit", f"{bucket}\0{key}", now)
            hits = tx.rate_limits.hits(bucket, digest, start)
        return self._wait(now, start, window) if hits >= limit else None

    @staticmethod
    def _wait(now: datetime, start: datetime, window: timedelta) -> float:
        return max(1.0, (start + window - now).total_seconds())

    def purge(self, bucket: str, window: timedelta, *, batch: int = 1000) -> int:
        """Delete the counters of *bucket*'s windows that ended; return how many. (Each
        counted attempt also deletes a few.)"""
        before = self._window_start(self._core.now(), window)
        total = 0
        while True:
            with self._core.storage.write() as tx:
                done = tx.rate_limits.purge(before, limit=batch, bucket=bucket)
            total += done
            if done < batch:
                return total
