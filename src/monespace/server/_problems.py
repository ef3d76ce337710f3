"""Errors as RFC 9457 problem documents (``application/problem+json``).

Every error the server answers is a problem document with a stable ``type``, a short
``title``, the HTTP ``status`` and, where it helps the client, a ``detail``. None carries a
stack trace, a policy rule's name, a NIR or health data. A denial and a missing object give
the *same* document, byte for byte, so that nobody learns whether another person's object
exists.
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
    ValidationError,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "ProblemError",
    "from_library_error",
    "problem_response",
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


@attrs.frozen
class Problem:
    """A problem document (RFC 9457).

    :param type: a URI naming the kind of problem (``urn:monespace:problem:not-found``).
    :param title: a short summary, the same for every occurrence of this type.
    :param status: the HTTP status code.
    :param detail: an explanation of this occurrence, without personal or health data.
    """

    type: str
    title: str
    status: int
    detail: str | None = None


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
        self.problem = Problem(f"urn:monespace:problem:{kind}", title, status, detail)
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


def from_library_error(exc: MonespaceError) -> ProblemError:
    """Translate an error of the library into a problem, never passing on a policy rule."""
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
