"""Small helpers both clients use.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any

from .._version import __version__
from ..errors import ServerError
from ._models import ServerMetadata

__all__ = ["metadata_from", "user_agent"]


def user_agent() -> str:
    """The ``User-Agent`` the clients send."""
    return f"monespace-client/{__version__}"


def metadata_from(document: Any, *, issuer: str) -> ServerMetadata:
    """The :class:`ServerMetadata` of an RFC 8414 document fetched from *issuer*.

    :raises ServerError: the document lacks ``issuer``, ``authorization_endpoint`` or
        ``token_endpoint``, or names another issuer than the server it came from (RFC 8414
        section 3.3: otherwise a forged document could send the app's codes and refresh
        tokens to another server).
    """
    if not isinstance(document, dict):
        raise ServerError("the authorization server metadata is not a JSON object")
    required = ("issuer", "authorization_endpoint", "token_endpoint")
    if not all(isinstance(document.get(name), str) for name in required):
        raise ServerError(
            "the authorization server metadata lacks issuer, authorization_endpoint or "
            "token_endpoint (RFC 8414 section 2)"
        )

    if document["issuer"].rstrip("/") != issuer.rstrip("/"):
        raise ServerError(
            "the authorization server metadata names another issuer than the server it "
            "came from (RFC 8414 section 3.3)"
        )

    def text(name: str) -> str | None:
        value = document.get(name)
        return value if isinstance(value, str) else None

    def texts(name: str) -> list[str]:
        value = document.get(name)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    listed = (
        "scopes_supported",
        "response_types_supported",
        "grant_types_supported",
        "code_challenge_methods_supported",
    )
    known = {*required, "revocation_endpoint", "introspection_endpoint", *listed}
    return ServerMetadata(
        issuer=document["issuer"],
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        revocation_endpoint=text("revocation_endpoint"),
        introspection_endpoint=text("introspection_endpoint"),
        scopes_supported=texts("scopes_supported"),
        response_types_supported=texts("response_types_supported"),
        grant_types_supported=texts("grant_types_supported"),
        code_challenge_methods_supported=texts("code_challenge_methods_supported"),
        extra={k: v for k, v in document.items() if k not in known},
    )
