"""The transport port: one small class with one ``send()``.

Application code does not call transports: services queue notifications in the outbox in
the same transaction as the change that causes them, and :meth:`monespace.Space.dispatch`
hands them to the transport configured for their channel, retrying failures.

Delivery is at least once: if the process dies after a transport delivered a message but
before the outbox recorded it, the message is sent again with the same ``id``. Transports
use that id to make redelivery harmless (the file transport keeps one file per id; an SMTP
transport sets it as the ``Message-ID``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import ClassVar, Self

import attrs

__all__ = ["Envelope", "Receipt", "Transport"]


@attrs.frozen
class Envelope:
    """A notification ready to deliver.

    :param id: stable across retries; the idempotency key of the delivery.
    :param channel: ``"email"``, ``"letter"``, ``"sms"``...
    :param recipient: an e-mail address, a postal address, a phone number, per channel.
    :param kind: what the notification is about (``"invitation"``, ``"new-document"``).
    """

    id: str
    channel: str
    recipient: str
    subject: str
    body: str
    kind: str
    created_at: datetime


@attrs.frozen
class Receipt:
    """What a transport reports after a delivery.

    :param duplicate: ``True`` when the transport recognised a redelivery and did nothing.
    """

    message_id: str
    transport: str
    reference: str | None = None
    duplicate: bool = False


class Transport(abc.ABC):
    """Delivers notifications. Subclass it for a new channel (SMTP, SMS gateway, print shop).

    ``send`` raises :class:`~monespace.errors.TransportError` on failure, with
    ``permanent=True`` when retrying cannot help.

    .. versionadded:: 0.1
    """

    name: ClassVar[str]
    schemes: ClassVar[Sequence[str]] = ()

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Build the transport from a URL (``file:///var/spool/monespace``)."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a URL")

    @abc.abstractmethod
    def send(self, envelope: Envelope) -> Receipt:
        """Deliver one notification."""

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release connections. The default does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
