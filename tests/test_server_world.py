"""A small world for the server tests (no tests here): patients, a parent and their child,
professionals with and without authorisation, and documents in every record."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

import attrs
import pytest

import monespace
from monespace import AccessMode, Actor, ActorKind, ManualClock
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity, RepresentationKind
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, RPPS, INSTraits
from monespace.messaging import NewAttachment
from monespace.record import LOINC, TRE_A05_TYPE, Code

pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from monespace.server import create_app  # noqa: E402

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPERATOR = Actor.system("test-world")
#: A string planted in documents, names and search words: it must never reach a log or URL.
CANARY = "CANARI-serveur-9d41"


@attrs.frozen
class Person:
    """Someone who can log in with their carte Vitale details."""

    id: str
    nir: str
    vitale_serial: str
    birth_date: date

    def login(self) -> dict[str, str]:
        return {
            "nir": self.nir,
            "vitale_serial": self.vitale_serial,
            "birth_date": self.birth_date.isoformat(),
        }


@attrs.define
class World:
    space: monespace.Space
    clock: ManualClock
    alice: Person  # active, with a child she represents, a treating doctor, documents
    bob: Person  # active, with documents
    child: str  # Alice's minor child (no login of their own)
    doctor: str  # RPPS of Alice's médecin traitant
    stranger: str  # RPPS of a registered professional with no authorisation anywhere
    documents: dict[str, list[str]] = attrs.field(factory=dict)  # patient id -> document ids
    profile_entries: dict[str, str] = attrs.field(factory=dict)  # patient id -> entry id
    threads: dict[str, str] = attrs.field(factory=dict)  # patient id -> thread id
    attachments: dict[str, str] = attrs.field(factory=dict)  # patient id -> attachment id
    closed_thread: str = ""  # a thread of Alice's that the doctor closed to replies
    events: dict[str, str] = attrs.field(factory=dict)  # patient id -> agenda event id


def _identity(n: int, birth: date, sex: str = "F", email: str | None = None) -> PatientIdentity:
    nir = NIR.build(sex, birth.year % 100, birth.month, "75", "056", n)  # type: ignore[arg-type]
    traits = INSTraits(
        birth_name=f"{CANARY.split('-', maxsplit=1)[0]}NOM",
        first_given_name="CAMILLE",
        birth_date=birth,
        sex=sex,  # type: ignore[arg-type]
        birth_place_code="75056",
    )
    return PatientIdentity(
        INS(nir, INS_NIR_TEST_OID, traits),
        Contact(email=email or f"p{n}@example.org"),
        vitale_serial=f"{1000000000 + n}",
    )


def _activate(space: monespace.Space, n: int, birth: date) -> Person:
    identity = _identity(n, birth)
    patient = space.accounts.register_patient(OPERATOR, identity)
    space.accounts.invite(OPERATOR, patient.id)
    code = space.accounts.issue_code(OPERATOR, patient.id, send=False)
    nir = identity.ins.matricule.value
    serial = identity.vitale_serial or ""
    space.accounts.activate(nir=nir, code=code, vitale_serial=serial, birth_date=birth)
    return Person(patient.id, nir, serial, birth)


def _text(space: monespace.Space, actor: Actor, pid: str, title: str) -> str:
    return space.record.add_document(
        actor,
        pid,
        f"{title} {CANARY}\n".encode(),
        media_type="text/plain",
        type_code=Code("DOCPAT01", TRE_A05_TYPE)
        if actor.kind is not ActorKind.PROFESSIONAL
        else Code("11488-4", LOINC),
        title=f"{title} {CANARY}",
    ).id


def build_world(url: str = "memory://") -> World:
    clock = ManualClock(START)
    space = monespace.open(url, clock=clock)
    alice = _activate(space, 11, date(1980, 5, 4))
    bob = _activate(space, 12, date(1975, 1, 20))
    child_identity = _identity(13, date(2016, 6, 1), sex="M")
    child = space.accounts.register_patient(OPERATOR, child_identity).id
    space.accounts.create_space(OPERATOR, child)
    space.accounts.add_representative(OPERATOR, child, alice.id, RepresentationKind.LEGAL_GUARDIAN)
    doctor = RPPS.build("1000345678").value
    stranger = RPPS.build("1000987654").value
    for rpps, name in ((doctor, "Dr Claire Martin"), (stranger, "Dr Paul Durand")):
        space.access.register_professional(
            OPERATOR, Professional(rpps, "10", name, specialty="SM26")
        )
    world = World(space, clock, alice, bob, child, doctor, stranger)
    alice_actor = Actor.patient(alice.id)
    space.access.declare_treating_doctor(alice_actor, alice.id, doctor)
    doctor_actor = Actor(ActorKind.PROFESSIONAL, doctor)
    for person in (alice, bob):
        me = Actor.patient(person.id)
        if person is bob:
            # The doctor feeds Bob's record as a member of his care team (L1111-17 III), and
            # Bob then withdraws it: the doctor keeps only an author's access there.
            space.access.join_care_team(doctor_actor, bob.id)
        world.documents[person.id] = [
            _text(space, me, person.id, "Note personnelle"),
            _text(space, doctor_actor, person.id, "Compte rendu de consultation"),
        ]
        if person is bob:
            space.access.revoke(me, bob.id, doctor)
        world.profile_entries[person.id] = space.profile.add(
            me, person.id, "allergy", f"Pénicilline {CANARY}"
        ).id
        space.measures.add(me, person.id, "weight", 70.5)
    guardian = Actor(ActorKind.REPRESENTATIVE, alice.id, on_behalf_of=child)
    world.documents[child] = [_text(space, guardian, child, "Carnet de santé")]
    for pid, author in (
        (alice.id, alice_actor),
        (bob.id, Actor.patient(bob.id)),
        (child, guardian),
    ):
        world.events[pid] = space.agenda.add(
            author,
            pid,
            kind="appointment",
            starts_at=datetime(2026, 3, 16, 9, 30, tzinfo=UTC),
            title=f"Consultation {CANARY}",
        ).id
    world.profile_entries[child] = space.profile.add(guardian, child, "vaccination", "ROR").id
    # Messages: the doctor writes to Alice (with a PDF) and to her child, the stranger to Bob
    # (any professional may start a conversation); one of Alice's threads is closed.
    stranger_actor = Actor(ActorKind.PROFESSIONAL, stranger)
    for pid, author in ((alice.id, doctor_actor), (child, doctor_actor), (bob.id, stranger_actor)):
        message = space.messaging.start_thread(
            author,
            pid,
            subject=f"Vos résultats {CANARY}",
            body=f"Bonjour, <script>alert(1)</script> voici le compte rendu. {CANARY}",
            attachments=[NewAttachment(f"compte-rendu-{CANARY}.pdf", "application/pdf", PDF)],
        )
        world.threads[pid] = message.thread_id
        world.attachments[pid] = message.attachments[0].id
    world.closed_thread = space.messaging.start_thread(
        doctor_actor,
        alice.id,
        subject="Rendez-vous confirmé",
        body="Votre rendez-vous est confirmé. Inutile de répondre.",
        close=True,
    ).thread_id
    return world


#: A minimal PDF (the media type is checked against the bytes).
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def client(app, *, https: bool = False) -> httpx.AsyncClient:
    scheme = "https" if https else "http"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://testserver"
    )


async def login_patient(http: httpx.AsyncClient, person: Person) -> dict[str, str]:
    """Log in; return the bearer headers."""
    response = await http.post("/api/v1/session/patient", json=person.login())
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


async def login_professional(http: httpx.AsyncClient, rpps: str) -> dict[str, str]:
    response = await http.post("/api/v1/session/professional", json={"rpps": rpps})
    assert response.status_code == 201, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


__all__ = [
    "CANARY",
    "PDF",
    "AccessMode",
    "World",
    "b64",
    "build_world",
    "client",
    "create_app",
    "login_patient",
    "login_professional",
]
