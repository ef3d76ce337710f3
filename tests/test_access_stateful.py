"""Model-based test of professional access (docs/security-and-reliability.md, T1).

A hypothesis ``RuleBasedStateMachine`` drives random sequences of: patients (some with a
representative), professionals of several professions (and one the directory does not
know), authorisations (permanent or until a date), care-team declarations, médecin-traitant
declarations and extended rights, revocations, blocks and unblocks, masks and unmasks, the
patient's settings, emergency accesses (bris de glace and SAMU regulation), clock moves,
documents of various classes and types (some at confidentiality V, some hidden from the
patient or from the representatives; some replaced by new versions, some deleted), and reads
through every read path of the record (``get_document``, ``read_content``, ``search`` with and
without the replaced versions), by every kind of actor. Referenced apps take part too (issue
14): patients grant, narrow and revoke consents, the minister's office suspends and
reinstates apps, apps add documents, and every app reads for every patient with a full token
and with a token lacking ``documents.read``: zero reads outside the scopes of both the token
and the consent, or after a revocation or a suspension, or beyond the patient's own rights.

Every outcome is compared with :class:`Model`, a reference written from the rules as stated
in docs/domain-rules.md §3.4 and §4, docs/security-and-reliability.md §1.2 and §1.3 and issue
5, **without calling the policy**. Both directions are checked: a read the model forbids
must be refused (no unauthorised read), and a read it allows must succeed (no wrongful
refusal). Where the sources leave a question open, the model states the reading it takes
(``# choice:`` comments); none of them is deliberately conservative, so both directions are
checked everywhere. Not modelled: closing spaces (test_accounts.py).

The number of steps run is printed at the end (``pytest -s``).
"""

from __future__ import annotations

import calendar
import dataclasses
import itertools
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import find, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import monespace
from monespace import AccessMode, Actor, ActorKind, ManualClock, Settings
from monespace.access import AccessPolicy, Professional
from monespace.accounts import RepresentationKind
from monespace.catalogue import Assessment, Dossier, Scope, load_referentiel
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.errors import (
    AccessDeniedError,
    NotFoundError,
    UnknownProfessionalError,
    ValidationError,
)
from monespace.record import LOINC, TRE_A05_TYPE, Code
from monespace.testing import storage_of
from monespace.transport import MemoryTransport

from .helpers import identity, open_patient, rpps

#: Among the longest tests: run first (tests/conftest.py), so short ones fill the end of a run.
pytestmark = pytest.mark.slow

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
OPERATOR = Actor.system("test")
#: How a refusal is raised: a professional the directory does not know is told so.
REFUSED = (AccessDeniedError, UnknownProfessionalError)
PDF = b"%PDF-1.7\n"
JUSTIFICATION = "Patient inconscient, détresse respiratoire"

#: Steps run by each machine, printed at the end of the session.
STEPS: dict[str, int] = {}
#: Reads checked (per path), and how many of them the model allowed.
READS: dict[str, int] = {}
#: Allowed reads by kind of actor and mode (to see that every way in is exercised).
ALLOWED: dict[str, int] = {}

# --- the professionals --------------------------------------------------------------------------


#: (RPPS, TRE_G15 profession, MSSanté address)
PROFESSIONALS = (
    (rpps(1), "10", "medecin.un@medecin.mssante.fr"),
    (rpps(2), "10", None),
    (rpps(3), "60", None),  # nurse
    (rpps(4), "21", None),  # pharmacist
    (rpps(5), "40", None),  # dentist
    (rpps(6), "70", None),  # physiotherapist
)
UNKNOWN = rpps(99)  # never registered
PROFESSION = {number: profession for number, profession, _ in PROFESSIONALS}
MSSANTE = {number: address for number, _, address in PROFESSIONALS}
ALL_PROS = [number for number, _, _ in PROFESSIONALS] + [UNKNOWN]

# --- the apps ------------------------------------------------------------------------------------

EVERY_SCOPE = frozenset(str(s) for s in Scope)
#: client id -> the scopes of its convention.
APPS = {"suivi-complet": EVERY_SCOPE, "lecteur-docs": frozenset({"documents.read"})}
#: Token scopes the apps present: everything, and a token without documents.read.
TOKENS = (EVERY_SCOPE, frozenset({"mesures.read", "documents.write"}))
MINISTER = Actor.authority("cabinet", "minister")

# --- the matrix, transcribed by hand -----------------------------------------------------------
# docs/domain-rules.md §4.4: physicians read every document but the attestation de résidence
# [C]; dentists do not read psychiatric syntheses, psychological assessments, telemedicine
# requests, social discharge letters [C]; the other rows are the documented defaults of
# docs/explanation/access-model.md (assumptions, [U]).

SIGNATURE_CLASS = "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1"
EVERY_CLASS = {"10", "11", "31", "42", "43", "44", "45", "52", "60", "90", "95"}
READABLE_CLASSES = {
    "10": EVERY_CLASS | {SIGNATURE_CLASS},
    "60": {"10", "11", "42", "43", "44", "45", "52"},
    "21": {"10", "11", "42", "43", "44", "45", "52"},
    "40": {"10", "11", "31", "42", "43", "45", "52"},
    "70": {"10", "11", "31", "42", "44"},
}
UNREADABLE_TYPES = {
    "10": {"ATTEST-RESID"},
    "40": {"68599-0", "83901-9", "75496-0", "83981-1", "88348-8"},
}


def matrix_allows(profession: str, class_code: str, type_code: str) -> bool:
    return class_code in READABLE_CLASSES.get(profession, set()) and (
        type_code not in UNREADABLE_TYPES.get(profession, set())
    )


# --- documents -----------------------------------------------------------------------------------

#: (code, system, class) of the types professionals deposit, written from ASS_X16.
PRO_TYPES = (
    ("11502-2", LOINC, "10"),  # biology report
    ("68599-0", LOINC, "11"),  # psychiatric synthesis (dentists: no)
    ("18748-4", LOINC, "31"),  # imaging report
    ("57833-6", LOINC, "42"),  # prescription
    ("87273-9", LOINC, "52"),  # certificate
    ("E1762", "ASTM", SIGNATURE_CLASS),  # digital signature
)
INSURER_TYPES = (
    ("REMB", TRE_A05_TYPE, "60"),  # reimbursement history
    ("ATTEST-RESID", TRE_A05_TYPE, "95"),  # attestation de résidence (physicians: no)
)
PATIENT_TYPES = (
    ("DOCPAT01", TRE_A05_TYPE, "11"),
    ("EXPPAT_1", TRE_A05_TYPE, "90"),
)


def one_month_later(moment: datetime) -> datetime:
    """R1111-53: a hidden result is released one month after its deposit (same day of the
    next month, or that month's last day)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(
        year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1])
    )


# --- the reference model ------------------------------------------------------------------------


@dataclass
class MDocument:
    id: str
    patient: str
    author_kind: str  # "professional", "patient", "representative", "insurer"
    author: str
    type_code: str
    class_code: str
    confidentiality: str
    masked: bool
    hidden_until: datetime | None  # INVISIBLE_PATIENT, until the release
    hidden_from_representatives: bool
    content: bytes
    lineage: str = ""
    current: bool = True  # False once replaced by a newer version
    deleted: bool = False


@dataclass
class MGrant:
    since: datetime
    until: datetime | None
    ended: bool = False

    def active(self, now: datetime) -> bool:
        return not self.ended and self.since <= now and (self.until is None or now < self.until)


@dataclass
class MPatient:
    id: str
    representative: str | None = None
    representing: bool = False
    object_all: bool = False
    object_emergency: bool = False
    mask_all: bool = False
    notify_first_access: bool = True
    #: (professional, kind) -> the grant; kinds: care_team, authorised, extended, treating
    grants: dict[tuple[str, str], MGrant] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    #: (professional, mode, start, end)
    emergencies: list[tuple[str, AccessMode, datetime, datetime]] = field(default_factory=list)
    seen_by: set[str] = field(default_factory=set)


class Model:
    """What the rules say, written from the sources; shares no code with monespace's policy."""

    def __init__(
        self, *, treating_doctor_sees_masked: bool, emergency_hours: int, spares_treating: bool
    ) -> None:
        self.sees_masked = treating_doctor_sees_masked
        self.spares_treating = spares_treating
        self.emergency = timedelta(hours=emergency_hours)
        self.patients: dict[str, MPatient] = {}
        self.documents: dict[str, MDocument] = {}
        self.now = START
        self.first_access_notices = 0
        self.emergency_notices = 0
        self.doctor_notices = 0
        #: client id -> whether it is referenced now (not suspended)
        self.apps: dict[str, bool] = {}
        #: (patient, client id) -> the scopes of the consent in force
        self.consents: dict[tuple[str, str], frozenset[str]] = {}

    def app_may(self, actor: Actor, patient_id: str, scope: str) -> bool:
        """R1111-32, L1111-13-1 III: an app acts for the patient it was given, while
        referenced, with a consent in force, within the token's and the consent's scopes."""
        consent = self.consents.get((patient_id, actor.id))
        return (
            actor.on_behalf_of == patient_id
            and self.apps.get(actor.id, False)
            and consent is not None
            and scope in consent
            and scope in actor.scopes
        )

    # the professional's standing on a record

    def grants(self, patient: MPatient, pro: str) -> set[str]:
        return {
            kind
            for (who, kind), grant in patient.grants.items()
            if who == pro and grant.active(self.now)
        }

    def session(self, patient: MPatient, pro: str, mode: AccessMode) -> bool:
        return any(
            who == pro and m is mode and start <= self.now < end
            for who, m, start, end in patient.emergencies
        )

    def treating_doctor(self, patient: MPatient) -> str | None:
        for (who, kind), grant in patient.grants.items():
            if kind == "treating" and grant.active(self.now):
                return who
        return None

    def blocked(self, patient: MPatient, pro: str) -> bool:
        """The patient blocked *pro*, and the block reaches them: §3.4 [P], a block spares
        the médecin traitant unless ``block_spares_treating_doctor`` is off."""
        if pro not in patient.blocked:
            return False
        return not (self.spares_treating and "treating" in self.grants(patient, pro))

    def may_feed(self, patient: MPatient, pro: str, klass: str, code: str) -> bool:
        """L1111-17 III, R1111-46/47: a known, unblocked professional with a grant (care
        team, authorisation, médecin traitant) feeds the record, within their profession's
        row of the matrix; not while the patient objects to all access."""
        return (
            pro in PROFESSION
            and not self.blocked(patient, pro)
            and not patient.object_all
            and bool(self.grants(patient, pro))
            and matrix_allows(PROFESSION[pro], klass, code)
        )

    def may_declare_emergency(self, patient: MPatient, pro: str, mode: AccessMode) -> bool:
        """L1111-17 I: not against the patient's objection; SAMU regulation is for the
        regulating doctor (a physician); bris de glace for a profession of the matrix."""
        if pro not in PROFESSION or self.blocked(patient, pro) or patient.object_emergency:
            return False
        if mode is AccessMode.REGULATION:
            return PROFESSION[pro] == "10"
        return bool(READABLE_CLASSES.get(PROFESSION[pro]))

    # the decisions

    def may_search(self, actor: Actor, patient_id: str) -> bool:
        """Whether *actor* may look at the record as a whole (list, search)."""
        patient = self.patients.get(patient_id)
        if patient is None:
            return False
        if actor.kind is ActorKind.PATIENT:
            return actor.id == patient_id
        if actor.kind is ActorKind.APP:
            return self.app_may(actor, patient_id, "documents.read")
        if actor.kind is ActorKind.REPRESENTATIVE:
            return (
                actor.on_behalf_of == patient_id
                and patient.representative == actor.id
                and patient.representing
            )
        if actor.kind is not ActorKind.PROFESSIONAL:
            return False  # the operator never reads health data
        if actor.id not in PROFESSION or self.blocked(patient, actor.id):
            return False
        if actor.mode is AccessMode.REGULATION and PROFESSION[actor.id] != "10":
            return False  # L1111-17 I: the regulating doctor only
        if actor.mode is not AccessMode.NORMAL:
            # L1111-17 I: an emergency access, unless the patient objected to it.
            return not patient.object_emergency and self.session(patient, actor.id, actor.mode)
        # choice: objecting to all access is about normal access (R1111-46); emergency access
        # has its own objection (L1111-17 I), and "mask all" covers emergencies.
        return not patient.object_all and bool(self.grants(patient, actor.id))

    def may_read(self, actor: Actor, document: MDocument) -> bool:
        patient = self.patients[document.patient]
        if document.deleted:
            return False
        hidden = document.hidden_until is not None and self.now < document.hidden_until
        if actor.kind is ActorKind.PATIENT:
            return actor.id == document.patient and not hidden  # R1111-53
        if actor.kind is ActorKind.APP:
            # Never beyond what the patient may read themselves.
            return self.app_may(actor, document.patient, "documents.read") and self.may_read(
                Actor.patient(document.patient), document
            )
        if actor.kind is ActorKind.REPRESENTATIVE:
            return (
                self.may_search(actor, document.patient)
                and not hidden
                and not document.hidden_from_representatives  # R1111-50
            )
        if actor.kind is not ActorKind.PROFESSIONAL:
            return False
        if actor.id not in PROFESSION:
            return False
        # choice: a block is "no access at all", with immediate effect, for every grant and
        # for the documents the professional deposited too (the médecin traitant spared
        # where the setting says so).
        if self.blocked(patient, actor.id):
            return False
        # R1111-49: what the patient masks stays accessible to whoever deposited it.
        if document.author_kind == "professional" and document.author == actor.id:
            return True
        profession = PROFESSION[actor.id]
        if actor.mode is not AccessMode.NORMAL:
            if patient.object_emergency or not self.session(patient, actor.id, actor.mode):
                return False
            # "Masquer tous vos documents, y compris en cas d'urgence"; V: never in an
            # emergency (security §1.2). choice: a document masked one by one (MASQUE_PS) is
            # masked from professionals in the normal mode, not from the emergency (the
            # DMP's bris de glace).
            if patient.mask_all or document.confidentiality == "V":
                return False
            return matrix_allows(profession, document.class_code, document.type_code)
        if patient.object_all:
            return False
        kinds = self.grants(patient, actor.id)
        if not kinds:
            return False  # R1111-46: care team or the patient's authorisation
        if not matrix_allows(profession, document.class_code, document.type_code):
            return False  # arrêté of 26 October 2023
        if patient.mask_all:
            return False  # visible only to the holder (and the authors)
        # choice: confidentiality V is masking by the professional: the médecin traitant
        # sees data "rendues inaccessibles par son titulaire ... ou par un professionnel".
        # choice: R (restricted) has no meaning in the DMP sources: read as N.
        if document.masked or document.confidentiality == "V":
            return self.sees_masked and bool(kinds & {"treating", "extended"})
        return True

    def may_mask(self, actor: Actor, document: MDocument) -> bool:
        """The holder (or representative) masks and unmasks what they may see (R1111-49)."""
        if actor.kind not in (ActorKind.PATIENT, ActorKind.REPRESENTATIVE):
            return False
        return self.may_read(actor, document)

    def visible(self, actor: Actor, patient_id: str, *, include_replaced: bool) -> set[str]:
        return {
            d.id
            for d in self.documents.values()
            if d.patient == patient_id
            and (d.current or include_replaced)
            and self.may_read(actor, d)
        }

    def versions(self, document: MDocument) -> list[MDocument]:
        """Every version of *document*: masking and deleting apply to all of them."""
        return [d for d in self.documents.values() if d.lineage == document.lineage]

    def is_author(self, actor: Actor, document: MDocument) -> bool:
        if actor.kind is ActorKind.PROFESSIONAL:
            return document.author_kind == "professional" and document.author == actor.id
        if actor.kind is ActorKind.PATIENT:
            return document.author_kind == "patient" and document.author == actor.id
        return False

    def may_change(self, actor: Actor, document: MDocument) -> bool:
        """Its author replaces or deletes a document (R1111-49 keeps it theirs); a blocked
        professional, nothing."""
        if document.deleted or not self.is_author(actor, document):
            return False
        if actor.kind is ActorKind.PROFESSIONAL:
            return actor.id in PROFESSION and not self.blocked(
                self.patients[document.patient], actor.id
            )
        return True

    def read_happened(self, actor: Actor, patient_id: str) -> None:
        """A professional read the record: the first time, the patient may be told."""
        patient = self.patients[patient_id]
        if actor.kind is ActorKind.PROFESSIONAL and actor.id not in patient.seen_by:
            patient.seen_by.add(actor.id)
            if patient.notify_first_access:
                self.first_access_notices += 1


# --- the machine --------------------------------------------------------------------------------


def _kinds(space) -> dict[str, int]:
    """Queued notifications by kind."""
    with storage_of(space).read() as tx:
        rows = tx.outbox.due(datetime(9000, 1, 1, tzinfo=UTC), limit=1_000_000)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.kind] = counts.get(row.kind, 0) + 1
    return counts


class AccessMachine(RuleBasedStateMachine):
    """One space, a few patients, the professionals; the model alongside."""

    URL = "memory://"
    SETTINGS: Settings | None = None
    NAME = "memory, default settings"

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.tmp: tempfile.TemporaryDirectory[str] | None = None
        url = self.URL
        if url == "sqlite":
            self.tmp = tempfile.TemporaryDirectory(prefix="monespace-access-")
            url = f"sqlite:///{Path(self.tmp.name) / 'space.db'}"
        self.space = monespace.open(
            url,
            key_provider=StaticKeyProvider(MasterKey.generate()),
            clock=self.clock,
            transports={"email": MemoryTransport(), "mssante": MemoryTransport()},
            settings=self.SETTINGS,
            load_entrypoints=False,
        )
        policy = (self.SETTINGS or Settings()).access
        self.model = Model(
            treating_doctor_sees_masked=policy.treating_doctor_sees_masked,
            emergency_hours=int(policy.emergency_duration.total_seconds() // 3600),
            spares_treating=policy.block_spares_treating_doctor,
        )
        self.people = itertools.count(1)
        self.contents = itertools.count(1)
        STEPS.setdefault(self.NAME, 0)

    def teardown(self) -> None:
        try:
            assert self.space.audit.verify().ok
        finally:
            self.space.close()
            if self.tmp is not None:
                self.tmp.cleanup()

    def step(self) -> None:
        STEPS[self.NAME] += 1

    # --- set-up ------------------------------------------------------------------------------

    @initialize()
    def directory(self) -> None:
        for number, profession, mssante in PROFESSIONALS:
            self.space.access.register_professional(
                OPERATOR,
                Professional(number, profession, f"Professionnel {number}", mssante=mssante),
            )
        self.application_ids: dict[str, str] = {}
        criteria = load_referentiel().criteria
        for client_id, scopes in APPS.items():
            application = self.space.catalogue.apply(
                Actor.vendor(f"vendor-{client_id}"),
                Dossier(
                    publisher="Éditeur",
                    service=client_id,
                    category="Suivi",
                    purposes={"care"},
                    exchange_tier="mesures",
                    scopes=scopes,
                    retention="1 an",
                    consent_text="J'autorise l'application.",
                    dpia_reference="AIPD-1",
                    redirect_uris=("https://app.example/cb",),
                    evidence={c.id: "pièce" for c in criteria},
                ),
                client_id=client_id,
            )
            reviewer = Actor.authority("instructeur", "reviewer")
            self.space.catalogue.start_review(reviewer, application.id)
            self.space.catalogue.assess(
                reviewer, application.id, {c.id: Assessment.MET for c in criteria}
            )
            commission = Actor.authority("commission", "commission")
            self.space.catalogue.opinion(commission, application.id, favourable=True)
            self.space.catalogue.reference(MINISTER, application.id)
            self.application_ids[client_id] = application.id
            self.model.apps[client_id] = True

    @precondition(lambda self: len(self.model.patients) < 3)
    @rule(with_representative=st.booleans())
    def new_patient(self, with_representative: bool) -> None:
        self.step()
        patient = open_patient(self.space, identity(next(self.people)))
        model = MPatient(patient.id)
        if with_representative:
            person = open_patient(self.space, identity(next(self.people), email=None))
            self.space.accounts.add_representative(
                OPERATOR, patient.id, person.id, RepresentationKind.PROTECTED_ADULT
            )
            model.representative, model.representing = person.id, True
        self.model.patients[patient.id] = model

    def patients(self) -> list[MPatient]:
        return list(self.model.patients.values())

    def has_patients(self) -> bool:
        return bool(self.model.patients)

    # --- the patient's controls -------------------------------------------------------------

    def holder_side(self, patient: MPatient, by_representative: bool) -> Actor:
        if by_representative and patient.representative and patient.representing:
            return Actor(ActorKind.REPRESENTATIVE, patient.representative, on_behalf_of=patient.id)
        return Actor.patient(patient.id)

    @precondition(has_patients)
    @rule(
        data=st.data(),
        pro=st.sampled_from(ALL_PROS),
        kind=st.sampled_from(["authorised", "authorised_until", "extended", "treating"]),
        hours=st.integers(1, 72),
        by_representative=st.booleans(),
    )
    def grant(self, data, pro: str, kind: str, hours: int, by_representative: bool) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = self.holder_side(patient, by_representative)
        access = self.space.access
        registered = pro in PROFESSION
        until = self.model.now + timedelta(hours=hours) if kind == "authorised_until" else None
        if kind == "treating" and registered and PROFESSION[pro] != "10":
            with pytest.raises(ValidationError):
                access.declare_treating_doctor(actor, patient.id, pro)
            return
        call = {
            "authorised": lambda: access.authorise(actor, patient.id, pro),
            "authorised_until": lambda: access.authorise(actor, patient.id, pro, until=until),
            "extended": lambda: access.grant_extended_rights(actor, patient.id, pro),
            "treating": lambda: access.declare_treating_doctor(actor, patient.id, pro),
        }[kind]
        if not registered:
            with pytest.raises(monespace.MonespaceError):
                call()
            return
        call()
        name = "authorised" if kind == "authorised_until" else kind
        if name == "treating":
            for (_, other), old in patient.grants.items():
                if other == "treating":
                    old.ended = True
        patient.grants[(pro, name)] = MGrant(self.model.now, until)

    @precondition(has_patients)
    @rule(data=st.data(), pro=st.sampled_from(ALL_PROS))
    def join_care_team(self, data, pro: str) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = Actor(ActorKind.PROFESSIONAL, pro)
        allowed = (
            pro in PROFESSION and not self.model.blocked(patient, pro) and not patient.object_all
        )
        if not allowed:
            with pytest.raises(REFUSED):
                self.space.access.join_care_team(actor, patient.id)
            return
        self.space.access.join_care_team(actor, patient.id)
        patient.grants[(pro, "care_team")] = MGrant(self.model.now, None)

    @precondition(has_patients)
    @rule(data=st.data(), pro=st.sampled_from(ALL_PROS), by_representative=st.booleans())
    def revoke(self, data, pro: str, by_representative: bool) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = self.holder_side(patient, by_representative)
        ended = self.space.access.revoke(actor, patient.id, pro)
        expected = 0
        for (who, _), grant in patient.grants.items():
            if who == pro and not grant.ended:
                grant.ended = True
                expected += 1
        assert ended == expected

    @precondition(has_patients)
    @rule(
        data=st.data(),
        pro=st.sampled_from(ALL_PROS),
        block=st.booleans(),
        by_representative=st.booleans(),
    )
    def block_or_unblock(self, data, pro: str, block: bool, by_representative: bool) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = self.holder_side(patient, by_representative)
        if block:
            self.space.access.block(actor, patient.id, pro)
            patient.blocked.add(pro)
        else:
            assert self.space.access.unblock(actor, patient.id, pro) is (pro in patient.blocked)
            patient.blocked.discard(pro)
        assert self.space.access.blocked(actor, patient.id) == sorted(patient.blocked)

    @precondition(has_patients)
    @rule(
        data=st.data(),
        object_all=st.none() | st.booleans(),
        object_emergency=st.none() | st.booleans(),
        mask_all=st.none() | st.booleans(),
        notify=st.none() | st.booleans(),
        by_representative=st.booleans(),
    )
    def change_settings(
        self, data, object_all, object_emergency, mask_all, notify, by_representative
    ) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = self.holder_side(patient, by_representative)
        updated = self.space.access.update_settings(
            actor,
            patient.id,
            object_all=object_all,
            object_emergency=object_emergency,
            mask_all=mask_all,
            notify_first_access=notify,
        )
        for name, value in (
            ("object_all", object_all),
            ("object_emergency", object_emergency),
            ("mask_all", mask_all),
            ("notify_first_access", notify),
        ):
            if value is not None:
                setattr(patient, name, value)
            assert getattr(updated, name) == getattr(patient, name)

    @precondition(lambda self: any(p.representing for p in self.model.patients.values()))
    @rule(data=st.data())
    def end_representation(self, data) -> None:
        self.step()
        patient = data.draw(st.sampled_from([p for p in self.patients() if p.representing]))
        assert patient.representative is not None
        self.space.accounts.end_representation(OPERATOR, patient.id, patient.representative)
        patient.representing = False

    # --- apps and consents ----------------------------------------------------------------

    @precondition(has_patients)
    @rule(
        data=st.data(),
        client_id=st.sampled_from(sorted(APPS)),
        scopes=st.sampled_from(
            [
                frozenset({"documents.read"}),
                frozenset({"documents.read", "documents.write"}),
                EVERY_SCOPE,
                frozenset({"mesures.read"}),
                frozenset({"agenda.read", "documents.read"}),
                frozenset(),
            ]
        ),
        by_representative=st.booleans(),
    )
    def consent_grant(self, data, client_id: str, scopes, by_representative: bool) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = self.holder_side(patient, by_representative)
        consents = self.space.consents
        if not self.model.apps[client_id] or not scopes or not scopes <= APPS[client_id]:
            with pytest.raises(ValidationError):
                consents.grant(actor, patient.id, client_id, scopes)
            return
        assert consents.grant(actor, patient.id, client_id, scopes).scopes == scopes
        self.model.consents[(patient.id, client_id)] = scopes

    @precondition(lambda self: bool(self.model.consents))
    @rule(data=st.data(), revoke=st.booleans(), by_representative=st.booleans())
    def consent_narrow_or_revoke(self, data, revoke: bool, by_representative: bool) -> None:
        self.step()
        (patient_id, client_id), scopes = data.draw(
            st.sampled_from(list(self.model.consents.items()))
        )
        actor = self.holder_side(self.model.patients[patient_id], by_representative)
        if revoke:
            assert not self.space.consents.revoke(actor, patient_id, client_id).active
            del self.model.consents[(patient_id, client_id)]
            with pytest.raises(NotFoundError):
                self.space.consents.revoke(actor, patient_id, client_id)
            return
        kept = data.draw(st.frozensets(st.sampled_from(sorted(scopes)), min_size=1))
        assert self.space.consents.narrow(actor, patient_id, client_id, kept).scopes == kept
        self.model.consents[(patient_id, client_id)] = kept

    @rule(client_id=st.sampled_from(sorted(APPS)))
    def suspend_or_reinstate(self, client_id: str) -> None:
        self.step()
        application_id = self.application_ids[client_id]
        if self.model.apps[client_id]:
            self.space.catalogue.suspend(MINISTER, application_id)
        else:
            self.space.catalogue.reinstate(MINISTER, application_id)
        self.model.apps[client_id] = not self.model.apps[client_id]

    @precondition(has_patients)
    @rule(data=st.data(), client_id=st.sampled_from(sorted(APPS)))
    def app_adds(self, data, client_id: str) -> None:
        """An app deposits a biology report in the record of the patient it acts for."""
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = Actor.app(client_id, patient.id, EVERY_SCOPE)
        content = self.content()
        code, system, klass = PRO_TYPES[0]

        def add():
            return self.space.record.add_document(
                actor,
                patient.id,
                content,
                media_type="application/pdf",
                type_code=Code(code, system),
            )

        if not self.model.app_may(actor, patient.id, "documents.write"):
            with pytest.raises(REFUSED):
                add()
            return
        self._added(add(), patient, "app", client_id, klass, content)

    # --- documents ---------------------------------------------------------------------------

    def content(self) -> bytes:
        return PDF + f"document {next(self.contents)}".encode()

    def _added(self, document, patient: MPatient, author_kind, author, klass, content, **flags):
        assert document.class_code == klass  # the model's own class table agrees
        hidden = flags.get("hidden_from_patient", False)
        self.model.documents[document.id] = MDocument(
            id=document.id,
            patient=patient.id,
            author_kind=author_kind,
            author=author,
            type_code=document.type_code.code,
            class_code=klass,
            confidentiality=flags.get("confidentiality", "N"),
            masked=flags.get("masked", False),
            hidden_until=one_month_later(self.model.now) if hidden else None,
            hidden_from_representatives=flags.get("hidden_from_representatives", False),
            content=content,
            lineage=document.id,
        )

    @precondition(has_patients)
    @rule(
        data=st.data(),
        pro=st.sampled_from(ALL_PROS),
        kind=st.sampled_from(PRO_TYPES),
        confidentiality=st.sampled_from(["N", "N", "R", "V"]),
        masked=st.booleans(),
        hidden_from_patient=st.booleans(),
        hidden_from_representatives=st.booleans(),
    )
    def professional_adds(
        self,
        data,
        pro: str,
        kind,
        confidentiality: str,
        masked: bool,
        hidden_from_patient: bool,
        hidden_from_representatives: bool,
    ) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        code, system, klass = kind
        content = self.content()
        flags = {
            "confidentiality": confidentiality,
            "masked": masked,
            "hidden_from_patient": hidden_from_patient,
            "hidden_from_representatives": hidden_from_representatives,
        }

        def add():
            return self.space.record.add_document(
                Actor(ActorKind.PROFESSIONAL, pro),
                patient.id,
                content,
                media_type="application/pdf",
                type_code=Code(code, system),
                title=f"Document {code}",
                **flags,
            )

        # L1111-17 III, R1111-47: a professional with the right to feeds the record.
        if not self.model.may_feed(patient, pro, klass, code):
            with pytest.raises(REFUSED):
                add()
            return
        self._added(add(), patient, "professional", pro, klass, content, **flags)

    @precondition(has_patients)
    @rule(data=st.data(), kind=st.sampled_from(PATIENT_TYPES), by_representative=st.booleans())
    def holder_adds(self, data, kind, by_representative: bool) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = self.holder_side(patient, by_representative)
        code, system, klass = kind
        content = self.content()
        document = self.space.record.add_document(
            actor, patient.id, content, media_type="application/pdf", type_code=Code(code, system)
        )
        author_kind = "patient" if actor.kind is ActorKind.PATIENT else "representative"
        self._added(document, patient, author_kind, actor.id, klass, content)

    @precondition(has_patients)
    @rule(data=st.data(), kind=st.sampled_from(INSURER_TYPES))
    def insurer_adds(self, data, kind) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        code, system, klass = kind
        content = self.content()
        document = self.space.record.add_document(
            OPERATOR,
            patient.id,
            content,
            media_type="application/pdf",
            type_code=Code(code, system),
        )
        self._added(document, patient, "insurer", OPERATOR.id, klass, content)

    def documents(self) -> list[MDocument]:
        return list(self.model.documents.values())

    def has_documents(self) -> bool:
        return bool(self.model.documents)

    @precondition(has_documents)
    @rule(data=st.data(), unmask=st.booleans(), by_representative=st.booleans())
    def mask_or_unmask(self, data, unmask: bool, by_representative: bool) -> None:
        self.step()
        document = data.draw(st.sampled_from(self.documents()))
        patient = self.model.patients[document.patient]
        actor = self.holder_side(patient, by_representative)
        change = self.space.record.unmask if unmask else self.space.record.mask
        if not self.model.may_mask(actor, document):
            with pytest.raises(REFUSED):
                change(actor, document.id)
            return
        if not document.current:  # a change goes through the current version
            with pytest.raises(ValidationError):
                change(actor, document.id)
            return
        assert change(actor, document.id).masked is not unmask
        for version in self.model.versions(document):
            version.masked = not unmask

    def author_of(self, document: MDocument) -> Actor:
        if document.author_kind == "professional":
            return Actor(ActorKind.PROFESSIONAL, document.author)
        if document.author_kind == "patient":
            return Actor.patient(document.author)
        # choice: what a representative or the insurer deposited is changed by nobody
        # through this API; the holder is asked to try.
        return Actor.patient(document.patient)

    @precondition(has_documents)
    @rule(data=st.data(), replace=st.booleans())
    def author_changes(self, data, replace: bool) -> None:
        """The author deletes, or replaces with a new version, a document."""
        self.step()
        document = data.draw(st.sampled_from(self.documents()))
        actor = self.author_of(document)
        record = self.space.record
        content = self.content()

        def change():
            if replace:
                return record.replace(actor, document.id, content, media_type="application/pdf")
            return record.delete(actor, document.id)

        if not self.model.may_change(actor, document):
            with pytest.raises(REFUSED):
                change()
            return
        if not document.current:
            with pytest.raises(ValidationError):
                change()
            return
        changed = change()
        if not replace:
            for version in self.model.versions(document):
                version.deleted = True
            return
        assert (changed.lineage_id, changed.replaces) == (document.lineage, document.id)
        document.current = False
        self.model.documents[changed.id] = dataclasses.replace(
            document, id=changed.id, content=content, current=True
        )

    # --- emergencies and time -----------------------------------------------------------------

    @precondition(has_patients)
    @rule(
        data=st.data(),
        pro=st.sampled_from(ALL_PROS),
        mode=st.sampled_from([AccessMode.EMERGENCY, AccessMode.REGULATION]),
        justified=st.booleans(),
    )
    def break_glass(self, data, pro: str, mode: AccessMode, justified: bool) -> None:
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        actor = Actor(ActorKind.PROFESSIONAL, pro)
        justification = JUSTIFICATION if justified else "urgence"
        before = _kinds(self.space)
        if not justified:
            with pytest.raises(ValidationError):
                self.space.access.break_glass(actor, patient.id, justification=justification)
            return
        allowed = self.model.may_declare_emergency(patient, pro, mode)
        if not allowed:
            with pytest.raises(REFUSED):
                self.space.access.break_glass(
                    actor, patient.id, justification=justification, mode=mode
                )
            after = _kinds(self.space)
            assert after == before  # nobody is told of a refused attempt
            return
        session = self.space.access.break_glass(
            actor, patient.id, justification=justification, mode=mode
        )
        assert session.expires_at == self.model.now + self.model.emergency
        patient.emergencies.append(
            (pro, mode, self.model.now, self.model.now + self.model.emergency)
        )
        # R1111-48: the holder and the médecin traitant are told; a médecin traitant the
        # patient blocked is told nothing about their record, unless blocks spare them.
        self.model.emergency_notices += 1
        doctor = self.model.treating_doctor(patient)
        spared = self.model.spares_treating
        if doctor is not None and (spared or doctor not in patient.blocked) and MSSANTE.get(doctor):
            self.model.doctor_notices += 1

    @rule(
        delta=st.sampled_from(
            [
                timedelta(minutes=5),
                timedelta(hours=1),
                timedelta(hours=23),
                timedelta(hours=25),
                timedelta(days=3),
                timedelta(days=20),
                timedelta(days=35),
            ]
        )
    )
    def time_passes(self, delta: timedelta) -> None:
        self.step()
        self.model.now += delta
        self.clock.set(self.model.now)

    # --- reads ---------------------------------------------------------------------------------

    def readers(self) -> list[Actor]:
        actors: list[Actor] = [OPERATOR]
        for patient in self.patients():
            actors.append(Actor.patient(patient.id))
            if patient.representative:
                for other in self.patients():  # their own, and someone else's record
                    actors.append(
                        Actor(
                            ActorKind.REPRESENTATIVE,
                            patient.representative,
                            on_behalf_of=other.id,
                        )
                    )
        for pro in ALL_PROS:
            for mode in AccessMode:
                actors.append(Actor(ActorKind.PROFESSIONAL, pro, mode=mode))
        for patient in self.patients():  # for each patient, on every record
            for client_id in APPS:
                actors.append(Actor.app(client_id, patient.id, TOKENS[0]))
            actors.append(Actor.app("suivi-complet", patient.id, TOKENS[1]))
        return actors

    def count(self, path: str, allowed: bool, actor: Actor) -> None:
        READS[path] = READS.get(path, 0) + 1
        if allowed:
            READS[f"{path} allowed"] = READS.get(f"{path} allowed", 0) + 1
            who = f"allowed to {actor.kind} ({actor.mode})"
            ALLOWED[who] = ALLOWED.get(who, 0) + 1

    @precondition(has_documents)
    @rule(data=st.data(), path=st.sampled_from(["get_document", "read_content"]))
    def read_one(self, data, path: str) -> None:
        """Every actor tries one document through one path."""
        self.step()
        document = data.draw(st.sampled_from(self.documents()))
        read = getattr(self.space.record, path)
        for actor in self.readers():
            allowed = self.model.may_read(actor, document)
            self.count(path, allowed, actor)
            if not allowed:
                with pytest.raises(REFUSED):  # no unauthorised read
                    read(actor, document.id)
                continue
            got = read(actor, document.id)  # no wrongful refusal
            if path == "read_content":
                assert got == document.content
            else:
                assert (got.id, got.patient_id) == (document.id, document.patient)
            self.model.read_happened(actor, document.patient)

    @precondition(has_patients)
    @rule(data=st.data(), include_replaced=st.booleans())
    def search(self, data, include_replaced: bool) -> None:
        """Every actor lists one record."""
        self.step()
        patient = data.draw(st.sampled_from(self.patients()))
        for actor in self.readers():
            allowed = self.model.may_search(actor, patient.id)
            self.count("search", allowed, actor)
            if not allowed:
                with pytest.raises(REFUSED):
                    self.space.record.search(actor, patient.id, include_replaced=include_replaced)
                continue
            found = self.space.record.search(
                actor, patient.id, include_replaced=include_replaced, limit=500
            ).documents
            assert {d.id for d in found} == self.model.visible(
                actor, patient.id, include_replaced=include_replaced
            )
            assert len(found) == len({d.id for d in found})
            READS["documents listed"] = READS.get("documents listed", 0) + len(found)
            self.model.read_happened(actor, patient.id)

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def notifications_match(self) -> None:
        kinds = _kinds(self.space)
        assert kinds.get("first-access", 0) == self.model.first_access_notices
        assert kinds.get("emergency-access", 0) == self.model.emergency_notices
        assert kinds.get("emergency-access-doctor", 0) == self.model.doctor_notices


class AccessMachineSQLite(AccessMachine):
    """The same on SQLite, with the médecin traitant's override off, blocks reaching the
    médecin traitant, and 2-hour emergencies."""

    URL = "sqlite"
    SETTINGS = Settings(
        access=AccessPolicy(
            treating_doctor_sees_masked=False,
            emergency_duration=timedelta(hours=2),
            block_spares_treating_doctor=False,
        )
    )
    NAME = "sqlite, override off, blocks reach the médecin traitant, 2 h emergencies"


TestAccessModel = AccessMachine.TestCase
TestAccessModel.settings = settings.get_profile("stateful")
TestAccessModelSQLite = AccessMachineSQLite.TestCase
TestAccessModelSQLite.settings = settings.get_profile("stateful-sqlite")


class _Simplest:
    """Stands in for ``st.data()`` when a test replays steps by hand: every draw is the
    simplest value of its strategy (for ``sampled_from``, the first element)."""

    def draw(self, strategy: st.SearchStrategy[object]) -> object:
        return find(strategy, lambda _: True, settings=settings(database=None))


def test_a_blocked_treating_doctor_is_not_told_of_an_emergency_access():
    """Neither the service nor the model tells a médecin traitant the patient blocked of an
    emergency access: the shortest run of steps of the case (issue 10), replayed on every
    run, as a stateful machine cannot take ``@example``."""
    machine = AccessMachineSQLite()
    try:
        machine.directory()
        machine.new_patient(with_representative=False)
        doctor = PROFESSIONALS[0][0]  # a physician with an MSSanté address
        assert MSSANTE[doctor]
        machine.grant(_Simplest(), doctor, "treating", 1, by_representative=False)
        machine.notifications_match()
        machine.block_or_unblock(_Simplest(), doctor, block=True, by_representative=False)
        machine.break_glass(_Simplest(), rpps(2), AccessMode.EMERGENCY, justified=True)
        machine.notifications_match()
        assert _kinds(machine.space).get("emergency-access") == 1  # the holder is told
        assert "emergency-access-doctor" not in _kinds(machine.space)
    finally:
        machine.teardown()


@pytest.fixture(scope="module", autouse=True)
def _report_steps():
    yield
    for name, count in STEPS.items():
        print(f"\naccess model, {name}: {count} steps", file=sys.stderr)
    if READS:
        print(f"access model, reads checked: {READS}", file=sys.stderr)
        print(f"access model, allowed reads: {ALLOWED}", file=sys.stderr)
