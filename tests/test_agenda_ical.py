"""iCalendar export and import of space.agenda: round trips, other clients, bad input."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
import recurring_ical_events
from hypothesis import example, given
from hypothesis import strategies as st

from monespace import Actor
from monespace.agenda import (
    MAX_EVENTS,
    MAX_ICS_BYTES,
    MAX_RULES,
    EventKind,
    EventStatus,
    read_calendar,
    write_calendar,
)
from monespace.agenda import Event as AgendaEvent
from monespace.clock import ManualClock
from monespace.errors import ValidationError

from .helpers import MARKER, identity, open_patient, open_space
from .strategies import clean_text

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def space():
    with open_space("memory://", ManualClock(NOW)) as opened:
        yield opened


@pytest.fixture
def holder(space):
    return open_patient(space, identity(1))


@pytest.fixture
def me(holder):
    return Actor.patient(holder.id)


def _ics(*vevents: str, method: str | None = None) -> bytes:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Booking//FR"]
    if method:
        head.append(f"METHOD:{method}")
    return "\r\n".join([*head, *vevents, "END:VCALENDAR", ""]).encode()


def _vevent(
    uid: str,
    start: str = "20260310T093000",
    *extra: str,
    tz: str = "Europe/Paris",
    summary: str = "Consultation",
):
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260301T080000Z",
        f"DTSTART;TZID={tz}:{start}",
        f"DTEND;TZID={tz}:{start[:-6]}100000" if start.endswith("T093000") else "",
        f"SUMMARY:{summary}",
        "LOCATION:Cabinet du Dr Martin",
        *extra,
        "END:VEVENT",
    ]
    return "\r\n".join(line for line in lines if line)


def _add(space, me, holder, n: int = 0, **changes):
    values = {
        "kind": EventKind.VACCINATION,
        "starts_at": dt.datetime(2026, 4, 1 + n, 7, 30, tzinfo=dt.UTC),
        "ends_at": dt.datetime(2026, 4, 1 + n, 8, 0, tzinfo=dt.UTC),
        "title": "Rappel dTcaP",
        "place": "Pharmacie",
        "notes": f"{MARKER}\nligne deux",
    }
    values.update(changes)
    return space.agenda.add(me, holder.id, **values)


# --- export ------------------------------------------------------------------------------------


def test_export_is_read_by_icalendar_and_recurring_ical_events(space, holder, me):
    first = _add(space, me, holder)
    second = _add(space, me, holder, 1)
    space.agenda.cancel(me, holder.id, second.id)
    data = space.agenda.export_ics(me, holder.id)
    assert MARKER.encode() not in data
    for detail in (b"dTcaP", b"Pharmacie", b"vaccination"):
        assert detail not in data
    calendar = icalendar.Calendar.from_ical(data)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]
    events = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [first.uid, second.uid]
    assert str(events[1]["STATUS"]) == "CANCELLED"
    assert events[0].decoded("DTSTART") == first.starts_at
    assert str(events[0]["DTSTART"].params["TZID"]) == "Europe/Paris"
    window = recurring_ical_events.of(calendar).between(dt.date(2026, 4, 1), dt.date(2026, 4, 3))
    assert {str(e["UID"]) for e in window} == {first.uid, second.uid}
    assert space.agenda.export_ics(me, holder.id).count(first.uid.encode()) == 1
    again = icalendar.Calendar.from_ical(space.agenda.export_ics(me, holder.id))
    assert [str(e["UID"]) for e in again.walk("VEVENT")] == [first.uid, second.uid]


def test_details_are_exported_only_when_asked(space, holder, me):
    _add(space, me, holder)
    data = space.agenda.export_ics(me, holder.id, include_details=True)
    event = icalendar.Calendar.from_ical(data).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "Rappel dTcaP"
    assert str(event["DESCRIPTION"]) == f"{MARKER}\nligne deux"
    assert str(event["X-MONESPACE-KIND"]) == "vaccination"


aware = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),
    max_value=dt.datetime(2090, 1, 1),
    timezones=st.just(dt.UTC),
).map(lambda moment: moment.replace(microsecond=0, second=0))
line = clean_text(min_size=1).filter(lambda text: text.strip() == text and text)
notes = clean_text(min_size=1, max_size=400, multiline=True).filter(
    lambda text: text.strip() == text and text
)


_PLAIN = (EventKind.APPOINTMENT, None, None, None, False)


@given(
    st.lists(
        st.tuples(
            aware,
            st.integers(1, 600),
            st.sampled_from(list(EventKind)),
            st.none() | line.filter(lambda t: len(t) <= 200),
            st.none() | line.filter(lambda t: len(t) <= 200),
            st.none() | notes.filter(lambda t: len(t) <= 4000),
            st.booleans(),
        ),
        max_size=6,
    )
)
# 00:00 UTC on 31 October 2038 is 02:00 in Paris, an hour that happens twice that night:
# written with a TZID it would come back as the other instant, so it is written in UTC.
@example(
    items=[
        (
            dt.datetime(2038, 10, 31, 0, 0, tzinfo=dt.UTC),
            30,
            EventKind.APPOINTMENT,
            None,
            None,
            None,
            False,
        )
    ]
)
@example(
    items=[
        (
            dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC),
            30,
            EventKind.APPOINTMENT,
            None,
            None,
            None,
            False,
        )
    ]
)
def test_export_then_import_gives_the_same_events(items):
    events = [
        AgendaEvent(
            id=f"e{n}",
            patient_id="p",
            kind=kind,
            starts_at=start,
            ends_at=start + dt.timedelta(minutes=minutes),
            title=title,
            place=place,
            notes=text,
            status=EventStatus.CANCELLED if cancelled else EventStatus.PLANNED,
            uid=f"e{n}@monespace",
            sequence=n,
        )
        for n, (start, minutes, kind, title, place, text, cancelled) in enumerate(items)
    ]
    data = write_calendar(events, include_details=True, now=NOW)
    parsed = read_calendar(data, now=NOW)
    assert len(parsed) == len(events)
    for event, back in zip(events, parsed, strict=True):
        assert back.uid == event.uid
        assert back.starts_at == event.starts_at
        assert back.ends_at == event.ends_at
        assert back.kind is event.kind
        assert back.title == (event.title or back.title)
        assert back.place == event.place
        assert back.notes == event.notes
        assert back.sequence == event.sequence
        assert back.cancelled is (event.status is EventStatus.CANCELLED)


# --- import ------------------------------------------------------------------------------------


def test_import_adds_then_dedups_updates_and_cancels(space, holder, me):
    first = _ics(_vevent("a@booking"), _vevent("b@booking", "20260311T093000"))
    report = space.agenda.import_ics(me, holder.id, first)
    assert (report.created, report.updated, report.cancelled) == (2, 0, 0)
    assert space.agenda.import_ics(me, holder.id, first).unchanged == 2
    events = space.agenda.events(me, holder.id)
    assert [e.uid for e in events] == ["a@booking", "b@booking"]
    assert events[0].starts_at == dt.datetime(2026, 3, 10, 8, 30, tzinfo=dt.UTC)
    assert events[0].title == "Consultation"

    moved = _ics(_vevent("a@booking", "20260312T093000", "SEQUENCE:1"))
    assert space.agenda.import_ics(me, holder.id, moved).updated == 1
    cancel = _ics(_vevent("b@booking", "20260311T093000", "SEQUENCE:1"), method="CANCEL")
    assert space.agenda.import_ics(me, holder.id, cancel).cancelled == 1
    stale = _ics(_vevent("a@booking", "20260320T093000", "SEQUENCE:0"))
    assert space.agenda.import_ics(me, holder.id, stale).unchanged == 1
    by_uid = {e.uid: e for e in space.agenda.events(me, holder.id)}
    assert by_uid["a@booking"].starts_at == dt.datetime(2026, 3, 12, 8, 30, tzinfo=dt.UTC)
    assert by_uid["b@booking"].status is EventStatus.CANCELLED
    history = space.agenda.history(me, holder.id, by_uid["a@booking"].id)
    assert [h.change for h in history] == ["imported", "updated"]


def test_recurring_events_are_expanded_within_the_horizon(space, holder, me):
    weekly = _vevent("kine@booking", "20260303T093000", "RRULE:FREQ=WEEKLY")
    report = space.agenda.import_ics(me, holder.id, _ics(weekly), horizon=dt.timedelta(days=70))
    events = space.agenda.events(me, holder.id)
    assert report.created == len(events) == 10
    assert all(e.uid.startswith("kine@booking/") for e in events)
    assert len({e.uid for e in events}) == 10
    assert (
        space.agenda.import_ics(
            me, holder.id, _ics(weekly), horizon=dt.timedelta(days=70)
        ).unchanged
        == 10
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"BEGIN:VCALENDAR\r\n" + b"X" * MAX_ICS_BYTES, "at most"),
        (_ics(*(_vevent(f"u{n}") for n in range(MAX_EVENTS + 1))), "at most"),
        (
            _ics(_vevent("r", "20260303T093000", "RRULE:FREQ=DAILY;BYHOUR=8,10,12,14,16,18")),
            "at most",
        ),
        (_ics(_vevent("tz", tz="Mars/Olympus_Mons")), "time zone"),
        (_ics(_vevent("x", "19500101T093000")), "life"),
        (_ics(_vevent("x", "22500101T093000")), "life"),
        (_ics(_vevent("x"), _vevent("x", "20260311T093000")), "same UID"),
        (_ics(_vevent("x", summary="Bonjour\\nX-EVIL:1")), "one line"),
        (_ics(_vevent("x", summary="Bonjour\\r\\nX-EVIL:1")), "one line"),
        (_ics(_vevent("x", "20260310T093000", "SUMMARY:Deux")), "once"),
        (_ics("BEGIN:VEVENT", "DTSTART:20260310T093000Z", "END:VEVENT"), "UID"),
        (b"\xff\xfe not utf-8", "UTF-8"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n", "iCalendar"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(space, holder, me, data, message):
    good = _vevent("good@booking")
    if data.startswith(b"BEGIN:VCALENDAR\r\nVERSION"):
        data = data.replace(b"END:VCALENDAR", good.encode() + b"\r\nEND:VCALENDAR")
    with pytest.raises(ValidationError, match=message):
        space.agenda.import_ics(me, holder.id, data)
    assert space.agenda.events(me, holder.id) == []


@pytest.mark.parametrize(
    ("rule", "start", "message"),
    [
        # Expanded whole by recurring_ical_events: 31 million occurrences in the horizon.
        ("RRULE:FREQ=SECONDLY;COUNT=999999999", "20260303T093000", "at most daily"),
        ("RRULE:FREQ=MINUTELY", "20260303T093000", "at most daily"),
        # No day ever matches: dateutil searches day by day up to the year 9999 (seconds).
        ("RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "20260303T093000", "monthly or yearly"),
        ("RRULE:FREQ=WEEKLY;BYSETPOS=9;BYDAY=MO", "20260303T093000", "monthly or yearly"),
        # Expanded from the year 1, day by day, before reaching the horizon.
        ("RRULE:FREQ=DAILY", "00010101T093000", "too long before"),
        (
            "RRULE:FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24))) + ";BYMINUTE=0,30",
            "20260303T093000",
            "24 times a day",
        ),
        ("RRULE:FREQ=YEARLY;BYYEARDAY=366;BYMONTH=1", "20260303T093000", "does not read"),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO,TU", "20260303T093000", None),
        ("RRULE:NOT-A-RULE", "20260303T093000", "malformed"),
        # dateutil never leaves its first period.
        ("RRULE:FREQ=WEEKLY;INTERVAL=0", "20260303T093000", "INTERVAL"),
        ("RRULE:FREQ=DAILY;INTERVAL=-3", "20260303T093000", "INTERVAL"),
        ("EXRULE:FREQ=DAILY", "20260303T093000", "EXRULE"),
    ],
)
def test_costly_recurrences_are_refused_before_expansion(rule, start, message):
    data = _ics(_vevent("series@booking", start, rule))
    if message is None:
        assert len(read_calendar(data, now=NOW)) > 50
        return
    with pytest.raises(ValidationError, match=message):
        read_calendar(data, now=NOW)


def test_a_file_holds_a_bounded_number_of_recurrence_rules():
    weekly = "RRULE:FREQ=WEEKLY;COUNT=2"
    series = [_vevent(f"s{n}@booking", "20260303T093000", weekly) for n in range(MAX_RULES)]
    assert len(read_calendar(_ics(*series), now=NOW)) == 2 * MAX_RULES
    extra = _vevent("one-more@booking", "20260303T093000", weekly)
    with pytest.raises(ValidationError, match=f"at most {MAX_RULES} RRULE"):
        read_calendar(_ics(*series, extra), now=NOW)


@pytest.mark.parametrize("start", ["00000101T093000", "99999101T093000", "2026XX01T093000"])
def test_a_date_icalendar_cannot_parse_is_refused(start):
    # icalendar keeps the value as a broken property and raises its own error on access.
    with pytest.raises(ValidationError, match="DTSTART"):
        read_calendar(_ics(_vevent("broken@booking", start)), now=NOW)
    with pytest.raises(ValidationError, match="DTSTART"):
        read_calendar(_ics(_vevent("broken@booking", start, "RRULE:FREQ=DAILY")), now=NOW)


@pytest.mark.parametrize(
    "twice",
    [
        ("DTSTART:20260303T093000Z", "DTSTART:20260304T093000Z"),
        ("SEQUENCE:1", "SEQUENCE:2"),
        ("DTEND:20260303T100000Z", "DTEND:20260303T110000Z"),
        ("RECURRENCE-ID:20260310T093000Z", "RECURRENCE-ID:20260317T093000Z"),
    ],
)
def test_a_recurring_event_gives_its_dates_and_sequence_once(twice):
    # recurring_ical_events reads them as single values and fails on a list.
    series = _vevent("series@booking", "20260303T093000", "RRULE:FREQ=WEEKLY;COUNT=4")
    head = ["BEGIN:VEVENT", "UID:series@booking", "RECURRENCE-ID:20260310T083000Z"]
    override = "\r\n".join([*head, *twice, "END:VEVENT"])
    with pytest.raises(ValidationError, match="once"):
        read_calendar(_ics(series, override), now=NOW)


@pytest.mark.parametrize("tz", ["Europe/" + "X" * 300, "Europe"])
def test_a_time_zone_name_the_system_cannot_open_is_unknown(tz):
    # zoneinfo raises OSError (name too long, a directory) rather than ZoneInfoNotFoundError.
    with pytest.raises(ValidationError, match="unknown time zone"):
        read_calendar(_ics(_vevent("tz@booking", tz=tz)), now=NOW)


def _vtimezone(tzid: str) -> str:
    standard = ["DTSTART:19701025T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100"]
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}", "BEGIN:STANDARD", *standard, "END:STANDARD"]
    return "\r\n".join([*lines, "END:VTIMEZONE"])


def _tz_cache() -> dict[str, object]:
    # icalendar keeps every VTIMEZONE of an unknown TZID it parses, for the whole process.
    return icalendar.timezone.tzp._TZP__tz_cache  # type: ignore[attr-defined]


def test_a_file_defining_its_own_time_zones_is_refused_and_leaves_nothing_behind():
    before = dict(_tz_cache())
    zones = [_vtimezone(f"Custom/Fuzz-{n}") for n in range(5)]
    event = _vevent("custom@booking", tz="Custom/Fuzz-0")
    with pytest.raises(ValidationError, match="unknown time zone"):
        read_calendar(_ics(*zones, event), now=NOW)
    assert _tz_cache() == before
    paris = _ics(_vtimezone("Europe/Paris"), _vevent("paris@booking"))
    assert [e.uid for e in read_calendar(paris, now=NOW)] == ["paris@booking"]


def test_a_file_holds_a_bounded_number_of_time_zones():
    zones = [_vtimezone("Europe/Paris")] * 21
    with pytest.raises(ValidationError, match="time zones"):
        read_calendar(_ics(*zones, _vevent("paris@booking")), now=NOW)


@pytest.mark.parametrize(
    "data",
    [
        # icalendar raises AttributeError on these while parsing.
        _ics(_vtimezone("Europe/Paris").replace("TZID:Europe/Paris", "TZID:A\r\nTZID:B")),
        _ics(_vevent("x", "20260310T093000").replace("DTSTART;", "DTSTART;VALUE=DATE,TEXT;")),
    ],
)
def test_what_icalendar_trips_on_is_a_validation_error(data):
    with pytest.raises(ValidationError):
        read_calendar(data, now=NOW)


@pytest.mark.parametrize("tz", ["Europe/" + "X" * 300, "Europe", "Mars/Olympus_Mons"])
def test_a_calendar_time_zone_the_system_cannot_open_is_refused(tz):
    # Google's X-WR-TIMEZONE: recurring_ical_events applies it, and zoneinfo raises OSError.
    rule = _vevent("s@booking", "20260303T093000", "RRULE:FREQ=WEEKLY;COUNT=4")
    data = _ics(rule).replace(b"VERSION:2.0", f"VERSION:2.0\r\nX-WR-TIMEZONE:{tz}".encode())
    with pytest.raises(ValidationError):
        read_calendar(data, now=NOW)
