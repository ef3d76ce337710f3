"""Injectable clocks.

Rules never call :func:`datetime.now`: they receive the current time from the caller, and the
services take it from the :class:`Clock` the :class:`~monespace.Space` was opened with. Tests
move a :class:`ManualClock` across the six-week, one-month and ten-year deadlines instead of
waiting for them.

.. versionadded:: 0.1
"""

from __future__ import annotations

import calendar
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "add_months", "ensure_utc"]


def ensure_utc(moment: datetime) -> datetime:
    """Return *moment* in UTC, refusing naive datetimes.

    A naive datetime is ambiguous (Paris local time? UTC?) and six-week deadlines computed
    from one could be off by an hour around a DST change, so it is an error, not a guess.

    :raises ValueError: if *moment* has no time zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (got a naive datetime)")
    return moment.astimezone(UTC)


def add_months(moment: datetime, months: int) -> datetime:
    """*moment* plus calendar months, clamped to the month's last day (31 Jan + 1 → 28/29 Feb).

    The deadlines of several capabilities count in months (the release of a hidden result,
    the purge of a closed space), so the arithmetic lives here, below all of them.
    """
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@runtime_checkable
class Clock(Protocol):
    """Anything with a ``now()`` returning an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to; for tests, simulations and the synthetic population.

    :param start: the initial time (timezone-aware). Defaults to the current UTC time.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = ensure_utc(start) if start is not None else datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the clock's current time."""
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to *moment* (may go backwards, to replay a scenario)."""
        with self._lock:
            self._now = ensure_utc(moment)

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        """Move forward by *delta* (or ``timedelta(**kwargs)``) and return the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        with self._lock:
            self._now += step
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"
