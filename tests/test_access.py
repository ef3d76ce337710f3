"""Professional access under the patient's control (``space.access``), rule by rule, on the
memory and the SQLite backend.

The rules come from docs/domain-rules.md §3.4 and §4 and docs/security-and-reliability.md
§1.2 and §1.3. Every read is tried through the three read paths of the record
(``get_document``, ``read_content`` and ``search``), which must agree. The model-based test is
``test_access_stateful.py``; the cross-patient sweep is ``test_access_sweep.py``.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import attrs
import pytest
from click.testing import CliRunner

from monespace import AccessMode, Actor, ActorKind, Settings
from monespace.access import (
    DEFAULT_MATRIX,
    PROFESSIONS,
    AccessMatrix,
    AccessPolicy,
    GrantKind,
    Professional,
)
from monespace.access._facts import AccessFacts
from monespace.accounts import RepresentationKind
from monespace.audit import Outcome, event_from_row
from monespace.cli import main
from monespace.crypto import Keyring, MasterKey, StaticKeyProvider
from monespace.errors import (
    AccessDeniedError,
    DecryptionError,
    InvalidRPPSError,
    UnknownProfessionalError,
    ValidationError,
)
from monespace.policy import AppFacts, Facts, ProfessionalFacts, ThreadFacts
from monespace.record import LOINC, TRE_A05_TYPE, Author, AuthorKind, Code
from monespace.testing import storage_of

from .helpers import MARKER, feeder, identity, open_patient, open_space, rpps

OPERATOR = Actor.system("test")
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
BIOLOGY = Code("11502-2", LOINC)  # class 10, compte rendu
PSYCHIATRY = Code("68599-0", LOINC)  # class 11, a synthesis dentists may not read
REMB = Code("REMB", TRE_A05_TYPE)  # class 60, the health insurer's reimbursement history
ATTEST_RESID = Code("ATTEST-RESID", TRE_A05_TYPE)  # class 95, physicians may not read it
SIGNATURE = Code("E1762", "ASTM")  # the submission set's digital signature
PATIENT_UPLOAD = Code("DOCPAT01", TRE_A05_TYPE)
JUSTIFICATION = "Patient inconscient aux urgences, antécédents inconnus"

#: name -> (number, TRE_G15 profession, name, MSSanté address)
PEOPLE = {
    "house": (1, "10", "Dr Gregory HOUSE", "gregory.house@medecin.mssante.fr"),
    "wilson": (2, "10", "Dr James WILSON", None),
    "nurse": (3, "60", "Carla ESPINOSA", None),
    "pharmacist": (4, "21", "Paul PHARMA", None),
    "dentist": (5, "40", "Diane DENT", None),
    "samu": (6, "10", "Dr Rachid REGUL", "regulation@samu.mssante.fr"),
}


def pro(name: str, mode: AccessMode = AccessMode.NORMAL) -> Actor:
    return Actor(ActorKind.PROFESSIONAL, rpps(PEOPLE[name][0]), mode=mode)


UNKNOWN = Actor(ActorKind.PROFESSIONAL, rpps(99))  # not in the directory


def register_people(space) -> None:
    for number, profession, name, mssante in PEOPLE.values():
        space.access.register_professional(
            OPERATOR, Professional(rpps(number), profession, name, mssante=mssante)
        )


@pytest.fixture
def make_space(url, tmp_path, monespace_clock):
    """Open a space (with *settings*), its professionals registered; closed after the test."""
    with ExitStack() as stack:
        count = 0

        def make(settings: Settings | None = None):
            nonlocal count
            count += 1
            where = url if url == "memory://" else f"sqlite:///{tmp_path}/space{count}.db"
            space = stack.enter_context(
                open_space(
                    where, monespace_clock, transports=["email", "mssante"], settings=settings
                )
            )
            register_people(space)
            return space

        yield make


@pytest.fixture
def space(make_space):
    return make_space()


@pytest.fixture
def holder(space):
    return open_patient(space, identity(1))


def add(space, actor, patient_id, type_code=BIOLOGY, **kwargs):
    feeder(space, actor, patient_id)
    kwargs.setdefault("title", "Bilan sanguin")
    return space.record.add_document(
        actor, patient_id, PDF, media_type="application/pdf", type_code=type_code, **kwargs
    )


def reads(space, actor, document) -> bool:
    """Whether *actor* reads *document*: get_document and read_content must agree, and a
    search of the record lists it exactly then (when the actor may search the record)."""
    answers, messages = [], set()
    for read in (space.record.get_document, space.record.read_content):
        try:
            read(actor, document.id)
            answers.append(True)
        except AccessDeniedError as denied:
            messages.add(str(denied))
            answers.append(False)
    assert messages <= {"access denied"}
    assert answers[0] == answers[1], answers
    try:
        listed = document.id in {
            d.id for d in space.record.documents_of(actor, document.patient_id)
        }
    except AccessDeniedError:
        listed = None  # no access to the record as a whole (authors keep their documents)
    if listed is not None:
        assert listed == answers[0], (listed, answers)
    return answers[0]


def rule(space, actor, document, action="document.read") -> str:
    explanation = space.access.explain(
        actor, action, patient_id=document.patient_id, document_id=document.id
    )
    return explanation.rule


def last_event(space):
    with storage_of(space).read() as tx:
        last = tx.audit.last()
    return None if last is None else event_from_row(last)


def sent(space, channel="email", kind=None):
    space.dispatch()
    return [e for e in space.transports[channel].sent if kind is None or e.kind == kind]


# --- care team and explicit authorisation --------------------------------------------------------


def test_the_care_team_is_deemed_authorised_unless_the_patient_objects_to_all_access(
    space, holder, me
):
    document = add(space, pro("wilson"), holder.id)
    nurse = pro("nurse")
    assert not reads(space, nurse, document)
    assert rule(space, nurse, document) == "no_authorisation"
    grant = space.access.join_care_team(nurse, holder.id)
    assert (grant.kind, grant.granted_by, grant.until) == (GrantKind.CARE_TEAM, nurse.id, None)
    assert reads(space, nurse, document)
    assert rule(space, nurse, document) == "authorised_professional"
    space.access.update_settings(me, holder.id, object_all=True)
    assert not reads(space, nurse, document)
    assert rule(space, nurse, document) == "patient_objects_to_all_access"
    with pytest.raises(AccessDeniedError):  # nor may anyone join while the patient objects
        space.access.join_care_team(pro("pharmacist"), holder.id)
    assert last_event(space).rule == "care_team_declaration"
    space.access.update_settings(me, holder.id, object_all=False)
    assert reads(space, nurse, document)


def test_only_a_known_professional_joins_a_care_team(space, holder, me):
    with pytest.raises(ValidationError):
        space.access.join_care_team(me, holder.id)
    # Not in the directory: the policy denies (and the denial is audited), and the error
    # says the professional is unknown rather than "access denied".
    with pytest.raises(UnknownProfessionalError) as unknown:
        space.access.join_care_team(UNKNOWN, holder.id)
    assert not isinstance(unknown.value, AccessDeniedError)
    assert "directory" in str(unknown.value)
    event = last_event(space)
    assert (event.rule, event.outcome) == ("professional_must_be_known", Outcome.DENIED)
    with pytest.raises(AccessDeniedError):  # the same answer for a record that does not exist
        space.access.join_care_team(pro("nurse"), "no-such-patient")


@pytest.mark.parametrize(
    "grant",
    ["care_team", "authorised", "extended", "treating_doctor"],
)
def test_an_objection_to_all_access_beats_every_grant(space, holder, me, grant):
    house = pro("house")
    document = add(space, pro("wilson"), holder.id)
    give(space, me, holder.id, house, grant)
    assert reads(space, house, document)
    space.access.update_settings(me, holder.id, object_all=True)
    assert not reads(space, house, document)
    with pytest.raises(AccessDeniedError):
        space.record.search(house, holder.id)
    with pytest.raises(AccessDeniedError):
        space.accounts.get_patient(house, holder.id)


def give(space, me, patient_id, actor, grant: str):
    if grant == "care_team":
        return space.access.join_care_team(actor, patient_id)
    if grant == "authorised":
        return space.access.authorise(me, patient_id, actor.id)
    if grant == "extended":
        return space.access.grant_extended_rights(me, patient_id, actor.id)
    return space.access.declare_treating_doctor(me, patient_id, actor.id)


def test_an_explicit_authorisation_is_permanent_or_lasts_until_its_date(
    space, holder, me, monespace_clock
):
    document = add(space, pro("house"), holder.id)
    wilson, nurse = pro("wilson"), pro("nurse")
    assert not reads(space, wilson, document)
    until = monespace_clock.now() + timedelta(days=7)
    permanent = space.access.authorise(me, holder.id, wilson.id)
    limited = space.access.authorise(me, holder.id, nurse.id, until=until)
    assert (permanent.kind, permanent.until, permanent.granted_by) == (
        GrantKind.AUTHORISED,
        None,
        holder.id,
    )
    assert limited.until == until
    assert reads(space, wilson, document)
    assert reads(space, nurse, document)
    monespace_clock.set(until - timedelta(seconds=1))
    assert reads(space, nurse, document)
    monespace_clock.set(until)  # 'until' is exclusive
    assert not reads(space, nurse, document)
    assert rule(space, nurse, document) == "no_authorisation"
    monespace_clock.advance(days=3650)
    assert reads(space, wilson, document)
    # A new authorisation replaces the old one.
    space.access.authorise(me, holder.id, nurse.id)
    assert reads(space, nurse, document)


def test_an_authorisation_must_end_in_the_future_and_be_timezone_aware(
    space, holder, me, monespace_clock
):
    now = monespace_clock.now()
    with pytest.raises(ValidationError, match="future"):
        space.access.authorise(me, holder.id, pro("nurse").id, until=now)
    assert last_event(space).outcome is Outcome.FAILURE
    # Regression: a naive date raised TypeError, untraced.
    with pytest.raises(ValidationError, match="timezone"):
        space.access.authorise(me, holder.id, pro("nurse").id, until=datetime(2030, 1, 1))
    assert last_event(space).outcome is Outcome.FAILURE
    with pytest.raises(InvalidRPPSError):
        space.access.authorise(me, holder.id, "12345678901")
    with pytest.raises(AccessDeniedError):  # only the holder (or a representative) authorises
        space.access.authorise(pro("house"), holder.id, pro("nurse").id)


def test_a_representative_manages_access_for_the_person_they_represent(space, holder):
    person = open_patient(space, identity(7, email="rep@example.org"))
    space.accounts.add_representative(
        OPERATOR, holder.id, person.id, RepresentationKind.PROTECTED_ADULT
    )
    representative = Actor(ActorKind.REPRESENTATIVE, person.id, on_behalf_of=holder.id)
    document = add(space, pro("house"), holder.id)
    space.access.authorise(representative, holder.id, pro("wilson").id)
    assert reads(space, pro("wilson"), document)
    space.access.block(representative, holder.id, pro("wilson").id)
    assert not reads(space, pro("wilson"), document)
    assert space.access.blocked(representative, holder.id) == [pro("wilson").id]
    assert space.access.settings(representative, holder.id).object_all is False
    history = space.access.history(representative, holder.id)
    assert [e.what for e in history if e.who == "votre représentant légal"] == [
        "a autorisé un professionnel",
        "a bloqué un professionnel",
        "a consulté vos paramètres d'accès",  # blocked()
        "a consulté vos paramètres d'accès",  # settings()
    ]


def test_a_revocation_takes_effect_at_once(space, holder, me):
    document = add(space, pro("house"), holder.id)
    nurse = pro("nurse")
    space.access.join_care_team(nurse, holder.id)
    space.access.authorise(me, holder.id, nurse.id)
    space.access.grant_extended_rights(me, holder.id, nurse.id)
    assert reads(space, nurse, document)
    spaced = f"{nurse.id[:4]} {nurse.id[4:]}"  # as printed on a card
    assert space.access.revoke(me, holder.id, spaced) == 3
    assert not reads(space, nurse, document)
    grants = [
        g for g in space.access.authorisations(me, holder.id) if g.professional_id == nurse.id
    ]
    assert {g.kind for g in grants} == {
        GrantKind.CARE_TEAM,
        GrantKind.AUTHORISED,
        GrantKind.EXTENDED,
    }
    assert all(g.ended_at is not None for g in grants)
    assert space.access.revoke(me, holder.id, nurse.id) == 0
    assert last_event(space).action == "access.revoke"


# --- blocking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("grant", ["care_team", "authorised", "extended", "treating_doctor"])
def test_a_block_beats_every_grant_at_once_and_an_unblock_restores_it(make_space, grant):
    """With ``block_spares_treating_doctor=False``, a block beats every grant, the médecin
    traitant's included."""
    space = make_space(Settings(access=AccessPolicy(block_spares_treating_doctor=False)))
    holder = open_patient(space, identity(1))
    me = Actor.patient(holder.id)
    house = pro("house")
    document = add(space, pro("wilson"), holder.id)
    masked = add(space, pro("wilson"), holder.id)
    space.record.mask(me, masked.id)
    give(space, me, holder.id, house, grant)
    assert reads(space, house, document)
    space.access.block(me, holder.id, house.id)
    for target in (document, masked):
        assert not reads(space, house, target)
        assert rule(space, house, target) == "blocked_by_patient"
    for call in (
        lambda: space.record.search(house, holder.id),
        lambda: space.accounts.get_patient(house, holder.id),
        lambda: space.access.join_care_team(house, holder.id),
        lambda: space.access.break_glass(house, holder.id, justification=JUSTIFICATION),
        lambda: add(space, house, holder.id),  # nor feeds the record
    ):
        with pytest.raises(AccessDeniedError):
            call()
    assert space.access.blocked(me, holder.id) == [house.id]
    assert space.access.unblock(me, holder.id, house.id) is True
    assert reads(space, house, document)
    assert space.access.unblock(me, holder.id, house.id) is False
    assert space.access.blocked(me, holder.id) == []


def test_a_block_given_with_spaces_blocks_the_professional(space, holder, me):
    """Regression: the number was stored as typed, so the block matched nobody."""
    wilson = pro("wilson")
    document = add(space, pro("house"), holder.id)
    space.access.authorise(me, holder.id, wilson.id)
    space.access.block(me, holder.id, f" {wilson.id[:4]} {wilson.id[4:]} ")
    assert space.access.blocked(me, holder.id) == [wilson.id]
    assert not reads(space, wilson, document)
    assert space.access.unblock(me, holder.id, f"{wilson.id[:4]} {wilson.id[4:]}")
    assert reads(space, wilson, document)
    with pytest.raises(InvalidRPPSError):
        space.access.block(me, holder.id, "not a number")


def test_a_block_also_stops_the_author_of_a_document(space, holder, me):
    """Blocking is "no access at all": the depositor's exception (R1111-49) is about masking."""
    wilson = pro("wilson")
    document = add(space, wilson, holder.id)
    assert reads(space, wilson, document)
    space.access.block(me, holder.id, wilson.id)
    assert not reads(space, wilson, document)


def test_only_the_holder_blocks(space, holder, me):
    other = open_patient(space, identity(2))
    for actor in (pro("house"), Actor.patient(other.id), OPERATOR):
        for call in (space.access.block, space.access.unblock, space.access.revoke):
            with pytest.raises(AccessDeniedError):
                call(actor, holder.id, pro("wilson").id)
    assert space.access.blocked(me, holder.id) == []


# --- médecin traitant and extended rights ---------------------------------------------------------


@pytest.mark.parametrize("sees_masked", [True, False], ids=["default", "override-off"])
def test_the_treating_doctor_and_extended_rights_see_masked_documents(make_space, sees_masked):
    settings = (
        None if sees_masked else Settings(access=AccessPolicy(treating_doctor_sees_masked=False))
    )
    space = make_space(settings)
    holder = open_patient(space, identity(1))
    me = Actor.patient(holder.id)
    house, nurse, wilson = pro("house"), pro("nurse"), pro("wilson")
    space.access.declare_treating_doctor(me, holder.id, house.id)
    space.access.grant_extended_rights(me, holder.id, nurse.id)
    space.access.authorise(me, holder.id, wilson.id)
    author = pro("dentist")
    normal = add(space, author, holder.id)
    masked = add(space, author, holder.id)
    space.record.mask(me, masked.id)
    restricted = add(space, author, holder.id, confidentiality="V")
    for actor in (house, nurse):
        assert reads(space, actor, normal)
        assert reads(space, actor, masked) is sees_masked
        assert reads(space, actor, restricted) is sees_masked
    assert reads(space, wilson, normal)
    assert not reads(space, wilson, masked)
    assert not reads(space, wilson, restricted)
    assert rule(space, wilson, masked) == "masked_by_patient"
    expected = "authorised_professional" if sees_masked else "masked_by_patient"
    assert rule(space, house, masked) == expected
    # Masking everything hides everything, from the médecin traitant too.
    space.access.update_settings(me, holder.id, mask_all=True)
    for actor in (house, nurse, wilson):
        assert not reads(space, actor, normal)
    assert rule(space, house, normal) == "patient_masked_everything"


def test_a_new_treating_doctor_replaces_the_previous_one(space, holder, me):
    house, wilson = pro("house"), pro("wilson")
    masked = add(space, pro("dentist"), holder.id)
    space.record.mask(me, masked.id)
    space.access.declare_treating_doctor(me, holder.id, house.id)
    assert reads(space, house, masked)
    space.access.declare_treating_doctor(me, holder.id, wilson.id)
    assert reads(space, wilson, masked)
    assert not reads(space, house, masked)
    current = [
        g.professional_id
        for g in space.access.authorisations(me, holder.id)
        if g.kind is GrantKind.TREATING_DOCTOR and g.ended_at is None
    ]
    assert current == [wilson.id]
    with pytest.raises(ValidationError, match="physician"):
        space.access.declare_treating_doctor(me, holder.id, pro("nurse").id)


# --- the matrice d'habilitations ------------------------------------------------------------------


def test_the_matrix_limits_each_profession(space, holder, me):
    for name in ("house", "nurse", "pharmacist", "dentist"):
        space.access.authorise(me, holder.id, pro(name).id)
    remb = add(space, OPERATOR, holder.id, REMB, title="Historique des remboursements")
    resid = add(space, OPERATOR, holder.id, ATTEST_RESID, title="Attestation de résidence")
    psychiatry = add(space, pro("wilson"), holder.id, PSYCHIATRY, title="Synthèse")
    biology = add(space, pro("wilson"), holder.id)
    # A nurse does not read the reimbursement history (class 60); a physician does.
    assert not reads(space, pro("nurse"), remb)
    assert rule(space, pro("nurse"), remb) == "matrix_of_habilitations"
    assert reads(space, pro("house"), remb)
    # A physician reads everything but the attestation de résidence.
    assert not reads(space, pro("house"), resid)
    assert rule(space, pro("house"), resid) == "matrix_of_habilitations"
    assert reads(space, pro("house"), psychiatry)
    # A dentist does not read a psychiatric synthesis, but reads a biology report.
    assert not reads(space, pro("dentist"), psychiatry)
    assert reads(space, pro("dentist"), biology)
    assert reads(space, pro("pharmacist"), biology)
    assert not reads(space, pro("pharmacist"), remb)


def test_a_physician_reads_a_digital_signature(space, holder, me):
    """Regression: the signature class was missing from the physicians' row."""
    space.access.authorise(me, holder.id, pro("house").id)
    signature = add(space, pro("wilson"), holder.id, SIGNATURE, title="Signature")
    assert reads(space, pro("house"), signature)


def test_the_matrix_is_configurable(make_space):
    matrix = AccessMatrix(
        classes=MappingProxyType({"60": frozenset({"60"}), "40": frozenset({"10"})})
    )
    space = make_space(Settings(access=AccessPolicy(matrix=matrix)))
    holder = open_patient(space, identity(1))
    me = Actor.patient(holder.id)
    for name in ("house", "nurse"):
        space.access.authorise(me, holder.id, pro(name).id)
    remb = add(space, OPERATOR, holder.id, REMB)
    biology = add(space, pro("dentist"), holder.id)  # the one row that deposits class 10
    assert reads(space, pro("nurse"), remb)
    assert not reads(space, pro("nurse"), biology)
    assert not reads(space, pro("house"), remb)  # physicians have no row in this matrix
    assert not reads(space, pro("house"), biology)
    assert reads(space, pro("dentist"), biology)  # the author still reads theirs


# --- authors --------------------------------------------------------------------------------------


def test_the_author_always_reads_their_document(space, holder, me):
    """Whatever the masking, the patient's settings, the matrix or grants (R1111-49)."""
    pharmacist = pro("pharmacist")
    restricted = add(space, pharmacist, holder.id, confidentiality="V")
    masked = add(space, pharmacist, holder.id)
    space.record.mask(me, masked.id)
    space.access.update_settings(me, holder.id, mask_all=True, object_all=True)
    for document in (restricted, masked):
        assert reads(space, pharmacist, document)
        assert rule(space, pharmacist, document) == "author_manages_own_document"
        assert not reads(space, pro("house"), document)
    with pytest.raises(AccessDeniedError):  # their documents, not the record
        space.record.search(pharmacist, holder.id)
    # A deleted document is gone, for its author too.
    space.record.delete(pharmacist, masked.id)
    assert not reads(space, pharmacist, masked)


def test_an_establishment_author_gives_no_professional_the_authors_rights(space, holder, me):
    """Regression: a professional depositing "in the name of an establishment" whose id was
    another professional's RPPS number made that professional the author: they read the
    document despite the patient's objection and masks, and could delete it."""
    depositor, named = pro("house"), pro("wilson")
    document = add(space, depositor, holder.id, author=Author(AuthorKind.ESTABLISHMENT, named.id))
    space.access.update_settings(me, holder.id, object_all=True, mask_all=True)
    assert not reads(space, named, document)
    with pytest.raises(AccessDeniedError):
        space.record.delete(named, document.id)
    assert reads(space, me, document)


# --- emergency access -----------------------------------------------------------------------------


def test_emergency_access_is_refused_when_the_patient_objected_and_the_refusal_is_audited(
    space, holder, me
):
    space.access.update_settings(me, holder.id, object_emergency=True)
    samu = pro("samu")
    for mode in (AccessMode.EMERGENCY, AccessMode.REGULATION):
        with pytest.raises(AccessDeniedError):
            space.access.break_glass(samu, holder.id, justification=JUSTIFICATION, mode=mode)
        event = last_event(space)
        assert (event.action, event.outcome, event.rule, event.mode, event.actor_id) == (
            "access.emergency",
            Outcome.DENIED,
            "patient_objects_to_emergency_access",
            mode,
            samu.id,
        )
        assert event.patient_id == holder.id
    assert sent(space, "mssante") == []
    assert sent(space, kind="emergency-access") == []


@pytest.mark.parametrize("justification", ["", "urgence", "  court  ", "         x"])
def test_emergency_access_needs_a_written_justification(space, holder, justification):
    with pytest.raises(ValidationError, match="justification"):
        space.access.break_glass(pro("samu"), holder.id, justification=justification)
    with pytest.raises(ValidationError):
        space.access.break_glass(
            pro("samu"), holder.id, justification=JUSTIFICATION, mode=AccessMode.NORMAL
        )


def test_emergency_access_lasts_the_configured_time(make_space, monespace_clock):
    for duration in (timedelta(hours=24), timedelta(hours=2)):
        settings = (
            None
            if duration == timedelta(hours=24)
            else Settings(access=AccessPolicy(emergency_duration=duration))
        )
        space = make_space(settings)
        holder = open_patient(space, identity(1))
        document = add(space, pro("house"), holder.id)
        start = monespace_clock.now()
        session = space.access.break_glass(pro("samu"), holder.id, justification="1234567890")
        assert (session.started_at, session.expires_at) == (start, start + duration)
        urgent = pro("samu", AccessMode.EMERGENCY)
        assert not reads(space, pro("samu"), document)  # the normal mode is not opened
        assert not reads(space, pro("samu", AccessMode.REGULATION), document)  # nor SAMU mode
        assert reads(space, urgent, document)
        monespace_clock.set(start + duration - timedelta(seconds=1))
        assert reads(space, urgent, document)
        monespace_clock.set(start + duration)
        assert not reads(space, urgent, document)
        assert rule(space, urgent, document) == "no_emergency_declared"
        with pytest.raises(AccessDeniedError):
            space.record.search(urgent, holder.id)
        monespace_clock.set(start)


def test_emergency_access_never_shows_what_is_masked_including_in_emergencies(space, holder, me):
    author = pro("wilson")
    normal = add(space, author, holder.id)
    masked = add(space, author, holder.id)
    space.record.mask(me, masked.id)
    restricted = add(space, author, holder.id, confidentiality="V")
    remb = add(space, OPERATOR, holder.id, REMB)
    space.access.break_glass(pro("samu"), holder.id, justification=JUSTIFICATION)
    space.access.break_glass(pro("nurse"), holder.id, justification=JUSTIFICATION)
    urgent, nurse = pro("samu", AccessMode.EMERGENCY), pro("nurse", AccessMode.EMERGENCY)
    assert reads(space, urgent, normal)
    # A document masked by the patient shows in an emergency (the DMP's rule: masked from
    # professionals, not from the emergency); a V-level one never does.
    assert reads(space, urgent, masked)
    assert not reads(space, urgent, restricted)
    assert rule(space, urgent, restricted) == "masked_including_emergency"
    assert reads(space, urgent, remb)
    assert not reads(space, nurse, remb)  # the matrix applies in an emergency too
    assert rule(space, nurse, remb) == "matrix_of_habilitations"
    space.access.update_settings(me, holder.id, mask_all=True)
    for document in (normal, masked, restricted, remb):
        assert not reads(space, urgent, document)
        assert rule(space, urgent, document) == "masked_including_emergency"
    assert space.record.search(urgent, holder.id).total == 0


def test_emergency_access_is_audited_with_its_own_action_and_purpose(space, holder):
    document = add(space, pro("house"), holder.id)
    samu = pro("samu")
    session = space.access.break_glass(
        samu, holder.id, justification=JUSTIFICATION, mode=AccessMode.REGULATION
    )
    assert repr(session).startswith("EmergencySession(")
    assert JUSTIFICATION not in repr(session)
    event = last_event(space)
    assert (event.action, event.outcome, event.purpose, event.mode, event.target_id) == (
        "access.emergency",
        Outcome.SUCCESS,
        "ETREAT",
        AccessMode.REGULATION,
        session.id,
    )
    assert event.rule == "emergency_declared"
    regulator = pro("samu", AccessMode.REGULATION)
    space.record.get_document(regulator, document.id)
    read = last_event(space)
    assert (read.action, read.mode, read.rule) == (
        "document.read",
        AccessMode.REGULATION,
        "emergency_access",
    )
    assert space.audit.verify().ok


def test_emergency_access_notifies_the_patient_and_the_treating_doctor_without_health_content(
    space, holder, me
):
    house = pro("house")
    space.access.declare_treating_doctor(me, holder.id, house.id)
    document = add(space, pro("wilson"), holder.id, title=MARKER, comments=MARKER)
    sent(space)  # the "new document" notice
    space.access.break_glass(pro("samu"), holder.id, justification=f"{JUSTIFICATION} {MARKER}")
    space.record.read_content(pro("samu", AccessMode.EMERGENCY), document.id)
    (to_patient,) = sent(space, kind="emergency-access")
    assert to_patient.recipient == "patient@example.org"
    (to_doctor,) = sent(space, "mssante")
    assert (to_doctor.recipient, to_doctor.kind) == (PEOPLE["house"][3], "emergency-access-doctor")
    forbidden = (
        MARKER,
        "Bilan",
        BIOLOGY.code,
        "biolog",
        JUSTIFICATION[:20],
        holder.identity.ins.traits.birth_name,
        holder.identity.ins.matricule.value,
    )
    for message in (to_patient, to_doctor):
        text = f"{message.subject}\n{message.body}".casefold()
        for word in forbidden:
            assert word.casefold() not in text, (word, message)


def test_the_justification_is_stored_sealed(tmp_path, monespace_clock):
    path = tmp_path / "space.db"
    with open_space(f"sqlite:///{path}", monespace_clock) as space:
        register_people(space)
        holder = open_patient(space, identity(1))
        space.access.break_glass(pro("samu"), holder.id, justification=f"urgence {MARKER}")
    raw = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.is_file())
    assert MARKER.encode() not in raw


# --- first-access notices -------------------------------------------------------------------------


def test_the_patient_is_told_once_per_professional_of_a_first_access(space, holder, me):
    document = add(space, pro("house"), holder.id)
    for name in ("wilson", "nurse"):
        space.access.authorise(me, holder.id, pro(name).id)
    assert sent(space, kind="first-access") == []
    space.record.get_document(pro("wilson"), document.id)
    space.record.read_content(pro("wilson"), document.id)
    space.record.search(pro("wilson"), holder.id)
    assert len(sent(space, kind="first-access")) == 1
    with pytest.raises(AccessDeniedError):  # a refused read is no access
        space.record.get_document(pro("pharmacist"), document.id)
    assert len(sent(space, kind="first-access")) == 1
    space.record.search(pro("nurse"), holder.id)
    notices = sent(space, kind="first-access")
    assert len(notices) == 2
    assert all(n.recipient == "patient@example.org" for n in notices)
    assert all(pro("nurse").id not in n.body + n.subject for n in notices)


def test_the_first_access_notice_commits_with_the_read_or_not_at_all(
    space, holder, me, monkeypatch
):
    """The notice is queued in the read's own transaction: a read that fails after the
    policy allowed it leaves no notice, and does not use up the first access either."""
    document = add(space, pro("house"), holder.id)
    space.access.authorise(me, holder.id, pro("wilson").id)

    def tampered(*args, **kwargs):
        raise DecryptionError("the content does not decrypt")

    with monkeypatch.context() as patch:
        patch.setattr(Keyring, "open", tampered)
        with pytest.raises(DecryptionError):
            space.record.read_content(pro("wilson"), document.id)
    assert sent(space, kind="first-access") == []
    space.record.get_document(pro("wilson"), document.id)
    assert len(sent(space, kind="first-access")) == 1


def test_no_first_access_notice_when_the_patient_turned_it_off(space, holder, me):
    document = add(space, pro("house"), holder.id)
    space.access.authorise(me, holder.id, pro("wilson").id)
    assert space.access.update_settings(me, holder.id, notify_first_access=False) == (
        space.access.settings(me, holder.id)
    )
    space.record.get_document(pro("wilson"), document.id)
    assert sent(space, kind="first-access") == []


# --- the history the patient reads ----------------------------------------------------------------


def test_the_history_lists_exactly_what_happened_in_order(tmp_path, monespace_clock):
    """On SQLite only: ``monespace audit verify`` reads the file afterwards."""
    path = tmp_path / "history.db"
    key = MasterKey.generate()
    with open_space(
        f"sqlite:///{path}",
        monespace_clock,
        keys=StaticKeyProvider(key),
        transports=["email", "mssante"],
    ) as space:
        register_people(space)
        holder = open_patient(space, identity(1))
        me = Actor.patient(holder.id)
        house, wilson, nurse, dentist = pro("house"), pro("wilson"), pro("nurse"), pro("dentist")
        space.access.authorise(me, holder.id, wilson.id)
        monespace_clock.advance(minutes=1)
        document = add(space, house, holder.id)
        monespace_clock.advance(minutes=1)
        space.record.get_document(wilson, document.id)
        with pytest.raises(AccessDeniedError):
            space.record.read_content(nurse, document.id)
        space.record.mask(me, document.id)
        space.access.block(me, holder.id, nurse.id)
        space.access.unblock(me, holder.id, nurse.id)
        space.access.break_glass(
            pro("samu"), holder.id, justification=JUSTIFICATION, mode=AccessMode.REGULATION
        )
        space.record.search(pro("samu", AccessMode.REGULATION), holder.id)
        space.access.update_settings(me, holder.id, object_emergency=True)
        with pytest.raises(AccessDeniedError):
            space.access.break_glass(dentist, holder.id, justification=JUSTIFICATION)
        space.access.revoke(me, holder.id, wilson.id)
        space.access.join_care_team(nurse, holder.id)
        space.access.declare_treating_doctor(me, holder.id, house.id)
        history = space.access.history(me, holder.id)
        again = space.access.history(me, holder.id)
    operator = "l'Assurance Maladie"
    expected = [
        (operator, "a enregistré votre identité", "normal", "success"),
        (operator, "a ouvert l'espace", "normal", "success"),
        ("vous", "a autorisé un professionnel", "normal", "success"),
        (
            "Dr Gregory HOUSE (Médecin)",
            "s'est déclaré dans votre équipe de soins",
            "normal",
            "success",
        ),
        ("Dr Gregory HOUSE (Médecin)", "a ajouté un document", "normal", "success"),
        ("Dr James WILSON (Médecin)", "a consulté un document", "normal", "success"),
        (
            "Carla ESPINOSA (Infirmier)",
            "s'est vu refuser l'accès (a consulté un document)",
            "normal",
            "denied",
        ),
        ("vous", "a masqué un document", "normal", "success"),
        ("vous", "a bloqué un professionnel", "normal", "success"),
        ("vous", "a débloqué un professionnel", "normal", "success"),
        (
            "Dr Rachid REGUL (Médecin)",
            "a accédé à votre dossier en urgence",
            "regulation",
            "success",
        ),
        (
            "Dr Rachid REGUL (Médecin)",
            "a consulté la liste de vos documents",
            "regulation",
            "success",
        ),
        ("vous", "a modifié vos paramètres d'accès", "normal", "success"),
        (
            "Diane DENT (Chirurgien-Dentiste)",
            "s'est vu refuser l'accès (a accédé à votre dossier en urgence)",
            "emergency",
            "denied",
        ),
        ("vous", "a retiré une autorisation", "normal", "success"),
        (
            "Carla ESPINOSA (Infirmier)",
            "s'est déclaré dans votre équipe de soins",
            "normal",
            "success",
        ),
        ("vous", "a déclaré un médecin traitant", "normal", "success"),
    ]
    assert [(e.who, e.what, e.mode, e.outcome) for e in history] == expected
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert [e.seq for e in history] == sorted(e.seq for e in history)
    assert history[5].target_id == document.id
    assert [(e.who, e.what) for e in again] == [
        *[(w, what) for w, what, _, _ in expected],
        ("vous", "a consulté l'historique des accès"),
    ]
    # The chain is keyed: the command verifies with the space's master key.
    result = CliRunner().invoke(
        main,
        ["audit", "verify", "--db", str(path)],
        env={"MONESPACE_MASTER_KEY": key.to_base64()},
    )
    assert result.exit_code == 0, result.output
    assert "audit trail intact" in result.output


def test_the_history_pages_through_a_long_trail(space, holder, me):
    """Regression: the entries carried no position, so after_seq could not be used."""
    document = add(space, pro("house"), holder.id)
    for _ in range(7):
        space.record.get_document(me, document.id)
    everything = space.access.history(me, holder.id, limit=500)
    pages, after = [], 0
    while after < everything[-1].seq:  # each page read is itself an event, further on
        page = space.access.history(me, holder.id, after_seq=after, limit=3)
        assert len(page) == 3
        pages.extend(page)
        after = page[-1].seq
    assert [(e.seq, e.what) for e in pages][: len(everything)] == [
        (e.seq, e.what) for e in everything
    ]


def test_the_history_keeps_quiet_about_documents_hidden_from_its_reader(
    space, holder, me, monespace_clock
):
    """Regression: the holder saw "a professional added a document" for a result hidden
    until the announcement consultation, and a representative saw the deposits a minor
    asked to keep from them."""
    person = open_patient(space, identity(7, email="rep@example.org"))
    space.accounts.add_representative(
        OPERATOR, holder.id, person.id, RepresentationKind.PROTECTED_ADULT
    )
    representative = Actor(ActorKind.REPRESENTATIVE, person.id, on_behalf_of=holder.id)
    house = pro("house")
    hidden = add(space, house, holder.id, hidden_from_patient=True)
    secret = add(space, house, holder.id, hidden_from_representatives=True)
    space.record.get_document(house, hidden.id)

    def targets(actor):
        return {e.target_id for e in space.access.history(actor, holder.id)}

    assert hidden.id not in targets(me)
    assert secret.id in targets(me)
    assert not {hidden.id, secret.id} & targets(representative)
    assert {hidden.id, secret.id} <= targets(OPERATOR)
    for actor in (me, representative):
        with pytest.raises(AccessDeniedError):
            space.access.who_can_see(actor, hidden.id)
    monespace_clock.set(hidden.release_at)
    assert hidden.id in targets(me)
    assert "the holder" in space.access.who_can_see(me, hidden.id)


def test_the_history_still_tells_about_documents_deleted_since(space, holder, me):
    """Deleting a document does not erase what happened to it from the holder's history;
    a result still hidden from them stays out of it, deleted or not."""
    house = pro("house")
    shown = add(space, house, holder.id)
    hidden = add(space, house, holder.id, hidden_from_patient=True)
    for document in (shown, hidden):
        space.record.delete(house, document.id)
    targets = {e.target_id for e in space.access.history(me, holder.id)}
    assert shown.id in targets
    assert hidden.id not in targets


def test_only_the_holder_their_representatives_and_the_operator_read_the_history(space, holder):
    other = open_patient(space, identity(2))
    space.access.authorise(Actor.patient(holder.id), holder.id, pro("house").id)
    for actor in (pro("house"), Actor.patient(other.id), UNKNOWN):
        for call in (space.access.history, space.access.settings, space.access.authorisations):
            refused = UnknownProfessionalError if actor is UNKNOWN else AccessDeniedError
            with pytest.raises(refused):
                call(actor, holder.id)
    assert space.access.history(OPERATOR, holder.id)


# --- explain and who_can_see ----------------------------------------------------------------------


def test_explain_names_the_rule_that_decides(space, monespace_clock):
    plain = open_patient(space, identity(1))
    objecting = open_patient(space, identity(2))
    no_emergency = open_patient(space, identity(3))
    all_masked = open_patient(space, identity(4))
    unopened = space.accounts.register_patient(OPERATOR, identity(5))
    rep_person = open_patient(space, identity(6))
    space.accounts.add_representative(
        OPERATOR, plain.id, rep_person.id, RepresentationKind.PROTECTED_ADULT
    )
    representative = Actor(ActorKind.REPRESENTATIVE, rep_person.id, on_behalf_of=plain.id)
    me = Actor.patient(plain.id)
    house, wilson, nurse, dentist = pro("house"), pro("wilson"), pro("nurse"), pro("dentist")
    space.access.authorise(me, plain.id, wilson.id)
    space.access.authorise(me, plain.id, nurse.id)
    space.access.block(me, plain.id, dentist.id)
    space.access.declare_treating_doctor(me, plain.id, house.id)
    objecting_doc = add(space, pro("pharmacist"), objecting.id)  # before the objection
    space.access.update_settings(Actor.patient(objecting.id), objecting.id, object_all=True)
    space.access.update_settings(
        Actor.patient(no_emergency.id), no_emergency.id, object_emergency=True
    )
    space.access.update_settings(Actor.patient(all_masked.id), all_masked.id, mask_all=True)
    for patient in (plain, objecting, all_masked):
        space.access.authorise(Actor.patient(patient.id), patient.id, wilson.id)
    space.access.break_glass(pro("samu"), plain.id, justification=JUSTIFICATION)
    space.access.break_glass(pro("samu"), all_masked.id, justification=JUSTIFICATION)
    doc = add(space, pro("pharmacist"), plain.id)
    masked = add(space, pro("pharmacist"), plain.id)
    space.record.mask(me, masked.id)
    restricted = add(space, pro("pharmacist"), plain.id, confidentiality="V")
    remb = add(space, OPERATOR, plain.id, REMB)
    hidden = add(space, pro("pharmacist"), plain.id, hidden_from_patient=True)
    secret = add(space, pro("pharmacist"), plain.id, hidden_from_representatives=True)
    gone = add(space, pro("pharmacist"), plain.id)
    space.record.delete(pro("pharmacist"), gone.id)
    masked_all_doc = add(space, pro("pharmacist"), all_masked.id)
    urgent = pro("samu", AccessMode.EMERGENCY)
    samu_normal = pro("samu")
    cases = [
        # (actor, action, patient, document, allowed, rule)
        (OPERATOR, "patient.register", plain, None, True, "operator_administers"),
        (wilson, "document.search", unopened, None, False, "space_must_be_open"),
        (me, "document.read", plain, gone, False, "deleted_documents_are_gone"),
        (UNKNOWN, "document.search", plain, None, False, "professional_must_be_known"),
        (dentist, "document.read", plain, doc, False, "blocked_by_patient"),
        (
            pro("pharmacist"),
            "document.read",
            plain,
            restricted,
            True,
            "author_manages_own_document",
        ),
        (urgent, "access.emergency", plain, None, True, "emergency_declared"),
        (
            pro("samu", AccessMode.REGULATION),
            "access.emergency",
            no_emergency,
            None,
            False,
            "patient_objects_to_emergency_access",
        ),
        (
            urgent,
            "document.search",
            no_emergency,
            None,
            False,
            "patient_objects_to_emergency_access",
        ),
        (
            pro("nurse", AccessMode.EMERGENCY),
            "document.read",
            plain,
            doc,
            False,
            "no_emergency_declared",
        ),
        (urgent, "document.read", plain, restricted, False, "masked_including_emergency"),
        (urgent, "document.read", all_masked, masked_all_doc, False, "masked_including_emergency"),
        (urgent, "document.read", plain, masked, True, "emergency_access"),
        (pro("pharmacist"), "access.care_team", plain, None, True, "care_team_declaration"),
        (pro("pharmacist"), "access.care_team", objecting, None, False, "care_team_declaration"),
        (wilson, "document.read", objecting, objecting_doc, False, "patient_objects_to_all_access"),
        (samu_normal, "document.read", plain, doc, False, "no_authorisation"),
        (nurse, "document.read", plain, remb, False, "matrix_of_habilitations"),
        (wilson, "document.read", all_masked, masked_all_doc, False, "patient_masked_everything"),
        (wilson, "document.read", plain, masked, False, "masked_by_patient"),
        (house, "document.read", plain, masked, True, "authorised_professional"),
        (wilson, "patient.read", plain, None, True, "authorised_professional"),
        (me, "document.read", plain, hidden, False, "hidden_until_announcement"),
        (representative, "document.read", plain, secret, False, "hidden_from_representatives"),
        (me, "document.read", plain, masked, True, "patient_owns_space"),
        (representative, "document.read", plain, doc, True, "representative_acts_for_patient"),
        (UNKNOWN, "document.add", unopened, None, False, "space_must_be_open"),
        (samu_normal, "document.add", plain, None, False, "no_authorisation"),
        (wilson, "document.add", objecting, None, False, "patient_objects_to_all_access"),
        (wilson, "document.add", plain, None, True, "professional_feeds_record"),
        (
            pro("nurse", AccessMode.REGULATION),
            "access.emergency",
            plain,
            None,
            False,
            "regulation_is_for_the_regulating_doctor",
        ),
        (OPERATOR, "account.close", plain, None, True, "operator_acts_on_request"),
        (OPERATOR, "document.add", plain, None, True, "operator_feeds_record"),
        (OPERATOR, "patient.read", plain, None, True, "operator_reads_administrative"),
        (OPERATOR, "document.read", plain, doc, False, "deny_by_default"),
        (Actor.patient(objecting.id), "document.read", plain, doc, False, "deny_by_default"),
    ]
    before = space.audit.count()
    for actor, action, patient, document, allowed, expected in cases:
        explanation = space.access.explain(
            actor, action, patient_id=patient.id, document_id=document.id if document else None
        )
        assert (explanation.allowed, explanation.rule) == (allowed, expected), (actor, action)
    assert space.audit.count() == before + len(cases)  # each explanation is traced
    event = last_event(space)
    assert (event.action, event.actor_kind, event.rule) == (
        "access.explain",
        ActorKind.SYSTEM,
        "deny_by_default",
    )


def test_explain_does_not_change_anything(space, holder, me):
    document = add(space, pro("house"), holder.id)
    space.access.authorise(me, holder.id, pro("wilson").id)
    explanation = space.access.explain(
        pro("wilson"), "document.read", patient_id=holder.id, document_id=document.id
    )
    assert explanation.allowed
    assert explanation.facts.professional.grant == "authorised"
    assert explanation.facts.document.class_code == "10"
    assert sent(space, kind="first-access") == []  # an explanation is not a read


def test_who_can_see_lists_the_categories_that_can_read_a_document(space, holder, me):
    author = pro("wilson")
    every_profession = "10, 21, 32, 40, 50, 60, 69, 70, 80, 86, 91, 92, 94, 95, 96, 98"
    normal = add(space, author, holder.id)
    masked = add(space, author, holder.id)
    space.record.mask(me, masked.id)
    restricted = add(space, author, holder.id, confidentiality="V")
    remb = add(space, OPERATOR, holder.id, REMB)
    resid = add(space, OPERATOR, holder.id, ATTEST_RESID)
    hidden = add(space, author, holder.id, hidden_from_patient=True)
    secret = add(space, author, holder.id, hidden_from_representatives=True)
    holder_s, reps = "the holder", "the holder's legal representatives"
    mine = f"its author (professional {author.id})"
    treating = "the médecin traitant and professionals with the same rights"
    emergency = "professionals in a declared emergency (bris de glace, SAMU)"
    assert space.access.who_can_see(me, normal.id) == [
        holder_s,
        reps,
        mine,
        f"authorised professionals of these professions: {every_profession}",
        emergency,
    ]
    assert space.access.who_can_see(me, masked.id) == [holder_s, reps, mine, treating, emergency]
    assert space.access.who_can_see(me, restricted.id) == [holder_s, reps, mine, treating]
    # The insurer (the operator) feeds the record but does not read it back: the policy
    # denies it, so it is not listed among the readers of what it deposited.
    assert rule(space, OPERATOR, remb) == "deny_by_default"
    assert space.access.who_can_see(me, remb.id) == [
        holder_s,
        reps,
        "authorised professionals of these professions: 10",
        emergency,
    ]
    assert space.access.who_can_see(me, resid.id) == [holder_s, reps]
    for actor in (me, OPERATOR):  # hidden from the holder; the operator uses explain()
        with pytest.raises(AccessDeniedError):
            space.access.who_can_see(actor, hidden.id)
    assert space.access.who_can_see(me, secret.id) == [
        holder_s,
        mine,
        f"authorised professionals of these professions: {every_profession}",
        emergency,
    ]
    space.access.update_settings(me, holder.id, object_all=True)
    assert space.access.who_can_see(me, normal.id) == [holder_s, reps, mine, emergency]
    space.access.update_settings(me, holder.id, object_emergency=True)
    assert space.access.who_can_see(me, normal.id) == [holder_s, reps, mine]
    space.access.update_settings(
        me, holder.id, object_all=False, object_emergency=False, mask_all=True
    )
    assert space.access.who_can_see(me, normal.id) == [holder_s, reps, mine]
    space.record.delete(author, normal.id)
    with pytest.raises(AccessDeniedError):  # a deleted document is nobody's to ask about
        space.access.who_can_see(me, normal.id)


def test_who_can_see_asks_the_policy_about_the_author_too(space, holder, me):
    """The author is listed only while the policy lets them read their document: an author
    the patient blocked reads nothing, so is no longer among the readers."""
    author = pro("wilson")
    document = add(space, author, holder.id)
    mine = f"its author (professional {author.id})"
    assert mine in space.access.who_can_see(me, document.id)
    space.access.block(me, holder.id, author.id)
    assert rule(space, author, document) == "blocked_by_patient"
    assert mine not in space.access.who_can_see(me, document.id)


def test_who_can_see_is_for_the_holder_side_only(space, holder):
    document = add(space, pro("house"), holder.id)
    other = open_patient(space, identity(2))
    space.access.authorise(Actor.patient(holder.id), holder.id, pro("wilson").id)
    for actor in (pro("wilson"), pro("house"), Actor.patient(other.id), OPERATOR):
        answers = []
        for target in (document.id, "no-such-document"):
            with pytest.raises(AccessDeniedError) as info:
                space.access.who_can_see(actor, target)
            answers.append((type(info.value), str(info.value)))
        assert answers[0] == answers[1]


# --- earlier versions follow the document -------------------------------------------------------


def test_masking_a_replaced_document_hides_its_earlier_versions(space, holder, me):
    """Masking used to act on the current version only: the versions it replaced stayed
    readable by every authorised professional (found by this suite, fixed in the record)."""
    author, reader = pro("house"), pro("wilson")
    space.access.authorise(me, holder.id, reader.id)
    first = add(space, author, holder.id, title="v1")
    second = space.record.replace(author, first.id, PDF + b"2", media_type="application/pdf")
    space.access.revoke(me, holder.id, author.id)  # the author reads as author alone
    space.record.mask(me, second.id)
    assert not reads(space, reader, second)
    assert not reads(space, reader, first)
    assert space.record.search(reader, holder.id, include_replaced=True).total == 0
    assert reads(space, author, first)  # its author still reads every version


def test_deleting_a_replaced_document_deletes_its_earlier_versions(space, holder, me):
    """Deletion used to mark the current version only (found by this suite, fixed in the
    record)."""
    author = pro("house")
    space.access.authorise(me, holder.id, pro("wilson").id)
    first = add(space, author, holder.id, title="v1")
    second = space.record.replace(author, first.id, PDF + b"2", media_type="application/pdf")
    space.record.delete(author, second.id)
    for actor in (me, author, pro("wilson")):
        assert not reads(space, actor, first)


# --- domain fidelity (issue 12) --------------------------------------------------------------


IMAGING = Code("18748-4", LOINC)  # class 31, imaging report


def test_profession_names_are_those_of_j01():
    """The professions' names are J01's: 31 assistant dentaire, 95 diététicien, 96
    psychomotricien, 98 manipulateur ERM (the TRE_G15 codes, as the ANS publishes them)."""
    assert PROFESSIONS["31"] == "Assistant dentaire"
    assert PROFESSIONS["95"] == "Diététicien"
    assert PROFESSIONS["96"] == "Psychomotricien"
    assert PROFESSIONS["98"] == "Manipulateur ERM"
    assert Professional(rpps(7), "98", "Marc MANIP").profession_name == "Manipulateur ERM"


def test_the_matrix_has_a_row_for_every_profession_of_j01():
    """Every profession of J01 has its row; no row names a code J01 does not know."""
    assert set(DEFAULT_MATRIX.classes) == set(PROFESSIONS)


def test_physicians_row_has_no_technical_class():
    """Class 99 (document technique) is in TRE_A03, not in the DMP's J57."""
    assert not DEFAULT_MATRIX.allows("10", "99", "anything")
    assert DEFAULT_MATRIX.allows("10", "31", "18748-4")


def test_a_manipulateur_erm_reads_imaging(space, holder, me):
    """A manipulateur d'électroradiologie médicale (98) reads the imaging reports of a
    patient who authorised them."""
    space.access.register_professional(OPERATOR, Professional(rpps(7), "98", "Marc MANIP"))
    manip = Actor(ActorKind.PROFESSIONAL, rpps(7))
    space.access.authorise(me, holder.id, manip.id)
    space.access.authorise(me, holder.id, pro("wilson").id)
    imaging = add(space, pro("wilson"), holder.id, IMAGING, title="Scanner")
    assert reads(space, manip, imaging)


def test_by_default_a_block_does_not_reach_the_medecin_traitant(space, holder, me):
    """Blocking is "à l'exception du médecin traitant" (§3.4 [P], MACSF): by default the
    médecin traitant keeps reading; other professionals are blocked as before."""
    house, wilson = pro("house"), pro("wilson")
    document = add(space, wilson, holder.id)
    space.access.declare_treating_doctor(me, holder.id, house.id)
    space.access.block(me, holder.id, house.id)
    space.access.block(me, holder.id, wilson.id)
    assert reads(space, house, document)
    assert rule(space, house, document) == "authorised_professional"
    assert not reads(space, wilson, document)
    assert rule(space, wilson, document) == "blocked_by_patient"
    assert rule(space, wilson, document, action="document.search") == "blocked_by_patient"


def test_only_the_regulating_doctor_uses_the_samu_regulation_mode(space, holder, me):
    """L1111-17 I gives the regulation access to the SAMU's regulating doctor: a nurse
    cannot declare it, nor read in that mode; a physician can."""
    nurse = pro("nurse", AccessMode.REGULATION)
    with pytest.raises(AccessDeniedError):
        space.access.break_glass(
            nurse, holder.id, justification=JUSTIFICATION, mode=AccessMode.REGULATION
        )
    assert last_event(space).rule == "regulation_is_for_the_regulating_doctor"
    space.access.break_glass(
        pro("samu"), holder.id, justification=JUSTIFICATION, mode=AccessMode.REGULATION
    )
    assert space.record.search(pro("samu", AccessMode.REGULATION), holder.id).total == 0


def test_bris_de_glace_follows_the_matrix(space, holder, me):
    """A profession the matrix lets read nothing (an ambulancier, 36) does not break glass."""
    space.access.register_professional(OPERATOR, Professional(rpps(8), "36", "Alain AMBU"))
    ambulancier = Actor(ActorKind.PROFESSIONAL, rpps(8), mode=AccessMode.EMERGENCY)
    with pytest.raises(AccessDeniedError):
        space.access.break_glass(ambulancier, holder.id, justification=JUSTIFICATION)
    assert last_event(space).rule == "matrix_of_habilitations"


def test_feeding_a_record_needs_the_right_to(space, holder, me):
    """L1111-17 III, R1111-46/47: a registered professional outside the care team, not
    authorised, not the médecin traitant and not in an emergency adds nothing."""
    outsider = pro("wilson")
    with pytest.raises(AccessDeniedError):
        space.record.add_document(
            outsider, holder.id, PDF, media_type="application/pdf", type_code=BIOLOGY
        )
    assert last_event(space).rule == "no_authorisation"
    space.access.authorise(me, holder.id, outsider.id)
    space.record.add_document(
        outsider, holder.id, PDF, media_type="application/pdf", type_code=BIOLOGY
    )


def test_an_emergency_professional_feeds_the_record(space, holder, me):
    """In a declared emergency, the professional may add what they did (L1111-17 I)."""
    urgent = pro("samu", AccessMode.EMERGENCY)
    with pytest.raises(AccessDeniedError):
        space.record.add_document(urgent, holder.id, PDF, media_type="application/pdf",
                                  type_code=BIOLOGY)  # fmt: skip
    space.access.break_glass(urgent, holder.id, justification=JUSTIFICATION)
    space.record.add_document(urgent, holder.id, PDF, media_type="application/pdf",
                              type_code=BIOLOGY)  # fmt: skip


def test_the_matrix_bounds_what_a_profession_deposits(space, holder, me):
    """A nurse's row has no imaging (class 31): they do not deposit an imaging report."""
    nurse = pro("nurse")
    space.access.authorise(me, holder.id, nurse.id)
    with pytest.raises(AccessDeniedError):
        space.record.add_document(
            nurse, holder.id, PDF, media_type="application/pdf", type_code=IMAGING
        )
    assert last_event(space).rule == "matrix_of_habilitations"


def test_facts_about_a_document_keep_every_other_fact():
    """``AccessFacts.about`` adds the document's (or thread's) facts and keeps every other
    fact as it was: a fact added to ``Facts`` later is carried too, or this fails."""
    # A value different from the default for every field.
    subject = Facts(
        space_open=True,
        represents=True,
        document=None,
        professional=ProfessionalFacts(registered=True),
        thread=ThreadFacts("1000000001"),
        legacy_transition=True,
        app=AppFacts(referenced=True),
        applicant="vendor",
    )
    defaults = Facts()
    for field in attrs.fields(Facts):
        if field.name not in ("document", "thread"):
            assert getattr(subject, field.name) != getattr(defaults, field.name), field.name
    completed = AccessFacts.about(subject, datetime(2026, 1, 1, tzinfo=UTC))
    assert completed == attrs.evolve(subject, document=None, thread=None)
