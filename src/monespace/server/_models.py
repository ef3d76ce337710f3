"""The API's request and response bodies, as attrs classes.

They are the single source of the JSON the server reads and writes *and* of the schemas in
``/openapi.json`` (through :func:`msgspec.json.schema_components`): constraints are written
once, as :class:`msgspec.Meta` annotations, and both decoding and the documentation obey
them. They are views chosen for the API, separate from the library's models: what a client
sees is decided here, field by field.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import attrs
import msgspec

from ..record import Category, MeasureKind, ProfileSection

__all__ = [
    "AccessSettingsOut",
    "AccessSettingsPatch",
    "AccountOut",
    "AgendaQuery",
    "AttachmentIn",
    "AttachmentOut",
    "AuthorOut",
    "AuthorisationIn",
    "BlockedOut",
    "CalendarQuery",
    "CatalogueEntryOut",
    "CatalogueQuery",
    "CodeIn",
    "CodeOut",
    "ConsentNarrow",
    "ConsentOut",
    "CorrespondentOut",
    "DocumentIn",
    "DocumentList",
    "DocumentOut",
    "DocumentPageOut",
    "DocumentSearch",
    "EmergencyIn",
    "EmergencyOut",
    "EventIn",
    "EventOut",
    "FamilyIn",
    "GrantOut",
    "Health",
    "HistoryEntryOut",
    "InboxOut",
    "MeasureIn",
    "MeasureOut",
    "MeasureQuery",
    "MessageOut",
    "MessageQuery",
    "MessageSearch",
    "OppositionOut",
    "OptOutOut",
    "PatientLogin",
    "PatientLookup",
    "PatientRef",
    "ProfessionalIn",
    "ProfessionalLogin",
    "ProfessionalOut",
    "ProfileEntryIn",
    "ProfileEntryOut",
    "ProfileQuery",
    "ProofOfIdentity",
    "ReminderOut",
    "RemindersOut",
    "ReplyIn",
    "RescheduleIn",
    "SentReminderOut",
    "SessionInfo",
    "SessionOut",
    "SourceOut",
    "ThreadOut",
    "ThreadStartIn",
    "ThreadViewOut",
    "WhyOut",
]

# --- shared field types ---------------------------------------------------------------------

Nir = Annotated[
    str,
    msgspec.Meta(
        min_length=13,
        max_length=32,
        description="The social security number (NIR), 15 characters with its key; spaces "
        "are ignored. Only ever sent in request bodies, never in URLs.",
    ),
]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Rpps = Annotated[
    str, msgspec.Meta(pattern="^[0-9]{11}$", description="An RPPS number (11 digits).")
]
ObjectId = Annotated[
    str,
    msgspec.Meta(
        pattern="^[A-Za-z0-9_-]{1,64}$", description="An opaque identifier, safe in URLs."
    ),
]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=500)]


# --- health and sessions --------------------------------------------------------------------


@attrs.frozen
class Health:
    """The server is up."""

    status: Literal["ok"] = "ok"


@attrs.frozen
class ProofOfIdentity:
    """What a person types to activate their space or to object to its creation: the
    provisional code they received and the details printed on their carte Vitale."""

    nir: Nir
    code: Secret
    vitale_serial: Secret
    birth_date: date


@attrs.frozen
class PatientLogin:
    """The demo login: the carte Vitale details of a person whose space is active.

    The real service uses FranceConnect or a password with a one-time code; this stands in
    for it in the demo. A parent logs in as themselves and reaches their children's spaces.
    """

    nir: Nir
    vitale_serial: Secret
    birth_date: date


@attrs.frozen
class ProfessionalLogin:
    """The demo's simulated Pro Santé Connect: an RPPS number from the directory, with no
    password. Only offered by a server started in demo mode."""

    rpps: Rpps


@attrs.frozen
class ProfessionalOut:
    """A professional, as the directory knows them."""

    rpps: str
    profession: str
    profession_name: str
    name: str
    specialty: str | None = None
    mssante: str | None = None
    finess: str | None = None
    establishment: str | None = None


@attrs.frozen
class SessionInfo:
    """The current session.

    :param spaces: for a person, the spaces this login reaches: their own first, then those
        of the people they represent.
    :param csrf_token: send it back in ``X-CSRF-Token`` with changes made with the cookie.
    """

    kind: Literal["patient", "professional"]
    person_id: str
    spaces: list[str]
    csrf_token: str
    expires_at: Moment
    idle_timeout_seconds: int
    professional: ProfessionalOut | None = None


@attrs.frozen
class SessionOut:
    """A new session. The token is shown once: send it as ``Authorization: Bearer``, or let
    the browser keep the HttpOnly cookie set with it."""

    token: str
    session: SessionInfo


@attrs.frozen
class AccountOut:
    """The lifecycle state of a space."""

    patient_id: str
    state: str


@attrs.frozen
class OppositionOut:
    """A signed proof of opposition, for the person to keep."""

    proof_id: str
    opposed_at: Moment
    document: str


@attrs.frozen
class PatientLookup:
    """A professional finds a patient's space from their carte Vitale: NIR and birth date."""

    nir: Nir
    birth_date: date


@attrs.frozen
class PatientRef:
    """The opaque id of a space, used in every URL about it."""

    patient_id: str


# --- record ---------------------------------------------------------------------------------


@attrs.frozen
class CodeIn:
    """A coded value: *code* in the code system *system* (an OID)."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    system: Annotated[str, msgspec.Meta(pattern="^[0-9]+(\\.[0-9]+)*$", max_length=64)]


@attrs.frozen
class CodeOut:
    """A coded value with its display name."""

    code: str
    system: str
    display: str | None = None


@attrs.frozen
class AuthorOut:
    """Who deposited a document."""

    kind: str
    id: str
    name: str | None = None


@attrs.frozen
class DocumentOut:
    """A document's metadata (the content is read separately)."""

    id: str
    version: int
    title: str
    category: Category
    class_code: str
    type_code: CodeOut
    media_type: str
    size: int
    sha256: str
    created_at: Moment
    submitted_at: Moment
    author: AuthorOut
    confidentiality: str
    masked: bool
    hidden_from_patient: bool
    hidden_from_representatives: bool
    status: str
    comments: str | None = None
    replaces: str | None = None
    release_at: Moment | None = None


@attrs.frozen
class DocumentPageOut:
    """One page of documents, newest first, and how many matched in all."""

    documents: list[DocumentOut]
    total: int
    offset: int
    limit: int


@attrs.frozen
class DocumentList:
    """Query parameters of the record listing (free-text search is a POST)."""

    category: Category | None = None
    offset: Offset = 0
    limit: Limit = 50


@attrs.frozen
class DocumentSearch:
    """A search of the record. Sent as a body, so that search words stay out of URLs."""

    text: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    category: Category | None = None
    type_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    author_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    since: Moment | None = None
    until: Moment | None = None
    include_replaced: bool = False
    offset: Offset = 0
    limit: Limit = 50


@attrs.frozen
class DocumentIn:
    """A document to add. A CDA R2 document fills its type, title and date from its header;
    other contents need ``type_code``.

    :param content: the bytes, base64-encoded.
    :param hidden_from_patient: a professional hides a result until it is announced.
    """

    content: bytes
    media_type: Annotated[str, msgspec.Meta(min_length=3, max_length=100)]
    type_code: CodeIn | None = None
    class_code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None
    title: ShortText | None = None
    comments: Text | None = None
    created_at: Moment | None = None
    masked: bool = False
    hidden_from_patient: bool = False
    hidden_from_representatives: bool = False


@attrs.frozen
class ProfileEntryIn:
    """An entry of the profil médical."""

    section: ProfileSection
    label: Text
    details: Text | None = None
    code: CodeIn | None = None
    started: date | None = None
    ended: date | None = None


@attrs.frozen
class ProfileEntryOut:
    """An entry of the profil médical."""

    id: str
    section: ProfileSection
    label: str
    details: str | None = None
    code: CodeOut | None = None
    started: date | None = None
    ended: date | None = None
    recorded_at: Moment | None = None


@attrs.frozen
class ProfileQuery:
    """Query parameters of the profil médical."""

    section: ProfileSection | None = None


@attrs.frozen
class MeasureIn:
    """A health measure. ``second`` is the diastolic pressure of a blood pressure."""

    kind: MeasureKind
    value: Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)]
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None
    measured_at: Moment | None = None
    second: Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)] | None = None


@attrs.frozen
class MeasureOut:
    """A health measure, in its kind's canonical UCUM unit, with its LOINC code."""

    id: str
    kind: MeasureKind
    value: float
    unit: str
    measured_at: Moment
    code: CodeOut
    source: str
    second: float | None = None


@attrs.frozen
class MeasureQuery:
    """Query parameters of a series of measures."""

    kind: MeasureKind
    since: Moment | None = None
    until: Moment | None = None


# --- access ---------------------------------------------------------------------------------


@attrs.frozen
class AccessSettingsOut:
    """The patient's controls over professional access.

    :param object_all: no professional may read the record.
    :param object_emergency: no emergency access (bris de glace, SAMU).
    :param mask_all: everything is masked, including in emergencies.
    :param notify_first_access: be told when a professional reads the record the first time.
    """

    object_all: bool
    object_emergency: bool
    mask_all: bool
    notify_first_access: bool


@attrs.frozen
class AccessSettingsPatch:
    """The controls to change; those left out keep their value."""

    object_all: bool | None = None
    object_emergency: bool | None = None
    mask_all: bool | None = None
    notify_first_access: bool | None = None


@attrs.frozen
class GrantOut:
    """A professional's access to the record, and how they came to have it."""

    professional_id: str
    kind: str
    since: Moment
    until: Moment | None = None
    ended_at: Moment | None = None


@attrs.frozen
class AuthorisationIn:
    """Authorise a professional to read the record, until a date or without end."""

    rpps: Rpps
    until: Moment | None = None


@attrs.frozen
class ProfessionalIn:
    """A professional, by RPPS number."""

    rpps: Rpps


@attrs.frozen
class HistoryEntryOut:
    """One line of the access history, in plain words.

    :param who: who acted, in words ("vous", "Dr Martin (Médecin)", "l'Assurance Maladie").
    :param what: what they did, in words.
    :param mode: ``normal``, ``emergency`` (bris de glace) or ``regulation`` (SAMU).
    :param outcome: ``success``, ``denied`` or ``failure``.
    """

    at: Moment
    who: str
    what: str
    actor_kind: str
    mode: str
    outcome: str


@attrs.frozen
class BlockedOut:
    """The professionals the patient blocked."""

    rpps: list[str]


@attrs.frozen
class EmergencyIn:
    """Declare an emergency access (bris de glace, CSP L1111-17): the patient cannot express
    their will and there is an immediate risk to their health. The justification is kept and
    shown to the patient."""

    justification: Annotated[str, msgspec.Meta(min_length=10, max_length=1000)]
    mode: Literal["emergency", "regulation"] = "emergency"


@attrs.frozen
class EmergencyOut:
    """An emergency access, open until ``expires_at``."""

    id: str
    patient_id: str
    mode: str
    started_at: Moment
    expires_at: Moment


# --- secure messaging -----------------------------------------------------------------------

Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=250)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
Correspondent = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        description="For a patient: an RPPS number, an MSSanté address or part of the "
        "professional's name; for a professional: a patient id.",
    ),
]


@attrs.frozen
class AttachmentIn:
    """A file attached to a message, base64-encoded. Its size (20 MiB by default), its media
    type (checked against the bytes) and its name are checked; a CDA must be about the
    thread's patient."""

    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    media_type: Annotated[str, msgspec.Meta(min_length=3, max_length=100)]
    content: bytes


@attrs.frozen
class ReplyIn:
    """A message in an existing thread. Bodies are plain text (shown as text, never HTML).

    :param subject: default ``Re: <the thread's subject>``.
    :param close: the professional closes the thread to replies with this message
        (``X-MSS-MES: FIN``); a professional's message without it opens the thread again.
        The patient's side cannot close.
    """

    body: Body
    subject: Subject | None = None
    attachment: AttachmentIn | None = None
    close: bool = False


@attrs.frozen
class ThreadStartIn:
    """A professional starts a conversation with a patient.

    :param document_id: a document of the patient's record to attach (one the professional
        may read).
    :param close: send it closed to replies (``X-MSS-MES: FIN``).
    :param ins_qualified: what ``X-MSS-INS`` says about the patient's INS, when said.
    """

    subject: Subject
    body: Body
    attachment: AttachmentIn | None = None
    document_id: ObjectId | None = None
    close: bool = False
    ins_qualified: bool | None = None


@attrs.frozen
class MessageQuery:
    """Query parameters of a mailbox (free-text search is a POST).

    :param archived: ``false`` the inbox, ``true`` the archive.
    """

    archived: bool = False
    correspondent: Correspondent | None = None
    offset: Offset = 0
    limit: Limit = 50


@attrs.frozen
class MessageSearch:
    """A search of a mailbox. Sent as a body, so that search words stay out of URLs.

    :param text: words that must all appear in the subject.
    :param since: last message at or after; *until*: before.
    :param archived: ``false`` the inbox, ``true`` the archive, ``null`` both.
    """

    text: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    correspondent: Correspondent | None = None
    since: Moment | None = None
    until: Moment | None = None
    archived: bool | None = False
    offset: Offset = 0
    limit: Limit = 50


@attrs.frozen
class CorrespondentOut:
    """The professional taking part in a thread."""

    kind: str
    id: str
    name: str | None = None
    address: str | None = None


@attrs.frozen
class ThreadOut:
    """A conversation, as the caller's side sees it.

    :param status: ``open``, or ``closed`` to the patient's replies.
    :param unread: messages from the other side the caller has not read.
    :param archived: the caller archived it in their mailbox.
    """

    id: str
    patient_id: str
    subject: str
    professional: CorrespondentOut
    status: Literal["open", "closed"]
    created_at: Moment
    last_message_at: Moment
    message_count: int
    unread: int
    archived: bool
    closed_at: Moment | None = None


@attrs.frozen
class InboxOut:
    """One page of a mailbox, most recent thread first.

    :param total: threads that matched.
    :param unread: unread messages in all the threads that matched.
    """

    threads: list[ThreadOut]
    total: int
    unread: int
    offset: int
    limit: int


@attrs.frozen
class AttachmentOut:
    """An attachment's description; its bytes are a separate download.

    :param cda_codes: the type codes of a CDA R2 document.
    """

    id: str
    message_id: str
    filename: str
    media_type: str
    size: int
    sha256: str
    cda_codes: list[str]


@attrs.frozen
class MessageOut:
    """One message. The body is plain text: show it escaped, never as HTML.

    :param sender_kind: ``professional``, ``patient`` or ``representative``.
    :param read_at: when the other side first read it (the read receipt).
    :param closes_thread: it closed the thread to replies (``X-MSS-MES: FIN``).
    :param origin: ``space`` (written here) or ``smtp`` (received from an MSSanté mailbox).
    """

    id: str
    thread_id: str
    sender_kind: str
    sender_id: str
    sent_at: Moment
    subject: str
    body: str
    attachments: list[AttachmentOut]
    closes_thread: bool
    origin: str
    in_reply_to: str | None = None
    ins_qualified: bool | None = None
    read_at: Moment | None = None


@attrs.frozen
class ThreadViewOut:
    """A thread and its messages, oldest first. Reading it marks the other side's messages
    read."""

    thread: ThreadOut
    messages: list[MessageOut]


# --- agenda and prevention reminders --------------------------------------------------------

EventKindName = Literal[
    "appointment", "vaccination", "examination", "screening", "bilan_prevention", "other"
]
FamilyName = Literal[
    "vaccination", "child_exam", "mt_dents", "bilan_prevention", "screening", "advance_directives"
]
Line = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


@attrs.frozen
class AgendaQuery:
    """Query parameters of the agenda: events starting from the day ``from`` to the day
    ``until``, both included, Paris time (ISO 8601 dates).

    The field ``from_`` is the query parameter ``from`` (a Python keyword): a query field's
    trailing underscore is not part of its name.
    """

    from_: date | None = None
    until: date | None = None


@attrs.frozen
class EventIn:
    """A new event of the agenda: ``planned``, or ``done`` for an act already made.

    :param reminder_id: the prevention reminder the event answers, if any.
    """

    kind: EventKindName
    starts_at: Moment
    ends_at: Moment | None = None
    title: Line | None = None
    place: Line | None = None
    professional: Rpps | None = None
    establishment: Line | None = None
    notes: Text | None = None
    reminder_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    status: Literal["planned", "done"] = "planned"


@attrs.frozen
class RescheduleIn:
    """A new time for an event (a missed or cancelled event becomes planned again)."""

    starts_at: Moment
    ends_at: Moment | None = None


@attrs.frozen
class EventOut:
    """An event of the agenda; ``version`` counts its changes, ``uid`` is its stable
    iCalendar identifier."""

    id: str
    kind: str
    starts_at: datetime
    status: str
    uid: str
    sequence: int
    version: int
    ends_at: datetime | None = None
    title: str | None = None
    place: str | None = None
    professional: str | None = None
    establishment: str | None = None
    notes: str | None = None
    documents: list[str] = attrs.field(factory=list)
    reminder_id: str | None = None
    changed_at: datetime | None = None


@attrs.frozen
class SourceOut:
    """Where a prevention rule comes from: a text and its reference."""

    text: str
    ref: str


@attrs.frozen
class WhyOut:
    """Why a reminder is proposed: the rule and its edition, its source, the facts used.

    :param evidence: ``C`` confirmed, ``P`` partial, ``U`` unconfirmed rule.
    :param age_days: the person's age in days on the day of the evaluation.
    :param last_act: the date of the last act found for this rule, if any.
    :param proved_by: what proved that act (a vaccination, a document, a done event).
    """

    rule: str
    edition: str
    source: SourceOut
    evidence: str
    sex: str
    age_days: int
    last_act: date | None = None
    proved_by: str | None = None


@attrs.frozen
class ReminderOut:
    """A prevention reminder: ``upcoming``, ``due``, ``overdue`` or ``done``.

    :param notices: whether notices of its family are sent (``False`` once opted out).
    """

    id: str
    family: str
    title: str
    status: str
    due_from: date
    why: WhyOut
    notices: bool
    due_until: date | None = None


@attrs.frozen
class RemindersOut:
    """A person's reminders today, and the families they receive no notice of."""

    reminders: list[ReminderOut]
    opted_out: list[str]


@attrs.frozen
class FamilyIn:
    """A family of prevention reminders."""

    family: FamilyName


@attrs.frozen
class OptOutOut:
    """The families without notices after the change; ``changed`` is ``False`` when the
    family already was in the asked state."""

    changed: bool
    opted_out: list[str]


@attrs.frozen
class SentReminderOut:
    """A reminder notice that was sent, to whom (``holder`` or ``representative``), and why."""

    reminder_id: str
    cycle: date
    recipient: str
    sent_at: datetime
    why: WhyOut


@attrs.frozen
class CalendarQuery:
    """Query parameters of the iCalendar download: titles, professionals, establishments
    and notes are written only with ``include_details``."""

    include_details: bool = False


# --- catalogue and consents -------------------------------------------------------------------

ScopeName = Literal[
    "documents.read",
    "documents.write",
    "agenda.read",
    "agenda.write",
    "mesures.read",
    "mesures.write",
]


@attrs.frozen
class CatalogueQuery:
    """Query parameters of the public catalogue: words of the name or publisher, and a
    category."""

    q: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None


@attrs.frozen
class CatalogueEntryOut:
    """A referenced service of the public catalogue (no personal data)."""

    client_id: str
    name: str
    publisher: str
    category: str
    exchange_tier: str
    scopes: list[str]
    convention_until: datetime | None = None


@attrs.frozen
class ConsentOut:
    """A patient's consent to an app: what it may do on their data, and since when."""

    client_id: str
    app_name: str
    publisher: str
    scopes: list[str]
    granted_at: datetime
    active: bool
    revoked_at: datetime | None = None


@attrs.frozen
class ConsentNarrow:
    """Narrow a consent to fewer scopes (to widen it, the app asks again, through the
    consent page)."""

    scopes: Annotated[list[ScopeName], msgspec.Meta(min_length=1, max_length=6)]
