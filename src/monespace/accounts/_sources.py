"""Which sources failed a proof of identity against which person, kept in memory.

A *source* is what the caller says an attempt comes from: the client's network address in
the demo server, a terminal's name at a counter. :class:`AttemptPolicy` delays only the
sources that failed against a person, so that the holder, trying from their own address,
is never refused because somebody else failed.

The marks live in the process, like the demo server's rate limits: a restart forgets them
(every source then counts as new until it fails again), and several processes over one
database each keep their own. The per-code limit, which bounds guessing, is stored and
holds across both. Sources are kept as keyed hashes under a key drawn at start, so the
table holds no network address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timedelta

__all__ = ["FailedSources"]


class FailedSources:
    """The (person, source) pairs that failed, each with the time of its last failure.

    :param window: a mark older than this is forgotten (the person's failures are too).
    :param capacity: the most marks kept; past it, the oldest are dropped.
    """

    def __init__(self, window: timedelta, *, capacity: int = 100_000) -> None:
        self._window = window
        self._capacity = capacity
        self._secret = secrets.token_bytes(32)
        self._marks: OrderedDict[bytes, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, patient_id: str, source: str) -> bytes:
        message = patient_id.encode() + b"\x00" + source.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def failed_at(self, patient_id: str, source: str, now: datetime) -> datetime | None:
        """When *source* last failed against *patient_id*, if it did within the window."""
        key = self._key(patient_id, source)
        with self._lock:
            marked = self._marks.get(key)
            if marked is not None and now >= marked + self._window:
                del self._marks[key]
                return None
            return marked

    def mark(self, patient_id: str, source: str | None, now: datetime) -> None:
        """Record that *source* just failed against *patient_id*."""
        if source is None:
            return
        key = self._key(patient_id, source)
        with self._lock:
            self._marks[key] = now
            self._marks.move_to_end(key)
            while len(self._marks) > self._capacity:
                self._marks.popitem(last=False)

    def forget(self, patient_id: str, source: str | None) -> None:
        """Clear the mark of *source* against *patient_id* (after it proved the person)."""
        if source is None:
            return
        with self._lock:
            self._marks.pop(self._key(patient_id, source), None)
