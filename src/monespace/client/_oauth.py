"""OAuth 2 for apps, without I/O: PKCE, the authorization URL, token sets and their holder.

The HTTP side (exchanging a code, refreshing, revoking) is in the clients, which build their
form bodies with the functions here. Only the authorization code grant with PKCE S256 is
offered (RFC 7636; the ``plain`` method is refused by the server and never produced here).
Tokens travel in request bodies and the ``Authorization`` header, never in a URL.

.. versionadded:: 0.1
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

import attrs

from ..errors import InvalidTokenError, OAuthError, ValidationError

__all__ = [
    "PKCE",
    "AuthorizationRequest",
    "TokenHolder",
    "TokenSet",
    "authorization_url",
    "code_challenge",
    "code_form",
    "new_state",
    "parse_redirect",
    "refresh_form",
    "revoke_form",
]

#: RFC 7636 section 4.1: 43 to 128 characters among the unreserved ones.
_VERIFIER: Final = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def code_challenge(verifier: str) -> str:
    """The S256 code challenge of *verifier*: ``BASE64URL(SHA256(ASCII(verifier)))`` without
    padding (RFC 7636 section 4.2).

    :raises ValidationError: *verifier* is not 43 to 128 unreserved characters.
    """
    if not _VERIFIER.match(verifier):
        raise ValidationError(
            "'verifier' must be 43 to 128 characters among A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1)"
        )
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@attrs.frozen
class PKCE:
    """A PKCE pair (RFC 7636): keep :attr:`verifier` secret until the code exchange, send
    :attr:`challenge` in the authorization URL.

    Make one per authorization with :meth:`generate`.
    """

    verifier: str = attrs.field(repr=False)
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls, length: int = 64) -> PKCE:
        """A new random verifier of *length* characters (43 to 128) and its S256 challenge."""
        if not 43 <= length <= 128:
            raise ValidationError(f"'length' must be between 43 and 128 (got {length})")
        # token_urlsafe gives about 1.3 characters per byte, all of them unreserved.
        verifier = secrets.token_urlsafe(length)[:length]
        return cls(verifier, code_challenge(verifier))

    @classmethod
    def from_verifier(cls, verifier: str) -> PKCE:
        """The pair of a verifier kept from earlier (between the redirect and the callback)."""
        return cls(verifier, code_challenge(verifier))


def new_state() -> str:
    """A random ``state`` value, to bind the callback to the request that started it."""
    return secrets.token_urlsafe(32)


def authorization_url(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    state: str,
    pkce: PKCE,
) -> str:
    """The URL to send the patient's browser to, to ask for their consent.

    :param scopes: the scopes asked (``documents.read``, ``mesures.write``…); ask only for
        those the app's convention declares.
    :param state: an unguessable value the app keeps and checks in :func:`parse_redirect`.
    """
    scope = " ".join(scopes)
    if not scope:
        raise ValidationError("'scopes' must name at least one scope")
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
    }
    separator = "&" if urlsplit(authorization_endpoint).query else "?"
    return authorization_endpoint + separator + urlencode(params)


def parse_redirect(url: str, *, state: str) -> str:
    """The authorization code from the URL the patient's browser came back to.

    :param state: the value sent in :func:`authorization_url`.
    :raises OAuthError: the server sent an error (``access_denied`` when the patient
        refused), or the state does not match (``invalid_state``: a forged callback), or
        there is no code.
    """
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    given = query.get("state", "")
    if not hmac.compare_digest(given.encode(), state.encode()):
        raise OAuthError("the callback's state does not match the request's", error="invalid_state")
    if "error" in query:
        error = query["error"]
        raise OAuthError(
            f"authorization refused: {error}",
            error=error,
            description=query.get("error_description"),
        )
    code = query.get("code")
    if not code:
        raise OAuthError("the callback carries no code", error="invalid_request")
    return code


@attrs.frozen
class AuthorizationRequest:
    """An authorization under way: the URL to send the patient's browser to, and what the
    app keeps until the browser comes back (the state, the PKCE verifier).

    Made by ``Client.start_authorization``; finished by ``Client.finish_authorization``
    with the URL the browser came back to.
    """

    url: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str = attrs.field(repr=False)
    pkce: PKCE

    @classmethod
    def build(
        cls,
        authorization_endpoint: str,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: Iterable[str],
    ) -> AuthorizationRequest:
        """A new request with a fresh state and PKCE pair."""
        asked = tuple(scopes)
        state, pkce = new_state(), PKCE.generate()
        url = authorization_url(
            authorization_endpoint,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=asked,
            state=state,
            pkce=pkce,
        )
        return cls(url, client_id, redirect_uri, asked, state, pkce)

    def code_form(self, redirect_url: str) -> dict[str, str]:
        """The body of the code exchange for the URL the browser came back to.

        :raises OAuthError: see :func:`parse_redirect`.
        """
        code = parse_redirect(redirect_url, state=self.state)
        return code_form(
            code,
            verifier=self.pkce.verifier,
            redirect_uri=self.redirect_uri,
            client_id=self.client_id,
        )


@attrs.frozen
class TokenSet:
    """What the token endpoint issued (RFC 6749 section 5.1).

    :param expires_at: when the access token expires, computed from ``expires_in`` and the
        time of the answer; ``None`` when the server did not say.
    :param scopes: the scopes granted, which may be fewer than those asked.
    :param patient_id: the patient whose space the tokens reach (the ``patient`` field of
        the answer, as in SMART on FHIR), when the server says.
    """

    access_token: str = attrs.field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - the name of a token type, not a secret
    expires_at: datetime | None = None
    refresh_token: str | None = attrs.field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    patient_id: str | None = None

    @classmethod
    def from_response(
        cls, body: Mapping[str, Any], *, now: datetime, previous: TokenSet | None = None
    ) -> TokenSet:
        """The token set of a successful token response *body* received at *now*.

        With refresh rotation the answer carries a new refresh token, which replaces the
        old one; a server that does not rotate may leave it out, and *previous*'s is kept.
        Scopes left out are those of *previous* (RFC 6749 section 5.1).
        """
        token = body.get("access_token")
        kind = body.get("token_type", "")
        if not isinstance(token, str) or not token:
            raise OAuthError("the token response has no access_token", error="invalid_response")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise OAuthError(
                "the token response is not a Bearer token (RFC 6750)", error="invalid_response"
            )
        expires_in = body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = now + timedelta(seconds=float(expires_in))
        refresh = body.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            refresh = previous.refresh_token if previous is not None else None
        scope = body.get("scope")
        if isinstance(scope, str):
            scopes = tuple(scope.split())
        else:
            scopes = previous.scopes if previous is not None else ()
        patient = body.get("patient")
        if not isinstance(patient, str) or not patient:
            patient = previous.patient_id if previous is not None else None
        return cls(token, "Bearer", expires_at, refresh, scopes, patient)

    def expires_within(self, now: datetime, margin: timedelta) -> bool:
        """Whether the access token expires within *margin* of *now* (or already did)."""
        return self.expires_at is not None and self.expires_at - margin <= now


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TokenHolder:
    """The current tokens of an app for one patient, refreshed before they expire.

    Give it to :class:`~monespace.client.Client` (``tokens=``): before each request the
    client asks :meth:`needs_refresh`, and refreshes at the token endpoint when the access
    token is within *margin* of its expiry, or once when the server answers
    ``invalid_token``. Each refresh keeps the new refresh token (rotation): the old one is
    spent, and a server that detects its reuse revokes the whole family.

    :param clock: a callable returning the current aware datetime (default: the wall
        clock); tests pass ``ManualClock(...).now``.
    :param margin: how long before expiry to refresh (30 seconds).
    :param on_update: called with every new token set, to persist it.
    """

    def __init__(
        self,
        tokens: TokenSet,
        *,
        clock: Callable[[], datetime] | None = None,
        margin: timedelta = timedelta(seconds=30),
        on_update: Callable[[TokenSet], None] | None = None,
    ) -> None:
        self._tokens = tokens
        self._clock = clock or _utc_now
        self.margin = margin
        self._on_update = on_update
        self._lock = threading.Lock()
        #: How many times the tokens were refreshed.
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenHolder({self._tokens!r})"

    @property
    def tokens(self) -> TokenSet:
        """The current token set."""
        with self._lock:
            return self._tokens

    def now(self) -> datetime:
        """The holder's clock."""
        return self._clock()

    def needs_refresh(self) -> bool:
        """Whether the access token expires within the margin and can be refreshed."""
        tokens = self.tokens
        return tokens.refresh_token is not None and tokens.expires_within(
            self._clock(), self.margin
        )

    def update(self, tokens: TokenSet, *, refreshed: bool = True) -> None:
        """Replace the tokens and tell *on_update*.

        :param refreshed: they come from a refresh (counted in :attr:`refreshes`), not
            from a new authorization.
        """
        with self._lock:
            self._tokens = tokens
            if refreshed:
                self.refreshes += 1
        if self._on_update is not None:
            self._on_update(tokens)

    def token_form(self, client_id: str) -> dict[str, str]:
        """The body of the refresh request (RFC 6749 section 6).

        :raises InvalidTokenError: there is no refresh token to use.
        """
        refresh = self.tokens.refresh_token
        if refresh is None:
            raise InvalidTokenError("there is no refresh token to use", error="invalid_grant")
        return refresh_form(refresh, client_id=client_id)


def code_form(code: str, *, verifier: str, redirect_uri: str, client_id: str) -> dict[str, str]:
    """The body of the code exchange (RFC 6749 section 4.1.3, RFC 7636 section 4.5)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }


def refresh_form(refresh_token: str, *, client_id: str) -> dict[str, str]:
    """The body of a refresh (RFC 6749 section 6)."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}


def revoke_form(token: str, *, client_id: str, hint: str | None = None) -> dict[str, str]:
    """The body of a revocation (RFC 7009 section 2.1)."""
    form = {"token": token, "client_id": client_id}
    if hint is not None:
        form["token_type_hint"] = hint
    return form
