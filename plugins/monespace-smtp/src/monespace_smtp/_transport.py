"""The ``smtp`` transport: outbox deliveries over SMTP.

It carries two kinds of envelope:

- messages of the patient's side for a professional's MSSanté mailbox (outbox channel
  ``mssante``, kind ``mssante-message``), written as MIME with the ``X-MSS-*`` headers;
- notifications ("you have a new message") for a patient's personal address, as plain text.

Delivery is at least once, as the outbox promises: a message is sent with the same
``Message-ID`` on every attempt (the space's id for it), so a receiving server recognises a
redelivery. SMTP replies decide what the outbox does next: a 4xx reply, a dropped connection
or a timeout is temporary (retried later), a 5xx reply is permanent.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from email.message import EmailMessage
from typing import ClassVar, Final, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from monespace.errors import ConfigurationError, TransportError, ValidationError
from monespace.messaging import OUTBOUND_KIND, decode_outbound
from monespace.transport import Envelope, Receipt, Transport

from ._mime import DEFAULT_NIL, build_notification, build_outbound

__all__ = ["SmtpTransport", "StartTLS"]

_DEFAULT_PORTS: Final = {"smtp": 25, "smtps": 465}
_TRUE: Final = frozenset({"1", "true", "yes", "on", "require", "required"})
_FALSE: Final = frozenset({"0", "false", "no", "off", "never"})


class StartTLS:
    """When the transport upgrades a connection with STARTTLS."""

    AUTO: Final = "auto"
    """When the server offers it (the default)."""
    REQUIRE: Final = "require"
    """Always; a server that does not offer it is a failed (temporary) delivery."""
    NEVER: Final = "never"
    """Never (a local relay on a trusted network; tests)."""


class SmtpTransport(Transport):
    """Delivers outbox envelopes over SMTP. URL::

        smtp://[user:password@]host[:port]?starttls=1&from=no-reply@example.org
        smtps://host:465

    Query parameters:

    ``starttls``
        ``1``/``require``: always, ``0``/``never``: never; default: when offered.
    ``from``
        the sender of notifications (default ``no-reply@<domain>``).
    ``domain``
        the right-hand side of notifications' ``Message-ID`` (default ``monespace.invalid``).
    ``nil``
        the ``X-MSS-NIL`` product reference put on every message for professionals
        (default: :data:`~monespace_smtp.DEFAULT_NIL`).
    ``timeout``
        seconds per network operation (default 30).
    ``cafile``
        the certificate authorities to verify the server with (default: the system's).
    ``certfile`` / ``keyfile``
        a client certificate (MSSanté operators authenticate each other with one).
    ``helo``
        the name given in EHLO (default: the local host name).
    ``reuse``
        keep the connection open between deliveries (default 1).

    Application code does not call it: the outbox does, through
    :meth:`monespace.Space.dispatch`.

    .. versionadded:: 0.1
    """

    name: ClassVar[str] = "smtp"
    schemes: ClassVar[tuple[str, ...]] = ("smtp", "smtps")

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        implicit_tls: bool = False,
        starttls: str = StartTLS.AUTO,
        sender: str | None = None,
        domain: str = "monespace.invalid",
        nil: str = DEFAULT_NIL,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        helo: str | None = None,
        reuse: bool = True,
    ) -> None:
        if starttls not in (StartTLS.AUTO, StartTLS.REQUIRE, StartTLS.NEVER):
            raise ConfigurationError("'starttls' must be auto, require or never")
        self.host = host
        self.port = port or (465 if implicit_tls else 25)
        self.implicit_tls = implicit_tls
        self.starttls = starttls
        self.domain = domain
        self.sender = sender or f"no-reply@{domain}"
        self.nil = nil
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.username = username
        self.password = password
        self.helo = helo
        self.reuse = reuse
        self._connection: smtplib.SMTP | None = None
        self._lock = threading.Lock()
        #: Deliveries made, and attempts that failed (for diagnostics and benchmarks).
        self.delivered = 0
        self.failed = 0

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ConfigurationError("an SMTP transport URL looks like smtp://host:port?...")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(query) - {
            "starttls",
            "from",
            "domain",
            "nil",
            "timeout",
            "cafile",
            "certfile",
            "keyfile",
            "helo",
            "reuse",
        }
        if unknown:
            raise ConfigurationError(f"unknown SMTP transport parameter(s): {sorted(unknown)}")
        try:
            port = parts.port
            timeout = float(query.get("timeout", "30"))
        except ValueError as exc:
            raise ConfigurationError("the SMTP port and timeout must be numbers") from exc
        context = ssl.create_default_context(cafile=query.get("cafile") or None)
        if query.get("certfile"):
            context.load_cert_chain(query["certfile"], query.get("keyfile") or None)
        return cls(
            parts.hostname,
            port or _DEFAULT_PORTS[parts.scheme],
            implicit_tls=parts.scheme == "smtps",
            starttls=_starttls(query.get("starttls")),
            sender=query.get("from") or None,
            domain=query.get("domain") or "monespace.invalid",
            nil=query.get("nil") or DEFAULT_NIL,
            timeout=timeout,
            ssl_context=context,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            helo=query.get("helo") or None,
            reuse=_flag(query.get("reuse", "1"), "reuse"),
        )

    # --- delivery ----------------------------------------------------------------------------

    def render(self, envelope: Envelope) -> tuple[str, str, EmailMessage]:
        """The envelope sender, the recipient and the MIME message for *envelope*.

        :raises TransportError: (permanent) when the envelope cannot become a message: an
            undecodable payload, CR/LF in a header.
        """
        try:
            if envelope.kind == OUTBOUND_KIND:
                outbound = decode_outbound(envelope.body)
                mime = build_outbound(outbound, nil=self.nil)
                return outbound.sender, outbound.recipient, mime
            mime = build_notification(envelope, sender=self.sender, domain=self.domain)
            return self.sender, envelope.recipient, mime
        except (ValidationError, ValueError, TypeError) as exc:
            # The email package refuses CR/LF in headers: header injection stops here.
            raise TransportError("the message cannot be written as MIME", permanent=True) from exc

    def send(self, envelope: Envelope) -> Receipt:
        sender, recipient, mime = self.render(envelope)
        data = mime.as_bytes()
        with self._lock:
            try:
                self._deliver(sender, recipient, data)
            except TransportError:
                self.failed += 1
                raise
            self.delivered += 1
        return Receipt(envelope.id, self.name, reference=str(mime["Message-ID"]))

    def _deliver(self, sender: str, recipient: str, data: bytes) -> None:
        reused = self._connection is not None
        try:
            connection = self._connect()
            try:
                refused = connection.sendmail(sender, [recipient], data)
            except smtplib.SMTPServerDisconnected:
                self._drop()
                if not reused:
                    raise
                # A kept connection the server closed meanwhile: try once on a fresh one.
                # (The Message-ID makes a rare double delivery recognisable.)
                connection = self._connect()
                refused = connection.sendmail(sender, [recipient], data)
            if refused:
                code, _ = next(iter(refused.values()))
                raise _reply_error(code, "the recipient was refused")
        except TransportError:
            self._drop()
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            codes = [code for code, _ in exc.recipients.values()]
            raise _reply_error(max(codes, default=450), "the recipient was refused") from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise _reply_error(exc.smtp_code, "the server refused the message") from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnections, timeouts, refused connections, TLS failures: try again later.
            self._drop()
            raise TransportError(f"SMTP delivery failed: {type(exc).__name__}") from exc
        finally:
            if not self.reuse:
                self._drop()

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        connection: smtplib.SMTP
        if self.implicit_tls:
            connection = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.helo,
                timeout=self.timeout,
                context=self.ssl_context,
            )
        else:
            connection = smtplib.SMTP(
                self.host, self.port, local_hostname=self.helo, timeout=self.timeout
            )
        try:
            connection.ehlo()
            if not self.implicit_tls and self.starttls != StartTLS.NEVER:
                if connection.has_extn("starttls"):
                    connection.starttls(context=self.ssl_context)
                    connection.ehlo()
                elif self.starttls == StartTLS.REQUIRE:
                    raise TransportError("the SMTP server does not offer STARTTLS")
            if self.username is not None:
                connection.login(self.username, self.password or "")
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def close(self) -> None:
        """Say QUIT on a kept connection. Idempotent."""
        with self._lock:
            self._drop()

    def __repr__(self) -> str:
        return f"SmtpTransport({self.host!r}, {self.port}, starttls={self.starttls!r})"


def _reply_error(code: int, what: str) -> TransportError:
    # RFC 5321 §4.2.1: 4yz is a transient failure, 5yz a permanent one.
    return TransportError(f"{what} (SMTP {code})", permanent=500 <= code < 600)


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"'{name}' must be 1 or 0")


def _starttls(value: str | None) -> str:
    if value is None or value.strip().lower() in ("", "auto"):
        return StartTLS.AUTO
    return StartTLS.REQUIRE if _flag(value, "starttls") else StartTLS.NEVER
