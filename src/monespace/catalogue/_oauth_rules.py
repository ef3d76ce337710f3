"""Pure rules of the OAuth 2 token service: PKCE, scopes, lifetimes and what a stored token
is worth at a given moment. No I/O; the clock is passed in.

Sources: RFC 6749 (the authorization code grant), RFC 7636 (PKCE; only ``S256`` is taken),
RFC 6819 §5.2.2.3 and the OAuth 2.0 Security BCP (RFC 9700) §4.14 (refresh token rotation
and reuse detection).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

import attrs

from ..errors import SecurityError

__all__ = [
    "OAuthError",
    "OAuthSettings",
    "TokenState",
    "format_scopes",
    "parse_scopes",
    "pkce_challenge",
    "pkce_matches",
    "token_state",
    "valid_challenge",
]

#: RFC 7636 §4.1: a verifier is 43 to 128 characters of the unreserved set.
_VERIFIER: Final = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
#: An S256 challenge is the base64url (unpadded) SHA-256 of the verifier: 43 characters.
_CHALLENGE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: A scope token (RFC 6749 §3.3), bounded so that nothing long reaches the audit trail.
_SCOPE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class OAuthError(SecurityError):
    """A request of the OAuth 2 flow refused, with its RFC 6749 §5.2 error code.

    The description says what was wrong with the request in general terms; it never says
    whether a code or token exists for someone else, and never repeats a secret.

    :ivar error: the RFC 6749 / 6750 code: ``invalid_request``, ``invalid_client``,
        ``invalid_grant``, ``invalid_scope``, ``unsupported_grant_type``,
        ``unsupported_response_type``, ``access_denied`` or ``invalid_token``.
    :ivar description: a sentence for the client's developer.

    .. versionadded:: 0.2
    """

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")


@attrs.frozen
class OAuthSettings:
    """Lifetimes of the OAuth 2 secrets (``Settings.oauth``).

    :param code_lifetime: an authorization code must be exchanged within this (60 s;
        RFC 6749 §4.1.2 recommends at most 10 minutes).
    :param access_lifetime: an access token works this long (10 minutes): short, because
        a bearer token works for whoever holds it.
    :param refresh_lifetime: a refresh token works this long (30 days); each use replaces
        it with a new one, of the same deadline counted from the new issuance.
    """

    code_lifetime: timedelta = timedelta(seconds=60)
    access_lifetime: timedelta = timedelta(minutes=10)
    refresh_lifetime: timedelta = timedelta(days=30)

    def __attrs_post_init__(self) -> None:
        for name in ("code_lifetime", "access_lifetime", "refresh_lifetime"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"'{name}' must be positive (got {getattr(self, name)})")


def pkce_challenge(verifier: str) -> str:
    """The S256 challenge of *verifier* (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str) -> bool:
    """Whether *challenge* has the shape of an S256 challenge."""
    return bool(_CHALLENGE.match(challenge))


def pkce_matches(challenge: str, verifier: str | None) -> bool:
    """Whether *verifier* is the one whose S256 challenge is *challenge* (constant time)."""
    if verifier is None or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(pkce_challenge(verifier), challenge)


def parse_scopes(text: str | None, known: Iterable[str]) -> frozenset[str]:
    """The scopes of a space-separated *text* (RFC 6749 §3.3).

    :raises OAuthError: ``invalid_scope`` for an empty list, a malformed or unknown scope.
    """
    allowed = frozenset(known)
    words = (text or "").split()
    if not words:
        raise OAuthError("invalid_scope", "ask for at least one scope")
    if any(not _SCOPE.match(w) or w not in allowed for w in words):
        raise OAuthError("invalid_scope", "unknown scope; see scopes_supported in the metadata")
    return frozenset(words)


def format_scopes(scopes: Iterable[str]) -> str:
    """Scopes as RFC 6749 writes them: space-separated (sorted, for stable output)."""
    return " ".join(sorted(scopes))


class TokenState(StrEnum):
    """What a stored token is worth at a moment."""

    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ROTATED = "rotated"
    """A refresh token already exchanged: presenting it again is a reuse."""


def token_state(
    now: datetime,
    expires_at: datetime,
    revoked_at: datetime | None,
    rotated_at: datetime | None = None,
) -> TokenState:
    """The state of a token at *now*: revocation wins over rotation, rotation over expiry
    (a rotated token presented again is a reuse even after it would have expired)."""
    if revoked_at is not None:
        return TokenState.REVOKED
    if rotated_at is not None:
        return TokenState.ROTATED
    if now >= expires_at:
        return TokenState.EXPIRED
    return TokenState.VALID
