"""``monespace access explain``: the decision and the rule that takes it, from the command line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import monespace
from monespace import AccessMode, Actor, ActorKind
from monespace.access import Professional
from monespace.cli import main
from monespace.record import LOINC, TRE_A05_TYPE, Code

from .helpers import feeder, identity, open_patient, rpps

OPERATOR = Actor.system("test")
PDF = b"%PDF-1.7\n"
BIOLOGY = Code("11502-2", LOINC)


HOUSE, WILSON, NURSE, STRANGER = rpps(1), rpps(2), rpps(3), rpps(4)
NIR = identity(1).ins.matricule.value


@pytest.fixture
def world(tmp_path):
    """A space file the test and the command line share (same key file): one patient with a
    médecin traitant, an authorised nurse, a normal, a masked, a hidden and a REMB document,
    and a SAMU emergency access."""
    path = tmp_path / "access.db"
    with monespace.open(f"sqlite:///{path}", load_entrypoints=False) as space:
        for number, profession in ((HOUSE, "10"), (WILSON, "10"), (NURSE, "60"), (STRANGER, "21")):
            space.access.register_professional(
                OPERATOR, Professional(number, profession, f"Professionnel {number}")
            )
        holder = open_patient(space, identity(1))
        other = open_patient(space, identity(2))
        me = Actor.patient(holder.id)
        space.access.declare_treating_doctor(me, holder.id, HOUSE)
        space.access.authorise(me, holder.id, NURSE)
        author = Actor(ActorKind.PROFESSIONAL, WILSON)

        def add(patient_id=holder.id, type_code=BIOLOGY, **kwargs):
            if type_code.code == "REMB":  # the insurer's
                return space.record.add_document(
                    OPERATOR, patient_id, PDF, media_type="application/pdf", type_code=type_code
                ).id
            feeder(space, author, patient_id)
            return space.record.add_document(
                author, patient_id, PDF, media_type="application/pdf", type_code=type_code, **kwargs
            ).id

        documents = {
            "normal": add(),
            "masked": add(),
            "hidden": add(hidden_from_patient=True),
            "remb": add(type_code=Code("REMB", TRE_A05_TYPE)),
            "elsewhere": add(other.id),
        }
        space.record.mask(me, documents["masked"])
        space.access.break_glass(
            Actor(ActorKind.PROFESSIONAL, WILSON),
            holder.id,
            justification="Appel au centre 15, patient inconscient",
            mode=AccessMode.REGULATION,
        )
    return path, documents


def explain(path, *args):
    return CliRunner().invoke(main, ["access", "explain", "--db", str(path), "--nir", NIR, *args])


@pytest.mark.parametrize(
    ("who", "document", "extra", "expected"),
    [
        (NURSE, "normal", [], "ALLOWED by rule authorised_professional"),
        (NURSE, None, [], "ALLOWED by rule authorised_professional"),
        (NURSE, "masked", [], "DENIED by rule masked_by_patient"),
        (HOUSE, "masked", [], "ALLOWED by rule authorised_professional"),
        (NURSE, "remb", [], "DENIED by rule matrix_of_habilitations"),
        (STRANGER, "normal", [], "DENIED by rule no_authorisation"),
        (STRANGER, None, ["--action", "patient.read"], "DENIED by rule no_authorisation"),
        (WILSON, "masked", [], "ALLOWED by rule author_manages_own_document"),
        (HOUSE, "normal", ["--mode", "emergency"], "DENIED by rule no_emergency_declared"),
        (WILSON, None, ["--mode", "regulation"], "ALLOWED by rule emergency_access"),
        (rpps(50), None, [], "DENIED by rule professional_must_be_known"),
        ("patient", "hidden", [], "DENIED by rule hidden_until_announcement"),
        ("patient", "masked", [], "ALLOWED by rule patient_owns_space"),
    ],
)
def test_explain_prints_the_decision_and_the_rule(world, who, document, extra, expected):
    path, documents = world
    args = ["--as-patient"] if who == "patient" else ["--professional", who]
    if document is not None:
        args += ["--document", documents[document]]
    result = explain(path, *args, *extra)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == expected
    if who != "patient":
        assert lines[1].startswith("  professional: registered=")
        assert lines[2].startswith("  patient settings: object_all=False")
    if document is not None:
        assert lines[-1].startswith("  document: class=")


def test_explain_shows_the_facts_it_used(world):
    path, documents = world
    result = explain(path, "--professional", HOUSE, "--document", documents["masked"])
    assert result.output.splitlines() == [
        "ALLOWED by rule authorised_professional",
        "  professional: registered=True profession=10 grant=treating_doctor blocked=False "
        "emergency=False",
        "  patient settings: object_all=False object_emergency=False mask_all=False",
        "  document: class=10 type=11502-2 masked=True confidentiality=N",
    ]


def test_explain_accepts_a_number_written_with_spaces(world):
    path, documents = world
    spaced = f"{NURSE[:4]} {NURSE[4:]}"
    result = explain(path, "--professional", spaced, "--document", documents["normal"])
    assert result.output.splitlines()[0] == "ALLOWED by rule authorised_professional"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "give either --professional RPPS or --as-patient"),
        (["--as-patient", "--professional", NURSE], 2, "give either"),
        (["--professional", "12345678901"], 1, "Error:"),
        (["--professional", NURSE, "--mode", "bris"], 2, "Invalid value for '--mode'"),
        (["--professional", NURSE, "--action", "document.delete"], 2, "Invalid value"),
        (["--professional", NURSE, "--document", "no-such-document"], 1, "no such document"),
    ],
)
def test_explain_refuses_bad_arguments(world, args, code, message):
    path, _ = world
    result = explain(path, *args)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_explain_refuses_a_document_of_another_record(world):
    path, documents = world
    result = explain(path, "--professional", NURSE, "--document", documents["elsewhere"])
    assert result.exit_code == 1
    assert "no such document in this record" in result.output


def test_explain_of_an_unknown_person_says_so(world):
    path, _ = world
    result = CliRunner().invoke(
        main,
        ["access", "explain", "--db", str(path), "--nir", identity(9).ins.matricule.value,
         "--as-patient"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "nobody is registered with this NIR" in result.output


def test_explanations_are_traced_and_the_trail_stays_intact(world):
    path, documents = world
    for _ in range(3):
        explain(path, "--professional", NURSE, "--document", documents["normal"])
    with monespace.open(f"sqlite:///{path}", load_entrypoints=False) as space:
        events = space.audit.events(OPERATOR)
    explained = [e for e in events if e.action == "access.explain"]
    assert len(explained) == 3
    assert {(e.actor_id, e.target_id, e.rule) for e in explained} == {
        ("explain", NURSE, "authorised_professional")
    }
    result = CliRunner().invoke(main, ["audit", "verify", "--db", str(path)])
    assert result.exit_code == 0, result.output
