"""Cross-patient sweep (BOLA/IDOR, docs/security-and-reliability.md T2, through the Python API).

A world of four patients, each with a representative, documents of every visibility
(normal, masked, confidentiality V, hidden from the patient, hidden from the representatives,
the insurer's, the patient's own upload), a profil médical, measures, grants,
blocks and emergency sessions. Then every actor tries every *other* patient's objects through
every public read path:

- the patients (and each representative's own login), against the other patients;
- each representative, for the person they represent, against the others, and claiming to act
  for someone they do not represent;
- professionals of four professions, with grants of every kind and emergency sessions on one
  patient, and professionals without any, in the three access modes, against every patient
  they have no relation with; a professional the directory does not know; an application;
- the operator, against the health content (it reads administrative data and the trail by
  design).

Nothing may be returned (zero leaks), and every denial must be the same exception with the
same message as for an object that does not exist (no existence oracle). The number of
(operation x actor x object) combinations tried is printed (``pytest -s``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from monespace import AccessMode, Actor, ActorKind
from monespace.access import Professional
from monespace.accounts import RepresentationKind
from monespace.record import LOINC, TRE_A05_TYPE, Code

from .helpers import identity, open_patient, open_space, rpps

OPERATOR = Actor.system("test")
APP = Actor(ActorKind.APP, "app-de-suivi")
PDF = b"%PDF-1.7\n"
MISSING = "AAAAAAAAAAAAAAAAAAAAAA"  # shaped like an id; exists nowhere
BIOLOGY = Code("11502-2", LOINC)
JUSTIFICATION = "Patient inconscient, détresse respiratoire"
PROFESSIONS = ("10", "60", "21", "40")


AUTHOR = Actor(ActorKind.PROFESSIONAL, rpps(90))  # deposits every document; not swept
UNKNOWN = rpps(99)


class World:
    def __init__(self, space) -> None:
        self.space = space
        self.patients: list[str] = []
        self.representatives: dict[str, str] = {}  # patient -> representative person
        self.documents: dict[str, list[str]] = {}
        self.with_access: list[str] = []  # professionals with a grant and sessions on patient 0
        self.without_access: list[str] = []


def emergency_modes(number: str, world: World) -> tuple[AccessMode, ...]:
    """The emergency modes a professional of the world may declare: SAMU regulation is the
    regulating doctor's (L1111-17 I), so the physician's only."""
    physician = world.with_access[0]
    if number == physician:
        return (AccessMode.EMERGENCY, AccessMode.REGULATION)
    return (AccessMode.EMERGENCY,)


def build(space) -> World:
    world = World(space)
    access, record = space.access, space.record
    access.register_professional(OPERATOR, Professional(AUTHOR.id, "10", "Dr Auteur"))
    for i, profession in enumerate(PROFESSIONS):
        for offset, group in ((0, world.with_access), (10, world.without_access)):
            number = rpps(1 + i + offset)
            access.register_professional(
                OPERATOR, Professional(number, profession, f"Professionnel {number}")
            )
            group.append(number)
    for n in range(4):
        patient = open_patient(space, identity(1 + n)).id
        person = open_patient(space, identity(11 + n, email=None)).id
        space.accounts.add_representative(
            OPERATOR, patient, person, RepresentationKind.PROTECTED_ADULT
        )
        world.patients.append(patient)
        world.representatives[patient] = person
        me = Actor.patient(patient)
        documents = []
        access.join_care_team(AUTHOR, patient)  # feeding needs the right to (L1111-17 III)

        def add(actor, type_code=BIOLOGY, patient=patient, documents=documents, **kw):
            document = record.add_document(
                actor, patient, PDF + b"x", media_type="application/pdf", type_code=type_code, **kw
            )
            documents.append(document.id)
            return document

        add(AUTHOR)
        record.mask(me, add(AUTHOR).id)
        add(AUTHOR, confidentiality="V")
        add(AUTHOR, hidden_from_patient=True)
        add(AUTHOR, hidden_from_representatives=True)
        add(OPERATOR, Code("REMB", TRE_A05_TYPE))
        add(me, Code("DOCPAT01", TRE_A05_TYPE))
        gone = add(AUTHOR)
        record.delete(AUTHOR, gone.id)
        world.documents[patient] = documents
        space.profile.add(me, patient, "allergy", "Pénicilline")
        space.measures.add(me, patient, "weight", 70.5)
    # Every kind of relation, all on patient 0 (and a block on patient 1, which must not
    # open anything elsewhere).
    first = world.patients[0]
    me = Actor.patient(first)
    physician, nurse, pharmacist, dentist = world.with_access
    access.declare_treating_doctor(me, first, physician)
    access.join_care_team(Actor(ActorKind.PROFESSIONAL, nurse), first)
    access.authorise(me, first, pharmacist)
    access.grant_extended_rights(me, first, dentist)
    for number in world.with_access:
        for mode in emergency_modes(number, world):
            access.break_glass(
                Actor(ActorKind.PROFESSIONAL, number), first, justification=JUSTIFICATION, mode=mode
            )
    access.block(Actor.patient(world.patients[1]), world.patients[1], world.without_access[0])
    return world


# --- the read paths -------------------------------------------------------------------------------


#: name -> (kind of object, call). Kinds: "document", "patient".
def read_paths(space) -> dict[str, tuple[str, Callable[[Actor, str], Any]]]:
    return {
        "record.get_document": ("document", space.record.get_document),
        "record.read_content": ("document", space.record.read_content),
        "access.who_can_see": ("document", space.access.who_can_see),
        "record.search": ("patient", space.record.search),
        "record.search(include_replaced)": (
            "patient",
            lambda a, p: space.record.search(a, p, include_replaced=True),
        ),
        "record.documents_of": ("patient", lambda a, p: list(space.record.documents_of(a, p))),
        "profile.entries": ("patient", space.profile.entries),
        "measures.series": ("patient", lambda a, p: space.measures.series(a, p, "weight")),
        "audit.for_patient": ("patient", space.audit.for_patient),
        "access.history": ("patient", space.access.history),
        "access.settings": ("patient", space.access.settings),
        "access.authorisations": ("patient", space.access.authorisations),
        "access.blocked": ("patient", space.access.blocked),
        "accounts.get_patient": ("patient", space.accounts.get_patient),
        "accounts.account": ("patient", space.accounts.account),
        "accounts.representatives_of": ("patient", space.accounts.representatives_of),
    }


#: What the operator reads by design: administrative data and the trail (no health content).
OPERATOR_READS = {
    "audit.for_patient",
    "access.history",
    "accounts.get_patient",
    "accounts.account",
    "accounts.representatives_of",
}


def sweepers(world: World) -> list[tuple[Actor, set[str]]]:
    """Each actor and the patients whose objects are *not* theirs to read."""
    everyone = set(world.patients)
    actors: list[tuple[Actor, set[str]]] = []
    for patient, person in world.representatives.items():
        others = everyone - {patient}
        actors.append((Actor.patient(patient), others))
        actors.append((Actor(ActorKind.REPRESENTATIVE, person, on_behalf_of=patient), others))
        for other in others:  # claiming to act for someone they do not represent
            actors.append((Actor(ActorKind.REPRESENTATIVE, person, on_behalf_of=other), {other}))
        actors.append((Actor.patient(person), everyone))  # their own login is not a proxy
    for mode in AccessMode:
        for number in world.with_access:
            actors.append(
                (Actor(ActorKind.PROFESSIONAL, number, mode=mode), everyone - {world.patients[0]})
            )
        for number in [*world.without_access, UNKNOWN]:
            actors.append((Actor(ActorKind.PROFESSIONAL, number, mode=mode), everyone))
    actors.append((APP, everyone))
    actors.append((OPERATOR, everyone))
    return actors


def outcome(call: Callable[[Actor, str], Any], actor: Actor, target: str) -> tuple[str, str] | None:
    """``None`` when the call returned (a leak), else the exception's type and message."""
    try:
        call(actor, target)
    except Exception as exc:  # any exception type: it is compared with the missing case's
        return type(exc).__name__, str(exc)
    return None


@pytest.fixture
def space(url, monespace_clock):
    with open_space(url, monespace_clock, transports=["email"]) as opened:
        yield opened


def test_no_actor_reads_another_patients_data_and_denials_reveal_nothing(space, request):
    world = build(space)
    paths = read_paths(space)
    tried = 0
    leaks: list[tuple[str, Actor, str]] = []
    oracles: list[tuple[str, Actor, str, Any, Any]] = []
    for actor, targets in sweepers(world):
        for name, (kind, call) in paths.items():
            if actor == OPERATOR and name in OPERATOR_READS:
                continue
            missing = outcome(call, actor, MISSING)
            for patient in sorted(targets):
                objects = {
                    "document": world.documents[patient],
                    "patient": [patient],
                }[kind]
                for target in objects:
                    tried += 1
                    got = outcome(call, actor, target)
                    if got is None:
                        leaks.append((name, actor, target))
                    elif got != missing:
                        oracles.append((name, actor, target, got, missing))
    print(
        f"\naccess sweep [{request.node.callspec.id}]: {tried} (operation x actor x object) "
        f"combinations, {len(leaks)} leaks, {len(oracles)} existence oracles",
        file=sys.stderr,
    )
    assert leaks == []
    assert oracles == []
    assert tried > 5000
    assert space.audit.verify().ok


def test_the_sweep_world_is_readable_by_those_it_belongs_to(space):
    """The sweep's denials mean something: the same objects are readable by their owners."""
    world = build(space)
    first = world.patients[0]
    me = Actor.patient(first)
    representative = Actor(
        ActorKind.REPRESENTATIVE, world.representatives[first], on_behalf_of=first
    )
    assert space.record.search(me, first).total == 6  # all but the hidden and the deleted
    assert space.record.search(representative, first).total == 5
    for number in world.with_access:
        actor = Actor(ActorKind.PROFESSIONAL, number)
        assert space.record.search(actor, first).total >= 1
        assert space.accounts.get_patient(actor, first).id == first
        for mode in emergency_modes(number, world):
            assert space.record.search(Actor(ActorKind.PROFESSIONAL, number, mode=mode), first)
    own_upload = world.documents[first][6]
    assert space.record.read_content(me, own_upload) == PDF + b"x"
    assert [e.label for e in space.profile.entries(representative, first)] == ["Pénicilline"]
    assert len(space.measures.series(me, first, "weight")) == 1
