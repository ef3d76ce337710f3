"""What the agenda's prevention rules are made of, and what an evaluation gives back.

A :class:`RulePack` is one edition of the French prevention calendar, read from package data
(``monespace/agenda/data/prevention-<edition>.json``). Each :class:`ReminderRule` is one item
of it. Evaluating the pack for a person at a date gives :class:`Reminder` objects, each with
the :class:`Why` the user is entitled to see (décret 2024-468: the user can always see why a
prevention message was sent).

.. versionadded:: 0.1
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Final, Literal, TypeAlias
from zoneinfo import ZoneInfo

import attrs

from monespace._text import check_text
from monespace.errors import ValidationError
from monespace.identity import RPPS

__all__ = [
    "PARIS",
    "REMINDER_ID",
    "Act",
    "AgeOffset",
    "AgendaSettings",
    "Event",
    "EventChange",
    "EventKind",
    "EventStatus",
    "Evidence",
    "Family",
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
]

#: The public grammar of reminder ids. Ids are a contract: stored "done" acts, opt-outs and
#: the messages already sent refer to them, so an id never changes meaning between editions.
REMINDER_ID: Final = re.compile(
    r"vaccination\.[a-z][a-z0-9]*(\.[a-z0-9]+)?"
    r"|child_exam\.([1-9]|1[0-9]|20)"
    r"|mt_dents\.([0-9]+|pregnancy)"
    r"|bilan_prevention\.(18-25|45-50|60-65|70-75)"
    r"|screening\.(colorectal|breast|cervical)"
    r"|advance_directives\.review"
)

_OFFSET: Final = re.compile(r"(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?")

RuleSex: TypeAlias = Literal["F", "M", "any"]


class Family(StrEnum):
    """The kind of prevention act a rule is about."""

    VACCINATION = "vaccination"
    CHILD_EXAM = "child_exam"
    MT_DENTS = "mt_dents"
    BILAN_PREVENTION = "bilan_prevention"
    SCREENING = "screening"
    ADVANCE_DIRECTIVES = "advance_directives"


class Evidence(StrEnum):
    """How well a rule is established, as marked in ``docs/domain-rules.md``."""

    #: Confirmed by an official source or several concordant ones.
    CONFIRMED = "C"
    #: Partially confirmed (some details unknown).
    PARTIAL = "P"
    #: Unconfirmed: a documented, configurable default.
    UNCONFIRMED = "U"


class RepeatKind(StrEnum):
    """Whether a rule happens once, at intervals, or every campaign season."""

    NONE = "none"
    INTERVAL = "interval"
    SEASONAL = "seasonal"


class ReminderStatus(StrEnum):
    """Where a reminder stands at the evaluation date."""

    #: The window has opened and nothing proves the act was done.
    DUE = "due"
    #: The window opens within the look-ahead.
    UPCOMING = "upcoming"
    #: The window has closed and the act is still missing (a catch-up may be possible).
    OVERDUE = "overdue"
    #: The act was done; for a repeated rule, its interval has not restarted it yet.
    DONE = "done"


@attrs.frozen(order=True)
class AgeOffset:
    """A duration counted in calendar years, months and days, as ages are.

    Adding it to a date adds the years and months first, keeping the day of the month or
    clamping it to the month's last day (a child born on 29 February is one year old on
    28 February in a common year), then the days.
    """

    years: int = 0
    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> AgeOffset:
        """Read ``"2m"``, ``"65y"``, ``"8d"``, ``"2w"`` or a combination such as ``"1y6m"``.

        :raises ValueError: if *text* is not of that form.
        """
        match = _OFFSET.fullmatch(text)
        if not text or match is None:
            raise ValueError(f"an age offset must look like '2m', '65y' or '8d' (got {text!r})")
        years, months, weeks, days = (int(group) if group else 0 for group in match.groups())
        return cls(years=years, months=months, days=weeks * 7 + days)

    def after(self, start: dt.date) -> dt.date:
        """The date this offset after *start*."""
        return _shift(start, self.years, self.months, self.days)

    def minus(self, other: AgeOffset) -> AgeOffset:
        """The component-wise difference, used as the length of a repeated window."""
        return AgeOffset(
            years=self.years - other.years,
            months=self.months - other.months,
            days=self.days - other.days,
        )

    def __str__(self) -> str:
        parts = [f"{self.years}y" * bool(self.years), f"{self.months}m" * bool(self.months)]
        parts.append(f"{self.days}d" * bool(self.days))
        return "".join(parts) or "0d"


# Evaluations ask for the same few ages of the same birth dates over and over.
@functools.lru_cache(maxsize=16384)
def _shift(start: dt.date, years: int, months: int, days: int) -> dt.date:
    moved = start
    if years or months:
        year, month0 = divmod(start.year * 12 + start.month - 1 + years * 12 + months, 12)
        try:
            moved = start.replace(year=year, month=month0 + 1)
        except ValueError:
            # The day does not exist in that month: the month's last day stands for it.
            moved = dt.date(year, month0 + 1, calendar.monthrange(year, month0 + 1)[1])
    return moved + dt.timedelta(days=days) if days else moved


@attrs.frozen
class Source:
    """Where a rule comes from: a short text and a reference (URL or document section)."""

    text: str
    ref: str


@attrs.frozen
class Phase:
    """From an age on (counted from the rule's anchor), how long until the act is due again."""

    start: AgeOffset
    every: AgeOffset


@attrs.frozen
class Season:
    """A yearly campaign window, given as (month, day) pairs; it may run over the new year."""

    start: tuple[int, int]
    end: tuple[int, int]

    def window(self, year: int) -> tuple[dt.date, dt.date]:
        """The campaign that opens in *year*: first and last day, both included."""
        first = dt.date(year, *self.start)
        last_year = year + 1 if self.end < self.start else year
        return first, dt.date(last_year, *self.end)


@attrs.frozen
class Proof:
    """Which facts prove that a rule's act was done.

    An entry of the ``done`` map under the rule's own id always does. Besides:

    - ``reminders``: other reminder ids whose act also proves this one (the second MMR dose
      completes the adult MMR catch-up);
    - ``atc``: ATC codes of vaccines, matched as prefixes (``J07BB`` covers ``J07BB02``);
    - ``cis``: CIS codes of medicinal products, matched exactly;
    - ``format_codes``: document format codes (the CS8, CS9 and CS24 certificates);
    - ``type_codes``: LOINC document type codes;
    - ``dose``: the act must be the n-th matching one of the person's life (dose n of a series);
    - ``start``: matching acts earlier than this age (from the anchor) do not count; ``None``
      means the start of the rule's window.
    """

    reminders: tuple[str, ...] = ()
    atc: tuple[str, ...] = ()
    cis: tuple[str, ...] = ()
    format_codes: tuple[str, ...] = ()
    type_codes: tuple[str, ...] = ()
    dose: int | None = None
    start: AgeOffset | None = None


@attrs.frozen
class ReminderRule:
    """One item of the prevention calendar.

    Ages (``due_from``, ``due_until``, ``until`` and the phases) count from the *anchor*: the
    birth date, or the date of a condition the person has (``"pregnancy"``,
    ``"advance_directives"``: the date the directives were stored).

    - ``due_from`` .. ``due_until``: the window of the act, ``due_until`` excluded and
      ``None`` for no upper age. For a repeated rule this is the first window, and every
      later one has the same length.
    - ``until``: from this age on the rule no longer applies; a missed act stays overdue
      until then. ``None``: never.
    """

    id: str
    family: Family
    title: str
    due_from: AgeOffset
    due_until: AgeOffset | None
    source: Source
    status: Evidence
    sex: RuleSex = "any"
    born_from: dt.date | None = None
    born_before: dt.date | None = None
    anchor: str = "birth"
    until: AgeOffset | None = None
    repeat: RepeatKind = RepeatKind.NONE
    every: tuple[Phase, ...] = ()
    season: Season | None = None
    proof: Proof = Proof()


@attrs.frozen
class RulePack:
    """One edition of the prevention calendar: its name, title and rules, in calendar order."""

    edition: str
    title: str
    rules: tuple[ReminderRule, ...]

    def rule(self, reminder_id: str) -> ReminderRule:
        """The rule with this id.

        :raises KeyError: if the edition has none.
        """
        for rule in self.rules:
            if rule.id == reminder_id:
                return rule
        raise KeyError(reminder_id)


@attrs.frozen
class Act:
    """A typed fact: something done on a date, named by a code.

    ``system`` is ``"atc"``, ``"cis"``, ``"format_code"``, ``"type_code"`` or ``"reminder"``
    (then ``code`` is a reminder id, as in the ``done`` map).
    """

    on: dt.date
    system: Literal["atc", "cis", "format_code", "type_code", "reminder"] = attrs.field(
        validator=attrs.validators.in_(("atc", "cis", "format_code", "type_code", "reminder"))
    )
    code: str


@attrs.frozen
class Why:
    """Why a reminder is shown: the rule, its source and evidence, and the facts used.

    ``age_days`` is the person's age at the evaluation date counted from the rule's anchor;
    ``last_act`` the latest act that proved the rule (with ``proved_by``, e.g.
    ``"atc:J07CA01"`` or ``"reminder:vaccination.dtp.65"``), if any.
    """

    rule: str
    edition: str
    source: Source
    evidence: Evidence
    sex: str
    age_days: int
    last_act: dt.date | None = None
    proved_by: str | None = None


@attrs.frozen
class Reminder:
    """One prevention reminder for a person at a date.

    ``due_from`` and ``due_until`` are the first and last day of the current window
    (``due_until`` is ``None`` when the window has no end). For a ``done`` repeated
    reminder they are the next window, once the interval restarts it.
    """

    id: str
    family: Family
    title: str
    status: ReminderStatus
    due_from: dt.date
    due_until: dt.date | None
    why: Why
    source: Source


# --- the agenda: appointments and health events --------------------------------------------

#: The time zone agenda times are shown in (they are stored as instants).
PARIS: Final = ZoneInfo("Europe/Paris")

_MAX_LINE: Final = 200
_MAX_NOTES: Final = 4000
_MAX_DOCUMENTS: Final = 50


class EventKind(StrEnum):
    """What an agenda event is."""

    APPOINTMENT = "appointment"
    VACCINATION = "vaccination"
    EXAMINATION = "examination"
    SCREENING = "screening"
    BILAN_PREVENTION = "bilan_prevention"
    OTHER = "other"


class EventStatus(StrEnum):
    """Where an agenda event stands (the allowed transitions are in ``_rules``)."""

    PLANNED = "planned"
    DONE = "done"
    CANCELLED = "cancelled"
    MISSED = "missed"


def _kind(value: EventKind | str) -> EventKind:
    try:
        return EventKind(value)
    except ValueError:
        raise ValidationError(f"an event's kind is one of {[k.value for k in EventKind]}") from None


def _status(value: EventStatus | str) -> EventStatus:
    try:
        return EventStatus(value)
    except ValueError:
        raise ValidationError(
            f"an event's status is one of {[s.value for s in EventStatus]}"
        ) from None


def _line(_inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """One line of text (it may become an iCalendar value): the library's one text check."""
    if value is None:
        return
    if not value.strip():
        raise ValidationError(f"'{attribute.name}' must not be blank")
    check_text(attribute.name, value, max_length=_MAX_LINE)


def _notes(_inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    if not value.strip():
        raise ValidationError(f"'{attribute.name}' must not be blank")
    check_text(attribute.name, value, max_length=_MAX_NOTES, multiline=True)


def _aware(_inst: object, attribute: attrs.Attribute[Any], value: dt.datetime | None) -> None:
    if value is None:
        return
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValidationError(f"'{attribute.name}' must be an aware datetime (with a time zone)")


def _rpps(_inst: object, _attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        RPPS.parse(value)


def _reminder_id(_inst: object, _attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not REMINDER_ID.fullmatch(value):
        raise ValidationError("'reminder_id' is not a reminder id of the prevention calendar")


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _documents(_inst: object, _attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if len(value) > _MAX_DOCUMENTS:
        raise ValidationError(f"an event links at most {_MAX_DOCUMENTS} documents")
    for document_id in value:
        if not document_id or len(document_id) > 64 or not document_id.isprintable():
            raise ValidationError("a linked document id must be 1 to 64 printable characters")


@attrs.frozen(repr=False)
class Event:
    """An appointment or a health event of a person's agenda.

    Times are instants (aware datetimes); :attr:`local_start` shows them in Europe/Paris.
    ``title``, ``place``, ``professional``, ``establishment``, ``notes`` and ``documents``
    are sealed with the person's key; kind, status and times are not.

    :param professional: the RPPS number of the professional seen, if any.
    :param establishment: the establishment (a FINESS number or its name), if any.
    :param documents: ids of record documents linked to the event (a report, a certificate).
    :param reminder_id: the prevention reminder this event fulfils, if any.
    :param uid: the iCalendar UID: stable across exports, the platform's when imported.
    :param sequence: the iCalendar SEQUENCE: raised by each reschedule or cancellation.
    :param version: the version of the event in its history (1 when created).
    """

    id: str
    patient_id: str
    kind: EventKind = attrs.field(converter=_kind)
    starts_at: dt.datetime = attrs.field(validator=_aware)
    ends_at: dt.datetime | None = attrs.field(default=None, validator=_aware)
    status: EventStatus = attrs.field(default=EventStatus.PLANNED, converter=_status)
    title: str | None = attrs.field(default=None, validator=_line)
    place: str | None = attrs.field(default=None, validator=_line)
    professional: str | None = attrs.field(default=None, validator=_rpps)
    establishment: str | None = attrs.field(default=None, validator=_line)
    notes: str | None = attrs.field(default=None, validator=_notes)
    documents: tuple[str, ...] = attrs.field(default=(), converter=_ids, validator=_documents)
    reminder_id: str | None = attrs.field(default=None, validator=_reminder_id)
    uid: str = attrs.field(default="", validator=_line)
    sequence: int = 0
    version: int = 1
    changed_at: dt.datetime | None = None

    def __attrs_post_init__(self) -> None:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValidationError("an event must end after it starts")

    @property
    def local_start(self) -> dt.datetime:
        """The start, in Europe/Paris time."""
        return self.starts_at.astimezone(PARIS)

    @property
    def local_end(self) -> dt.datetime | None:
        """The end, in Europe/Paris time (``None`` when open)."""
        return None if self.ends_at is None else self.ends_at.astimezone(PARIS)

    def __repr__(self) -> str:
        # Sealed fields stay out of reprs (and so out of logs and tracebacks).
        return f"Event(id={self.id!r}, kind={self.kind.value!r}, status={self.status.value!r})"


@attrs.frozen
class EventChange:
    """One version in an event's history: what changed, when, and by whom."""

    version: int
    change: str
    status: EventStatus
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    at: dt.datetime
    actor_kind: str
    actor_id: str


@attrs.frozen
class SentReminder:
    """A reminder notice queued for someone, and why (décret 2024-468: the user can always
    see why a prevention message was sent).

    :param cycle: the first day of the window the reminder was sent for.
    :param recipient: ``"holder"`` or ``"representative"``.
    """

    reminder_id: str
    cycle: dt.date
    recipient: str
    sent_at: dt.datetime
    why: Why


@attrs.frozen
class AgendaSettings:
    """Settings of the agenda (``Settings.agenda``).

    :param send_reminders: whether :meth:`monespace.Space.tick` queues reminder notices.
        Off by default: prevention messages are the health insurer's to send (décret
        2024-468), so a deployment turns them on deliberately; ``space.agenda.tick`` sends
        them whatever this says.
    :param edition: the edition of the prevention calendar evaluated (None: the default).
    """

    send_reminders: bool = False
    edition: str | None = None
