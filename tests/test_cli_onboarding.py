"""Onboarding from the command line (register, request-code), the progress of long commands,
the resumable demo, the busy port, output files and times in Europe/Paris."""

from __future__ import annotations

import json
import re
import socket
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import monespace
from monespace import Actor, ManualClock
from monespace.cli import _progress, main
from monespace.cli._common import paris_time
from monespace.interop.dmp import count_legacy_documents
from monespace.synth import PHASES, checkpoint_from_json, demo_work, seed_demo
from monespace.transport import MemoryTransport

from .conftest import SHARED_DATA

OPERATOR = Actor.system("test")
CODE_RE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")
#: A valid NIR (key included) consistent with the traits in PEOPLE_CSV's first row.
LEA_NIR = "255081416802538"

PEOPLE_CSV = f"""\
nir,birth_name,first_given_name,birth_date,sex,email,vitale_serial,address,postal_code,city
{LEA_NIR},MARTIN,LEA,1955-08-01,F,lea@example.org,1234567890,,,
{LEA_NIR},MARTIN,LEA,1955-08-01,F,lea@example.org,1234567890,,,
185057511223344,SECRETNAME,PAUL,1985-13-01,M,,,,,
185057511223344,DURAND,PAUL,1985-05-01,X,,,,,
,DURAND,PAUL,1985-05-01,M,,,,,
185057511223344,DURAND,PAUL,1985-05-01,M,,,3 rue Crébillon|Bât. B,44000,NANTES
"""


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.fixture
def db(tmp_path):
    """An empty space file the command line and the test share."""
    path = tmp_path / "onboarding.db"
    monespace.open(f"sqlite:///{path}").close()
    return str(path)


def deliver(path: str) -> list:
    mail, post = MemoryTransport(), MemoryTransport()
    with monespace.open(f"sqlite:///{path}", transports={"email": mail, "letter": post}) as space:
        space.dispatch(limit=1000)
    return [*mail.sent, *post.sent]


# --- register and request-code ----------------------------------------------------------------


def test_register_a_person_from_options_then_invite_activate(runner, db):
    """The CLI story without Python: register, invite, deliver, activate."""
    registered = runner.invoke(
        main,
        [
            "register", "person", "--db", db, "--nir", LEA_NIR, "--birth-name", "MARTIN",
            "--first-given-name", "LEA", "--birth-date", "1955-08-01", "--sex", "F",
            "--email", "lea@example.org", "--vitale-serial", "1234567890",
        ],
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    assert re.search(r"registered: space \S+ \(state registered\)", registered.output)
    assert runner.invoke(main, ["invite", "--db", db]).exit_code == 0
    (letter,) = deliver(db)
    code = CODE_RE.findall(letter.body)[0]
    activated = runner.invoke(
        main,
        [
            "activate", "--db", db, "--nir", LEA_NIR, "--code", code,
            "--vitale", "1234567890", "--birth-date", "1955-08-01",
        ],
    )  # fmt: skip
    assert activated.exit_code == 0, activated.output
    assert activated.output.endswith("is now active\n")


def test_a_csv_with_bad_rows_keeps_the_good_ones_and_names_the_rows(runner, db, tmp_path):
    """Each refused row is reported with its number and the reason, never a value; the
    other rows are registered; the exit status says some were refused."""
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE_CSV, encoding="utf-8")
    result = runner.invoke(main, ["register", "person", "--db", db, "--csv", str(people)])
    assert result.exit_code == 1
    assert "registered 2 of 6 people" in result.output
    refused = sorted(re.findall(r"refused row (\d+): (.+)", result.output))
    assert [number for number, _ in refused] == ["3", "4", "5", "6"]
    reasons = dict(refused)
    assert "already registered" in reasons["3"]
    assert "'birth_date'" in reasons["4"]
    assert "'sex'" in reasons["5"]
    assert "'nir'" in reasons["6"]
    for value in ("SECRETNAME", "1985-13-01", "185057511223344", LEA_NIR, "lea@example.org"):
        assert value not in result.output
    with monespace.open(f"sqlite:///{db}") as space:
        assert space.accounts.count() == 2
        paul = space.accounts.find_by_nir(OPERATOR, "185057511223344")
        address = paul.identity.contact.postal_address
        assert address is not None
        assert address.lines == ("3 rue Crébillon", "Bât. B")


def test_a_csv_with_an_unknown_column_registers_nobody(runner, db, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text(
        "nir;birth_name;first_given_name;birth_date;sex;e_mail\n"
        f"{LEA_NIR};MARTIN;LEA;1955-08-01;F;lea@example.org\n",
        encoding="utf-8-sig",
    )
    result = runner.invoke(main, ["register", "person", "--db", db, "--csv", str(people)])
    assert result.exit_code == 2
    assert "unknown column(s) e_mail" in result.output
    people.write_text(
        people.read_text(encoding="utf-8-sig").replace("e_mail", "email"), encoding="utf-8-sig"
    )
    kept = runner.invoke(main, ["register", "person", "--db", db, "--csv", str(people)])
    assert kept.exit_code == 0, kept.output  # semicolons and a byte order mark are read
    assert "registered 1 of 1 people" in kept.output


def test_register_professionals_one_and_from_a_csv(runner, db, tmp_path):
    one = runner.invoke(
        main,
        [
            "register", "professional", "--db", db, "--rpps", "10003112348",
            "--profession", "10", "--name", "Dr Claire Martin", "--specialty", "SM26",
        ],
    )  # fmt: skip
    assert one.exit_code == 0, one.output
    assert "registered: professional RPPS 10003112348" in one.output
    directory = tmp_path / "directory.csv"
    directory.write_text(
        "rpps,profession,name,mssante\n"
        "10003222345,21,Marc Lefèvre,\n"
        "10003222340,21,Bad Key,\n"
        "10003443560,60,Inès Moreau,not-an-address\n",
        encoding="utf-8",
    )
    many = runner.invoke(main, ["register", "professional", "--db", db, "--csv", str(directory)])
    assert many.exit_code == 1
    assert "registered 1 of 3 professionals" in many.output
    assert re.search(r"refused row 3: .*RPPS", many.output)
    assert "refused row 4:" in many.output
    assert "not-an-address" not in many.output
    with monespace.open(f"sqlite:///{db}") as space:
        assert space.access.professional("10003222345").name == "Marc Lefèvre"
        assert space.access.professional("10003112348").specialty == "SM26"


def test_request_code_sends_a_new_code_through_the_outbox(runner, db):
    runner.invoke(
        main,
        [
            "register", "person", "--db", db, "--nir", LEA_NIR, "--birth-name", "MARTIN",
            "--first-given-name", "LEA", "--birth-date", "1955-08-01", "--sex", "F",
            "--email", "lea@example.org", "--vitale-serial", "1234567890",
        ],
    )  # fmt: skip
    runner.invoke(main, ["invite", "--db", db])
    (invitation,) = deliver(db)
    first = CODE_RE.findall(invitation.body)[0]
    counter = runner.invoke(main, ["request-code", "--db", db, "--nir", LEA_NIR])
    assert counter.exit_code == 0, counter.output
    assert "written to the outbox" in counter.output
    assert not CODE_RE.search(counter.output)  # sent, never printed
    self_service = runner.invoke(
        main,
        [
            "request-code", "--db", db, "--nir", LEA_NIR, "--vitale", "1234567890",
            "--birth-date", "1955-08-01",
        ],
    )  # fmt: skip
    assert self_service.exit_code == 0, self_service.output
    codes = [CODE_RE.findall(sent.body)[0] for sent in deliver(db)]
    assert len(codes) == 2
    assert first not in codes
    wrong = runner.invoke(
        main,
        [
            "request-code", "--db", db, "--nir", LEA_NIR, "--vitale", "9999999999",
            "--birth-date", "1955-08-01",
        ],
    )  # fmt: skip
    assert wrong.exit_code == 1
    assert deliver(db) == []
    half = runner.invoke(main, ["request-code", "--db", db, "--nir", LEA_NIR, "--vitale", "1"])
    assert half.exit_code == 2
    unknown = runner.invoke(main, ["request-code", "--db", db, "--nir", "185057511223344"])
    assert unknown.exit_code == 1
    assert "nobody is registered with this NIR" in unknown.output


# --- progress ----------------------------------------------------------------------------------


class Recorder:
    """A progress sink that keeps what it was told, in order."""

    def __init__(self):
        self.events = []

    def phase(self, label):
        self.events.append(("phase", label))

    def advance(self, count=1):
        self.events.append(("advance", count))


def test_the_seeding_reports_its_work_as_it_goes():
    """Every unit of demo_work is reported, step after step, item after item: never the
    whole bar at once and silence after."""
    recorder = Recorder()
    with monespace.open("memory://", clock=ManualClock(datetime(2026, 3, 2, tzinfo=UTC))) as space:
        seed_demo(space, 30, seed=4, progress=recorder)
    advances = [count for kind, count in recorder.events if kind == "advance"]
    assert sum(advances) == demo_work(30)
    assert max(advances) <= 30  # no step reports everything in one call
    labels = [label for kind, label in recorder.events if kind == "phase"]
    assert [label for _, label in PHASES] == [x for x in labels if x in dict(PHASES).values()]
    # Between two steps, work is reported: the bar moves in every step.
    starts = [i for i, (kind, _) in enumerate(recorder.events) if kind == "phase"]
    for here, following in zip(starts, [*starts[1:], len(recorder.events)], strict=True):
        if recorder.events[here][1] != "choosing the demo logins":
            assert any(kind == "advance" for kind, _ in recorder.events[here:following])


def test_the_progress_helper_never_runs_past_its_total(capsys):
    with _progress.Progress("Working", 3) as progress:
        progress.advance(2)
        progress.phase("the second half")
        progress.advance(5)
        assert progress.done == 3
    assert "Working: the second half" in capsys.readouterr().err


def test_dmp_import_counts_its_documents_first(tmp_path):
    cda = SHARED_DATA / "cisis" / "cda"
    if not cda.is_dir():
        pytest.skip(f"shared CDA examples missing: {cda}")
    files = sorted(cda.glob("*.xml"))
    archive = tmp_path / "dmp.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in files[:3]:
            zf.write(file, f"IHE_XDM/SUBSET01/{file.name}")
        zf.writestr("IHE_XDM/SUBSET01/METADATA.XML", "<x/>")
        zf.writestr("README.TXT", "not a document")
    assert count_legacy_documents(cda) == len(files)
    assert count_legacy_documents(archive) == 3
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 truncated")
    assert count_legacy_documents(tmp_path / "junk.zip") == 0


def test_key_rotation_reports_each_key_it_rewraps(runner):
    runner.invoke(main, ["demo", "--db", "x.db", "--patients", "4", "--no-serve"])
    with monespace.open("sqlite:///x.db") as space:
        pending = space.data_keys_to_rewrap()
        reported = []
        report = space.rotate_master_key(OPERATOR, batch=3, progress=reported.append)
        assert space.data_keys_to_rewrap(new_key=False) == 0
    assert sum(reported) == report.rewrapped == pending
    assert max(reported) <= 3


# --- the resumable demo -----------------------------------------------------------------------


def test_an_interrupted_demo_resumes_and_prints_the_logins(runner, tmp_path, monkeypatch):
    """Ctrl-C while the records are fed; the same command again continues from the
    checkpoint, and the result is what an uninterrupted run gives."""
    advance = _progress.Progress.advance
    phase = _progress.Progress.phase
    seen = {"feeding": 0}

    def phase_then_count(self, label):
        seen["now"] = label
        phase(self, label)

    def interrupt_while_feeding(self, count=1):
        if seen.get("now") == "feeding the records":
            seen["feeding"] += 1
            if seen["feeding"] == 12:
                raise KeyboardInterrupt
        advance(self, count)

    with monkeypatch.context() as patched:
        patched.setattr(_progress.Progress, "phase", phase_then_count)
        patched.setattr(_progress.Progress, "advance", interrupt_while_feeding)
        first = runner.invoke(main, ["demo", "--patients", "40", "--seed", "2", "--no-serve"])
    assert first.exit_code == 130, first.output
    assert "Run the same command again" in first.output
    assert "Demo logins" not in first.output
    checkpoint_file = tmp_path / "monespace-demo.db-demo-checkpoint.json"
    checkpoint = checkpoint_from_json(checkpoint_file.read_text())
    assert checkpoint.fed == 12  # the twelfth person was fed and saved, then Ctrl-C
    assert checkpoint_file.stat().st_mode & 0o077 == 0
    assert "feed" not in checkpoint.done

    # Different options on the rerun: the checkpoint's win.
    again = runner.invoke(main, ["demo", "--patients", "7", "--no-serve"])
    assert again.exit_code == 0, again.output
    assert "Resuming the interrupted demo (40 patients, seed 2, 6 of 8 steps done)" in again.output
    assert "patients:            40 (40 created by this demo, resumed)" in again.output
    assert "Demo logins" in again.output
    assert "a patient:" in again.output
    assert not checkpoint_file.exists()
    assert "audit trail:" in again.output
    assert "intact" in again.output

    # The same population and records as a run never interrupted, dated the same.
    with monespace.open("memory://", clock=ManualClock(checkpoint.today)) as space:
        reference = seed_demo(space, 40, seed=2)
    documents = re.search(r"documents:\s+(\d+)", again.output)
    assert documents is not None
    assert int(documents.group(1)) == reference.documents
    states = ", ".join(f"{k} {v}" for k, v in sorted(reference.states.items()))
    assert f"spaces:              {states}" in again.output
    login = reference.login("patient")
    assert login is not None
    assert f"NIR {login.nir}" in again.output
    with monespace.open("sqlite:///monespace-demo.db") as space:
        assert space.accounts.count() == 40

    # A third run seeds nothing and prints the logins kept.
    third = runner.invoke(main, ["demo", "--no-serve"])
    assert "(0 created now)" in third.output
    assert f"NIR {login.nir}" in third.output


def test_an_interruption_while_registering_is_resumable(runner, tmp_path, monkeypatch):
    advance = _progress.Progress.advance
    calls = {"n": 0}

    def interrupt_early(self, count=1):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        advance(self, count)

    with monkeypatch.context() as patched:
        patched.setattr(_progress.Progress, "advance", interrupt_early)
        first = runner.invoke(main, ["demo", "--patients", "12", "--no-serve"])
    assert first.exit_code == 130
    again = runner.invoke(main, ["demo", "--patients", "12", "--no-serve"])
    assert again.exit_code == 0, again.output
    assert "Resuming the interrupted demo (12 patients, seed 0, 0 of 8 steps done)" in again.output
    assert "patients:            12 (12 created by this demo, resumed)" in again.output
    assert "Demo logins" in again.output


def test_an_unreadable_checkpoint_is_a_clear_error(runner, tmp_path):
    runner.invoke(main, ["demo", "--db", "x.db", "--patients", "3", "--no-serve"])
    (tmp_path / "x.db-demo-checkpoint.json").write_text('{"version": 9}')
    result = runner.invoke(main, ["demo", "--db", "x.db", "--no-serve"])
    assert result.exit_code == 1
    assert "checkpoint is not readable; delete it to start over" in result.output


# --- serve, info, output files, times -----------------------------------------------------------


def test_a_busy_port_is_refused_before_anything_is_announced(runner, db):
    pytest.importorskip("uvicorn")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        served = runner.invoke(main, ["serve", "--db", db, "--port", str(port)])
        assert served.exit_code == 1
        assert f"cannot listen on 127.0.0.1:{port}" in served.output
        assert "another server listens there" in served.output
        assert "Serving" not in served.output
        # The demo checks before seeding: nothing is created for a server that cannot start.
        demo = runner.invoke(main, ["demo", "--db", "new.db", "--serve", "--port", str(port)])
        assert demo.exit_code == 1
        assert "cannot listen" in demo.output
        assert "Seeding" not in demo.output
        assert not Path("new.db").exists()


def test_info_never_creates_a_database(runner, tmp_path):
    for db in ("absent.db", f"sqlite:///{tmp_path}/absent.db", "sqlite:///absent.db"):
        result = runner.invoke(main, ["info", "--db", db])
        assert result.exit_code == 2, db
        assert "does not exist" in result.output
    assert not (tmp_path / "absent.db").exists()
    (tmp_path / "empty.db").touch()
    empty = runner.invoke(main, ["info", "--db", "empty.db"])
    assert empty.exit_code == 2
    assert "empty, not a monespace database" in empty.output
    assert (tmp_path / "empty.db").stat().st_size == 0


def test_output_files_need_force_and_say_what_was_written(runner, tmp_path):
    runner.invoke(main, ["demo", "--db", "x.db", "--patients", "3", "--no-serve"])
    target = tmp_path / "checkpoints.json"
    target.write_text("keep me")
    refused = runner.invoke(main, ["audit", "checkpoint", "--db", "x.db", "--export", str(target)])
    assert refused.exit_code == 1
    assert "exists: add --force to overwrite it" in refused.output
    assert target.read_text() == "keep me"
    forced = runner.invoke(
        main, ["audit", "checkpoint", "--db", "x.db", "--export", str(target), "--force"]
    )
    assert forced.exit_code == 0, forced.output
    size = target.stat().st_size
    assert re.search(rf"wrote \d+ signed checkpoints \({size:,} bytes\) to {target}", forced.output)
    assert json.loads(target.read_text())


def test_times_are_shown_in_europe_paris_with_the_zone_named(runner):
    assert paris_time(datetime(2026, 7, 14, 8, 30, tzinfo=UTC)) == (
        "2026-07-14 10:30 Europe/Paris (CEST)"
    )
    assert paris_time(datetime(2026, 1, 5, 23, 30)) == "2026-01-06 00:30 Europe/Paris (CET)"
    runner.invoke(main, ["demo", "--patients", "40", "--seed", "2", "--no-serve"])
    text = Path("monespace-demo.db-logins.txt").read_text()
    match = re.search(r"a patient:  NIR (\S+)  carte Vitale (\S+)  born (\S+)", text)
    assert match is not None
    nir, vitale, born = match.groups()
    listed = runner.invoke(
        main,
        ["messages", "list", "--db", "monespace-demo.db", "--nir", nir, "--vitale", vitale,
         "--birth-date", born],
    )  # fmt: skip
    assert listed.exit_code == 0, listed.output
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d Europe/Paris \(CES?T\)", listed.output)


def test_the_new_commands_have_help_with_examples(runner):
    for command in (
        ["register", "person"],
        ["register", "professional"],
        ["request-code"],
        ["info"],
    ):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output


def test_the_readme_table_lists_every_command():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    listed = {name.split()[0] for row in rows for name in re.findall(r"`([^`]+)`", row)}
    assert set(main.commands) <= listed, set(main.commands) - listed


@pytest.mark.parametrize(
    "step",
    [
        "attaching minors to a parent",
        "sending invitations",
        "oppositions and activations",
        "opening spaces after six weeks",
        "writing messages",
    ],
)
def test_an_interruption_in_any_step_resumes_to_the_same_demo(runner, tmp_path, monkeypatch, step):
    """Whatever step Ctrl-C falls in, the resumed demo is the one an uninterrupted run
    makes: same states, links, documents and logins, nobody twice."""
    advance = _progress.Progress.advance
    phase = _progress.Progress.phase
    seen = {"count": 0}

    def track(self, label):
        seen["now"] = label
        phase(self, label)

    def interrupt(self, count=1):
        if seen.get("now") == step:
            seen["count"] += 1
            if seen["count"] == (1 if step == "writing messages" else 2):
                raise KeyboardInterrupt
        advance(self, count)

    with monkeypatch.context() as patched:
        patched.setattr(_progress.Progress, "phase", track)
        patched.setattr(_progress.Progress, "advance", interrupt)
        first = runner.invoke(main, ["demo", "--patients", "60", "--seed", "5", "--no-serve"])
    assert first.exit_code == 130, first.output
    checkpoint = checkpoint_from_json(
        (tmp_path / "monespace-demo.db-demo-checkpoint.json").read_text()
    )
    again = runner.invoke(main, ["demo", "--no-serve"])
    assert again.exit_code == 0, again.output
    with monespace.open("memory://", clock=ManualClock(checkpoint.today)) as space:
        reference = seed_demo(space, 60, seed=5)
    states = ", ".join(f"{k} {v}" for k, v in sorted(reference.states.items()))
    assert f"spaces:              {states}" in again.output
    assert f"minors with a parent: {reference.representations}" in again.output
    assert f"documents:           {reference.documents}" in again.output
    assert f"message threads:     {reference.threads}" in again.output
    for role in ("patient", "representative"):
        login = reference.login(role)
        assert login is not None
        assert f"NIR {login.nir}" in again.output
    assert "intact" in again.output
