"""What a command prints when the library refuses: what went wrong, and what to do next.

The library's message says what went wrong (which rule, which field: never a value); this
module adds the next step, from one table keyed by the error's class (:data:`NEXT_STEPS`),
so that every command says the same thing for the same error. An entry is a text, or a
function of the error for the classes that carry a reason (a hostile document's
``reason``, a transport error's ``permanent``). A test walks the library's error tree:
a new error class without an entry here fails it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import click

from ..catalogue import OAuthError as _CatalogueOAuthError
from ..errors import (
    AccessDeniedError,
    ActivationError,
    ApiError,
    AuditIntegrityError,
    ClientError,
    ConfigurationError,
    ConflictError,
    ConsentNotGivenError,
    CryptoError,
    DataShreddedError,
    DecryptionError,
    DocumentTooLargeError,
    HostileDocumentError,
    IdentifierError,
    InvalidINSError,
    InvalidMSSanteAddressError,
    InvalidNIRError,
    InvalidRPPSError,
    InvalidTokenError,
    InvalidTransitionError,
    MalformedDocumentError,
    MasterKeyError,
    MonespaceError,
    NotFoundError,
    OAuthError,
    PluginError,
    RateLimitedError,
    ReferencementError,
    RemoteAccessDeniedError,
    RemoteConflictError,
    RemoteNotFoundError,
    RemoteValidationError,
    SchemaVersionError,
    SecurityError,
    ServerError,
    StorageError,
    TransportError,
    UnknownProfessionalError,
    UnknownSchemeError,
    UnreachableError,
    ValidationError,
)
from ..interop.cda import InvalidCdaError
from ..interop.fhir import FhirError
from ..messaging import UnknownRecipientError, UnknownSenderError

__all__ = ["CHECK_INPUT", "NEXT_STEPS", "library_error", "next_step", "with_next_step"]

#: A next step: a fixed text, or one worked out from the error (its reason, its status).
NextStep = str | Callable[[MonespaceError], str]

#: The next step of input a rule refused.
CHECK_INPUT = "correct the value and run the command again (see the command's --help)"
_EXPLAIN = (
    "ask `monespace access explain` which rule decides; the holder can authorise a "
    "professional (see docs/how-to/control-professional-access.md)"
)
_REGISTER_PROFESSIONAL = (
    "check the number, or add the professional to the directory with "
    "`monespace register professional --rpps RPPS --profession CODE --name NAME`"
)
_KEY = (
    "open the space with the master key that wrapped its data (MONESPACE_KEY_FILE or "
    "MONESPACE_MASTER_KEY; see docs/how-to/rotate-the-master-key.md)"
)


def _hostile(exc: MonespaceError) -> str:
    reason = getattr(exc, "reason", "")
    if reason in {"entity-declaration", "internal-dtd-subset", "external-dtd"}:
        return "remove the DTD and entity declarations from the document, then add it again"
    if reason == "external-resource":
        return "remove the reference to an outside file or address, then add it again"
    return "the document is nested too deeply or holds too large a node: split or simplify it"


def _transport(exc: MonespaceError) -> str:
    if getattr(exc, "permanent", False):
        return "correct the recipient's address; retrying cannot deliver it"
    return "the outbox retries it: run `monespace dispatch` again later, or check --transport"


def _remote(exc: MonespaceError) -> str:
    status = getattr(exc, "status", None)
    return f"the server answered {status}: see its problem document" if status else CHECK_INPUT


#: The next step for each error class the commands can meet, keyed by the exact class (a
#: module's private class, such as a service's own refusal, takes its public parent's).
NEXT_STEPS: Final[dict[type[MonespaceError], NextStep]] = {
    MonespaceError: "run the command again with the same options; if it fails again, report it",
    # configuration
    ConfigurationError: "check the storage URL (--db) and the installed plugins "
    "(`monespace info` lists them)",
    UnknownSchemeError: "install the plugin that provides it",
    PluginError: "uninstall or fix the plugin named above; `monespace info` lists the plugins",
    # validation
    ValidationError: CHECK_INPUT,
    InvalidTransitionError: "docs/how-to/run-the-lifecycle.md says what each state allows",
    ReferencementError: "see the application's state and missing evidence with "
    "`monespace catalogue show`",
    MalformedDocumentError: "check that the file is complete and of the declared type "
    "(--media-type)",
    InvalidCdaError: "check that the file is a CDA R2 document (root ClinicalDocument in "
    "urn:hl7-org:v3), or add it with another --media-type",
    HostileDocumentError: _hostile,
    DocumentTooLargeError: "split the document, or raise the limit in the space's settings",
    IdentifierError: "check the number against the card it comes from",
    InvalidNIRError: "check the 15 characters on the carte Vitale: 13 digits (2A or 2B for "
    "Corsica) and the 2-digit key",
    InvalidINSError: "check the NIR and the identity traits (sex, birth date) against the "
    "carte Vitale",
    InvalidRPPSError: "check the 11 digits of the RPPS number on the professional's CPS card",
    InvalidMSSanteAddressError: "check the address in the MSSanté directory",
    # storage
    StorageError: "check that --db names a monespace database that this user can write",
    SchemaVersionError: "upgrade monespace to open it",
    NotFoundError: "check the identifier or the NIR (`monespace info` counts what the space holds)",
    UnknownProfessionalError: _REGISTER_PROFESSIONAL,
    UnknownRecipientError: "check the recipient's address: a patient's MSSanté address ends "
    "in the NIR",
    UnknownSenderError: "add the sender's MSSanté address to their entry in the directory "
    "(`monespace register professional --mssante ADDRESS`)",
    ConflictError: "it is there already: list what the space holds instead of adding it again",
    # security
    SecurityError: "check the master key and the database; see docs/explanation/security.md",
    AccessDeniedError: _EXPLAIN,
    ActivationError: "`monespace request-code` sends a new code",
    CryptoError: _KEY,
    MasterKeyError: _KEY,
    DecryptionError: "the stored data were altered: restore the database from a backup and "
    "run `monespace audit verify`",
    DataShreddedError: "nothing can bring it back: the patient's data key was destroyed on "
    "purpose (crypto-shredding)",
    AuditIntegrityError: "restore the database from a backup, then run `monespace audit "
    "verify` against exported checkpoints (docs/how-to/verify-the-audit-trail.md)",
    _CatalogueOAuthError: "start the authorisation again from the app",
    # transport
    TransportError: _transport,
    # remote APIs
    ApiError: _remote,
    UnreachableError: "check the server's address and that it is running, then try again",
    ServerError: "try again later; if it goes on, see the server's logs",
    ClientError: _remote,
    RateLimitedError: "wait a little, then try again",
    OAuthError: "start the authorisation again",
    InvalidTokenError: "log in again: the token expired or was revoked",
    RemoteAccessDeniedError: "ask the record's holder to give access",
    ConsentNotGivenError: "ask the patient to consent again to the app (the consent was "
    "revoked or narrowed)",
    RemoteNotFoundError: "check the identifier",
    RemoteConflictError: "read the current state, then try again",
    RemoteValidationError: CHECK_INPUT,
    # exports
    FhirError: "check the FHIR resource against the profile named above",
}


def next_step(exc: MonespaceError) -> str:
    """What to do next about *exc*: the entry of its class, or of its nearest ancestor
    (an embedder's own subclass); never empty."""
    for klass in type(exc).__mro__:
        step = NEXT_STEPS.get(klass)
        if step is not None:
            return step if isinstance(step, str) else step(exc)
    return str(NEXT_STEPS[MonespaceError])


def with_next_step(exc: MonespaceError) -> str:
    """*exc*'s message followed by the next step, unless the message already says it."""
    message = str(exc)
    step = next_step(exc)
    return message if step in message else f"{message}; {step}"


def library_error(exc: MonespaceError) -> click.ClickException:
    """The one-line click error (exit status 1) for a library error, with its next step."""
    return click.ClickException(with_next_step(exc))
