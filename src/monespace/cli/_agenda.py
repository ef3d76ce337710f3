"""``monespace agenda`` (a person's agenda, its iCalendar export and import) and
``monespace reminders`` (the prevention calendar, without a space)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from ..agenda import PARIS, EventKind, Reminder, preview
from ..errors import ValidationError
from ._common import (
    db_option,
    force_option,
    login,
    login_options,
    open_db,
    output_target,
    paris_time,
    written,
)
from ._errors import library_error

__all__ = ["agenda", "reminders"]


@click.group()
def agenda() -> None:
    """Your appointments and health events (logins here are the demo's carte Vitale login)."""


def _when(text: str) -> datetime:
    """A local time in Paris (``2026-03-10T09:30``) or an explicit offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter("use YYYY-MM-DDTHH:MM (Paris time) or add an offset") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=PARIS)


@agenda.command("list")
@db_option(must_exist=True)
@login_options
@click.option("--details", is_flag=True, help="Also show titles and places.")
def agenda_list(db: str, nir: str, vitale: str, birth_date: datetime, details: bool) -> None:
    """List your agenda, oldest first, in Paris time.

    \b
    Example:
      monespace agenda list --db monespace.db --nir 279035121518989 \\
          --vitale 1234567890 --birth-date 1979-03-28
    """
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        events = space.agenda.events(me, me.id)
    for event in events:
        line = f"{event.id}  {paris_time(event.starts_at)}  {event.kind}  {event.status}"
        if details:
            line += "".join(f"  {part}" for part in (event.title, event.place) if part)
        click.echo(line)


@agenda.command("add")
@db_option(must_exist=True)
@login_options
@click.option("--kind", type=click.Choice([k.value for k in EventKind]), default="appointment")
@click.option("--start", "start", required=True, help="YYYY-MM-DDTHH:MM, Paris time.")
@click.option("--end", "end", help="YYYY-MM-DDTHH:MM, Paris time.")
@click.option("--title")
@click.option("--place")
@click.option("--reminder", "reminder_id", help="The prevention reminder this fulfils.")
def agenda_add(
    db: str,
    nir: str,
    vitale: str,
    birth_date: datetime,
    kind: str,
    start: str,
    end: str | None,
    title: str | None,
    place: str | None,
    reminder_id: str | None,
) -> None:
    """Add an appointment or health event to your agenda.

    \b
    Example:
      monespace agenda add --db monespace.db --nir 279035121518989 --vitale 1234567890 \\
          --birth-date 1979-03-28 --kind vaccination --start 2026-03-10T09:30
    """
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        event = space.agenda.add(
            me,
            me.id,
            kind=kind,
            starts_at=_when(start),
            ends_at=None if end is None else _when(end),
            title=title,
            place=place,
            reminder_id=reminder_id,
        )
    click.echo(f"added {event.id} ({event.kind}, {paris_time(event.starts_at)})")


@agenda.command("done")
@db_option(must_exist=True)
@login_options
@click.argument("event_id")
def agenda_done(db: str, nir: str, vitale: str, birth_date: datetime, event_id: str) -> None:
    """Mark an event of your agenda done."""
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        event = space.agenda.mark_done(me, me.id, event_id)
    click.echo(f"{event.id} {event.status}")


@agenda.command("cancel")
@db_option(must_exist=True)
@login_options
@click.argument("event_id")
def agenda_cancel(db: str, nir: str, vitale: str, birth_date: datetime, event_id: str) -> None:
    """Cancel an event of your agenda (it stays in its history)."""
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        event = space.agenda.cancel(me, me.id, event_id)
    click.echo(f"{event.id} {event.status}")


@agenda.command("export")
@db_option(must_exist=True)
@login_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path))
@force_option
@click.option("--details", is_flag=True, help="Include titles, places and notes.")
def agenda_export(
    db: str,
    nir: str,
    vitale: str,
    birth_date: datetime,
    output: Path | None,
    force: bool,
    details: bool,
) -> None:
    """Export your agenda as one iCalendar (.ics) file, to stdout or --output.

    Health details are left out unless --details: a calendar file travels.
    """
    target = None if output is None else output_target(output, force=force)
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        data = space.agenda.export_ics(me, me.id, include_details=details)
    if target is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        target.write_bytes(data)
        events = data.count(b"BEGIN:VEVENT")
        click.echo(written(target, f"an iCalendar file of {events} events"), err=True)


@agenda.command("import")
@db_option(must_exist=True)
@login_options
@click.argument("file", type=click.File("rb"))
def agenda_import(db: str, nir: str, vitale: str, birth_date: datetime, file: Any) -> None:
    """Import an iCalendar (.ics) file from a booking platform into your agenda."""
    with open_db(db) as space:
        me = login(space, nir, vitale, birth_date)
        report = space.agenda.import_ics(me, me.id, file.read())
    click.echo(
        f"created {report.created}, updated {report.updated}, cancelled {report.cancelled}, "
        f"unchanged {report.unchanged}"
    )


@click.group()
def reminders() -> None:
    """The prevention calendar's reminders."""


def _done(values: tuple[str, ...]) -> dict[str, date]:
    done: dict[str, date] = {}
    for value in values:
        reminder_id, sep, when = value.partition("=")
        try:
            done[reminder_id] = date.fromisoformat(when)
        except ValueError:
            sep = ""
        if not sep or not reminder_id:
            raise click.BadParameter(f"use ID=YYYY-MM-DD (got {value!r})", param_hint="--done")
    return done


def _line(reminder: Reminder) -> dict[str, Any]:
    why = reminder.why
    return {
        "id": reminder.id,
        "status": str(reminder.status),
        "due_from": reminder.due_from.isoformat(),
        "due_until": None if reminder.due_until is None else reminder.due_until.isoformat(),
        "why": {
            "rule": why.rule,
            "edition": why.edition,
            "evidence": str(why.evidence),
            "age_days": why.age_days,
            "last_act": None if why.last_act is None else why.last_act.isoformat(),
            "proved_by": why.proved_by,
        },
        "source": {"text": reminder.source.text, "ref": reminder.source.ref},
    }


@reminders.command("preview")
@click.option("--birth-date", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--sex", required=True, type=click.Choice(["F", "M"]))
@click.option("--at", "at", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--done", "done", multiple=True, metavar="ID=YYYY-MM-DD", help="An act done.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def reminders_preview(
    birth_date: datetime, sex: str, at: datetime, done: tuple[str, ...], as_json: bool
) -> None:
    """The reminders of a person at a date, without a space (nothing is stored).

    \b
    Example:
      monespace reminders preview --birth-date 2025-01-10 --sex M --at 2025-04-01 \\
          --done vaccination.hexavalent.1=2025-03-12 --json
    """
    try:
        found = preview(birth_date.date(), "F" if sex == "F" else "M", at.date(), _done(done))
    except ValidationError as exc:
        raise library_error(exc) from exc
    for reminder in found:
        if as_json:
            click.echo(json.dumps(_line(reminder), ensure_ascii=False))
        else:
            until = reminder.due_until.isoformat() if reminder.due_until else "…"
            click.echo(f"{reminder.status:<9} {reminder.id:<32} {reminder.due_from} → {until}")
