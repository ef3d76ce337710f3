"""Rows <-> model for messaging: threads, messages and attachments.

Who takes part, when and in which state stay in clear columns (to decide access and list a
mailbox without decrypting); what was written (a subject, a body, a file name) is sealed
with the patient's key by the service. Sealed payloads are JSON written and read through
the cattrs converter of :mod:`monespace.codec`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs

from ..actors import ActorKind
from ..codec import make_converter
from ..identities import Professional
from ..storage import AttachmentRow, BlobRow, MessageRow, ThreadRow
from ._model import Attachment, Correspondent, Message, Thread, ThreadStatus

__all__ = [
    "ATTACHMENT_KIND",
    "ATTACHMENT_META_KIND",
    "MESSAGE_KIND",
    "THREAD_KIND",
    "MessagePayload",
    "attachment_blob_row",
    "attachment_from_row",
    "attachment_meta",
    "attachment_row",
    "message_from_row",
    "message_payload",
    "message_row",
    "read_message_payload",
    "side_of",
    "thread_from_row",
    "thread_row",
]

#: Associated-data kinds: a sealed subject cannot be passed off as a body, nor a body as a
#: file name, even within one patient's data.
THREAD_KIND: Final = "message-thread"
MESSAGE_KIND: Final = "message"
ATTACHMENT_KIND: Final = "attachment"
ATTACHMENT_META_KIND: Final = "attachment-meta"

_PROFESSIONAL: Final = str(ActorKind.PROFESSIONAL)
_CODEC = make_converter()


@attrs.frozen(repr=False)
class MessagePayload:
    """The sealed part of a message row: what was written, and the threading headers.

    :param references: the ``Message-ID`` values of the earlier messages of the thread.
    """

    subject: str
    body: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # A subject and a body are health data: they stay out of reprs and logs.
        return f"MessagePayload(references={len(self.references)})"


@attrs.frozen
class _AttachmentMeta:
    """The sealed part of an attachment row (a file name says a lot)."""

    filename: str
    cda_codes: tuple[str, ...] = ()


def _dumps(payload: object) -> bytes:
    # Non-ASCII text kept as UTF-8, not \u escapes: French text would otherwise grow.
    return _CODEC.dumps(payload, ensure_ascii=False).encode("utf-8")


def side_of(row: MessageRow) -> str:
    """Which side of the conversation wrote a message: ``professional`` or ``patient``."""
    return "professional" if row.sender_kind == _PROFESSIONAL else "patient"


# --- threads ---------------------------------------------------------------------------------


def thread_row(
    thread_id: str,
    patient_id: str,
    professional_id: str,
    *,
    closed: bool,
    now: datetime,
    sealed_subject: bytes,
) -> ThreadRow:
    """The row of a thread a professional starts at *now*, its subject sealed by the caller."""
    return ThreadRow(
        id=thread_id,
        patient_id=patient_id,
        professional_id=professional_id,
        status=str(ThreadStatus.CLOSED if closed else ThreadStatus.OPEN),
        created_at=now,
        last_message_at=now,
        sealed_subject=sealed_subject,
        closed_at=now if closed else None,
    )


def thread_from_row(
    row: ThreadRow,
    subject: bytes,
    side: str,
    *,
    count: int,
    unread: int,
    professional: Professional | None,
) -> Thread:
    """The thread of *row* as *side* sees it, *subject* being its opened sealed subject."""
    return Thread(
        id=row.id,
        patient_id=row.patient_id,
        professional=Correspondent(
            "professional",
            row.professional_id,
            professional.name if professional else None,
            professional.mssante if professional else None,
        ),
        subject=subject.decode(),
        status=ThreadStatus(row.status),
        created_at=row.created_at,
        last_message_at=row.last_message_at,
        message_count=count,
        unread=unread,
        archived=row.professional_archived if side == "professional" else row.patient_archived,
        closed_at=row.closed_at,
    )


# --- messages --------------------------------------------------------------------------------


def message_payload(payload: MessagePayload) -> bytes:
    """The JSON of a message's sealed part."""
    return _dumps(payload)


def read_message_payload(raw: bytes) -> MessagePayload:
    """A message's sealed part, opened."""
    return _CODEC.loads(raw, MessagePayload)


def message_row(
    message_id: str,
    thread: ThreadRow,
    *,
    sender_kind: ActorKind,
    sender_id: str,
    now: datetime,
    rfc_message_id: str,
    origin: str,
    sealed: bytes,
    closes_thread: bool,
    ins_qualified: bool | None,
    position: int,
) -> MessageRow:
    """The row of a message written in *thread* at *now*, its payload sealed by the caller."""
    return MessageRow(
        id=message_id,
        thread_id=thread.id,
        patient_id=thread.patient_id,
        sender_kind=str(sender_kind),
        sender_id=sender_id,
        sent_at=now,
        rfc_message_id=rfc_message_id,
        origin=origin,
        sealed=sealed,
        closes_thread=closes_thread,
        ins_qualified=ins_qualified,
        position=position,
    )


def message_from_row(
    row: MessageRow, payload: MessagePayload, attachments: tuple[Attachment, ...]
) -> Message:
    """The message of *row*, with its opened payload and its attachments."""
    return Message(
        id=row.id,
        thread_id=row.thread_id,
        patient_id=row.patient_id,
        sender_kind=row.sender_kind,
        sender_id=row.sender_id,
        sent_at=row.sent_at,
        subject=payload.subject,
        body=payload.body,
        rfc_message_id=row.rfc_message_id,
        attachments=attachments,
        in_reply_to=payload.in_reply_to,
        closes_thread=row.closes_thread,
        ins_qualified=row.ins_qualified,
        read_at=row.read_at,
        origin=row.origin,
    )


# --- attachments -----------------------------------------------------------------------------


def attachment_meta(filename: str, cda_codes: tuple[str, ...]) -> bytes:
    """The JSON of an attachment's sealed part."""
    return _dumps(_AttachmentMeta(filename, cda_codes))


def attachment_blob_row(
    content_id: str,
    patient_id: str,
    *,
    media_type: str,
    size: int,
    sha256: bytes,
    sealed: bytes,
    now: datetime,
) -> BlobRow:
    """The row that stores an attachment's content, sealed by the caller."""
    return BlobRow(content_id, patient_id, ATTACHMENT_KIND, media_type, size, sha256, sealed, now)


def attachment_row(
    attachment_id: str,
    message: MessageRow,
    *,
    content_id: str,
    media_type: str,
    size: int,
    sha256: bytes,
    sealed_meta: bytes,
    position: int,
) -> AttachmentRow:
    """The row of an attachment of *message*, its meta sealed by the caller."""
    return AttachmentRow(
        attachment_id,
        message.id,
        message.thread_id,
        message.patient_id,
        content_id,
        media_type,
        size,
        sha256,
        sealed_meta,
        position,
    )


def attachment_from_row(row: AttachmentRow, meta: bytes) -> Attachment:
    """The attachment of *row*, *meta* being its opened sealed meta."""
    data = _CODEC.loads(meta, _AttachmentMeta)
    return Attachment(
        id=row.id,
        message_id=row.message_id,
        filename=data.filename,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256.hex(),
        cda_codes=data.cda_codes,
    )
