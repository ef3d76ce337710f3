"""The one error tree of monespace.

Every error the library raises on purpose is a :class:`MonespaceError`. Where the meaning
matches a builtin, the class also inherits it, so ``except ValueError`` keeps working for
callers who do not know monespace::

    MonespaceError
    ├── ConfigurationError
    │   ├── UnknownSchemeError            (no backend or transport for a URL scheme)
    │   └── PluginError                   (a plugin is malformed or clashes with another)
    ├── ValidationError (ValueError)
    │   ├── InvalidTransitionError        (a lifecycle step not allowed from the current state)
    │   ├── MalformedDocumentError        (not well-formed, or not the expected kind of document)
    │   ├── HostileDocumentError          (entity expansion, external entities or DTDs)
    │   ├── DocumentTooLargeError
    │   └── IdentifierError
    │       ├── InvalidNIRError
    │       ├── InvalidINSError
    │       ├── InvalidRPPSError
    │       └── InvalidMSSanteAddressError
    ├── StorageError
    │   ├── SchemaVersionError            (database written by a newer monespace)
    │   ├── NotFoundError (LookupError)
    │   │   └── UnknownProfessionalError  (no professional has this RPPS number in the directory)
    │   └── ConflictError                 (unique key or idempotency clash)
    ├── SecurityError
    │   ├── AccessDeniedError (PermissionError)
    │   ├── ActivationError               (proof of identity refused; never says which part)
    │   ├── CryptoError
    │   │   ├── MasterKeyError            (master key missing or not the one that wrapped the data)
    │   │   ├── DecryptionError           (ciphertext, tag or associated data altered)
    │   │   └── DataShreddedError         (the patient's data key was destroyed)
    │   └── AuditIntegrityError           (the hash chain does not verify)
    ├── TransportError                    (a notification could not be delivered)
    └── ApiError                          (an HTTP API answered an error, or did not answer)
        ├── UnreachableError              (connection refused, timed out: after retries)
        ├── ServerError                   (5xx: after retries)
        └── ClientError                   (4xx not mapped more precisely)
            ├── RateLimitedError          (429 after retries; .retry_after)
            ├── OAuthError                (an RFC 6749 error; .error, .description)
            │   └── InvalidTokenError (SecurityError)   (invalid_grant, Bearer invalid_token)
            ├── RemoteAccessDeniedError (AccessDeniedError)
            │   └── ConsentNotGivenError  (Bearer insufficient_scope, consent gone)
            ├── RemoteNotFoundError (NotFoundError)
            ├── RemoteConflictError (ConflictError)
            └── RemoteValidationError (ValidationError)

The ``Remote…`` errors are what :mod:`monespace.client` raises for a problem document of the
matching kind, so that ``except NotFoundError`` works the same for a local space and a
remote one; every :class:`ApiError` also carries the HTTP status and the problem document.

Messages name *what* is wrong (which field, which scheme, which event) but never carry
health data, provisional codes or key material: they end up in logs and HTTP responses.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AccessDeniedError",
    "ActivationError",
    "ApiError",
    "AuditIntegrityError",
    "ClientError",
    "ConfigurationError",
    "ConflictError",
    "ConsentNotGivenError",
    "CryptoError",
    "DataShreddedError",
    "DecryptionError",
    "DocumentTooLargeError",
    "HostileDocumentError",
    "IdentifierError",
    "InvalidINSError",
    "InvalidMSSanteAddressError",
    "InvalidNIRError",
    "InvalidRPPSError",
    "InvalidTokenError",
    "InvalidTransitionError",
    "MalformedDocumentError",
    "MasterKeyError",
    "MonespaceError",
    "NotFoundError",
    "OAuthError",
    "PluginError",
    "RateLimitedError",
    "ReferencementError",
    "RemoteAccessDeniedError",
    "RemoteConflictError",
    "RemoteNotFoundError",
    "RemoteValidationError",
    "SchemaVersionError",
    "SecurityError",
    "ServerError",
    "StorageError",
    "TransportError",
    "UnknownProfessionalError",
    "UnknownSchemeError",
    "UnreachableError",
    "ValidationError",
]


class MonespaceError(Exception):
    """Root of every error raised by monespace."""


# --- configuration ---------------------------------------------------------------------------


class ConfigurationError(MonespaceError):
    """The space, a plugin or the environment is configured in a way that cannot work."""


class UnknownSchemeError(ConfigurationError):
    """No registered backend or transport handles a URL scheme.

    :ivar scheme: the scheme that was asked for.
    :ivar known: the schemes that are registered.
    """

    def __init__(self, kind: str, scheme: str, known: list[str]) -> None:
        self.scheme = scheme
        self.known = sorted(known)
        listed = ", ".join(self.known) or "none"
        super().__init__(
            f"no {kind} is registered for the URL scheme {scheme!r} (registered: {listed}); "
            "install the plugin that provides it"
        )


class PluginError(ConfigurationError):
    """A plugin is malformed, or registers a name another plugin already took.

    :ivar plugin: the name of the offending plugin or backend, when known.
    """

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        self.plugin = plugin
        super().__init__(message)


# --- validation ------------------------------------------------------------------------------


class ValidationError(MonespaceError, ValueError):
    """Input does not satisfy a domain rule."""


class InvalidTransitionError(ValidationError):
    """A lifecycle operation is not allowed in the current state of a space.

    :ivar state: the state the space is in.
    :ivar operation: what was attempted.
    """

    def __init__(self, operation: str, state: str, reason: str | None = None) -> None:
        self.operation = operation
        self.state = state
        detail = f": {reason}" if reason else ""
        super().__init__(f"cannot {operation} a space that is {state}{detail}")


class ReferencementError(ValidationError):
    """A step of the référencement is not allowed in the application's current state or
    without its conditions (a mandatory criterion, a convention), or an app that may not
    act is given a consent.

    .. versionadded:: 0.2
    """


class MalformedDocumentError(ValidationError):
    """The bytes are not a well-formed document of the expected format.

    Raised for empty input, truncated documents, text that is not XML, bytes that do not match
    the declared encoding, and (in subclasses) well-formed XML that is not the expected kind of
    document.

    :ivar line: the line of the first error, when the parser reported one.
    :ivar column: the column of the first error, when the parser reported one.
    :ivar reason: the libxml2 error name (``"ERR_TAG_NOT_FINISHED"``), when known.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        reason: str | None = None,
    ) -> None:
        self.line = line
        self.column = column
        self.reason = reason
        super().__init__(message)


class HostileDocumentError(ValidationError):
    """The document tries something a document has no business doing.

    Entity declarations (billion laughs, external entities), an external DTD, a reference to
    a network or file resource, or a parser resource limit exceeded (nesting deeper than 256
    levels, a text node or attribute over 10 MB, entity amplification).

    :ivar reason: a short, stable name for what was found (``"entity-declaration"``,
        ``"external-dtd"``, ``"external-resource"``, ``"internal-dtd-subset"``, or the libxml2
        error name for a resource limit).

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class DocumentTooLargeError(ValidationError):
    """The document is larger than the size limit; it was not parsed.

    :ivar size: the size of the document, in bytes (for a document being streamed: what had
        been read when the limit was crossed).
    :ivar limit: the limit, in bytes.
    :ivar source: where the document comes from (a file of a folder, an archive's member),
        when known; the message names it.

    .. versionadded:: 0.1
    """

    def __init__(self, size: int, limit: int, *, source: str | None = None) -> None:
        self.size = size
        self.limit = limit
        self.source = source
        message = f"the document is {size} bytes; the limit is {limit} bytes"
        super().__init__(message if source is None else f"{source}: {message}")


class IdentifierError(ValidationError):
    """A national identifier is malformed or its check key is wrong.

    The message names the rule that failed, never the identifier itself: identifiers are
    personal data and error messages reach logs.
    """


class InvalidNIRError(IdentifierError):
    """A NIR (numéro d'inscription au répertoire, the social security number) is invalid."""


class InvalidINSError(IdentifierError):
    """An INS (identifiant national de santé) is invalid: matricule, OID or traits."""


class InvalidRPPSError(IdentifierError):
    """An RPPS number (répertoire partagé des professionnels de santé) is invalid."""


class InvalidMSSanteAddressError(IdentifierError):
    """An MSSanté (messagerie sécurisée de santé) address is invalid."""


# --- storage ---------------------------------------------------------------------------------


class StorageError(MonespaceError):
    """The storage backend failed or holds something this version cannot use."""


class SchemaVersionError(StorageError):
    """The database schema is newer than this version of monespace understands.

    Opening it could corrupt data written by the newer version, so monespace refuses.

    :ivar found: the schema version recorded in the database.
    :ivar supported: the newest schema version this version knows.
    """

    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"the database has schema version {found} but this monespace supports up to "
            f"{supported}; upgrade monespace to open it"
        )


class NotFoundError(StorageError, LookupError):
    """The requested object does not exist (or the actor may not know it exists)."""


class UnknownProfessionalError(NotFoundError):
    """No professional has this RPPS number in the directory.

    Raised where an RPPS number names a professional to act, to be given access, to be
    written to or to write: the directory (the RPPS) is public, so saying that a number is
    not in it tells nothing about any patient. When such a professional tries to act on a
    record, the policy still decides (and the denial is audited); this error then replaces
    the uniform "access denied", which would send them looking for a missing consent.

    .. versionadded:: 0.2
    """

    MESSAGE = "no professional has this RPPS number in the directory"

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)


class ConflictError(StorageError):
    """The change clashes with something already stored (a unique identifier, a key)."""


# --- security --------------------------------------------------------------------------------


class SecurityError(MonespaceError):
    """A security control refused the operation or found tampering."""


class AccessDeniedError(SecurityError, PermissionError):
    """The policy denied the operation.

    The message is always the same, whichever rule denied, whether or not the target
    exists and whatever state its space is in: a denial reveals nothing about another
    person's data. The rule is kept in :attr:`rule` (and in the audit trail) for the
    operator's diagnostics; edges such as an HTTP API must not pass it on.

    :ivar rule: the name of the policy rule that decided.
    """

    def __init__(self, rule: str) -> None:
        self.rule = rule
        super().__init__("access denied")


class ActivationError(SecurityError):
    """A proof of identity (provisional code, NIR, carte Vitale serial, birth date) was refused.

    The message is always the same, whatever was wrong, whether the person exists, and
    whether their account is locked: anything more specific would help someone guessing.
    """

    MESSAGE = (
        "the information given does not match our records, or too many attempts were made; "
        "check it, or request a new provisional code"
    )

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class CryptoError(SecurityError):
    """Encryption or decryption could not be carried out."""


class MasterKeyError(CryptoError):
    """The master key is missing, malformed, or is not the key that wrapped stored data."""


class DecryptionError(CryptoError):
    """A ciphertext failed authentication: it, its tag, or its associated data were altered."""


class DataShreddedError(CryptoError):
    """The patient's data key was destroyed (crypto-shredding): the content is unrecoverable."""


class AuditIntegrityError(SecurityError):
    """The audit trail's hash chain does not verify.

    :ivar seq: the sequence number of the first event that fails.
    """

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        self.seq = seq
        super().__init__(message)


# --- transport -------------------------------------------------------------------------------


class TransportError(MonespaceError):
    """A transport could not deliver a notification; the outbox will retry it.

    :ivar permanent: ``True`` when retrying cannot help (a malformed address, say).
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__(message)


# --- remote APIs (monespace.client) ----------------------------------------------------------


class ApiError(MonespaceError):
    """An HTTP API answered with an error, or could not be reached.

    :ivar status: the HTTP status, or ``None`` when no response came.
    :ivar problem: the problem document (RFC 9457) or OAuth error body the server sent, as
        decoded JSON; empty when there was none. Servers of monespace put no health data in
        it, but it is the server's text: escape it wherever it is printed.
    :ivar method: the HTTP method of the request.
    :ivar path: the path of the request, without its query (queries can carry search
        parameters; tokens never travel in URLs).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem: Mapping[str, Any] | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.problem: dict[str, Any] = dict(problem or {})
        self.method = method
        self.path = path
        # Not super().__init__: in the Remote… classes the next class in the MRO is a
        # library error whose constructor takes other arguments (AccessDeniedError(rule)).
        Exception.__init__(self, message)


class UnreachableError(ApiError):
    """No response came: the connection was refused or reset, or it timed out (after the
    retries the client was allowed).

    .. versionadded:: 0.1
    """


class ServerError(ApiError):
    """The server answered with a 5xx status (after the retries the client was allowed).

    .. versionadded:: 0.1
    """


class ClientError(ApiError):
    """The server refused the request with a 4xx status not mapped more precisely.

    .. versionadded:: 0.1
    """


class RateLimitedError(ClientError):
    """The server answered 429 Too Many Requests, and waiting was not allowed or not enough.

    :ivar retry_after: the seconds the server asked to wait (``Retry-After``), when it said.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class OAuthError(ClientError):
    """An OAuth 2 endpoint answered an error (RFC 6749 section 5.2, RFC 7009, RFC 6750).

    :ivar error: the error code (``invalid_grant``, ``invalid_request``…).
    :ivar description: the server's ``error_description``, if any.

    .. versionadded:: 0.1
    """

    def __init__(
        self, message: str, *, error: str, description: str | None = None, **kwargs: Any
    ) -> None:
        self.error = error
        self.description = description
        super().__init__(message, **kwargs)


class InvalidTokenError(OAuthError, SecurityError):
    """A token or authorization code was refused: expired, revoked, forged or replayed
    (``invalid_grant`` at the token endpoint, ``invalid_token`` on an API route).

    .. versionadded:: 0.1
    """


class RemoteAccessDeniedError(ClientError, AccessDeniedError):
    """The server denied the operation (403). The server never says which rule denied, so
    :attr:`rule` is ``"remote"``.

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        self.rule = "remote"
        super().__init__(message, **kwargs)


class ConsentNotGivenError(RemoteAccessDeniedError):
    """An app asked for more than the patient consented to: the consent was revoked or
    narrowed, the app suspended, or the scope was never granted (403 with
    ``WWW-Authenticate: Bearer error="insufficient_scope"``).

    .. versionadded:: 0.1
    """


class RemoteNotFoundError(ClientError, NotFoundError):
    """The server answered 404: no such object, or the caller may not know it exists.

    .. versionadded:: 0.1
    """


class RemoteConflictError(ClientError, ConflictError):
    """The server answered 409: the change clashes with stored data or the current state.

    .. versionadded:: 0.1
    """


class RemoteValidationError(ClientError, ValidationError):
    """The server refused the request's content (400, 413, 415 or 422).

    .. versionadded:: 0.1
    """
