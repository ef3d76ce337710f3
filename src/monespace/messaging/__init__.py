"""Secure messaging between professionals and patients (MSS-C, docs/domain-rules.md §5).

The service is ``space.messaging`` (:class:`monespace.MessagingService`). Only professionals
and establishments start a thread; the patient (or their representative) replies; the
professional may close a thread to replies (``X-MSS-MES: FIN``). Messages and attachments
are sealed with the patient's key, and new messages are announced to the patient's personal
contact without their content.

Transports for the :data:`MSSANTE_CHANNEL` channel (the ``monespace-smtp`` plugin) decode
the outbox's envelopes with :func:`decode_outbound`.

.. versionadded:: 0.1
"""

from ._model import (
    MSSANTE_CHANNEL,
    OUTBOUND_KIND,
    Attachment,
    Correspondent,
    InboundMessage,
    InboxPage,
    Message,
    MessagingSettings,
    NewAttachment,
    RecordAttachment,
    Thread,
    ThreadStatus,
    ThreadView,
    UnknownRecipientError,
    UnknownSenderError,
)
from ._outbound import OutboundAttachment, OutboundMessage, decode_outbound, encode_outbound
from ._rules import check_body, check_message_id, check_subject, safe_filename

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
    "OutboundAttachment",
    "OutboundMessage",
    "RecordAttachment",
    "Thread",
    "ThreadStatus",
    "ThreadView",
    "UnknownRecipientError",
    "UnknownSenderError",
    "check_body",
    "check_message_id",
    "check_subject",
    "decode_outbound",
    "encode_outbound",
    "safe_filename",
]
