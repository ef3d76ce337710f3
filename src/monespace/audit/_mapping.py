"""Audit rows <-> events, through the row converter of :mod:`monespace.codec`.

The mapping changes no value the hash covers (:func:`~monespace.audit.canonical_bytes` reads
the enum values a row stores), so trails written before rows existed still verify.
"""

from __future__ import annotations

from collections.abc import Iterable

from cattrs.errors import BaseValidationError

from ..codec import restructure
from ..errors import AuditIntegrityError
from ..storage import AuditRow
from ._model import AuditEvent

__all__ = ["event_from_row", "event_row", "events_from_rows"]


def event_row(event: AuditEvent) -> AuditRow:
    """The row that stores *event*."""
    row: AuditRow = restructure(event, AuditRow)
    return row


def event_from_row(row: AuditRow) -> AuditEvent:
    """The event a row stores.

    :raises AuditIntegrityError: when the row holds a value no event has (an unknown actor
        kind, outcome or mode): only an edit outside monespace writes one.
    """
    try:
        event: AuditEvent = restructure(row, AuditEvent)
    except (BaseValidationError, ValueError, TypeError) as exc:
        raise AuditIntegrityError(f"audit event {row.seq} is malformed", seq=row.seq) from exc
    return event


def events_from_rows(rows: Iterable[AuditRow]) -> list[AuditEvent]:
    """The events some rows store, in their order."""
    return [event_from_row(row) for row in rows]
