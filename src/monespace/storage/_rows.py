"""The rows storage backends keep. Backends store and return these, and decide nothing.

Every row carries the patient id (where it has one) so that a large deployment can partition
every table by patient.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

import attrs

__all__ = [
    "DOCUMENT_KIND_COLUMNS",
    "AccessSettingsRow",
    "AccountRow",
    "AgendaEventRow",
    "AppRow",
    "ApplicationRow",
    "AttachmentRow",
    "AuditRow",
    "AuditSealRow",
    "BlobRow",
    "CheckpointRow",
    "CodeRow",
    "ConsentRow",
    "DataKeyRow",
    "DocumentRow",
    "EmergencyRow",
    "EntryRow",
    "GrantRow",
    "LedgerRow",
    "MessageRow",
    "OAuthCodeRow",
    "OAuthTokenRow",
    "OutboxRow",
    "OutboxStatus",
    "PatientRow",
    "ProfessionalRow",
    "ProofRow",
    "ReminderOptOutRow",
    "ReminderSentRow",
    "RepresentationRow",
    "SubjectRow",
    "ThreadRow",
    "WebSessionRow",
]


@attrs.frozen
class PatientRow:
    """A registered person.

    :param nir_index: a keyed hash of the NIR (a blind index): it finds the person by NIR
        without the database holding the NIR.
    :param sealed_identity: the identity (INS, traits, contacts), encrypted with the
        person's data key.
    """

    id: str
    nir_index: bytes
    sealed_identity: bytes
    created_at: datetime


@attrs.frozen
class DataKeyRow:
    """A patient's data key, wrapped by the master key ``master_key_id``.

    ``wrapped`` is ``None`` once the key was destroyed (crypto-shredding); the row stays as a
    tombstone so that "destroyed" can be told apart from "never existed".
    """

    patient_id: str
    master_key_id: str | None
    wrapped: bytes | None
    created_at: datetime
    destroyed_at: datetime | None = None


@attrs.frozen
class BlobRow:
    """An encrypted content (document, attachment...).

    :param kind: what the content is (``"content"``, ``"attachment"``); part of the
        associated data, so a blob cannot be passed off as another kind.
    :param size: the plaintext size in bytes.
    :param sha256: the plaintext's SHA-256, as XDS metadata carries it.
    """

    id: str
    patient_id: str
    kind: str
    media_type: str
    size: int
    sha256: bytes
    sealed: bytes
    created_at: datetime


class OutboxStatus(StrEnum):
    """Where a notification is in its delivery."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
    """Gave up: a permanent failure, or too many attempts."""


@attrs.frozen
class OutboxRow:
    """A notification waiting for, or done with, delivery.

    Notifications tell a person that something happened ("you have a new document") and never
    carry health content; but they name a person (the recipient) and may carry a provisional
    code, so the recipient, subject and body are sealed with the space's notification key,
    and erased (``sealed`` set to ``None``) once delivered.

    :param channel: the channel name a transport is configured for (``"email"``,
        ``"letter"``, ``"sms"``).
    :param sealed: the encrypted recipient, subject and body; ``None`` after delivery.
    :param idempotency_key: unique; enqueuing twice with the same key is refused, and
        transports use ``id`` to recognise a redelivery.
    """

    id: str
    channel: str
    kind: str
    created_at: datetime
    next_attempt_at: datetime
    idempotency_key: str
    sealed: bytes | None
    patient_id: str | None = None
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    #: The dispatcher that claimed it for delivery, and until when its claim holds (a
    #: dispatcher that crashed loses its claims when their lease ends).
    claimed_by: str | None = None
    lease_until: datetime | None = None


@attrs.frozen
class DocumentRow:
    """A document version as stored: codes and flags in clear (to search and decide access),
    the title, comments and the author's name sealed with the patient's key in ``sealed_meta``.

    ``flags`` combines the DMP's confidentiality codes as the DMP's own client API does:
    1 = MASQUE_PS, 2 = INVISIBLE_PATIENT, 4 = INVISIBLE_REPRESENTANTS_LEGAUX.
    """

    id: str
    patient_id: str
    lineage_id: str
    version: int
    unique_id: str
    class_code: str
    type_code: str
    type_system: str
    format_code: str | None
    media_type: str
    confidentiality: str
    flags: int
    author_kind: str
    author_id: str
    created_at: datetime
    submitted_at: datetime
    status: str
    replaces: str | None
    content_id: str
    size: int
    sha256: bytes
    sealed_meta: bytes
    release_at: datetime | None = None
    notify_at: datetime | None = None
    submitted_by: str | None = None


#: The columns of a document version that the access policy's facts
#: (``monespace.access.document_facts``) and the record's search filters other than dates
#: and words read: versions equal on these are listed, or not, together.
DOCUMENT_KIND_COLUMNS: Final = (
    "author_kind",
    "author_id",
    "submitted_by",
    "flags",
    "release_at",
    "status",
    "class_code",
    "type_code",
    "type_system",
    "confidentiality",
)


@attrs.frozen
class EntryRow:
    """A small sealed record of a patient's space: a profil médical entry or a measure.

    :param kind: the section of the profile, or the kind of measure (in clear, to filter).
    :param at: when it applies (recorded, or measured), to order and filter series.
    """

    id: str
    patient_id: str
    kind: str
    at: datetime
    sealed: bytes


@attrs.frozen
class LedgerRow:
    """One line of a legacy DMP import's reconciliation ledger.

    :param source: where the document came from. A file name can reveal health content, so
        the migration stores it sealed (``sealed:`` and base64), and returns it unsealed.
    :param outcome: ``imported``, ``duplicate`` or ``quarantined``.
    :param reason: why a document was quarantined or skipped (no health data: a rule name).
    """

    id: str
    run_id: str
    at: datetime
    source: str
    sha256: bytes
    outcome: str
    reason: str | None = None
    patient_id: str | None = None
    document_id: str | None = None


@attrs.frozen
class ThreadRow:
    """A conversation between a patient and a professional, as stored.

    Who takes part and the thread's state stay in clear, so access can be decided and a
    mailbox listed without decrypting; the subject is sealed with the patient's key.

    :param professional_id: the RPPS number of the professional who started the thread.
    :param status: ``open``, or ``closed`` to the patient's replies (``X-MSS-MES: FIN``).
    :param patient_archived: the patient (or a representative) archived it in their mailbox.
    :param professional_archived: the professional archived it in theirs.
    """

    id: str
    patient_id: str
    professional_id: str
    status: str
    created_at: datetime
    last_message_at: datetime
    sealed_subject: bytes
    patient_archived: bool = False
    professional_archived: bool = False
    closed_at: datetime | None = None


@attrs.frozen
class MessageRow:
    """One message of a thread, as stored: the subject, body and threading headers sealed
    with the patient's key in ``sealed``.

    :param sender_kind: an :class:`~monespace.ActorKind` value (``professional``,
        ``patient``, ``representative``).
    :param rfc_message_id: the RFC 5322 ``Message-ID`` (``<id@domain>``), unique per patient:
        an inbound message delivered twice is stored once.
    :param origin: ``space`` (written through the API) or ``smtp`` (received by a gateway).
    :param closes_thread: the message carried ``X-MSS-MES: FIN``.
    :param ins_qualified: the ``X-MSS-INS`` header (``O`` = ``True``), when it was given.
    :param read_at: when the other side first read it (the read receipt).
    :param position: its rank in the thread, from 0: the order of the conversation, which
        timestamps alone cannot give (two messages may share an instant, a clock may step
        back).
    """

    id: str
    thread_id: str
    patient_id: str
    sender_kind: str
    sender_id: str
    sent_at: datetime
    rfc_message_id: str
    origin: str
    sealed: bytes
    closes_thread: bool = False
    ins_qualified: bool | None = None
    read_at: datetime | None = None
    position: int = 0


@attrs.frozen
class AttachmentRow:
    """An attachment of a message. Its bytes are a :class:`BlobRow` of kind ``attachment``;
    its file name and CDA codes are sealed in ``sealed_meta`` (a file name says a lot).

    :param position: its rank among the message's attachments, from 0.
    """

    id: str
    message_id: str
    thread_id: str
    patient_id: str
    content_id: str
    media_type: str
    size: int
    sha256: bytes
    sealed_meta: bytes
    position: int


@attrs.frozen
class AuditRow:
    """A stored, hash-chained audit event (see :class:`~monespace.audit.AuditEvent`).

    :param actor_kind: an :class:`~monespace.ActorKind` value.
    :param outcome: an :class:`~monespace.audit.Outcome` value.
    :param mode: an :class:`~monespace.AccessMode` value.
    """

    seq: int
    at: datetime
    actor_kind: str
    actor_id: str
    action: str
    outcome: str
    patient_id: str | None
    target_kind: str | None
    target_id: str | None
    mode: str
    purpose: str | None
    rule: str | None
    prev_hash: bytes
    hash: bytes
    key_id: str | None = None
    shard: str = "0"
    chain: int = 1


@attrs.frozen
class AuditSealRow:
    """The head seal of a shard: its newest event's ``seq`` and ``hash``, and an HMAC of
    them under the audit key ``key_id`` (see :class:`~monespace.audit.HeadSeal`)."""

    shard: str
    seq: int
    hash: bytes
    key_id: str
    mac: bytes


@attrs.frozen
class CheckpointRow:
    """One shard head of a signed checkpoint (see :class:`~monespace.audit.Checkpoint`).

    The rows of one checkpoint share ``number``, ``at``, ``root``, ``key_id`` and
    ``signature``.
    """

    number: int
    shard: str
    seq: int
    hash: bytes
    count: int
    at: datetime
    root: bytes
    key_id: str
    signature: bytes


@attrs.frozen
class AccountRow:
    """The lifecycle record of a person's space (see :class:`~monespace.accounts.Account`).

    :param state: an :class:`~monespace.accounts.AccountState` value.
    :param channel: a :class:`~monespace.accounts.Channel` value.
    :param died_on: the date of death, ``YYYY-MM-DD``.
    """

    patient_id: str
    state: str
    channel: str | None = None
    invited_at: datetime | None = None
    opened_at: datetime | None = None
    activated_at: datetime | None = None
    opposed_at: datetime | None = None
    closed_at: datetime | None = None
    archive_until: datetime | None = None
    deletion_requested_at: datetime | None = None
    purge_deadline: datetime | None = None
    purged_at: datetime | None = None
    suspended_at: datetime | None = None
    suspension_deadline: datetime | None = None
    resume_state: str | None = None
    died_on: str | None = None


@attrs.frozen
class CodeRow:
    """A provisional code, kept as its keyed hash."""

    patient_id: str
    code_hash: bytes
    issued_at: datetime
    expires_at: datetime
    attempts: int = 0
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@attrs.frozen
class ProofRow:
    """Keyed hashes of what a person proves their identity with, and their failed attempts."""

    patient_id: str
    vitale_index: bytes
    birth_index: bytes
    failures: int = 0
    failures_since: datetime | None = None


@attrs.frozen
class RepresentationRow:
    """*representative_id* acts for *patient_id*.

    :param kind: a :class:`~monespace.accounts.RepresentationKind` value.
    """

    patient_id: str
    representative_id: str
    kind: str
    since: datetime
    ends_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None


@attrs.frozen
class ProfessionalRow:
    """A directory entry of a health professional (see :class:`~monespace.access.Professional`)."""

    rpps: str
    profession: str
    name: str
    specialty: str | None = None
    mssante: str | None = None
    finess: str | None = None
    establishment: str | None = None
    assurance: str = "PSC"


@attrs.frozen
class GrantRow:
    """A professional's access to a record.

    :param kind: a :class:`~monespace.access.GrantKind` value.
    """

    patient_id: str
    professional_id: str
    kind: str
    since: datetime
    until: datetime | None = None
    ended_at: datetime | None = None
    granted_by: str | None = None


@attrs.frozen
class AccessSettingsRow:
    """A patient's controls over professional access."""

    patient_id: str
    object_all: bool = False
    object_emergency: bool = False
    mask_all: bool = False
    notify_first_access: bool = True
    object_research: bool = False


@attrs.frozen
class EmergencyRow:
    """An emergency access session (its sealed justification is stored beside it).

    :param mode: an :class:`~monespace.AccessMode` value.
    """

    id: str
    patient_id: str
    professional_id: str
    mode: str
    started_at: datetime
    expires_at: datetime


@attrs.frozen
class AgendaEventRow:
    """One version of an agenda event (the current one, or one of its history).

    :param kind: an :class:`~monespace.agenda.EventKind` value.
    :param status: an :class:`~monespace.agenda.EventStatus` value.
    :param uid: the iCalendar UID (ours, or the booking platform's), unique per patient.
    :param sequence: the iCalendar SEQUENCE of the version (updates carry a higher one).
    :param change: what this version did (``created``, ``rescheduled``, ``done``...).
    :param sealed: the title, place, professional, notes and linked documents, sealed.
    """

    patient_id: str
    id: str
    version: int
    kind: str
    status: str
    starts_at: datetime
    ends_at: datetime | None
    reminder_id: str | None
    uid: str
    sequence: int
    changed_at: datetime
    actor_kind: str
    actor_id: str
    change: str
    sealed: bytes


@attrs.frozen
class ReminderOptOutRow:
    """A family of prevention reminders a person asked not to be sent (since *at*)."""

    patient_id: str
    family: str
    at: datetime


@attrs.frozen
class ReminderSentRow:
    """A prevention reminder queued for *recipient_id* about *patient_id*, once per cycle.

    :param cycle: the first day of the reminder's window (ISO date), so that a repeated
        reminder is sent again when its next window opens.
    :param sealed: why it was sent (the evaluation's reasons), sealed with the patient's key.
    """

    patient_id: str
    reminder_id: str
    cycle: str
    recipient_id: str
    sent_at: datetime
    sealed: bytes


@attrs.frozen
class OAuthCodeRow:
    """An OAuth 2 authorization code, kept as a keyed hash (never the code itself).

    :param code_hash: the keyed hash of the code, which finds the row.
    :param family_id: the id every token issued from this code carries, so that a replayed
        code can revoke them all (RFC 6749 §4.1.2).
    :param challenge: the PKCE S256 challenge the client sent (RFC 7636).
    :param scopes: the scopes asked, space-separated.
    :param used_at: when it was exchanged (codes are single use).
    """

    patient_id: str
    code_hash: bytes
    family_id: str
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@attrs.frozen
class OAuthTokenRow:
    """An OAuth 2 access or refresh token, kept as a keyed hash (never the token itself).

    :param kind: ``access`` or ``refresh``.
    :param family_id: the authorization it descends from; revoking the family revokes every
        token issued under it.
    :param scopes: the scopes it carries, space-separated.
    :param rotated_at: for a refresh token, when it was exchanged for a new one (presenting
        it again after that is a reuse).
    :param revoked_at: when it was revoked (RFC 7009, or with its family).
    """

    patient_id: str
    token_hash: bytes
    kind: str
    client_id: str
    family_id: str
    scopes: str
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


@attrs.frozen
class ApplicationRow:
    """An application for référencement (shared reference data: no patient).

    :param status: an :class:`~monespace.catalogue.ApplicationStatus` value.
    :param payload: the dossier, assessments and convention, as JSON (public information
        about a service, not health data).
    """

    id: str
    client_id: str
    vendor_id: str
    status: str
    changed_at: datetime
    payload: str


@attrs.frozen
class AppRow:
    """A service of the catalogue (shared reference data: no patient).

    :param status: an :class:`~monespace.catalogue.ApplicationStatus` value.
    :param convention_until: when its référencement ends unless renewed.
    :param payload: the rest of the entry (redirect URIs, scopes, purposes), as JSON.
    """

    client_id: str
    application_id: str
    name: str
    publisher: str
    category: str
    exchange_tier: str
    status: str
    convention_until: datetime | None
    payload: str


@attrs.frozen
class ConsentRow:
    """A patient's consent to an app (its key starts with the patient id).

    :param scopes: the scopes granted, space-separated and sorted.
    :param by: who granted it (``patient:<id>`` or ``representative:<id>``).
    :param revoked_at: when it was revoked; ``None`` while in force.
    """

    patient_id: str
    client_id: str
    scopes: str
    granted_at: datetime
    by: str
    revoked_at: datetime | None = None


@attrs.frozen
class SubjectRow:
    """What an access decision about a patient's record needs, read together (see
    :meth:`~monespace.storage.Transaction.subject`).

    :param account: the patient's account (``None``: no account).
    :param professional: the acting professional's directory entry (``None``: no
        professional asked about, or unknown to the directory).
    :param grants: the professional's grants on the record, ended ones included.
    :param settings: the patient's access settings (``None``: the defaults).
    :param blocked: whether the patient blocked the professional.
    """

    account: AccountRow | None
    professional: ProfessionalRow | None = None
    grants: tuple[GrantRow, ...] = ()
    settings: AccessSettingsRow | None = None
    blocked: bool = False


@attrs.frozen
class WebSessionRow:
    """A logged-in session of the demo server, shared by its worker processes.

    :param token_hash: the SHA-256 of the session token (the token itself is never kept).
    :param kind: ``"patient"`` or ``"professional"``.
    :param ends_at: the absolute end of the session, however active.
    :param csrf_token: the session's CSRF token, sent back with cookie-authenticated changes.
    :param emergencies: the emergency accesses declared in the session, as JSON (patient id
        -> [mode, end]); the storage keeps the text as it is given.
    """

    token_hash: bytes
    kind: str
    person_id: str
    created_at: datetime
    last_seen: datetime
    ends_at: datetime
    csrf_token: str
    emergencies: str = "{}"
