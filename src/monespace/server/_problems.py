"""Errors as RFC 9457 problem documents (``application/problem+json``).

Every error the server answers is a problem document with a stable ``type``, a short
``title``, the HTTP ``status``, where it helps the client a ``detail``, and a ``hint``: an
extension member (RFC 9457 §3.2) that says what to do next, the same for every occurrence of
the type, from one table (:data:`HINTS`). None carries a stack trace, a policy rule's name,
a NIR or health data. A denial and a missing object give the *same* document, byte for
byte, so that nobody learns whether another person's object exists; an RPPS number that the
directory does not hold is said as such (``unknown-professional``): the directory is public.
"""

from __future__ import annotations

from typing import Final

import attrs
import msgspec
from starlette.responses import Response

from ..errors import (
    AccessDeniedError,
    ActivationError,
    ConflictError,
    DataShreddedError,
    InvalidTransitionError,
    MonespaceError,
    NotFoundError,
    UnknownProfessionalError,
    ValidationError,
)

__all__ = [
    "HINTS",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "ProblemError",
    "from_library_error",
    "problem_response",
    "unknown_professional",
]

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"

#: Headers sent with every response of the server, errors included.
SECURITY_HEADERS: Final = {
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


#: What to do next, for each kind of problem (the end of its ``type`` URI). A test reads
#: every kind the server's code can answer and checks that it is here.
HINTS: Final[dict[str, str]] = {
    "bad-form": "Reload the page and send the form again.",
    "conflict": "Read the current state of the resource, then send the change again if it "
    "still applies.",
    "consent-not-given": "Ask the patient to grant the app the scope named in the "
    "WWW-Authenticate header again (a new authorisation), then retry with the new token.",
    "cross-origin": "Send the request from this site's own pages, or without an Origin header "
    "from a script.",
    "csrf": "Send the session's csrf_token (from GET /api/v1/session) in the X-CSRF-Token "
    "header, or use the Authorization header instead of the cookie.",
    "http-error": "Check the method and the path against the OpenAPI document "
    "(/api/v1/openapi.json).",
    "internal": "Try again later; if it goes on, tell the operator the time of the request.",
    "invalid-request": "Correct the request as the detail says, then send it again; the "
    "OpenAPI document (/api/v1/openapi.json) describes each operation.",
    "invalid-token": "Refresh the access token, or start the authorisation again.",
    "invalid-transition": "Read the space's state: the detail says what it allows now.",
    "login-refused": "Check the details, or ask for a new provisional code; after repeated "
    "failures, wait a few minutes.",
    "malformed": "Send the body as valid JSON, as the OpenAPI document describes.",
    "method-not-allowed": "Use one of the methods of the Allow header.",
    "not-found": "Check the identifier; you may also lack access to it: the record's holder "
    "can give it.",
    "proof-refused": "Check the provisional code and the carte Vitale details, or ask for a "
    "new provisional code; after repeated failures, wait a few minutes.",
    "thread-closed": "Start a new conversation: the professional closed this one to replies.",
    "token-in-query": "Send the access token in the Authorization header.",
    "too-large": "Send a smaller body: split the document, or compress the image.",
    "too-many-attempts": "Wait the number of seconds of the Retry-After header, then try again.",
    "unauthenticated": "Log in (POST /api/v1/session), then send the session token.",
    "unknown-professional": "Check the RPPS number (11 digits, on the professional's CPS "
    "card); a professional must be in the directory to be given access or written to.",
    "unsupported-media-type": "Send the body with the media type the detail names.",
}


@attrs.frozen
class Problem:
    """A problem document (RFC 9457).

    :param type: a URI naming the kind of problem (``urn:monespace:problem:not-found``).
    :param title: a short summary, the same for every occurrence of this type.
    :param status: the HTTP status code.
    :param detail: an explanation of this occurrence, without personal or health data.
    :param hint: what to do next (an extension member), the same for every occurrence of
        this type.
    """

    type: str
    title: str
    status: int
    detail: str | None = None
    hint: str | None = None


class ProblemError(Exception):
    """Raised inside the server to answer with a problem document.

    :param headers: extra response headers (``Retry-After``, ``WWW-Authenticate``, ``Allow``).
    """

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(title)
        self.problem = Problem(
            f"urn:monespace:problem:{kind}", title, status, detail, HINTS.get(kind)
        )
        self.headers = dict(headers or {})


def not_found() -> ProblemError:
    """The one answer for an object that does not exist *or* that the caller may not see."""
    return ProblemError(
        404, "not-found", "Not found", "There is no such resource, or you may not access it."
    )


def unauthenticated() -> ProblemError:
    """No session, or an expired, revoked or forged one."""
    return ProblemError(
        401,
        "unauthenticated",
        "Authentication required",
        "Log in first; sessions expire after a period of inactivity.",
        headers={"www-authenticate": 'Bearer realm="monespace"'},
    )


def bad_request(detail: str, *, kind: str = "invalid-request", status: int = 422) -> ProblemError:
    """Input that does not satisfy the API's schema or a domain rule."""
    title = "Malformed request" if status == 400 else "Invalid request"
    return ProblemError(status, kind, title, detail)


def unknown_professional() -> ProblemError:
    """No professional has the RPPS number in the directory (public: this says nothing
    about any patient)."""
    return ProblemError(
        404,
        "unknown-professional",
        "Unknown professional",
        "No professional has this RPPS number in the directory.",
    )


# One return per kind of error: the function is the mapping table, read top to bottom.
def from_library_error(exc: MonespaceError) -> ProblemError:  # noqa: PLR0911
    """Translate an error of the library into a problem, never passing on a policy rule."""
    if isinstance(exc, UnknownProfessionalError):
        return unknown_professional()
    if isinstance(exc, AccessDeniedError | NotFoundError | DataShreddedError):
        return not_found()
    if isinstance(exc, ActivationError):
        return ProblemError(400, "proof-refused", "Proof of identity refused", exc.MESSAGE)
    if isinstance(exc, InvalidTransitionError):
        return ProblemError(409, "invalid-transition", "Not possible now", str(exc))
    if isinstance(exc, ConflictError):
        return ProblemError(409, "conflict", "Conflict", "The change clashes with stored data.")
    if isinstance(exc, ValidationError):
        return bad_request(str(exc))
    return ProblemError(500, "internal", "Internal error", "The request could not be completed.")


_ENCODER = msgspec.json.Encoder()


def problem_response(error: ProblemError) -> Response:
    """The HTTP response for *error*, with the security headers."""
    headers = {**SECURITY_HEADERS, **error.headers}
    return Response(
        _ENCODER.encode(error.problem),
        status_code=error.problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )
