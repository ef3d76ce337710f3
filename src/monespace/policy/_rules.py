"""The access policy: one place where every decision is taken, deny by default.

Rules are small named pure functions. :func:`decide` asks them in order; the first that has an
opinion decides, and when none does the request is denied by ``deny_by_default``. The
services call :func:`decide` before touching storage and record every decision, allowed or
denied, in the audit trail, so no storage backend can weaken the policy.

Later capabilities (care team, blocking, médecin traitant, emergency access) add rules here;
the structure does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import attrs

from ..actors import AccessMode, Actor, ActorKind
from ._matrix import DEFAULT_MATRIX, AccessMatrix

__all__ = [
    "APP_SCOPES",
    "AccessPolicy",
    "Action",
    "AppFacts",
    "Decision",
    "DocumentFacts",
    "Facts",
    "ProfessionalFacts",
    "Resource",
    "Rule",
    "ThreadFacts",
    "decide",
    "default_rules",
]


class Action(StrEnum):
    """What an actor wants to do. The value is also the audit action name."""

    PATIENT_REGISTER = "patient.register"
    PATIENT_READ = "patient.read"
    ACCOUNT_INVITE = "account.invite"
    ACCOUNT_CREATE = "account.create"
    ACCOUNT_ACTIVATE = "account.activate"
    ACCOUNT_LOGIN = "account.login"
    ACCOUNT_OPPOSE = "account.oppose"
    ACCOUNT_CLOSE = "account.close"
    ACCOUNT_DELETE = "account.delete"
    ACCOUNT_REOPEN = "account.reopen"
    ACCOUNT_SUSPEND = "account.suspend"
    ACCOUNT_OBJECT = "account.object"
    ACCOUNT_PURGE = "account.purge"
    CODE_ISSUE = "code.issue"
    DEATH_RECORD = "death.record"
    REPRESENTATION_MANAGE = "representation.manage"
    DMP_IMPORT = "dmp.import"
    DIRECTORY_MANAGE = "directory.manage"
    EMERGENCY_ACCESS = "access.emergency"
    CARE_TEAM_JOIN = "access.care_team"
    ACCESS_MANAGE = "access.manage"
    ACCESS_READ = "access.read"
    ACCESS_EXPLAIN = "access.explain"
    PATIENT_LOOKUP = "patient.lookup"
    CONTENT_WRITE = "content.write"
    CONTENT_READ = "content.read"
    DOCUMENT_ADD = "document.add"
    DOCUMENT_READ = "document.read"
    DOCUMENT_SEARCH = "document.search"
    DOCUMENT_MASK = "document.mask"
    DOCUMENT_UNMASK = "document.unmask"
    DOCUMENT_RELEASE = "document.release"
    DOCUMENT_REPLACE = "document.replace"
    DOCUMENT_DELETE = "document.delete"
    PROFILE_READ = "profile.read"
    PROFILE_WRITE = "profile.write"
    MEASURE_READ = "measure.read"
    MEASURE_WRITE = "measure.write"
    PATIENT_SHRED = "patient.shred"
    KEYS_ROTATE = "keys.rotate"
    AUDIT_READ = "audit.read"
    AUDIT_TRAIL = "audit.trail"
    THREAD_START = "thread.start"
    THREAD_READ = "thread.read"
    THREAD_REPLY = "thread.reply"
    THREAD_CLOSE = "thread.close"
    THREAD_ARCHIVE = "thread.archive"
    INBOX_READ = "inbox.read"
    ATTACHMENT_READ = "attachment.read"
    ATTACHMENT_FILE = "attachment.file"
    MESSAGE_RECEIVE = "message.receive"
    AGENDA_READ = "agenda.read"
    AGENDA_WRITE = "agenda.write"
    REMINDERS_READ = "reminders.read"
    REMINDERS_SETTINGS = "reminders.settings"
    RESEARCH_EXTRACT = "research.extract"
    CONSENT_GRANT = "consent.grant"
    CONSENT_NARROW = "consent.narrow"
    CONSENT_REVOKE = "consent.revoke"
    CONSENT_READ = "consent.read"
    CATALOGUE_APPLY = "catalogue.apply"
    CATALOGUE_REVIEW = "catalogue.review"
    CATALOGUE_OPINION = "catalogue.opinion"
    CATALOGUE_DECIDE = "catalogue.decide"
    CATALOGUE_WITHDRAW = "catalogue.withdraw"
    CATALOGUE_EXPIRE = "catalogue.expire"
    CATALOGUE_READ = "catalogue.read"


#: Actions that only the operator may take.
_ADMINISTRATIVE = frozenset(
    {
        Action.PATIENT_REGISTER,
        Action.PATIENT_SHRED,
        Action.KEYS_ROTATE,
        Action.ACCOUNT_INVITE,
        Action.ACCOUNT_CREATE,
        Action.ACCOUNT_SUSPEND,
        Action.ACCOUNT_PURGE,
        Action.DEATH_RECORD,
        Action.REPRESENTATION_MANAGE,
        Action.CODE_ISSUE,
        Action.DMP_IMPORT,
        Action.DIRECTORY_MANAGE,
    }
)

#: Steps a holder takes, which the operator may also carry out at the holder's request
#: (R1111-36: closure "directly or by request to the operator"; the 3422 phone line).
_ON_REQUEST = frozenset(
    {
        Action.ACCOUNT_CLOSE,
        Action.ACCOUNT_DELETE,
        Action.ACCOUNT_REOPEN,
        Action.ACCOUNT_OBJECT,
        Action.CONSENT_REVOKE,
    }
)

#: Actions on the data of a space, which need the space to exist (active or created).
_NEEDS_OPEN_SPACE = frozenset(
    {
        Action.CONTENT_READ,
        Action.CONTENT_WRITE,
        Action.PATIENT_READ,
        Action.DOCUMENT_ADD,
        Action.DOCUMENT_READ,
        Action.DOCUMENT_SEARCH,
        Action.DOCUMENT_MASK,
        Action.DOCUMENT_UNMASK,
        Action.DOCUMENT_RELEASE,
        Action.DOCUMENT_REPLACE,
        Action.DOCUMENT_DELETE,
        Action.PROFILE_READ,
        Action.PROFILE_WRITE,
        Action.MEASURE_READ,
        Action.MEASURE_WRITE,
        Action.ACCESS_MANAGE,
        Action.ACCESS_READ,
        Action.EMERGENCY_ACCESS,
        Action.CARE_TEAM_JOIN,
        Action.CONSENT_GRANT,
    }
)

#: What the holder (and their representatives) may do in their own space. Replacing or
#: deleting a document is for its author only (see ``author_manages_own_document``).
_HOLDER_ACTIONS = frozenset(
    {
        Action.PATIENT_READ,
        Action.CONTENT_READ,
        Action.CONTENT_WRITE,
        Action.DOCUMENT_ADD,
        Action.DOCUMENT_READ,
        Action.DOCUMENT_SEARCH,
        Action.DOCUMENT_MASK,
        Action.DOCUMENT_UNMASK,
        Action.PROFILE_READ,
        Action.PROFILE_WRITE,
        Action.MEASURE_READ,
        Action.MEASURE_WRITE,
        Action.ACCOUNT_CLOSE,
        Action.ACCOUNT_DELETE,
        Action.ACCOUNT_REOPEN,
        Action.ACCOUNT_OBJECT,
        Action.AUDIT_READ,
        Action.ACCESS_MANAGE,
        Action.ACCESS_READ,
        Action.CONSENT_GRANT,
        Action.CONSENT_NARROW,
        Action.CONSENT_REVOKE,
        Action.CONSENT_READ,
    }
)

#: Reading actions on one document, which its visibility flags restrict.
_DOCUMENT_READS = frozenset({Action.DOCUMENT_READ})

#: What an author may do with a document they deposited.
_AUTHOR_ACTIONS = frozenset(
    {Action.DOCUMENT_READ, Action.DOCUMENT_REPLACE, Action.DOCUMENT_DELETE, Action.DOCUMENT_RELEASE}
)

#: What the operator may read: administrative data and the audit trail, never health content.
_OPERATOR_READS = frozenset(
    {Action.PATIENT_READ, Action.AUDIT_READ, Action.AUDIT_TRAIL, Action.CONSENT_READ}
)


@attrs.frozen
class Resource:
    """What an action is about: the patient it belongs to and, optionally, one object.

    :param patient_id: the patient whose space holds the resource (``None`` for space-wide).
    :param kind: the kind of object (``"content"``, ``"patient"``...).
    :param id: the object's id.
    """

    patient_id: str | None
    kind: str
    id: str | None = None


@attrs.frozen
class DocumentFacts:
    """What the policy needs to know about one document.

    :param author_kind: an :class:`~monespace.record.AuthorKind` value.
    :param hidden_from_patient: ``INVISIBLE_PATIENT`` and not yet released *now*.
    """

    author_kind: str
    author_id: str
    masked: bool = False
    hidden_from_patient: bool = False
    hidden_from_representatives: bool = False
    deleted: bool = False
    class_code: str = ""
    type_code: str = ""
    confidentiality: str = "N"
    submitted_by: str | None = None


@attrs.frozen
class ProfessionalFacts:
    """What the policy needs to know about a professional and the patient's controls.

    :param registered: whether the directory knows the professional.
    :param profession: their TRE_G15 profession code.
    :param grant: the strongest :class:`~monespace.access.GrantKind` in force, or ``None``.
    :param blocked: the patient blocked this professional.
    :param emergency: an emergency session is open for them, in the actor's mode.
    """

    registered: bool = False
    profession: str | None = None
    grant: str | None = None
    blocked: bool = False
    emergency: bool = False
    object_all: bool = False
    object_emergency: bool = False
    mask_all: bool = False


@attrs.frozen
class AccessPolicy:
    """Settings of the professional-access rules.

    :param matrix: the matrice d'habilitations (profession by document class and type).
    :param treating_doctor_sees_masked: the médecin traitant (and professionals the patient
        gave the same rights) see documents the patient masked: explicit in the 2016 DMP
        decree, only partially confirmed for the current text (docs/domain-rules.md §3.4).
    :param emergency_duration: how long an emergency access lasts (24 h: the security plan's
        proposal; Australia's My Health Record uses 5 days).
    :param block_spares_treating_doctor: a block does not apply to the patient's médecin
        traitant, who keeps their rights until the patient declares another one. The default
        follows docs/domain-rules.md §3.4 [P]: patients block or unblock professionals
        "à l'exception du médecin traitant" (MACSF), and R1111-40 gives the médecin traitant
        rights of their own. ``False`` makes a block beat every grant, the médecin
        traitant's included.
    :param regulating_professions: the TRE_G15 professions that may act in the SAMU
        regulation mode (centre 15): L1111-17 I gives that access to "le médecin régulateur",
        so physicians (``"10"``) only.
    """

    matrix: AccessMatrix = DEFAULT_MATRIX
    treating_doctor_sees_masked: bool = True
    emergency_duration: timedelta = timedelta(hours=24)
    block_spares_treating_doctor: bool = True
    regulating_professions: frozenset[str] = frozenset({"10"})


@attrs.frozen
class ThreadFacts:
    """What the policy needs to know about one secure-messaging thread.

    :param professional_id: the RPPS number of the professional taking part (who started it).
    :param closed: the professional closed it to the patient's replies (``X-MSS-MES: FIN``).
    """

    professional_id: str
    closed: bool = False


@attrs.frozen
class AppFacts:
    """What the policy needs to know about an app acting for a patient.

    :param referenced: the app is referenced, not suspended, withdrawn or expired *now*.
    :param consent: the scopes of the patient's consent in force to this app, or ``None``
        when there is none (never given, or revoked).
    """

    referenced: bool = False
    consent: frozenset[str] | None = None


@attrs.frozen
class Facts:
    """What the services looked up for a decision (the policy itself reads nothing).

    :param space_open: whether the patient's space exists (active or created); ``None``
        when the resource belongs to no patient.
    :param represents: whether the actor is, right now, a legal representative of the
        resource's patient.
    :param document: the document the action is about, if any.
    :param thread: the messaging thread the action is about, if any.
    :param legacy_transition: the space is not open because its holder opposed, but it
        holds their legacy DMP, still in its transitional period (CNIL 2021-050, §2).
    :param app: for an app actor, its référencement and the patient's consent.
    :param applicant: for a step of the référencement, the vendor who applied.
    """

    space_open: bool | None = None
    represents: bool = False
    document: DocumentFacts | None = None
    professional: ProfessionalFacts | None = None
    thread: ThreadFacts | None = None
    legacy_transition: bool = False
    app: AppFacts | None = None
    applicant: str | None = None


@attrs.frozen
class Decision:
    """The outcome of :func:`decide` and the name of the rule that took it."""

    allowed: bool
    rule: str


#: A rule returns a decision, or ``None`` when it has no opinion on the request.
Rule = Callable[[Actor, Action, Resource, Facts], Decision | None]


def operator_administers(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """The operator (a system actor) may register patients, rotate keys and shred data."""
    if action in _ADMINISTRATIVE:
        return Decision(actor.kind is ActorKind.SYSTEM, "operator_administers")
    return None


def space_must_be_open(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """Nobody reads or feeds a space that does not exist: not yet opened, opposed, closed
    (archived data are inaccessible, R1111-36), suspended or purged. The operator still reads
    administrative data, which it holds as the insurer; professionals still reach the legacy
    DMP of a holder who opposed, until the transition ends (never the holder)."""
    if action not in _NEEDS_OPEN_SPACE or facts.space_open is not False:
        return None
    if actor.kind is ActorKind.SYSTEM and action is Action.PATIENT_READ:
        return None
    if (
        facts.legacy_transition
        and actor.kind is ActorKind.PROFESSIONAL
        and action in _LEGACY_DMP_ACTIONS
    ):
        # The legacy DMP of a holder who opposed: professionals' access, decided by the
        # access rules below (authorisation, matrix, blocks), until the transition ends.
        return None
    return Decision(False, "space_must_be_open")


#: What professionals may do with the legacy DMP of a holder who opposed, during the
#: transition: read it and feed it once authorised (CNIL délibération 2021-050, §2).
_LEGACY_DMP_ACTIONS = frozenset(
    {
        Action.DOCUMENT_READ,
        Action.DOCUMENT_SEARCH,
        Action.DOCUMENT_ADD,
        Action.CARE_TEAM_JOIN,
        Action.EMERGENCY_ACCESS,
    }
)


def deleted_documents_are_gone(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """A deleted document is read by nobody, whoever asks."""
    document = facts.document
    if document is not None and document.deleted:
        return Decision(False, "deleted_documents_are_gone")
    return None


def _is_author(actor: Actor, document: DocumentFacts) -> bool:
    if (
        actor.kind is ActorKind.PROFESSIONAL
        and document.author_kind == "establishment"
        and document.submitted_by is not None
    ):
        # Deposited in an establishment's name: the professional who deposited it manages
        # it (otherwise nobody could release, replace or delete it).
        return actor.id == document.submitted_by
    if actor.id != document.author_id:
        return False
    if actor.kind is ActorKind.PROFESSIONAL:
        # A professional is the author of what they deposited in their own name only: an
        # establishment author's id is a FINESS number the depositor chooses, and it must
        # never hand the author's rights (reading past masks and objections, deleting) to a
        # professional whose RPPS number happens to be equal.
        return document.author_kind == "professional"
    if actor.kind is ActorKind.APP:
        return document.author_kind == "app"
    if actor.kind is ActorKind.PATIENT:
        return document.author_kind == "patient"
    return False


def author_manages_own_document(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """The author of a document reads it, replaces it, deletes it and releases it, whatever
    its masking (R1111-49: masked data stay accessible to whoever deposited them)."""
    document = facts.document
    if document is None or action not in _AUTHOR_ACTIONS or not _is_author(actor, document):
        return None
    return Decision(True, "author_manages_own_document")


def hidden_until_announcement(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """A result a professional hid until an announcement consultation is not shown to the
    patient, nor to their representatives, until released (R1111-53)."""
    document = facts.document
    # Masking is covered too: masking or unmasking returns the document's metadata (title,
    # type), and what may not be seen may not be masked (as for the representatives' rule).
    if (
        document is None
        or not document.hidden_from_patient
        or action not in _DOCUMENT_READS | {Action.DOCUMENT_MASK, Action.DOCUMENT_UNMASK}
    ):
        return None
    if actor.kind in (ActorKind.PATIENT, ActorKind.REPRESENTATIVE):
        return Decision(False, "hidden_until_announcement")
    return None


def hidden_from_representatives(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """What a minor asked to keep from their legal representatives stays hidden from them
    (R1111-50)."""
    document = facts.document
    if (
        document is not None
        and document.hidden_from_representatives
        and actor.kind is ActorKind.REPRESENTATIVE
        and action in _DOCUMENT_READS | {Action.DOCUMENT_MASK, Action.DOCUMENT_UNMASK}
    ):
        return Decision(False, "hidden_from_representatives")
    return None


def patient_owns_space(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """A patient reads, feeds and controls their own space."""
    if (
        actor.kind is ActorKind.PATIENT
        and action in _HOLDER_ACTIONS
        and resource.patient_id is not None
        and actor.id == resource.patient_id
    ):
        return Decision(True, "patient_owns_space")
    return None


def representative_acts_for_patient(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """A legal representative acts for the person they represent, while the link lasts
    (minors until majority, protected adults while the measure lasts: R1111-40)."""
    if actor.kind is not ActorKind.REPRESENTATIVE or resource.patient_id is None:
        return None
    allowed = (
        action in _HOLDER_ACTIONS and actor.on_behalf_of == resource.patient_id and facts.represents
    )
    return Decision(True, "representative_acts_for_patient") if allowed else None


def _feeding_rule(policy: AccessPolicy) -> Rule:
    """The rule of professional feeding, closed over the policy's matrix."""

    def professional_feeds_record(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """A professional adds documents to a record they have the right to feed: as a member
        of the care team, authorised by the patient, as the médecin traitant (L1111-17 III,
        R1111-46), or in a declared emergency (L1111-17 I); once authorised, the holder
        cannot refuse it (R1111-47). What they deposit stays within their profession's row
        of the matrice d'habilitations. Blocked and unknown professionals were refused
        above; reading is another matter (the access rules)."""
        if action is not Action.DOCUMENT_ADD or actor.kind is not ActorKind.PROFESSIONAL:
            return None
        pro = facts.professional or ProfessionalFacts()
        if resource.patient_id is None:
            return Decision(False, "professional_feeds_record")
        denied = _standing_to_feed(actor, pro)
        document = facts.document
        if denied is None and document is not None:
            allowed = policy.matrix.allows(
                pro.profession or "", document.class_code, document.type_code
            )
            denied = None if allowed else "matrix_of_habilitations"
        return Decision(denied is None, denied or "professional_feeds_record")

    return professional_feeds_record


def _standing_to_feed(actor: Actor, pro: ProfessionalFacts) -> str | None:
    """Why *pro* may not feed the record in the actor's mode, or ``None`` when they may."""
    if actor.mode is not AccessMode.NORMAL:
        if pro.object_emergency:
            return "patient_objects_to_emergency_access"
        return None if pro.emergency else "no_emergency_declared"
    if pro.object_all:
        return "patient_objects_to_all_access"
    return None if pro.grant is not None else "no_authorisation"


def _emergency_refusal(
    policy: AccessPolicy, actor: Actor, pro: ProfessionalFacts
) -> Decision | None:
    """Why *pro* may not act in the actor's emergency mode, or ``None``: not when the patient
    objected to emergency access; SAMU regulation is the regulating doctor's (L1111-17 I);
    bris de glace is for the professions the matrix lets read something."""
    if pro.object_emergency:
        return Decision(False, "patient_objects_to_emergency_access")
    profession = pro.profession or ""
    if actor.mode is AccessMode.REGULATION and profession not in policy.regulating_professions:
        return Decision(False, "regulation_is_for_the_regulating_doctor")
    if not policy.matrix.classes.get(profession):
        return Decision(False, "matrix_of_habilitations")
    return None


def operator_acts_on_request(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """The operator carries out a holder's lifecycle request (closure, deletion, reopening,
    objection to a suspension) received at a counter or by phone."""
    if action in _ON_REQUEST and actor.kind is ActorKind.SYSTEM:
        return Decision(True, "operator_acts_on_request")
    return None


def operator_feeds_record(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """The operator may add to a record (reimbursement data from the health insurer, legacy
    DMP migration: CSP R1111-42 1° d) but, like any writer, not read it back."""
    if action in (Action.CONTENT_WRITE, Action.DOCUMENT_ADD) and actor.kind is ActorKind.SYSTEM:
        return Decision(resource.patient_id is not None, "operator_feeds_record")
    return None


def operator_reads_administrative(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """The operator may read administrative data (identity, contacts) and the audit trail,
    which hold no health content; health content stays out of its reach."""
    if action in _OPERATOR_READS and actor.kind is ActorKind.SYSTEM:
        return Decision(True, "operator_reads_administrative")
    return None


#: What a professional may read in a record they have access to. The profil médical and the
#: measures reach professionals as documents (the DOCPAT08 copy), not directly.
_PROFESSIONAL_READS = frozenset({Action.DOCUMENT_READ, Action.DOCUMENT_SEARCH, Action.PATIENT_READ})
_TREATING_DOCTOR = "treating_doctor"
_TREATING = frozenset({_TREATING_DOCTOR, "extended"})


def _professional(actor: Actor, facts: Facts) -> ProfessionalFacts | None:
    if actor.kind is not ActorKind.PROFESSIONAL:
        return None
    return facts.professional or ProfessionalFacts()


def professional_must_be_known(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """Only professionals the directory (RPPS) knows act on records."""
    pro = _professional(actor, facts)
    if pro is not None and not pro.registered and resource.patient_id is not None:
        return Decision(False, "professional_must_be_known")
    return None


def _blocking_rule(policy: AccessPolicy) -> Rule:
    """The rule of blocking, closed over the policy's setting for the médecin traitant."""

    def blocked_professional(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """A professional the patient blocked has no access at all, with immediate effect;
        but for the médecin traitant where ``block_spares_treating_doctor`` says so."""
        pro = _professional(actor, facts)
        if pro is None or not pro.blocked:
            return None
        if policy.block_spares_treating_doctor and pro.grant == _TREATING_DOCTOR:
            return None
        return Decision(False, "blocked_by_patient")

    return blocked_professional


def _access_rules(policy: AccessPolicy) -> tuple[Rule, ...]:
    """The rules of professional reading, closed over the policy's settings."""

    def emergency_declaration(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """An emergency access may be declared unless the patient objected to it, in regulation
        by the regulating doctor only, in bris de glace by a profession of the matrix."""
        pro = _professional(actor, facts)
        if pro is None or actor.mode is AccessMode.NORMAL or action is not Action.EMERGENCY_ACCESS:
            return None
        return _emergency_refusal(policy, actor, pro) or Decision(True, "emergency_declared")

    def _emergency_document(pro: ProfessionalFacts, document: DocumentFacts) -> Decision | None:
        if pro.mask_all or document.confidentiality == "V":
            return Decision(False, "masked_including_emergency")
        if not policy.matrix.allows(pro.profession or "", document.class_code, document.type_code):
            return Decision(False, "matrix_of_habilitations")
        return None

    def emergency_access(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """Bris de glace and SAMU regulation (L1111-17 I, R1111-48): only when the patient
        did not object, regulation for the regulating doctor only, while a declared
        emergency lasts, and never for what the patient masked "including in
        emergencies"."""
        pro = _professional(actor, facts)
        if pro is None or actor.mode is AccessMode.NORMAL or action not in _PROFESSIONAL_READS:
            return None
        denied = _emergency_refusal(policy, actor, pro)
        if denied is not None or not pro.emergency:
            return denied or Decision(False, "no_emergency_declared")
        if facts.document is not None:
            denied = _emergency_document(pro, facts.document)
            if denied is not None:
                return denied
        return Decision(True, "emergency_access")

    def professional_looks_up_patients(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """A professional of the directory finds the space of the person in front of them."""
        if action is not Action.PATIENT_LOOKUP or actor.kind is not ActorKind.PROFESSIONAL:
            return None
        registered = facts.professional is not None and facts.professional.registered
        return Decision(registered, "professional_looks_up_patients")

    def care_team_declaration(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """A professional taking part in the care declares it; refused when the patient
        objects to all professional access."""
        pro = _professional(actor, facts)
        if pro is None or action is not Action.CARE_TEAM_JOIN:
            return None
        return Decision(not pro.object_all, "care_team_declaration")

    def professional_needs_authorisation(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """Care-team members are deemed authorised unless the patient objects; anyone else
        needs the patient's explicit authorisation (R1111-46, R1111-32)."""
        pro = _professional(actor, facts)
        if pro is None or action not in _PROFESSIONAL_READS:
            return None
        if pro.object_all:
            return Decision(False, "patient_objects_to_all_access")
        if pro.grant is None:
            return Decision(False, "no_authorisation")
        return None

    def matrix_of_habilitations(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """Each profession reads only the document classes and types the matrix allows
        (arrêté of 26 October 2023)."""
        pro = _professional(actor, facts)
        document = facts.document
        if pro is None or document is None or action not in _PROFESSIONAL_READS:
            return None
        if policy.matrix.allows(pro.profession or "", document.class_code, document.type_code):
            return None
        return Decision(False, "matrix_of_habilitations")

    def masked_from_professionals(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """What the patient masked stays hidden from professionals (R1111-49), except from the
        médecin traitant and those given the same rights, where the setting allows; masking
        everything hides everything, from everyone."""
        pro = _professional(actor, facts)
        document = facts.document
        if pro is None or document is None or action not in _PROFESSIONAL_READS:
            return None
        masked = document.masked or document.confidentiality == "V"
        if pro.mask_all:
            return Decision(False, "patient_masked_everything")
        if masked and not (policy.treating_doctor_sees_masked and pro.grant in _TREATING):
            return Decision(False, "masked_by_patient")
        return None

    def authorised_professional_reads(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """An authorised professional reads what the rules above left visible."""
        pro = _professional(actor, facts)
        if pro is not None and pro.grant is not None and action in _PROFESSIONAL_READS:
            return Decision(True, "authorised_professional")
        return None

    return (
        professional_looks_up_patients,
        emergency_declaration,
        emergency_access,
        care_team_declaration,
        professional_needs_authorisation,
        matrix_of_habilitations,
        masked_from_professionals,
        authorised_professional_reads,
    )


# --- secure messaging (docs/domain-rules.md §5) ---------------------------------------------

#: Actions on one thread, which only its participants may take.
_THREAD_ACTIONS = frozenset(
    {
        Action.THREAD_READ,
        Action.THREAD_REPLY,
        Action.THREAD_CLOSE,
        Action.THREAD_ARCHIVE,
        Action.ATTACHMENT_READ,
        Action.ATTACHMENT_FILE,
    }
)
#: Every messaging action on a patient's mailbox.
_MESSAGING = _THREAD_ACTIONS | {Action.THREAD_START, Action.INBOX_READ, Action.MESSAGE_RECEIVE}
#: What a participant may do in a thread (closing and filing have rules of their own).
_PARTICIPANT_ACTIONS = frozenset(
    {Action.THREAD_READ, Action.THREAD_REPLY, Action.THREAD_ARCHIVE, Action.ATTACHMENT_READ}
)


def _patient_side(actor: Actor, resource: Resource, facts: Facts) -> bool:
    """The holder, or a representative acting for them right now."""
    if resource.patient_id is None:
        return False
    if actor.kind is ActorKind.PATIENT:
        return actor.id == resource.patient_id
    return (
        actor.kind is ActorKind.REPRESENTATIVE
        and actor.on_behalf_of == resource.patient_id
        and facts.represents
    )


def messaging_needs_open_space(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """Nobody writes to or reads the mailbox of a space that does not exist (not yet open,
    opposed, closed and archived, suspended, purged)."""
    if action in _MESSAGING and facts.space_open is False:
        return Decision(False, "messaging_needs_open_space")
    return None


def gateway_delivers_inbound(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """Only the operator's messaging gateway hands in messages received from the MSSanté
    trust space; the professional who wrote them is then checked like any other sender."""
    if action is Action.MESSAGE_RECEIVE:
        allowed = actor.kind is ActorKind.SYSTEM and resource.patient_id is not None
        return Decision(allowed, "gateway_delivers_inbound")
    return None


def only_professionals_start_threads(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """Only professionals and establishments start a conversation ("Seuls les professionnels
    et établissements de santé peuvent initier une conversation"); the patient only replies
    (docs/domain-rules.md §5)."""
    if action is not Action.THREAD_START:
        return None
    allowed = actor.kind is ActorKind.PROFESSIONAL and resource.patient_id is not None
    return Decision(allowed, "only_professionals_start_threads")


def thread_participants_only(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """A thread is read and written by its two sides only: the patient (or their
    representative) and the professional who started it; not the operator, not an app,
    not another professional, whatever their access to the record."""
    if action not in _THREAD_ACTIONS:
        return None
    thread = facts.thread
    if thread is None:
        return Decision(False, "thread_participants_only")
    professional_side = actor.kind is ActorKind.PROFESSIONAL and actor.id == thread.professional_id
    if not (professional_side or _patient_side(actor, resource, facts)):
        return Decision(False, "thread_participants_only")
    return None


def closed_threads_take_no_replies(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """A thread the professional closed (``X-MSS-MES: FIN``) takes no reply from the
    patient's side (Référentiel socle MSSanté #2 §3.4.2.3; Ségur SC.MSS/CONF.21)."""
    thread = facts.thread
    if (
        action is Action.THREAD_REPLY
        and thread is not None
        and thread.closed
        and actor.kind is not ActorKind.PROFESSIONAL
    ):
        return Decision(False, "thread_closed_to_replies")
    return None


def professional_closes_thread(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """Closing a thread to replies, or opening it again, is the professional's call."""
    if action is not Action.THREAD_CLOSE:
        return None
    thread = facts.thread
    allowed = (
        thread is not None
        and actor.kind is ActorKind.PROFESSIONAL
        and actor.id == thread.professional_id
    )
    return Decision(allowed, "professional_closes_thread")


def holder_files_attachment(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """The patient (or their representative) may save an attachment they received into
    their record; the record's own rules then decide the filing itself."""
    if action is not Action.ATTACHMENT_FILE:
        return None
    return Decision(_patient_side(actor, resource, facts), "holder_files_attachment")


def participants_use_thread(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """A participant reads, replies to and archives their thread and opens its
    attachments (``thread_participants_only`` ran first)."""
    if action in _PARTICIPANT_ACTIONS and facts.thread is not None:
        return Decision(True, "thread_participant")
    return None


def holder_reads_mailbox(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """The patient (or their representative) lists their own mailbox; a professional lists
    theirs (``Resource(None, "mailbox", rpps)``), each thread then decided on its own."""
    if action is not Action.INBOX_READ:
        return None
    if resource.patient_id is None:
        allowed = actor.kind is ActorKind.PROFESSIONAL and resource.id == actor.id
    else:
        allowed = _patient_side(actor, resource, facts)
    return Decision(allowed, "mailbox_owner")


def _messaging_rules() -> tuple[Rule, ...]:
    """The secure-messaging rules, in the order they are asked."""
    return (
        messaging_needs_open_space,
        gateway_delivers_inbound,
        only_professionals_start_threads,
        thread_participants_only,
        closed_threads_take_no_replies,
        professional_closes_thread,
        holder_files_attachment,
        participants_use_thread,
        holder_reads_mailbox,
    )


def default_rules(policy: AccessPolicy | None = None) -> tuple[Rule, ...]:
    """The rules in force, in the order they are asked.

    :param policy: the settings of the professional-access rules (defaults otherwise).
    """
    settings = policy or AccessPolicy()
    others = (
        operator_administers,
        space_must_be_open,
        deleted_documents_are_gone,
        professional_must_be_known,
        _blocking_rule(settings),
        *_messaging_rules(),
        author_manages_own_document,
        *_access_rules(settings),
        hidden_until_announcement,
        hidden_from_representatives,
        patient_owns_space,
        representative_acts_for_patient,
        _feeding_rule(settings),
        operator_acts_on_request,
        operator_feeds_record,
        operator_reads_administrative,
        agenda_of_the_person,
        operator_extracts_for_study,
        referencement_roles,
    )
    return (_app_rule(others), *others)


_AGENDA = frozenset(
    {Action.AGENDA_READ, Action.AGENDA_WRITE, Action.REMINDERS_READ, Action.REMINDERS_SETTINGS}
)
#: What an authorised professional does with a person's agenda: as with the record, read
#: and feed it; the reminder settings are the person's alone.
_PROFESSIONAL_AGENDA = frozenset({Action.AGENDA_READ, Action.AGENDA_WRITE, Action.REMINDERS_READ})


def agenda_of_the_person(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """The agenda is fed by the holder, their representative, and professionals with access
    to the record (R1111-27 5° b), on the same conditions as reading it (unknown and blocked
    professionals were refused by earlier rules). Referenced apps are decided by
    ``app_acts_for_patient``, before this rule. The operator neither reads nor writes it."""
    if action not in _AGENDA or resource.patient_id is None:
        return None  # an agenda is always someone's: deny_by_default
    if facts.space_open is False:
        return Decision(False, "space_must_be_open")
    if actor.kind is ActorKind.PATIENT and actor.id == resource.patient_id:
        return Decision(True, "patient_owns_space")
    if (
        actor.kind is ActorKind.REPRESENTATIVE
        and actor.on_behalf_of == resource.patient_id
        and facts.represents
    ):
        return Decision(True, "representative_acts_for_patient")
    return _professional_agenda(actor, action, facts)


def _professional_agenda(actor: Actor, action: Action, facts: Facts) -> Decision | None:
    pro = _professional(actor, facts)
    if pro is None or action not in _PROFESSIONAL_AGENDA:
        return None
    allowed = (
        actor.mode is AccessMode.NORMAL
        and pro.registered
        and not pro.blocked
        and not pro.object_all
        and pro.grant is not None
    )
    return Decision(allowed, "authorised_professional" if allowed else "no_authorisation")


def decide(
    actor: Actor,
    action: Action,
    resource: Resource,
    facts: Facts | None = None,
    rules: Sequence[Rule] | None = None,
) -> Decision:
    """Decide whether *actor* may perform *action* on *resource*, given *facts*.

    :return: the first opinion of *rules* (by default :func:`default_rules`), or a denial by
        the ``deny_by_default`` rule when none has one.
    """
    known = facts if facts is not None else Facts()
    for rule in rules if rules is not None else default_rules():
        decision = rule(actor, action, resource, known)
        if decision is not None:
            return decision
    return Decision(False, "deny_by_default")


def operator_extracts_for_study(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """Research extracts (``research.extract``) are made by the operator for a named study
    (the resource ``study`` and its id), from open spaces only; nobody else extracts, not
    even the holder through this action. The holder's objection to research is honoured by
    the extract itself, which leaves objecting people out before reading anything of theirs
    (:mod:`monespace.research`)."""
    if action is not Action.RESEARCH_EXTRACT:
        return None
    if actor.kind is not ActorKind.SYSTEM or resource.kind != "study" or not resource.id:
        return Decision(False, "research_by_the_operator_for_a_study")
    if facts.space_open is False:
        return Decision(False, "space_must_be_open")
    return Decision(True, "operator_extracts_for_study")


# --- referenced apps (docs/domain-rules.md §7.3) ---------------------------------------------

#: The scope an app needs for each action; every other action is refused to apps.
APP_SCOPES: Final[Mapping[Action, str]] = MappingProxyType(
    {
        Action.DOCUMENT_READ: "documents.read",
        Action.DOCUMENT_SEARCH: "documents.read",
        Action.CONTENT_READ: "documents.read",
        Action.DOCUMENT_ADD: "documents.write",
        Action.CONTENT_WRITE: "documents.write",
        Action.AGENDA_READ: "agenda.read",
        Action.AGENDA_WRITE: "agenda.write",
        Action.MEASURE_READ: "mesures.read",
        Action.MEASURE_WRITE: "mesures.write",
    }
)


def _app_rule(others: Sequence[Rule]) -> Rule:
    """The rule of apps, which asks *others* what the patient themselves may do."""

    def app_acts_for_patient(
        actor: Actor, action: Action, resource: Resource, facts: Facts
    ) -> Decision | None:
        """A referenced app acts as the patient's delegate (R1111-32, L1111-13-1 III): for
        that patient only, while it is referenced and their consent is in force, within the
        scopes of both its token and the consent, and never beyond what the patient may do
        themselves (a result hidden until the announcement consultation stays hidden)."""
        if actor.kind is not ActorKind.APP:
            return None
        denied = _app_refusal(actor, action, resource, facts)
        if denied is None:
            assert resource.patient_id is not None  # _app_refusal checked it
            holder = Actor.patient(resource.patient_id)
            as_holder = attrs.evolve(facts, app=None, represents=False, professional=None)
            if not decide(holder, action, resource, as_holder, others).allowed:
                denied = "beyond_patient_rights"
        return Decision(denied is None, denied or "app_acts_for_patient")

    return app_acts_for_patient


def _app_refusal(actor: Actor, action: Action, resource: Resource, facts: Facts) -> str | None:
    """Why the app *actor* may not take *action*, before the patient's own rights are asked;
    ``None`` when nothing stands in its way."""
    if resource.patient_id is None or actor.on_behalf_of != resource.patient_id:
        return "not_this_patient"
    scope = APP_SCOPES.get(action)
    if scope is None:
        return "outside_app_scopes"
    app = facts.app or AppFacts()
    if not app.referenced:
        return "app_not_referenced"
    if app.consent is None:
        return "consent_not_given"
    if scope not in actor.scopes or scope not in app.consent:
        return "outside_app_scopes"
    return None


# --- the référencement (docs/domain-rules.md §7.2) --------------------------------------------

#: The authority role that takes each step of the référencement.
_REFERENCEMENT_ROLES: Final[Mapping[Action, str]] = MappingProxyType(
    {
        Action.CATALOGUE_REVIEW: "reviewer",
        Action.CATALOGUE_OPINION: "commission",
        Action.CATALOGUE_DECIDE: "minister",
    }
)


def referencement_roles(
    actor: Actor, action: Action, resource: Resource, facts: Facts
) -> Decision | None:
    """Each step of the référencement by its role (R1111-38, R1111-39): a vendor applies;
    a reviewer instructs the dossier; the commission gives its opinion; the minister's
    office references, suspends, reinstates, renews and withdraws; the vendor who applied
    may also withdraw its own service; conventions expire by the operator's tick. The public
    catalogue is read by anyone."""
    if action is Action.CATALOGUE_READ:
        return Decision(True, "public_catalogue")
    if action is Action.CATALOGUE_APPLY:
        return Decision(actor.kind is ActorKind.VENDOR, "vendor_applies")
    if action is Action.CATALOGUE_EXPIRE:
        return Decision(actor.kind is ActorKind.SYSTEM, "convention_ends")
    role = _REFERENCEMENT_ROLES.get(action)
    if role is None and action is Action.CATALOGUE_WITHDRAW:
        if actor.kind is ActorKind.VENDOR and facts.applicant == actor.id:
            return Decision(True, "vendor_withdraws_own_service")
        role = "minister"
    if role is None:
        return None
    allowed = actor.kind is ActorKind.AUTHORITY and actor.role == role
    return Decision(allowed, f"{role}_decides" if allowed else "wrong_role")
