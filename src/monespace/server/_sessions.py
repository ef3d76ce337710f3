"""The server's view of sessions and attempt limits, kept in the space's storage.

The sessions and counters themselves live in the database (:mod:`monespace.sessions`), so
that several worker processes share them and a restart logs nobody out. What stays in the
process is a cache of the first names shown on the pages, which is never stored.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TypeVar

import anyio.to_thread

from .._space import Space
from ..actors import AccessMode
from ..sessions import Session, SessionKind

__all__ = ["RateLimiter", "Session", "SessionKind", "SessionStore"]

_T = TypeVar("_T")


async def _off_loop(function: Callable[..., _T], /, *args: object, **kwargs: object) -> _T:
    """Run a storage call in a worker thread: the event loop keeps serving meanwhile."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))


def token_digest(token: str) -> bytes:
    """The key of a session's cached labels in this process (its token is never kept)."""
    return hashlib.sha256(token.encode()).digest()


class SessionStore:
    """The sessions of a server, in *space*'s storage.

    :param idle: a session unused for this long ends.
    :param absolute: a session ends this long after login, however active.
    :param capacity: how many sessions' cached space labels a process keeps.
    """

    def __init__(
        self,
        space: Space,
        *,
        idle: timedelta = timedelta(minutes=30),
        absolute: timedelta = timedelta(hours=12),
        capacity: int = 10_000,
    ) -> None:
        self._service = space.sessions
        self._service.idle = idle
        self._service.absolute = absolute
        self._capacity = capacity
        self._labels: OrderedDict[bytes, dict[str, tuple[str, date]]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def idle(self) -> timedelta:
        """How long an unused session lasts."""
        return self._service.idle

    @property
    def absolute(self) -> timedelta:
        """How long a session lasts at most."""
        return self._service.absolute

    def create(self, kind: SessionKind, person_id: str, *, replaces: str | None = None) -> str:
        """Open a session and return its token (see :meth:`SessionService.create`)."""
        if replaces:
            self._forget(replaces)
        return self._service.create(kind, person_id, replaces=replaces)

    def get(self, token: str | None) -> Session | None:
        """The live session of *token*, touched; ``None`` when unknown, ended or revoked."""
        session = self._service.get(token)
        if session is None or token is None:
            return session
        key = token_digest(token)
        with self._lock:
            labels = self._labels.get(key)
            if labels is None:
                labels = self._labels[key] = {}
                while len(self._labels) > self._capacity:
                    self._labels.popitem(last=False)
            self._labels.move_to_end(key)
        # The page fills this dict in place: the labels then last as long as the session
        # in this process.
        session.space_labels = labels
        return session

    async def aget(self, token: str | None) -> Session | None:
        """:meth:`get`, off the event loop (it reads and may write the database)."""
        return await _off_loop(self.get, token)

    async def acreate(
        self, kind: SessionKind, person_id: str, *, replaces: str | None = None
    ) -> str:
        """:meth:`create`, off the event loop."""
        return await _off_loop(self.create, kind, person_id, replaces=replaces)

    async def arevoke(self, token: str | None) -> bool:
        """:meth:`revoke`, off the event loop."""
        return await _off_loop(self.revoke, token)

    def expires_at(self, session: Session) -> datetime:
        """When *session* ends at the latest (if it stays active)."""
        return self._service.expires_at(session)

    def add_emergency(
        self, token: str | None, patient_id: str, mode: AccessMode, end: datetime
    ) -> bool:
        """Keep, in the session, an emergency access declared on *patient_id*."""
        return self._service.add_emergency(token, patient_id, mode, end)

    def revoke(self, token: str | None) -> bool:
        """End the session of *token* now. Returns whether there was one."""
        if token:
            self._forget(token)
        return self._service.revoke(token)

    def revoke_person(self, kind: SessionKind, person_id: str) -> int:
        """End every session of one person. Returns how many."""
        return self._service.revoke_person(kind, person_id)

    def _forget(self, token: str) -> None:
        with self._lock:
            self._labels.pop(token_digest(token), None)

    def __len__(self) -> int:
        return self._service.count()


class RateLimiter:
    """A limit on attempts per key (an IP address, a NIR) in one bucket, counted in the
    space's storage for every server process (fixed windows).

    :param limit: attempts allowed per *window*.
    """

    def __init__(self, space: Space, bucket: str, *, limit: int, window: timedelta) -> None:
        self._service = space.rate_limits
        self.bucket = bucket
        self.limit = limit
        self.window = window

    def waiting(self, key: str) -> float | None:
        """Seconds until *key* may try again, or ``None``; counts nothing (for limits that
        count only failures)."""
        return self._service.waiting(self.bucket, key, limit=self.limit, window=self.window)

    def hit(self, key: str) -> float | None:
        """Count one attempt for *key*; ``None`` if allowed, else seconds until the next."""
        return self._service.hit(self.bucket, key, limit=self.limit, window=self.window)

    async def awaiting(self, key: str) -> float | None:
        """:meth:`waiting`, off the event loop (it reads the database)."""
        return await _off_loop(self.waiting, key)

    async def ahit(self, key: str) -> float | None:
        """:meth:`hit`, off the event loop (it writes the database)."""
        return await _off_loop(self.hit, key)
