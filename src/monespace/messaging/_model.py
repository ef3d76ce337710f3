"""Secure messaging between professionals and patients (MSS-C): threads, messages,
attachments, and what senders hand in.

docs/domain-rules.md §5. A thread is a conversation between one patient (with their legal
representatives) and the professional who started it: only professionals and establishments
start conversations, the patient replies, and the professional may close a thread to replies
(``X-MSS-MES: FIN``).

Subjects, bodies and file names are health data: reprs never show them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

import attrs

from ..errors import NotFoundError

__all__ = [
    "MSSANTE_CHANNEL",
    "OUTBOUND_KIND",
    "Attachment",
    "Correspondent",
    "InboundMessage",
    "InboxPage",
    "Message",
    "MessagingSettings",
    "NewAttachment",
    "RecordAttachment",
    "Thread",
    "ThreadStatus",
    "ThreadView",
    "UnknownRecipientError",
    "UnknownSenderError",
]

#: The outbox channel of messages leaving the space for a professional's MSSanté mailbox.
MSSANTE_CHANNEL: Final = "mssante"
#: The outbox ``kind`` of such a message (its envelope's body is an encoded
#: :class:`~monespace.messaging.OutboundMessage`).
OUTBOUND_KIND: Final = "mssante-message"


class ThreadStatus(StrEnum):
    """Whether the patient's side may reply."""

    OPEN = "open"
    CLOSED = "closed"
    """The professional closed the thread to replies (``X-MSS-MES: FIN``)."""


@attrs.frozen
class MessagingSettings:
    """Limits and policies of the messaging, each with a documented default.

    :param max_attachment_bytes: the largest attachment (20 MiB, the record's own limit for a
        document, so that any attachment can be filed into the record).
    :param max_attachments: attachments per message.
    :param max_message_bytes: all attachments of one message together (25 MiB; MSSanté
        operators commonly accept messages of that order).
    :param max_subject_chars: the longest subject (a subject is one header line).
    :param max_body_chars: the longest body, in characters.
    :param retention: delete messages older than this at each deadline run
        (:meth:`~monespace.Space.tick`). ``None``, the default, keeps them for the life of the
        space: they are part of "les données contenues dans l'espace numérique de santé",
        archived ten years with the space on closure (R1111-36), then purged with it. How long
        Mon espace santé keeps messages in an open space is **not confirmed**
        (docs/domain-rules.md §5, [U]); set a duration when a rule is known.
    :param message_id_domain: the right-hand side of the ``Message-ID`` of messages written
        in the space (``<message id@domain>``); use a domain the operator controls.
    :param deliver_to_mssante: queue the patient's messages for delivery to the professional's
        MSSanté mailbox (channel :data:`MSSANTE_CHANNEL`) when the directory knows one.
    """

    max_attachment_bytes: int = 20 * 1024 * 1024
    max_attachments: int = 20
    max_message_bytes: int = 25 * 1024 * 1024
    max_subject_chars: int = 250
    max_body_chars: int = 100_000
    retention: timedelta | None = None
    message_id_domain: str = "monespace.invalid"
    deliver_to_mssante: bool = True


@attrs.frozen(repr=False)
class Correspondent:
    """The other side of a thread, as the viewer sees it.

    :param kind: ``professional`` or ``patient``.
    :param id: an RPPS number, or a patient id.
    :param name: the directory name of a professional (patients are not named here).
    :param address: the professional's MSSanté address, when the directory has one.
    """

    kind: str
    id: str
    name: str | None = None
    address: str | None = None

    def __repr__(self) -> str:
        return f"Correspondent(kind={self.kind!r}, id={self.id!r})"


@attrs.frozen(repr=False)
class Attachment:
    """An attachment of a message, without its bytes (read them with
    :meth:`~monespace.MessagingService.read_attachment`).

    :param sha256: hex SHA-256 of the content.
    :param cda_codes: the type codes of a CDA R2 document (what ``X-MSS-CODECDA`` carries),
        empty for anything else.
    """

    id: str
    message_id: str
    filename: str
    media_type: str
    size: int
    sha256: str
    cda_codes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # A file name says what a document is about: it stays out of reprs and logs.
        return f"Attachment(id={self.id!r}, media_type={self.media_type!r}, size={self.size})"


@attrs.frozen(repr=False)
class Message:
    """One message of a thread.

    :param sender_kind: ``professional``, ``patient`` or ``representative``.
    :param sender_id: an RPPS number or a person's id.
    :param rfc_message_id: its ``Message-ID`` (``<…>``), the same on every copy.
    :param in_reply_to: the ``Message-ID`` it answers, if any.
    :param closes_thread: it carried ``X-MSS-MES: FIN``.
    :param ins_qualified: the ``X-MSS-INS`` header: whether the sender declared the patient's
        INS qualified (``None`` when not said).
    :param read_at: when the other side first read it (the read receipt), or ``None``.
    :param origin: ``space`` (written through the API) or ``smtp`` (received by a gateway).
    """

    id: str
    thread_id: str
    patient_id: str
    sender_kind: str
    sender_id: str
    sent_at: datetime
    subject: str
    body: str
    rfc_message_id: str
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str | None = None
    closes_thread: bool = False
    ins_qualified: bool | None = None
    read_at: datetime | None = None
    origin: str = "space"

    @property
    def from_professional(self) -> bool:
        """Whether the professional's side wrote it."""
        return self.sender_kind == "professional"

    def __repr__(self) -> str:
        return f"Message(id={self.id!r}, thread_id={self.thread_id!r})"


@attrs.frozen(repr=False)
class Thread:
    """A conversation, as one side sees it.

    :param professional: the professional taking part.
    :param unread: messages from the other side the viewer has not read.
    :param archived: the viewer archived it in their mailbox.
    :param message_count: how many messages it holds.
    """

    id: str
    patient_id: str
    professional: Correspondent
    subject: str
    status: ThreadStatus
    created_at: datetime
    last_message_at: datetime
    message_count: int = 0
    unread: int = 0
    archived: bool = False
    closed_at: datetime | None = None

    @property
    def closed(self) -> bool:
        """Whether the patient's side may no longer reply."""
        return self.status is ThreadStatus.CLOSED

    def __repr__(self) -> str:
        return f"Thread(id={self.id!r}, status={self.status.value!r}, unread={self.unread})"


@attrs.frozen
class ThreadView:
    """A thread with its messages, oldest first."""

    thread: Thread
    messages: tuple[Message, ...]


@attrs.frozen
class InboxPage:
    """One page of a mailbox: threads, most recent first.

    :param total: threads that matched the filters.
    :param unread: unread messages in all the threads that matched (not only this page).
    """

    threads: tuple[Thread, ...]
    total: int
    unread: int
    offset: int
    limit: int


@attrs.frozen(repr=False)
class NewAttachment:
    """A file to attach to a message: checked (size, media type against the bytes, CDA
    patient) and encrypted like a document.

    :param filename: shown to the recipient; path parts are dropped, control and
        bidirectional-override characters refused.
    :param media_type: one of :data:`monespace.record.SUPPORTED_MEDIA_TYPES`.
    """

    filename: str
    media_type: str
    content: bytes

    def __repr__(self) -> str:
        return f"NewAttachment(media_type={self.media_type!r}, size={len(self.content)})"


@attrs.frozen
class RecordAttachment:
    """A document of the patient's record to send as an attachment. The sender must be
    allowed to read it (the read is decided and audited by the record), and it must belong to
    the thread's patient."""

    document_id: str


@attrs.frozen(repr=False)
class InboundMessage:
    """A message a professional sent from their MSSanté mailbox, as a gateway parsed it.

    :param sender: the professional's MSSanté address (the ``From`` header).
    :param recipient: the patient's address, ``<INS matricule>@patient.mssante.fr``.
    :param rfc_message_id: the ``Message-ID``; a second delivery with the same one, to the
        same patient, is recognised and stored once.
    :param in_reply_to: ``In-Reply-To``, used with *references* to find the thread.
    :param closes_thread: ``X-MSS-MES: FIN`` was set.
    :param ins_qualified: ``X-MSS-INS`` (``O`` → ``True``, ``N`` → ``False``).
    """

    sender: str
    recipient: str
    subject: str
    body: str
    rfc_message_id: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    closes_thread: bool = False
    ins_qualified: bool | None = None
    attachments: tuple[NewAttachment, ...] = ()

    def __repr__(self) -> str:
        return f"InboundMessage(rfc_message_id={self.rfc_message_id!r})"


class UnknownRecipientError(NotFoundError):
    """No open mailbox has this patient address (nobody with this INS matricule)."""


class UnknownSenderError(NotFoundError):
    """The directory knows no professional with this MSSanté address (CNIL 2014-239:
    senders are identified against a directory)."""
