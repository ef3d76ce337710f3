"""Rows <-> model for the agenda: events, their history, and the reminders sent.

Kind, status, times, the reminder id and the iCalendar UID stay in clear columns (to list,
order and evaluate without decrypting); the title, place, professional, establishment, notes
and linked documents go in a payload the service seals with the person's key. Payloads are
written and read through the cattrs converter of :mod:`monespace.codec`.
"""

from __future__ import annotations

import datetime as dt

import attrs

from monespace.codec import make_converter
from monespace.storage import AgendaEventRow, ReminderSentRow

from ._model import Event, EventChange, EventKind, EventStatus, SentReminder, Why

__all__ = [
    "EVENT_KIND",
    "SENT_KIND",
    "change_from_row",
    "event_from_row",
    "event_payload",
    "event_row",
    "sent_from_row",
    "why_payload",
]

#: The kinds the agenda's sealed payloads are bound to (part of their associated data).
EVENT_KIND = "agenda-event"
SENT_KIND = "reminder-sent"

_CODEC = make_converter()


@attrs.frozen
class _EventPayload:
    """The sealed part of an event row."""

    title: str | None = None
    place: str | None = None
    professional: str | None = None
    establishment: str | None = None
    notes: str | None = None
    documents: tuple[str, ...] = ()


def event_payload(event: Event) -> bytes:
    """The payload of *event* to seal into its row."""
    payload = _EventPayload(
        event.title,
        event.place,
        event.professional,
        event.establishment,
        event.notes,
        event.documents,
    )
    return _CODEC.dumps(payload).encode()


def event_row(
    event: Event, sealed: bytes, *, at: dt.datetime, actor_kind: str, actor_id: str, change: str
) -> AgendaEventRow:
    """The row that stores *event* (its payload sealed by the caller) as changed at *at*."""
    return AgendaEventRow(
        patient_id=event.patient_id,
        id=event.id,
        version=event.version,
        kind=str(event.kind),
        status=str(event.status),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        reminder_id=event.reminder_id,
        uid=event.uid,
        sequence=event.sequence,
        changed_at=at,
        actor_kind=actor_kind,
        actor_id=actor_id,
        change=change,
        sealed=sealed,
    )


def event_from_row(row: AgendaEventRow, payload: bytes) -> Event:
    """The event stored in *row*, *payload* being its opened ``sealed``."""
    data = _CODEC.loads(payload, _EventPayload)
    return Event(
        id=row.id,
        patient_id=row.patient_id,
        kind=EventKind(row.kind),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=EventStatus(row.status),
        title=data.title,
        place=data.place,
        professional=data.professional,
        establishment=data.establishment,
        notes=data.notes,
        documents=data.documents,
        reminder_id=row.reminder_id,
        uid=row.uid,
        sequence=row.sequence,
        version=row.version,
        changed_at=row.changed_at,
    )


def change_from_row(row: AgendaEventRow) -> EventChange:
    """One line of an event's history (from clear columns only)."""
    return EventChange(
        version=row.version,
        change=row.change,
        status=EventStatus(row.status),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        at=row.changed_at,
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
    )


def why_payload(why: Why) -> bytes:
    """The reasons of a reminder, to seal into the line that records its sending."""
    return _CODEC.dumps(why).encode()


def sent_from_row(row: ReminderSentRow, payload: bytes, recipient: str) -> SentReminder:
    """A sent reminder, *payload* being the opened reasons."""
    return SentReminder(
        reminder_id=row.reminder_id,
        cycle=dt.date.fromisoformat(row.cycle),
        recipient=recipient,
        sent_at=row.sent_at,
        why=_CODEC.loads(payload, Why),
    )
