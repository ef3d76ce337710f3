"""The lifecycle through the command line: invite, activate, oppose, close, tick, and the
activation line printed by the demo."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner

import monespace
from monespace import Actor
from monespace.accounts import Contact, PatientIdentity, PostalAddress
from monespace.accounts._proofs import verify_opposition_proof
from monespace.cli import main
from monespace.cli._errors import with_next_step
from monespace.errors import ActivationError, NotFoundError
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.transport import MemoryTransport

OPERATOR = Actor.system("test")
CODE_RE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}\b")
UNIFORM = f"Error: {with_next_step(ActivationError())}"


def person(n: int, *, email: bool = True, address: bool = True) -> PatientIdentity:
    born = date(1980 + n, 5, 12)
    nir = NIR.build("F", born.year % 100, born.month, "44", "109", n)
    traits = INSTraits(birth_name="MARTIN", first_given_name="LEA", birth_date=born, sex="F")
    return PatientIdentity(
        INS(nir, INS_NIR_TEST_OID, traits),
        Contact(
            email=f"cli{n}@example.org" if email else None,
            postal_address=PostalAddress(
                lines=(f"{n} QUAI DE LA FOSSE",), postal_code="44000", city="NANTES"
            )
            if address
            else None,
        ),
        vitale_serial=f"{n:010d}",
    )


def proof_args(identity: PatientIdentity, code: str) -> list[str]:
    traits = identity.ins.traits
    assert traits is not None
    return [
        "--nir",
        identity.ins.matricule.value,
        "--code",
        code,
        "--vitale",
        identity.vitale_serial or "",
        "--birth-date",
        traits.birth_date.isoformat(),
    ]


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.fixture
def db(tmp_path):
    """A space file with five registered people; the CLI and the test share the key file."""
    path = tmp_path / "cli.db"
    with monespace.open(f"sqlite:///{path}") as space:
        ids = [
            space.accounts.register_patient(OPERATOR, p).id
            for p in (
                person(1),
                person(2, email=False),
                person(3, email=False, address=False),
            )
        ]
        for n in (4, 5):
            pid = space.accounts.register_patient(OPERATOR, person(n)).id
            space.accounts.create_space(OPERATOR, pid)
            ids.append(pid)
    return str(path), ids


def deliver(path: str) -> dict[str, str]:
    """Deliver the outbox; the codes sent, by recipient."""
    mail, post = MemoryTransport(), MemoryTransport()
    with monespace.open(f"sqlite:///{path}", transports={"email": mail, "letter": post}) as space:
        space.dispatch(limit=1000)
    return {e.recipient: CODE_RE.findall(e.body)[0] for e in [*mail.sent, *post.sent]}


def state_of(path: str, patient_id: str) -> str:
    with monespace.open(f"sqlite:///{path}") as space:
        return str(space.accounts.account(OPERATOR, patient_id).state)


def test_the_lifecycle_through_the_command_line(runner, db):
    path, ids = db
    invited = runner.invoke(main, ["invite", "--db", path, "--batch", "2"])
    assert invited.exit_code == 0, invited.output
    assert "invited 2 (1 by e-mail, 1 by letter); skipped 1 without any contact" in invited.output
    codes = deliver(path)
    assert set(codes) == {"cli1@example.org", "2 QUAI DE LA FOSSE, 44000 NANTES"}

    # The first activates.
    activated = runner.invoke(
        main, ["activate", "--db", path, *proof_args(person(1), codes["cli1@example.org"])]
    )
    assert activated.exit_code == 0, activated.output
    assert activated.output == f"space {ids[0]} is now active\n"

    # The second (written to by post) objects, and keeps a signed proof.
    letter_code = codes["2 QUAI DE LA FOSSE, 44000 NANTES"]
    opposed = runner.invoke(
        main, ["oppose", "--db", path, *proof_args(person(2), letter_code), "--proof", "proof.json"]
    )
    assert opposed.exit_code == 0, opposed.output
    assert re.fullmatch(
        r"opposition recorded; wrote proof \S+ \(\d+ bytes\) to proof.json\n", opposed.output
    )
    with open("proof.json", encoding="utf-8") as handle:
        document = handle.read()
    with monespace.open(f"sqlite:///{path}") as space:
        fields = verify_opposition_proof(document, space.accounts.signing_public_key())
    assert fields["ins"]["matricule"] == person(2).ins.matricule.value
    assert state_of(path, ids[1]) == "opposed"

    # Without --proof the proof is printed.
    with monespace.open(f"sqlite:///{path}") as space:
        code = space.accounts.issue_code(OPERATOR, ids[2], send=False)
    printed = runner.invoke(main, ["oppose", "--db", path, *proof_args(person(3), code)])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["by"] == "holder"

    # Closure at the holder's request, then the archive runs ten years.
    closed = runner.invoke(main, ["close", "--db", path, "--nir", person(1).ins.matricule.value])
    assert closed.exit_code == 0, closed.output
    until = monespace.accounts._lifecycle.add_years(datetime.now(UTC), 10)
    assert re.fullmatch(
        rf"space {ids[0]} is now closed \(archived until \d{{4}}-\d\d-\d\d\)\n", closed.output
    )
    assert str(until.year) in closed.output

    deleted = runner.invoke(
        main, ["close", "--db", path, "--nir", person(4).ins.matricule.value, "--delete"]
    )
    assert deleted.exit_code == 0, deleted.output
    assert deleted.output.startswith(f"space {ids[3]} is now purge_pending")
    first = runner.invoke(main, ["tick", "--db", path])
    assert first.exit_code == 0, first.output
    assert first.output == "purged: 1\n"
    assert runner.invoke(main, ["tick", "--db", path]).output == "nothing was due\n"

    later = (datetime.now(UTC) + timedelta(days=3655)).strftime("%Y-%m-%d")
    ticked = runner.invoke(main, ["tick", "--db", path, "--now", later])
    assert ticked.exit_code == 0, ticked.output
    assert ticked.output == "purged: 1\n"
    assert state_of(path, ids[0]) == "purged"
    assert state_of(path, ids[4]) == "created"  # still open: nothing due for it
    verify = runner.invoke(main, ["audit", "verify", "--db", path])
    assert verify.exit_code == 0, verify.output


def test_the_six_week_deadline_through_tick_now(runner, db):
    path, ids = db
    runner.invoke(main, ["invite", "--db", path])
    now = datetime.now(UTC)
    early = (now + timedelta(days=41)).strftime("%Y-%m-%dT%H:%M:%S")
    assert runner.invoke(main, ["tick", "--db", path, "--now", early]).output == "nothing was due\n"
    late = (now + timedelta(days=43)).strftime("%Y-%m-%dT%H:%M:%S%z")
    ticked = runner.invoke(main, ["tick", "--db", path, "--now", late])
    assert ticked.exit_code == 0, ticked.output
    assert ticked.output == "created: 2\n"
    assert state_of(path, ids[0]) == "created"


def test_a_bad_proof_exits_1_with_the_one_message(runner, db):
    path, _ = db
    runner.invoke(main, ["invite", "--db", path])
    code = deliver(path)["cli1@example.org"]
    wrong_code = "AAAA-BBBB-CCCC" if code != "AAAA-BBBB-CCCC" else "CCCC-BBBB-AAAA"
    attempts = {
        "wrong code": ["activate", *proof_args(person(1), wrong_code)],
        "unknown NIR": ["activate", *proof_args(person(9), code)],
        "wrong card": [
            "oppose",
            *proof_args(person(1), code)[:4],
            "--vitale",
            "X1234567",
            "--birth-date",
            "1981-05-12",
        ],
        "wrong birth": ["oppose", *proof_args(person(1), code)[:6], "--birth-date", "1981-05-13"],
    }
    for name, args in attempts.items():
        result = runner.invoke(main, [args[0], "--db", path, *args[1:]])
        assert result.exit_code == 1, name
        assert result.output == UNIFORM + "\n", name
        assert "Traceback" not in result.output
    # A malformed NIR is said as such (never echoed), with what to do next; nothing counted.
    malformed = runner.invoke(
        main, ["activate", "--db", path, "--nir", "2850375056001", *proof_args(person(1), code)[2:]]
    )
    assert malformed.exit_code == 1
    assert malformed.output.startswith("Error: the NIR is malformed")
    assert "carte Vitale" in malformed.output
    assert "2850375056001" not in malformed.output
    # The code still works: four failures, under both limits.
    result = runner.invoke(main, ["activate", "--db", path, *proof_args(person(1), code)])
    assert result.exit_code == 0, result.output
    # A date in the wrong form is a usage error (exit 2), not a refused proof.
    bad_date = runner.invoke(
        main,
        ["activate", "--db", path, *proof_args(person(1), code)[:6], "--birth-date", "12/05/1981"],
    )
    assert bad_date.exit_code == 2


def test_closing_an_unknown_or_unopened_space_is_an_error(runner, db):
    path, _ = db
    unknown = runner.invoke(main, ["close", "--db", path, "--nir", person(9).ins.matricule.value])
    assert unknown.exit_code == 1
    assert unknown.output == (
        f"Error: {with_next_step(NotFoundError('nobody is registered with this NIR'))}\n"
    )
    registered = runner.invoke(
        main, ["close", "--db", path, "--nir", person(1).ins.matricule.value]
    )
    assert registered.exit_code == 1
    assert registered.output.startswith("Error: cannot close a space that is registered; ")
    assert "run-the-lifecycle" in registered.output


def test_every_lifecycle_command_has_help_with_an_example(runner):
    for command in ("invite", "activate", "oppose", "close", "tick"):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output


def test_the_activation_line_printed_by_the_demo_works(runner):
    demo = runner.invoke(main, ["demo", "--db", "demo.db", "--patients", "25", "--seed", "0"])
    assert demo.exit_code == 0, demo.output
    [line] = [ln for ln in demo.output.splitlines() if ln.strip().startswith("monespace activate")]
    args = shlex.split(line)[1:]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"space \S+ is now active\n", result.output)
    # The code was single use: the same line a second time is refused, uniformly.
    again = runner.invoke(main, args)
    assert (again.exit_code, again.output) == (1, UNIFORM + "\n")


def test_close_delete_does_not_announce_a_ten_year_archive(runner, db):
    path, _ids = db
    nir = person(4).ins.matricule.value
    deleted = runner.invoke(main, ["close", "--db", path, "--nir", nir, "--delete"])
    assert deleted.exit_code == 0
    assert "archived until" not in deleted.output
