"""``monespace agenda`` and ``monespace reminders preview`` through click's CliRunner."""

from __future__ import annotations

import json

import attrs
import icalendar
import pytest
from click.testing import CliRunner

import monespace
from monespace import Actor
from monespace.cli import main

from .helpers import holder_identity

OPERATOR = Actor.system("test")
VITALE = "1234567890"
LOGIN = ["--nir", "279035121518989", "--vitale", VITALE, "--birth-date", "1979-03-15"]


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A space on disk with an active patient (carte Vitale login)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "space.db"
    with monespace.open(f"sqlite:///{path}", load_entrypoints=False) as space:
        person = attrs.evolve(holder_identity(), vitale_serial=VITALE)
        patient = space.accounts.register_patient(OPERATOR, person)
        space.accounts.invite(OPERATOR, patient.id)
        code = space.accounts.issue_code(OPERATOR, patient.id, send=False)
        space.accounts.activate(
            nir=person.ins.matricule.value,
            code=code,
            vitale_serial=VITALE,
            birth_date=person.ins.traits.birth_date,
        )
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_add_list_done_cancel_export_and_import(db, tmp_path):
    added = run(
        "agenda", "add", "--db", db, *LOGIN, "--kind", "vaccination",
        "--start", "2020-03-10T09:30", "--title", "Rappel",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    event_id = added.output.split()[1]
    assert "2020-03-10 09:30" in added.output
    second = run("agenda", "add", "--db", db, *LOGIN, "--start", "2020-04-01T10:00")
    other_id = second.output.split()[1]
    assert run("agenda", "done", "--db", db, *LOGIN, event_id).output.strip().endswith("done")
    assert "cancelled" in run("agenda", "cancel", "--db", db, *LOGIN, other_id).output
    listed = run("agenda", "list", "--db", db, *LOGIN, "--details").output.splitlines()
    assert [line.split()[0] for line in listed] == [event_id, other_id]
    assert "Rappel" in listed[0]

    exported = run("agenda", "export", "--db", db, *LOGIN)
    calendar = icalendar.Calendar.from_ical(exported.output)
    assert len(calendar.walk("VEVENT")) == 2
    assert "Rappel" not in exported.output
    target = tmp_path / "agenda.ics"
    assert run("agenda", "export", "--db", db, *LOGIN, "--output", str(target)).exit_code == 0
    refused = run("agenda", "export", "--db", db, *LOGIN, "--output", str(target))
    assert refused.exit_code == 1
    assert "--force" in refused.output
    forced = run("agenda", "export", "--db", db, *LOGIN, "--output", str(target), "--force")
    assert forced.exit_code == 0

    booking = tmp_path / "booking.ics"
    booking.write_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//B//FR\r\nBEGIN:VEVENT\r\nUID:b1\r\n"
        b"DTSTAMP:20260101T000000Z\r\nDTSTART:20260310T083000Z\r\nSUMMARY:Kine\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    imported = run("agenda", "import", "--db", db, *LOGIN, str(booking))
    assert imported.output.startswith("created 1, updated 0, cancelled 0")
    bad = tmp_path / "bad.ics"
    bad.write_bytes(b"not a calendar")
    failed = run("agenda", "import", "--db", db, *LOGIN, str(bad))
    assert failed.exit_code == 1
    assert failed.output.startswith("Error:")


def test_reminders_preview_prints_one_json_object_per_reminder():
    result = run(
        "reminders", "preview", "--birth-date", "2025-01-10", "--sex", "M",
        "--at", "2025-04-01", "--done", "vaccination.hexavalent.1=2025-03-12", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert set(lines[0]) == {"id", "status", "due_from", "due_until", "why", "source"}
    assert by_id["vaccination.hexavalent.1"]["status"] == "done"
    assert by_id["vaccination.hexavalent.1"]["why"]["proved_by"] == (
        "reminder:vaccination.hexavalent.1"
    )
    assert by_id["vaccination.pcv.1"]["status"] == "due"
    text = run("reminders", "preview", "--birth-date", "2025-01-10", "--sex", "M",
               "--at", "2025-04-01")  # fmt: skip
    assert "vaccination.pcv.1" in text.output


@pytest.mark.parametrize("done", ["nothing", "x=2025-13-01", "=2025-01-01"])
def test_reminders_preview_refuses_bad_done_values(done):
    result = CliRunner().invoke(
        main,
        ["reminders", "preview", "--birth-date", "2025-01-10", "--sex", "M", "--at",
         "2025-04-01", "--done", done],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "ID=YYYY-MM-DD" in result.output
