"""The inbound gateway: an SMTP server (aiosmtpd) that receives messages professionals send
from their MSSanté mailboxes and hands them to ``space.messaging``.

One message per SMTP transaction and one recipient per message (a second ``RCPT`` gets
``452 4.5.3``, and the sending server delivers it in another transaction), so a reply code
always speaks for exactly one delivery. Reply codes follow RFC 3463:

=============================  =====================================================
``250 2.0.0``                  stored (or recognised as already stored: same Message-ID)
``550 5.1.1``                  no patient mailbox has this address
``550 5.7.1``                  the sender is not in the directory, or may not write
``553 5.1.3``                  a malformed address
``554 5.6.0``                  malformed MIME or headers, refused attachment (the reason)
``451 4.3.0``                  a failure on this side: try again later
=============================  =====================================================

In the MSSanté trust space operators authenticate each other with certificates (mutual TLS);
run this server behind that (``tls_context`` with ``verify_mode = CERT_REQUIRED``) or a relay
that does it. Logs name message ids and reply codes, never addresses or content.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import unicodedata
from types import TracebackType
from typing import Any, Final, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from monespace import Actor, Space
from monespace.errors import (
    AccessDeniedError,
    InvalidMSSanteAddressError,
    MonespaceError,
    ValidationError,
)
from monespace.identity import MSSanteAddress, parse_professional_address
from monespace.messaging import UnknownRecipientError, UnknownSenderError

from ._mime import parse_inbound

__all__ = ["DEFAULT_GATEWAY", "InboundHandler", "InboundServer"]

log = logging.getLogger("monespace_smtp.inbound")

#: The actor recorded in the audit trail for messages this gateway hands in.
DEFAULT_GATEWAY: Final = Actor.system("smtp-gateway")
#: The largest message accepted (SMTP SIZE), a little over the space's own limits once
#: base64 has grown the attachments by a third.
DEFAULT_DATA_SIZE_LIMIT: Final = 36 * 1024 * 1024


def _ascii(text: str) -> str:
    """An SMTP reply is one line of ASCII."""
    flat = unicodedata.normalize("NFKD", " ".join(text.split()))
    return flat.encode("ascii", "ignore").decode("ascii")[:400]


class InboundHandler:
    """The aiosmtpd handler: checks addresses at MAIL and RCPT, delivers at DATA.

    :param space: the space whose ``messaging.receive`` gets the messages.
    :param gateway: the system actor recorded as the gateway.
    """

    def __init__(self, space: Space, *, gateway: Actor = DEFAULT_GATEWAY) -> None:
        self.space = space
        self.gateway = gateway
        #: Replies given at DATA, by code class, for diagnostics and tests.
        self.replies: list[str] = []

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        try:
            parse_professional_address(address)
        except InvalidMSSanteAddressError:
            return "553 5.1.7 the sender must be a professional MSSante address"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if envelope.rcpt_tos:
            return "452 4.5.3 one recipient per message, send the others separately"
        try:
            recipient = MSSanteAddress.parse(address)
        except InvalidMSSanteAddressError:
            return "553 5.1.3 malformed recipient address"
        if not recipient.is_patient:
            return "550 5.1.1 not a patient mailbox"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes) or envelope.mail_from is None or not envelope.rcpt_tos:
            return "554 5.5.1 no valid transaction"
        loop = asyncio.get_running_loop()
        # Storage and crypto are synchronous: keep them off the event loop.
        reply = await loop.run_in_executor(
            None, self.deliver, raw, envelope.mail_from, envelope.rcpt_tos[0]
        )
        self.replies.append(reply)
        return reply

    def deliver(self, raw: bytes, mail_from: str, recipient: str) -> str:
        """Parse and hand in one message; return the SMTP reply."""
        try:
            inbound = parse_inbound(raw, mail_from=mail_from, recipient=recipient)
            message = self.space.messaging.receive(self.gateway, inbound)
        except Exception as exc:
            return _reply_for(exc)
        log.info("inbound message stored as %s", message.id)
        return "250 2.0.0 OK"


#: Library errors and their SMTP replies, most specific first. Validation messages name the
#: rule that failed, never the content, so they may be passed on to the sender.
_REPLIES: Final[tuple[tuple[type[Exception], str, bool], ...]] = (
    (UnknownRecipientError, "550 5.1.1 no such patient mailbox", False),
    (UnknownSenderError, "550 5.7.1 the sender is not in the directory", False),
    (InvalidMSSanteAddressError, "553 5.1.3", True),
    (AccessDeniedError, "550 5.7.1 delivery not authorised", False),
    (ValidationError, "554 5.6.0", True),
)


def _reply_for(exc: Exception) -> str:
    for kind, reply, with_reason in _REPLIES:
        if isinstance(exc, kind):
            return f"{reply} {_ascii(str(exc))}" if with_reason else reply
    if isinstance(exc, MonespaceError):
        log.warning("inbound delivery failed: %s", type(exc).__name__)
    else:
        log.error("inbound delivery failed unexpectedly: %s", type(exc).__name__)
    return "451 4.3.0 temporary failure, try again later"


class InboundServer:
    """An SMTP server receiving MSSanté messages for a space, on a thread of its own.

    ::

        with InboundServer(space, "127.0.0.1", 2525) as server:
            ...  # professionals' operators deliver to 127.0.0.1:2525

    :param tls_context: offer STARTTLS with this server context.
    :param require_starttls: refuse mail before STARTTLS.
    :param data_size_limit: the largest message (announced with SIZE; larger ones get 552).
    """

    def __init__(
        self,
        space: Space,
        host: str = "127.0.0.1",
        port: int = 2525,
        *,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        data_size_limit: int = DEFAULT_DATA_SIZE_LIMIT,
        gateway: Actor = DEFAULT_GATEWAY,
    ) -> None:
        self.handler = InboundHandler(space, gateway=gateway)
        self.host = host
        self.port = port
        options: dict[str, Any] = {
            "data_size_limit": data_size_limit,
            "require_starttls": require_starttls,
        }
        if tls_context is not None:
            options["tls_context"] = tls_context
        self._controller = Controller(self.handler, hostname=host, port=port, **options)

    def start(self) -> None:
        """Start listening (returns once the server accepts connections)."""
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
