"""iCalendar (RFC 5545): a person's agenda as one ``.ics`` file, and files from booking
platforms read into events, strictly.

Writing: one VEVENT per event, its UID stable across exports, times in Europe/Paris with the
VTIMEZONE that defines it. Health details (title, kind, place, professional, notes) are left
out unless asked for: a calendar file travels (mail, phones, shared calendars).

Reading refuses what a hostile or broken file could do to a space: more than
:data:`MAX_ICS_BYTES`, more than :data:`MAX_EVENTS` events, a recurrence expanding past
:data:`MAX_OCCURRENCES` within the horizon, an unknown time zone (zones come from the IANA
database: a VTIMEZONE defines none), a line break inside a one-line value (an attempt to
inject properties), and recurrence rules whose expansion costs time regardless of the
horizon: more than :data:`MAX_RULES` of them, a frequency finer than daily, a rule part a
booking platform does not write, a series starting more than :data:`MAX_SERIES_AGE` before
the horizon (see :func:`_check_rules`). It decides nothing: the agenda service applies what
it read, in one transaction.

.. versionadded:: 0.1
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import icalendar
import recurring_ical_events  # type: ignore[import-untyped]

from monespace.errors import ValidationError

from ._model import PARIS, Event, EventKind, EventStatus

__all__ = [
    "DEFAULT_HORIZON",
    "MAX_EVENTS",
    "MAX_ICS_BYTES",
    "MAX_OCCURRENCES",
    "MAX_RULES",
    "MAX_SERIES_AGE",
    "ImportReport",
    "ParsedEvent",
    "read_calendar",
    "write_calendar",
]

#: How far ahead (and back) a recurring event is expanded into occurrences.
DEFAULT_HORIZON: Final = dt.timedelta(days=365)
#: The largest file read (a booking platform's export of one person is a few kilobytes).
MAX_ICS_BYTES: Final = 1024 * 1024
#: The most VEVENT components a file may hold.
MAX_EVENTS: Final = 2000
#: The most events a file may give once its recurrences are expanded.
MAX_OCCURRENCES: Final = 2000
#: The most recurrence rules (RRULE properties) a file may hold.
MAX_RULES: Final = 10
#: How long before the horizon's start a recurring series may begin.
MAX_SERIES_AGE: Final = dt.timedelta(days=3660)

_PRODID: Final = "-//monespace//agenda//FR"
_GENERIC: Final = "Rendez-vous"
_LABELS: Final = {
    EventKind.APPOINTMENT: "Rendez-vous",
    EventKind.VACCINATION: "Vaccination",
    EventKind.EXAMINATION: "Examen",
    EventKind.SCREENING: "Dépistage",
    EventKind.BILAN_PREVENTION: "Bilan prévention",
    EventKind.OTHER: "Événement de santé",
}
_ONE_LINE: Final = ("UID", "SUMMARY", "LOCATION", "X-MONESPACE-KIND", "STATUS", "TZID")
#: Properties read as single values (recurring_ical_events fails on a list).
_ONCE: Final = ("DTSTART", "DTEND", "DURATION", "SEQUENCE", "RECURRENCE-ID", "LAST-MODIFIED")
_FREQUENCIES: Final = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_RULE_PARTS: Final = frozenset(
    {"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYDAY", "BYMONTH", "BYMONTHDAY", "BYHOUR"}
    | {"BYMINUTE", "BYSETPOS", "WKST"}
)
#: Rule parts that can filter out every day of a period: allowed where a period is a month
#: or a year, whose dateless expansion costs little (dateutil looks for a match up to 9999).
_MONTHLY_PARTS: Final = frozenset({"BYMONTHDAY", "BYSETPOS"})
_MAX_TIMES_A_DAY: Final = 24
_MAX_INTERVAL: Final = 1000
_MAX_TIMEZONES: Final = 20
_FOLD: Final = re.compile(r"\r?\n[ \t]")
_VTIMEZONE: Final = re.compile(r"^BEGIN:VTIMEZONE", re.IGNORECASE | re.MULTILINE)


@attrs.frozen
class ParsedEvent:
    """One event (or one occurrence of a recurring event) read from a file.

    :param uid: the file's UID; an occurrence's adds its start (``UID/20260105T083000Z``).
    :param modified: LAST-MODIFIED (else DTSTAMP), to order updates of equal SEQUENCE.
    :param cancelled: ``STATUS:CANCELLED``, or the whole file is a ``METHOD:CANCEL``.
    """

    uid: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    kind: EventKind = EventKind.APPOINTMENT
    title: str | None = None
    place: str | None = None
    notes: str | None = None
    sequence: int = 0
    modified: dt.datetime | None = None
    cancelled: bool = False


@attrs.frozen
class ImportReport:
    """What an import did: events created, updated, cancelled, and left as they were."""

    created: int = 0
    updated: int = 0
    cancelled: int = 0
    unchanged: int = 0


# --- writing ---------------------------------------------------------------------------------


def write_calendar(
    events: Iterable[Event], *, include_details: bool = False, now: dt.datetime
) -> bytes:
    """One VCALENDAR holding *events*, with the Europe/Paris VTIMEZONE.

    :param include_details: add the title, kind, place, professional, establishment, notes
        and reminder id; without it each event is a "Rendez-vous" with its times and status.
    :param now: the DTSTAMP of every event (the clock is passed in).
    """
    calendar = icalendar.Calendar()
    calendar.add("prodid", _PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    for event in events:
        calendar.add_component(_vevent(event, include_details, now))
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def _vevent(event: Event, details: bool, now: dt.datetime) -> icalendar.Event:
    vevent = icalendar.Event()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", now.astimezone(dt.UTC))
    vevent.add("dtstart", _local(event.starts_at))
    if event.ends_at is not None:
        vevent.add("dtend", _local(event.ends_at))
    vevent.add("sequence", event.sequence)
    if event.changed_at is not None:
        vevent.add("last-modified", event.changed_at.astimezone(dt.UTC))
    vevent.add("status", "CANCELLED" if event.status is EventStatus.CANCELLED else "CONFIRMED")
    if not details:
        vevent.add("summary", _GENERIC)
        return vevent
    vevent.add("summary", event.title or _LABELS[event.kind])
    vevent.add("x-monespace-kind", str(event.kind))
    vevent.add("x-monespace-status", str(event.status))
    if event.place:
        vevent.add("location", event.place)
    description = [event.notes] if event.notes else []
    if event.professional:
        vevent.add("x-monespace-rpps", event.professional)
    if event.establishment:
        description.append(f"Établissement : {event.establishment}")
    if description:
        vevent.add("description", "\n".join(description))
    if event.reminder_id:
        vevent.add("x-monespace-reminder", event.reminder_id)
    return vevent


# --- reading ---------------------------------------------------------------------------------


def read_calendar(
    data: bytes, *, now: dt.datetime, horizon: dt.timedelta = DEFAULT_HORIZON
) -> list[ParsedEvent]:
    """The events of an iCalendar file; recurring ones expanded within ``now ± horizon``.

    :raises ValidationError: (and nothing is read) for an oversized file, too many events or
        occurrences, a malformed file, an unknown time zone, a line break in a one-line value.
    """
    if len(data) > MAX_ICS_BYTES:
        raise ValidationError(f"an iCalendar file must be at most {MAX_ICS_BYTES} bytes")
    if horizon <= dt.timedelta(0) or horizon > dt.timedelta(days=3660):
        raise ValidationError("the horizon must be between one day and ten years")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("an iCalendar file must be UTF-8") from exc
    if "\x00" in text:
        raise ValidationError("an iCalendar file must not contain NUL characters")
    calendar = _parse(text)
    vevents = list(itertools.islice(calendar.walk("VEVENT"), MAX_EVENTS + 1))
    if len(vevents) > MAX_EVENTS:
        raise ValidationError(f"an iCalendar file may hold at most {MAX_EVENTS} events")
    _check_rules(vevents, now - horizon)
    cancel_all = str(calendar.get("METHOD", "")).upper() == "CANCEL"
    found: list[ParsedEvent] = []
    recurring: set[str] = set()
    for vevent in vevents:
        _check_values(vevent)
        uid = str(vevent.get("UID", ""))
        # An override of one occurrence (RECURRENCE-ID) is applied by the expansion.
        if any(vevent.get(name) is not None for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
            recurring.add(uid)
            continue
        found.append(_parsed(vevent, uid, cancel_all))
    if recurring:
        found += _occurrences(
            calendar, recurring, now=now, horizon=horizon, cancel_all=cancel_all, already=len(found)
        )
    if len(found) > MAX_OCCURRENCES:
        raise ValidationError(f"an iCalendar file may give at most {MAX_OCCURRENCES} events")
    uids = [item.uid for item in found]
    if len(set(uids)) != len(uids):
        raise ValidationError("an iCalendar file holds the same UID twice")
    return found


def _parse(text: str) -> icalendar.Calendar:
    """The calendar of *text*, whose time zones are all known ones.

    icalendar builds a time zone from each VTIMEZONE of an unknown TZID (seconds for a file
    of thousands) and keeps it for the whole process, where later files find it: what this
    parse adds to that cache is taken out again, and a file defining its own zone refused.
    """
    if len(_VTIMEZONE.findall(_FOLD.sub("", text))) > _MAX_TIMEZONES:
        raise ValidationError(f"an iCalendar file may define at most {_MAX_TIMEZONES} time zones")
    cache: dict[str, object] = getattr(icalendar.timezone.tzp, "_TZP__tz_cache", {})
    known = set(cache)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ValidationError("not a valid iCalendar file") from exc
    except OSError as exc:  # zoneinfo opening a TZID too long for a path, or a directory
        raise ValidationError("an event names an unknown time zone") from exc
    except (AttributeError, TypeError) as exc:  # a parameter or TZID given as a list
        raise ValidationError("not a valid iCalendar file") from exc
    finally:
        for tzid in set(cache) - known:
            cache.pop(tzid, None)
    if not isinstance(calendar, icalendar.Calendar):
        raise ValidationError("not an iCalendar VCALENDAR")
    for vtimezone in calendar.walk("VTIMEZONE"):
        _zone(str(vtimezone.get("TZID", "")))
    return calendar


def _occurrences(
    calendar: icalendar.Calendar,
    recurring: set[str],
    *,
    now: dt.datetime,
    horizon: dt.timedelta,
    cancel_all: bool,
    already: int,
) -> list[ParsedEvent]:
    """The occurrences of the recurring events within ``now ± horizon``, capped."""
    start, stop = (now - horizon).astimezone(dt.UTC), (now + horizon).astimezone(dt.UTC)
    budget = MAX_OCCURRENCES - already
    found: list[ParsedEvent] = []
    try:
        for occurrence in recurring_ical_events.of(calendar).between(start, stop):
            if str(occurrence.get("UID", "")) not in recurring:
                continue
            if len(found) >= budget:
                raise ValidationError(
                    f"an iCalendar file may give at most {MAX_OCCURRENCES} events"
                )
            begins = _instant(occurrence.get("DTSTART"), "DTSTART")
            uid = f"{occurrence.get('UID', '')}/{begins.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
            found.append(_parsed(occurrence, uid, cancel_all))
    # OSError: zoneinfo opening the calendar's X-WR-TIMEZONE (too long for a path, a directory).
    except (ValueError, TypeError, KeyError, OSError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError("a recurring event of the iCalendar file is malformed") from exc
    return found


def _check_rules(vevents: list[icalendar.Component], start: dt.datetime) -> None:
    """Refuse recurrences whose expansion is costly whatever the horizon.

    dateutil expands a rule from its DTSTART, period by period, and goes on to the year 9999
    when a rule's filters match no day: the cost grows with the rules, their frequency and
    their age, not with the occurrences kept. What booking platforms write (weekly physio,
    daily care at set hours, a monthly or yearly check-up) stays within these bounds.
    """
    rules = 0
    for vevent in vevents:
        if vevent.get("EXRULE") is not None:
            raise ValidationError("an event's EXRULE is not supported (RFC 5545 removed it)")
        found = vevent.get("RRULE")
        if found is None:
            continue
        items = found if isinstance(found, list) else [found]
        rules += len(items)
        if rules > MAX_RULES:
            raise ValidationError(f"an iCalendar file may hold at most {MAX_RULES} RRULE")
        for rule in items:
            _check_rule(rule)
        if _instant(vevent.get("DTSTART"), "DTSTART") < start - MAX_SERIES_AGE:
            raise ValidationError("a recurring event starts too long before the horizon")


def _check_rule(rule: Any) -> None:
    if not isinstance(rule, icalendar.vRecur) or not rule.get("FREQ"):
        raise ValidationError("an event's RRULE is malformed")
    unknown = set(rule) - _RULE_PARTS
    if unknown:
        raise ValidationError("an event's RRULE has a part this importer does not read")
    interval = rule.get("INTERVAL", [1])[0]
    if not isinstance(interval, int) or not 1 <= interval <= _MAX_INTERVAL:
        raise ValidationError(f"an event's RRULE INTERVAL must be between 1 and {_MAX_INTERVAL}")
    frequency = str(rule["FREQ"][0]).upper()
    if frequency not in _FREQUENCIES:
        raise ValidationError("an event may repeat at most daily")
    if frequency in ("DAILY", "WEEKLY") and set(rule) & _MONTHLY_PARTS:
        raise ValidationError("BYMONTHDAY and BYSETPOS are for monthly or yearly rules")
    times = len(rule.get("BYHOUR", [0])) * len(rule.get("BYMINUTE", [0]))
    if times > _MAX_TIMES_A_DAY:
        raise ValidationError(f"an event may repeat at most {_MAX_TIMES_A_DAY} times a day")


def _check_values(vevent: icalendar.Component) -> None:
    for name in _ONE_LINE + _ONCE:
        value = vevent.get(name)
        if isinstance(value, list):
            raise ValidationError(f"an event may have its {name} once only")
    for name in _ONE_LINE:
        value = vevent.get(name)
        if value is not None and any(c in str(value) for c in "\r\n"):
            raise ValidationError(f"the {name} of an event must be one line")
    if not str(vevent.get("UID", "")).strip():
        raise ValidationError("every event of an iCalendar file needs a UID")


def _parsed(vevent: icalendar.Component, uid: str, cancel_all: bool) -> ParsedEvent:
    if len(uid) > 200:
        raise ValidationError("an event's UID must be at most 200 characters")
    starts_at = _instant(vevent.get("DTSTART"), "DTSTART")
    end = vevent.get("DTEND")
    ends_at = None if end is None else _instant(end, "DTEND")
    if ends_at is not None and ends_at < starts_at:
        raise ValidationError("an event must end after it starts")
    # Stored in UTC. Ordered in local time first: an end in the hour skipped when summer
    # time begins is read with the offset before the gap (RFC 5545), which can put it before
    # a start read after the gap; such an event is kept, without an end.
    starts_at = starts_at.astimezone(dt.UTC)
    ends_at = None if ends_at is None else max(ends_at.astimezone(dt.UTC), starts_at)
    if ends_at == starts_at:
        ends_at = None  # a zero-length event (a reminder, a deadline) has no end
    kind_text = str(vevent.get("X-MONESPACE-KIND", EventKind.APPOINTMENT))
    try:
        kind = EventKind(kind_text)
    except ValueError:
        kind = EventKind.APPOINTMENT
    try:
        sequence = int(vevent.get("SEQUENCE", 0))
    except (TypeError, ValueError) as exc:
        raise ValidationError("an event's SEQUENCE must be a number") from exc
    if not 0 <= sequence < 2**31:
        raise ValidationError("an event's SEQUENCE is out of range")
    modified = vevent.get("LAST-MODIFIED") or vevent.get("DTSTAMP")
    status = str(vevent.get("STATUS", "")).upper()
    return ParsedEvent(
        uid=uid,
        starts_at=starts_at,
        ends_at=ends_at,
        kind=kind,
        title=_text(vevent.get("SUMMARY")),
        place=_text(vevent.get("LOCATION")),
        notes=_text(vevent.get("DESCRIPTION")),
        sequence=sequence,
        modified=None if modified is None else _instant(modified, "LAST-MODIFIED"),
        cancelled=cancel_all or status == "CANCELLED",
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _local(moment: dt.datetime) -> dt.datetime:
    """*moment* as written in the file: Paris time, unless that local time is ambiguous (the
    hour repeated when summer time ends), which a TZID cannot tell apart: then in UTC."""
    local = moment.astimezone(PARIS)
    twin = local.replace(fold=1 - local.fold)
    return moment.astimezone(dt.UTC) if twin.utcoffset() != local.utcoffset() else local


def _instant(prop: Any, name: str) -> dt.datetime:
    """An instant from a date or date-time property, in the file's local time: floating times
    and dates are read in Europe/Paris (the platforms these files come from are French); an
    unknown TZID is refused."""
    if prop is None:
        raise ValidationError(f"an event needs a {name}")
    tzid = prop.params.get("TZID") if hasattr(prop, "params") else None
    try:
        value = getattr(prop, "dt", prop)
    except ValueError as exc:  # a value icalendar could not parse (a year 0, 99999)
        raise ValidationError(f"the {name} of an event is not a valid date") from exc
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            zone = PARIS if tzid is None else _zone(str(tzid))
            value = value.replace(tzinfo=zone)
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=PARIS)
    raise ValidationError(f"the {name} of an event is not a date or a date-time")


def _zone(tzid: str) -> ZoneInfo:
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValidationError("an event names an unknown time zone") from exc
