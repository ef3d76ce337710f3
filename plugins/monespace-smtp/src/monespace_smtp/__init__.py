"""monespace-smtp: MSSanté-style secure messaging over SMTP for monespace.

- :class:`SmtpTransport`, registered for the ``smtp://`` and ``smtps://`` URL schemes, delivers
  the outbox: messages of the patient's side to professionals' MSSanté mailboxes (MIME with
  the ``X-MSS-*`` headers), and "you have a new message" notifications.
- :mod:`monespace_smtp.inbound` receives messages from professionals (an aiosmtpd server) and
  hands them to ``space.messaging.receive``.

Installed, the plugin is found through the ``monespace`` entry-point group::

    space = monespace.open(
        "sqlite:///monespace.db",
        transports={"mssante": "smtp://relay.example:587?starttls=1",
                    "email": "smtp://relay.example:587?starttls=1&from=no-reply@example.org"},
    )

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Callable

from monespace import hookimpl
from monespace.transport import Transport

from ._mime import (
    DEFAULT_NIL,
    XDM_FILENAME,
    build_notification,
    build_outbound,
    build_xdm,
    html_to_text,
    parse_inbound,
    read_xdm,
)
from ._transport import SmtpTransport, StartTLS

__all__ = [
    "DEFAULT_NIL",
    "XDM_FILENAME",
    "SmtpTransport",
    "StartTLS",
    "build_notification",
    "build_outbound",
    "build_xdm",
    "html_to_text",
    "monespace_register_transports",
    "parse_inbound",
    "read_xdm",
]


@hookimpl
def monespace_register_transports(register: Callable[[type[Transport]], None]) -> None:
    """Register :class:`SmtpTransport` for ``smtp://`` and ``smtps://``."""
    register(SmtpTransport)
