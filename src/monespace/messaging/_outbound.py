"""Messages leaving the space for a professional's MSSanté mailbox.

When the patient's side writes to a professional whose MSSanté address the directory knows,
the message is queued in the outbox on the :data:`~monespace.messaging.MSSANTE_CHANNEL`
channel, in the same transaction as the message itself. The envelope's body is the message
encoded by :func:`encode_outbound`; a transport for that channel (the ``monespace-smtp``
plugin's) decodes it with :func:`decode_outbound` and writes the MIME message. Keeping the
wire format out of the core means the outbox needs no knowledge of MIME, and a transport
needs no access to the space.

The outbox seals its payloads with the space's notification key and erases them once
delivered (or given up, or when the patient's space is purged); unlike notifications, this
payload *is* health content, which is why it never outlives its delivery.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Final

import attrs

from ..errors import ValidationError

__all__ = ["OutboundAttachment", "OutboundMessage", "decode_outbound", "encode_outbound"]

_FORMAT: Final = "monespace-mss/1"


@attrs.frozen(repr=False)
class OutboundAttachment:
    """A file leaving with a message.

    :param cda_codes: the type codes of a CDA R2 document (for ``X-MSS-CODECDA``); such a
        document travels in an ``IHE_XDM.ZIP`` archive.
    """

    filename: str
    media_type: str
    content: bytes
    cda_codes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"OutboundAttachment(media_type={self.media_type!r}, size={len(self.content)})"


@attrs.frozen(repr=False)
class OutboundMessage:
    """What a transport needs to write a message to a professional's mailbox.

    :param message_id: the message's id in the space.
    :param rfc_message_id: its ``Message-ID`` (``<message_id@domain>``): the same on every
        delivery attempt, so a receiving server recognises a redelivery.
    :param sender: the patient's address (``<INS matricule>@patient.mssante.fr``).
    :param recipient: the professional's MSSanté address.
    :param in_reply_to: the ``Message-ID`` of the message it answers.
    :param references: the ``Message-ID`` values of the thread, oldest first.
    :param ins_qualified: ``X-MSS-INS``: ``True`` (``O``) when CDA documents name the patient
        by their INS, checked against the space's identity; ``None`` leaves the header out.
    """

    message_id: str
    thread_id: str
    rfc_message_id: str
    sender: str
    recipient: str
    subject: str
    body: str
    sent_at: datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    closes_thread: bool = False
    ins_qualified: bool | None = None
    attachments: tuple[OutboundAttachment, ...] = ()

    def __repr__(self) -> str:
        return f"OutboundMessage(message_id={self.message_id!r})"


def encode_outbound(message: OutboundMessage) -> str:
    """The envelope body of *message* (JSON; attachments in base64)."""
    data: dict[str, Any] = {
        "format": _FORMAT,
        "message_id": message.message_id,
        "thread_id": message.thread_id,
        "rfc_message_id": message.rfc_message_id,
        "sender": message.sender,
        "recipient": message.recipient,
        "subject": message.subject,
        "body": message.body,
        "sent_at": message.sent_at.isoformat(),
        "in_reply_to": message.in_reply_to,
        "references": list(message.references),
        "closes_thread": message.closes_thread,
        "ins_qualified": message.ins_qualified,
        "attachments": [
            {
                "filename": a.filename,
                "media_type": a.media_type,
                "content": base64.b64encode(a.content).decode("ascii"),
                "cda_codes": list(a.cda_codes),
            }
            for a in message.attachments
        ],
    }
    return json.dumps(data, ensure_ascii=False)


def decode_outbound(text: str) -> OutboundMessage:
    """Inverse of :func:`encode_outbound`.

    :raises ValidationError: when *text* is not an encoded outbound message (a transport
        turns this into a permanent delivery failure).
    """
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("unknown format")
        return OutboundMessage(
            message_id=str(data["message_id"]),
            thread_id=str(data["thread_id"]),
            rfc_message_id=str(data["rfc_message_id"]),
            sender=str(data["sender"]),
            recipient=str(data["recipient"]),
            subject=str(data["subject"]),
            body=str(data["body"]),
            sent_at=datetime.fromisoformat(data["sent_at"]),
            in_reply_to=None if data["in_reply_to"] is None else str(data["in_reply_to"]),
            references=tuple(str(r) for r in data["references"]),
            closes_thread=bool(data["closes_thread"]),
            ins_qualified=(None if data["ins_qualified"] is None else bool(data["ins_qualified"])),
            attachments=tuple(
                OutboundAttachment(
                    filename=str(a["filename"]),
                    media_type=str(a["media_type"]),
                    content=base64.b64decode(a["content"], validate=True),
                    cda_codes=tuple(str(c) for c in a["cda_codes"]),
                )
                for a in data["attachments"]
            ),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValidationError("the envelope does not hold an outbound MSSanté message") from exc
