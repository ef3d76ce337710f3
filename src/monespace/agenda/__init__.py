"""The agenda: prevention reminders from the French prevention calendar.

The calendar ships as versioned data, one edition a year (:func:`editions`,
:func:`load_edition`), and its evaluation is pure (:func:`evaluate`, :func:`preview`): the
clock and the person's facts are passed in. See ``docs/explanation/prevention-rule-pack.md``.

.. versionadded:: 0.1
"""

from ._edition import DEFAULT_EDITION, editions, load_edition, parse_edition
from ._model import (
    REMINDER_ID,
    Act,
    AgeOffset,
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
    Source,
    Why,
)
from ._rules import DEFAULT_LOOK_AHEAD, Person, evaluate, evaluate_rule, preview

__all__ = [
    "DEFAULT_EDITION",
    "DEFAULT_LOOK_AHEAD",
    "REMINDER_ID",
    "Act",
    "AgeOffset",
    "Evidence",
    "Family",
    "Person",
    "Phase",
    "Proof",
    "Reminder",
    "ReminderRule",
    "ReminderStatus",
    "RepeatKind",
    "RulePack",
    "Season",
    "Source",
    "Why",
    "editions",
    "evaluate",
    "evaluate_rule",
    "load_edition",
    "parse_edition",
    "preview",
]
