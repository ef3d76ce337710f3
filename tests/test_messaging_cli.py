"""``monespace messages``: a professional sends, the patient lists, reads, replies and files."""

from __future__ import annotations

import attrs
import pytest
from click.testing import CliRunner

import monespace
from monespace import Actor
from monespace.access import Professional
from monespace.cli import main
from monespace.cli._errors import with_next_step
from monespace.errors import AccessDeniedError, UnknownProfessionalError

from .test_messaging import PDF, holder_identity, pro_address, rpps

OPERATOR = Actor.system("test")
VITALE = "1234567890"
BIRTH = "1979-03-15"


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A space on disk with an active patient (carte Vitale login) and a professional."""
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
        space.access.register_professional(
            OPERATOR, Professional(rpps(1), "10", "Dr Martin", mssante=pro_address(1))
        )
    return str(path)


def login(nir="279035121518989"):
    return ["--nir", nir, "--vitale", VITALE, "--birth-date", BIRTH]


def test_send_list_show_reply_and_file(db, tmp_path):
    runner = CliRunner()
    (tmp_path / "note.txt").write_text("Bonjour,\nvoici vos résultats.\n", encoding="utf-8")
    (tmp_path / "resultats.pdf").write_bytes(PDF)
    sent = runner.invoke(
        main,
        [
            "messages",
            "send",
            "--db",
            db,
            "--from-rpps",
            rpps(1),
            "--to-nir",
            "279035121518989",
            "--subject",
            "Vos résultats",
            "--body-file",
            "note.txt",
            "--attach",
            "resultats.pdf",
        ],
    )
    assert sent.exit_code == 0, sent.output
    thread_id = sent.output.split()[-1]

    listed = runner.invoke(main, ["messages", "list", "--db", db, *login()])
    assert listed.exit_code == 0, listed.output
    assert thread_id in listed.output
    assert "1 new" in listed.output
    assert "Dr Martin: Vos résultats" in listed.output
    assert "1 thread(s), 1 unread message(s)" in listed.output

    shown = runner.invoke(main, ["messages", "show", "--db", db, *login(), thread_id])
    assert shown.exit_code == 0, shown.output
    assert "voici vos résultats." in shown.output
    attachment_id = shown.output.split("[attachment ")[1].split(":")[0]
    assert "0 unread" in runner.invoke(main, ["messages", "list", "--db", db, *login()]).output

    replied = runner.invoke(
        main,
        ["messages", "reply", "--db", db, *login(), thread_id, "--body-file", "-"],
        input="Merci docteur.\n",
    )
    assert replied.exit_code == 0, replied.output

    filed = runner.invoke(main, ["messages", "file", "--db", db, *login(), attachment_id])
    assert filed.exit_code == 0, filed.output
    assert "EXPPAT_2" in filed.output

    closed = runner.invoke(
        main,
        [
            "messages",
            "send",
            "--db",
            db,
            "--from-rpps",
            rpps(1),
            "--to-nir",
            "279035121518989",
            "--thread",
            thread_id,
            "--close",
            "--body-file",
            "-",
        ],
        input="Bonne journée.\n",
    )
    assert closed.exit_code == 0, closed.output
    assert "closed to replies" in closed.output
    refused = runner.invoke(
        main,
        ["messages", "reply", "--db", db, *login(), thread_id, "--body-file", "-"],
        input="Encore une question\n",
    )
    assert refused.exit_code == 1
    assert refused.output == f"Error: {with_next_step(AccessDeniedError('rule'))}\n"


def test_errors_are_one_line(db, tmp_path):
    runner = CliRunner()
    (tmp_path / "note.txt").write_text("x", encoding="utf-8")
    base = ["messages", "send", "--db", db, "--to-nir", "279035121518989", "--body-file"]
    unknown = runner.invoke(main, [*base, "note.txt", "--from-rpps", rpps(2), "--subject", "S"])
    # Not in the directory: said as such, never "access denied".
    assert (unknown.exit_code, unknown.output) == (
        1,
        f"Error: {with_next_step(UnknownProfessionalError())}\n",
    )
    injected = runner.invoke(
        main, [*base, "note.txt", "--from-rpps", rpps(1), "--subject", "a\r\nBcc: x@y"]
    )
    assert injected.exit_code == 1
    assert "control characters" in injected.output
    assert "Traceback" not in injected.output
    no_subject = runner.invoke(main, [*base, "note.txt", "--from-rpps", rpps(1)])
    assert no_subject.exit_code == 2
    wrong_vitale = [*login()[:3], "0000000000", "--birth-date", BIRTH]
    wrong_login = runner.invoke(main, ["messages", "list", "--db", db, *wrong_vitale])
    assert wrong_login.exit_code == 1
    assert "does not match our records" in wrong_login.output


def test_every_messages_command_has_help():
    runner = CliRunner()
    for command in ("send", "list", "show", "reply", "file"):
        result = runner.invoke(main, ["messages", command, "--help"])
        assert result.exit_code == 0
    assert "Example" in runner.invoke(main, ["messages", "send", "--help"]).output
