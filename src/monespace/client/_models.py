"""What the client returns: frozen attrs views of the server's JSON.

They mirror the server's response models (``monespace.server._models``) without importing
them, so that the client needs neither Starlette nor msgspec. Fields the server adds later
are ignored when decoding, so an older client keeps working against a newer server.

.. versionadded:: 0.1
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "Author",
    "CatalogueEntry",
    "Code",
    "Consent",
    "Document",
    "DocumentPage",
    "Event",
    "HistoryEntry",
    "InboxPage",
    "Measure",
    "Professional",
    "ServerMetadata",
    "Session",
    "SessionInfo",
    "Thread",
    "ThreadCorrespondent",
]


@attrs.frozen
class Code:
    """A coded value: *code* in the code system *system* (an OID), with its display name."""

    code: str
    system: str
    display: str | None = None


@attrs.frozen
class Author:
    """Who deposited a document: ``kind`` (patient, professional…), ``id`` and ``name``."""

    kind: str
    id: str
    name: str | None = None


@attrs.frozen
class Document:
    """A document's metadata; read its bytes with ``document_content``."""

    id: str
    version: int
    title: str
    category: str
    class_code: str
    type_code: Code
    media_type: str
    size: int
    sha256: str
    created_at: datetime
    submitted_at: datetime
    author: Author
    confidentiality: str
    masked: bool
    hidden_from_patient: bool
    hidden_from_representatives: bool
    status: str
    comments: str | None = None
    replaces: str | None = None
    release_at: datetime | None = None


@attrs.frozen
class DocumentPage:
    """One page of a record's documents, newest first; ``total`` matched in all."""

    documents: list[Document]
    total: int
    offset: int
    limit: int


@attrs.frozen
class Measure:
    """A health measure in its kind's canonical UCUM unit, with its LOINC code."""

    id: str
    kind: str
    value: float
    unit: str
    measured_at: datetime
    code: Code
    source: str
    second: float | None = None


@attrs.frozen
class Event:
    """An event of the patient's agenda (an appointment, a vaccination, an exam…)."""

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
class HistoryEntry:
    """One line of the patient's access history, in plain words."""

    at: datetime
    who: str
    what: str
    actor_kind: str
    mode: str
    outcome: str


@attrs.frozen
class ThreadCorrespondent:
    """The professional taking part in a conversation."""

    kind: str
    id: str
    name: str | None = None
    address: str | None = None


@attrs.frozen
class Thread:
    """A conversation of the secure messaging, as the caller's side sees it."""

    id: str
    patient_id: str
    subject: str
    professional: ThreadCorrespondent
    status: str
    created_at: datetime
    last_message_at: datetime
    message_count: int
    unread: int
    archived: bool
    closed_at: datetime | None = None


@attrs.frozen
class InboxPage:
    """One page of a mailbox, most recent thread first."""

    threads: list[Thread]
    total: int
    unread: int
    offset: int
    limit: int


@attrs.frozen
class Professional:
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
    """The current session: who is logged in and which spaces the login reaches."""

    kind: str
    person_id: str
    spaces: list[str]
    csrf_token: str = attrs.field(repr=False)
    expires_at: datetime
    idle_timeout_seconds: int
    professional: Professional | None = None


@attrs.frozen
class Session:
    """A new session. The client sends the token as ``Authorization: Bearer``."""

    token: str = attrs.field(repr=False)
    session: SessionInfo


@attrs.frozen
class ServerMetadata:
    """An OAuth 2 authorization server's metadata (RFC 8414), the fields the client uses.

    :param extra: every other field the server published.
    """

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    scopes_supported: list[str] = attrs.field(factory=list)
    response_types_supported: list[str] = attrs.field(factory=list)
    grant_types_supported: list[str] = attrs.field(factory=list)
    code_challenge_methods_supported: list[str] = attrs.field(factory=list)
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class CatalogueEntry:
    """A referenced service of the public catalogue.

    :param scopes: what its convention allows it to ask for.
    """

    client_id: str
    name: str
    publisher: str
    category: str
    exchange_tier: str
    scopes: list[str]
    convention_until: datetime | None = None


@attrs.frozen
class Consent:
    """A patient's consent to an app: the scopes it may use, since when, and whether it is
    still active."""

    client_id: str
    app_name: str
    publisher: str
    scopes: list[str]
    granted_at: datetime
    active: bool
    revoked_at: datetime | None = None
