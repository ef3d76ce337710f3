"""The agenda: a person's appointments and health events, and prevention reminders from the
French prevention calendar (``space.agenda``, :class:`AgendaService`).

The calendar ships as versioned data, one edition a year (:func:`editions`,
:func:`load_edition`), and its evaluation is pure (:func:`evaluate`, :func:`preview`): the
clock and the person's facts are passed in. See ``docs/explanation/prevention-rule-pack.md``.

.. versionadded:: 0.1
"""

from ._edition import DEFAULT_EDITION, editions, load_edition, parse_edition
from ._ical import (
    DEFAULT_HORIZON,
    MAX_EVENTS,
    MAX_ICS_BYTES,
    MAX_OCCURRENCES,
    ImportReport,
    ParsedEvent,
    read_calendar,
    write_calendar,
)
from ._model import (
    PARIS,
    REMINDER_ID,
    Act,
    AgendaSettings,
    AgeOffset,
    Event,
    EventChange,
    EventKind,
    EventStatus,
    Evidence,
    Family,
    Phase,
    Proof,
    Reminder,
    ReminderRule,
    ReminderStatus,
    RepeatKind,
    RulePack,
    Season,
    SentReminder,
    Source,
    Why,
)
from ._rules import (
    DEFAULT_LOOK_AHEAD,
    TRANSITIONS,
    Person,
    check_transition,
    evaluate,
    evaluate_rule,
    preview,
)
from ._service import REMINDER_NOTICE, AgendaService

__all__ = [
    "DEFAULT_EDITION",
    "DEFAULT_HORIZON",
    "DEFAULT_LOOK_AHEAD",
    "MAX_EVENTS",
    "MAX_ICS_BYTES",
    "MAX_OCCURRENCES",
    "PARIS",
    "REMINDER_ID",
    "REMINDER_NOTICE",
    "TRANSITIONS",
    "Act",
    "AgeOffset",
    "AgendaService",
    "AgendaSettings",
    "Event",
    "EventChange",
    "EventKind",
    "EventStatus",
    "Evidence",
    "Family",
    "ImportReport",
    "ParsedEvent",
    "Person",
    "Phase",
    "Proof",
    "Reminder",
    "ReminderRule",
    "ReminderStatus",
    "RepeatKind",
    "RulePack",
    "Season",
    "SentReminder",
    "Source",
    "Why",
    "check_transition",
    "editions",
    "evaluate",
    "evaluate_rule",
    "load_edition",
    "parse_edition",
    "preview",
    "read_calendar",
    "write_calendar",
]
