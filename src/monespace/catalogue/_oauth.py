"""``space.oauth``: the OAuth 2 token service of referenced apps.

Authorization codes (single use, short-lived, bound to the client, the redirect URI, a PKCE
S256 challenge, the patient and the scopes), access and refresh tokens (opaque random
strings; only a keyed hash is stored), refresh rotation with reuse detection, revocation
(RFC 7009) and introspection (RFC 7662).

A token names an app, a patient and scopes; it decides nothing by itself. The app acts as
``Actor.app(client_id, patient_id, scopes)`` and the one policy (``monespace.policy``) then
asks whether the app is still referenced, whether the patient's consent is in force and
covers the scope, and whether the patient themselves may do it. Every issuance, refresh,
reuse detection, revocation and refusal is audited, never with a secret.

.. versionadded:: 0.2
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Final

import attrs

from .._ids import new_id
from ..actors import Actor, ActorKind
from ..audit import Outcome
from ..errors import NotFoundError
from ..policy import Action, Resource
from ..storage import OAuthCodeRow, OAuthTokenRow, Slice, Transaction
from ._model import App, Scope
from ._oauth_rules import (
    OAuthError,
    TokenState,
    format_scopes,
    parse_scopes,
    pkce_matches,
    token_state,
    valid_challenge,
)

if TYPE_CHECKING:
    from .._unit import Core, Unit
    from ._service import CatalogueService, ConsentService

__all__ = ["AuthorizationCode", "Introspection", "OAuthService", "TokenSet"]

#: The data key whose keyed hash finds codes and tokens (a copy of the tables yields no
#: usable secret, and without the key a hash cannot be checked against guesses).
_HASH_KEY: Final = "space:oauth"
#: What a client id looks like; anything else is never looked up nor written to the trail.
_CLIENT_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ACCESS: Final = "access"
_REFRESH: Final = "refresh"
#: The audit actions of the token service (the policy's actions are for data).
_ISSUE: Final = "oauth.code"
_EXCHANGED: Final = "oauth.token"
_REFRESHED: Final = "oauth.refresh"
_REUSE: Final = "oauth.reuse"
_REVOKE: Final = "oauth.revoke"
_REFUSED: Final = "oauth.refused"


@attrs.frozen
class AuthorizationCode:
    """An authorization code, shown once (only its hash is stored).

    :param code: the secret to send to the client's redirect URI.
    :param expires_at: it must be exchanged before this.
    """

    code: str = attrs.field(repr=False)
    client_id: str
    patient_id: str
    scopes: frozenset[str]
    expires_at: datetime


@attrs.frozen
class TokenSet:
    """What the token endpoint answers (RFC 6749 §5.1), secrets shown once.

    :param expires_in: seconds the access token works.
    :param patient_id: the patient the tokens act for (the ``patient`` parameter of SMART
        App Launch, so that the app knows which ``/patients/{id}`` to call).
    """

    access_token: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    expires_in: int
    scopes: frozenset[str]
    patient_id: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 token type, not a secret


@attrs.frozen
class Introspection:
    """An introspection answer (RFC 7662 §2.2). Only ``active`` is meaningful when it is
    ``False``: nothing is said about a token that is not active."""

    active: bool
    client_id: str | None = None
    patient_id: str | None = None
    scopes: frozenset[str] = frozenset()
    token_type: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None


def _client_actor(client_id: str, patient_id: str | None = None) -> Actor:
    """The actor recorded for a request of *client_id* (``unknown`` when malformed)."""
    name = client_id if _CLIENT_ID.match(client_id or "") else "unknown"
    return Actor(ActorKind.APP, name, on_behalf_of=patient_id)


class OAuthService:
    """``space.oauth``: codes and tokens of the apps of the catalogue.

    .. versionadded:: 0.2
    """

    def __init__(self, core: Core, catalogue: CatalogueService, consents: ConsentService) -> None:
        self._core = core
        self._catalogue = catalogue
        self._consents = consents

    # --- helpers ----------------------------------------------------------------------------

    def _hash(self, tx: Transaction, secret: str, now: datetime) -> bytes:
        key = self._core.keyring.get_or_create(tx, _HASH_KEY, now)
        return hmac.new(key, secret.encode("utf-8", "replace"), hashlib.sha256).digest()

    def _lookup_hash(self, tx: Transaction, secret: str) -> bytes | None:
        """The hash of *secret*, or ``None`` when no secret was ever issued (no key yet)."""
        try:
            key = self._core.keyring.get(tx, _HASH_KEY)
        except NotFoundError:
            return None
        return hmac.new(key, secret.encode("utf-8", "replace"), hashlib.sha256).digest()

    def refused(
        self,
        client_id: str,
        error: OAuthError,
        *,
        patient_id: str | None = None,
    ) -> OAuthError:
        """Trace a refusal an edge decided (the patient said no; a consent form came
        without its CSRF token), and return *error*."""
        return self._refuse(client_id, error, patient_id=patient_id)

    def _refuse(
        self,
        client_id: str,
        error: OAuthError,
        *,
        patient_id: str | None = None,
        what: str = _REFUSED,
        family_id: str | None = None,
    ) -> OAuthError:
        """Trace a refused request in a transaction of its own, and return the error."""
        with self._core.unit() as unit:
            unit.record(
                _client_actor(client_id, patient_id),
                what,
                Resource(patient_id, "oauth", family_id),
                error.error,
                outcome=Outcome.DENIED,
            )
        return error

    def client(self, client_id: str, redirect_uri: str | None) -> App:
        """The app *client_id* if it may act now and *redirect_uri* is one of its registered
        URIs (exact match): what the authorization endpoint checks before it shows anything.

        :raises OAuthError: ``invalid_client`` for an unknown, suspended, withdrawn or
            expired app, ``invalid_request`` for an unregistered redirect URI (then the
            server must show an error page, never redirect: RFC 6749 §4.1.2.1).
        """
        if not _CLIENT_ID.match(client_id or ""):
            raise self._refuse(client_id, OAuthError("invalid_client", "unknown client"))
        try:
            app = self._catalogue.app(client_id)
        except NotFoundError:
            raise self._refuse(client_id, OAuthError("invalid_client", "unknown client")) from None
        if not app.may_act(self._core.now()):
            raise self._refuse(
                client_id, OAuthError("invalid_client", "this app is not referenced now")
            )
        if redirect_uri is None or redirect_uri not in app.redirect_uris:
            raise self._refuse(
                client_id, OAuthError("invalid_request", "the redirect_uri is not registered")
            )
        return app

    # --- authorization ----------------------------------------------------------------------

    def check_request(
        self,
        client_id: str,
        redirect_uri: str | None,
        *,
        scope: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
        response_type: str | None = "code",
    ) -> tuple[App, frozenset[Scope]]:
        """Check an authorization request before the consent page is shown.

        :return: the app and the scopes asked.
        :raises OAuthError: as :meth:`client`, then (to be sent to the redirect URI)
            ``unsupported_response_type``, ``invalid_request`` (PKCE missing, or not S256),
            ``invalid_scope`` (unknown, or beyond the app's convention).
        """
        app = self.client(client_id, redirect_uri)
        if response_type != "code":
            raise self._refuse(
                client_id,
                OAuthError("unsupported_response_type", "only the authorization code flow"),
            )
        if code_challenge_method != "S256" or not valid_challenge(code_challenge or ""):
            raise self._refuse(
                client_id,
                OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required"),
            )
        try:
            asked = parse_scopes(scope, (str(s) for s in Scope))
        except OAuthError as exc:
            raise self._refuse(client_id, exc) from None
        if not asked <= {str(s) for s in app.scopes}:
            raise self._refuse(
                client_id, OAuthError("invalid_scope", "scopes beyond the app's convention")
            )
        return app, frozenset(Scope(s) for s in asked)

    def authorize(
        self,
        actor: Actor,
        patient_id: str,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: Iterable[Scope | str],
        code_challenge: str,
        code_challenge_method: str = "S256",
    ) -> AuthorizationCode:
        """Issue an authorization code for *patient_id*, once the patient (or their
        representative, *actor*) consented (:meth:`ConsentService.grant`).

        :raises OAuthError: as :meth:`check_request`, and ``access_denied`` when the
            patient's consent in force does not cover the scopes.
        :raises AccessDeniedError: when *actor* may not consent for *patient_id*.
        """
        names = format_scopes(str(s) for s in scopes)
        self.check_request(
            client_id,
            redirect_uri,
            scope=names,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
        )
        consent = self._consents.active(patient_id, client_id)
        wanted = frozenset(names.split())
        if consent is None or not wanted <= {str(s) for s in consent.scopes}:
            raise self._refuse(
                client_id,
                OAuthError("access_denied", "the patient did not consent to these scopes"),
                patient_id=patient_id,
            )
        code = secrets.token_urlsafe(32)
        with self._core.unit() as unit:
            unit.authorize(actor, Action.CONSENT_GRANT, Resource(patient_id, "consent", client_id))
            family = new_id()
            expires = unit.now + self._core.settings.oauth.code_lifetime
            unit.tx.oauth.add_code(
                OAuthCodeRow(
                    patient_id=patient_id,
                    code_hash=self._hash(unit.tx, code, unit.now),
                    family_id=family,
                    client_id=client_id,
                    redirect_uri=redirect_uri,
                    challenge=code_challenge,
                    scopes=names,
                    issued_at=unit.now,
                    expires_at=expires,
                )
            )
            unit.record(actor, _ISSUE, Resource(patient_id, "oauth", family), "code_issued")
        return AuthorizationCode(code, client_id, patient_id, wanted, expires)

    # --- the token endpoint -----------------------------------------------------------------

    def _issue(self, unit: Unit, code_or_token: OAuthCodeRow | OAuthTokenRow) -> TokenSet:
        settings = self._core.settings.oauth
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        for kind, secret, lifetime in (
            (_ACCESS, access, settings.access_lifetime),
            (_REFRESH, refresh, settings.refresh_lifetime),
        ):
            unit.tx.oauth.add_token(
                OAuthTokenRow(
                    patient_id=code_or_token.patient_id,
                    token_hash=self._hash(unit.tx, secret, unit.now),
                    kind=kind,
                    client_id=code_or_token.client_id,
                    family_id=code_or_token.family_id,
                    scopes=code_or_token.scopes,
                    issued_at=unit.now,
                    expires_at=unit.now + lifetime,
                )
            )
        return TokenSet(
            access,
            refresh,
            int(settings.access_lifetime.total_seconds()),
            frozenset(code_or_token.scopes.split()),
            code_or_token.patient_id,
        )

    def _may_exchange(self, client_id: str, patient_id: str) -> bool:
        """Whether the app may still act and the patient's consent is in force."""
        try:
            app = self._catalogue.app(client_id)
        except NotFoundError:
            return False
        if not app.may_act(self._core.now()):
            return False
        return self._consents.active(patient_id, client_id) is not None

    def exchange(
        self, *, client_id: str, code: str, redirect_uri: str | None, code_verifier: str | None
    ) -> TokenSet:
        """Exchange an authorization code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5).

        A code works once, before it expires, for the client it was issued to, with the same
        redirect URI and the verifier of its challenge. A code presented a second time
        revokes every token issued from it (RFC 6749 §4.1.2).

        :raises OAuthError: ``invalid_grant`` whatever is wrong with the code (forged,
            expired, used, another client's, another redirect URI, wrong verifier), so that
            the answer does not tell which.
        """
        invalid = OAuthError("invalid_grant", "the code is invalid, expired, or already used")
        with self._core.storage.read() as tx:
            code_hash = self._lookup_hash(tx, code or "")
            row = None if code_hash is None else tx.oauth.code(code_hash)
        if row is None or row.client_id != client_id:
            raise self._refuse(client_id, invalid, what=_EXCHANGED)
        now = self._core.now()
        if row.used_at is not None:
            with self._core.unit() as unit:
                unit.tx.oauth.revoke_family(row.patient_id, row.family_id, unit.now)
                unit.record(
                    _client_actor(client_id, row.patient_id),
                    _REUSE,
                    Resource(row.patient_id, "oauth", row.family_id),
                    "code_replayed",
                    outcome=Outcome.DENIED,
                )
            raise invalid
        if (
            now >= row.expires_at
            or redirect_uri != row.redirect_uri
            or not pkce_matches(row.challenge, code_verifier)
            or not self._may_exchange(client_id, row.patient_id)
        ):
            raise self._refuse(
                client_id,
                invalid,
                patient_id=row.patient_id,
                what=_EXCHANGED,
                family_id=row.family_id,
            )
        with self._core.unit() as unit:
            if not unit.tx.oauth.use_code(row.patient_id, row.code_hash, unit.now):
                # Used by a concurrent request between the read and now: the same as a replay.
                unit.tx.oauth.revoke_family(row.patient_id, row.family_id, unit.now)
                unit.record(
                    _client_actor(client_id, row.patient_id),
                    _REUSE,
                    Resource(row.patient_id, "oauth", row.family_id),
                    "code_replayed",
                    outcome=Outcome.DENIED,
                )
                replayed = True
            else:
                tokens = self._issue(unit, row)
                unit.record(
                    Actor.app(client_id, row.patient_id, tokens.scopes),
                    _EXCHANGED,
                    Resource(row.patient_id, "oauth", row.family_id),
                    "code_exchanged",
                )
                replayed = False
        if replayed:
            raise invalid
        return tokens

    def refresh(self, *, client_id: str, refresh_token: str, scope: str | None = None) -> TokenSet:
        """Exchange a refresh token for a new pair (RFC 6749 §6), rotating it: the old one
        stops working. Presenting a refresh token that was already exchanged is a reuse
        (someone else holds a copy): the whole family of tokens is revoked.

        :param scope: a narrower set of scopes (never wider than the original grant).
        :raises OAuthError: ``invalid_grant`` for anything wrong with the token,
            ``invalid_scope`` for scopes beyond it.
        """
        invalid = OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked")
        with self._core.storage.read() as tx:
            token_hash = self._lookup_hash(tx, refresh_token or "")
            row = None if token_hash is None else tx.oauth.token(token_hash)
        if row is None or row.kind != _REFRESH or row.client_id != client_id:
            raise self._refuse(client_id, invalid, what=_REFRESHED)
        now = self._core.now()
        state = token_state(now, row.expires_at, row.revoked_at, row.rotated_at)
        if state is TokenState.ROTATED:
            with self._core.unit() as unit:
                revoked = unit.tx.oauth.revoke_family(row.patient_id, row.family_id, unit.now)
                unit.record(
                    _client_actor(client_id, row.patient_id),
                    _REUSE,
                    Resource(row.patient_id, "oauth", row.family_id),
                    "refresh_token_reused" if revoked else "refresh_token_reused_again",
                    outcome=Outcome.DENIED,
                )
            raise invalid
        if state is not TokenState.VALID or not self._may_exchange(client_id, row.patient_id):
            raise self._refuse(
                client_id,
                invalid,
                patient_id=row.patient_id,
                what=_REFRESHED,
                family_id=row.family_id,
            )
        granted = frozenset(row.scopes.split())
        if scope is not None:
            try:
                asked = parse_scopes(scope, granted)
            except OAuthError as exc:
                raise self._refuse(client_id, exc, patient_id=row.patient_id) from None
            row = attrs.evolve(row, scopes=format_scopes(asked))
        with self._core.unit() as unit:
            if not unit.tx.oauth.rotate(row.patient_id, row.token_hash, unit.now):
                # Exchanged by a concurrent request since the read: a reuse.
                unit.tx.oauth.revoke_family(row.patient_id, row.family_id, unit.now)
                unit.record(
                    _client_actor(client_id, row.patient_id),
                    _REUSE,
                    Resource(row.patient_id, "oauth", row.family_id),
                    "refresh_token_reused",
                    outcome=Outcome.DENIED,
                )
                reused = True
            else:
                tokens = self._issue(unit, row)
                unit.record(
                    Actor.app(client_id, row.patient_id, tokens.scopes),
                    _REFRESHED,
                    Resource(row.patient_id, "oauth", row.family_id),
                    "refresh_token_rotated",
                )
                reused = False
        if reused:
            raise invalid
        return tokens

    # --- revocation, introspection, resolution -----------------------------------------------

    def _row(self, token: str) -> OAuthTokenRow | None:
        with self._core.storage.read() as tx:
            token_hash = self._lookup_hash(tx, token or "")
            return None if token_hash is None else tx.oauth.token(token_hash)

    def revoke(self, *, client_id: str, token: str) -> bool:
        """Revoke *token* (RFC 7009): an access token alone, a refresh token with every token
        of its family. A token that is unknown, already revoked or another client's is left
        as it is (the answer is the same, RFC 7009 §2.2), and the attempt traced.

        :return: whether something was revoked.
        """
        row = self._row(token)
        if row is None or row.client_id != client_id:
            self._refuse(client_id, OAuthError("invalid_token", "unknown token"), what=_REVOKE)
            return False
        with self._core.unit() as unit:
            if row.kind == _REFRESH:
                count = unit.tx.oauth.revoke_family(row.patient_id, row.family_id, unit.now)
            else:
                count = int(unit.tx.oauth.revoke(row.patient_id, row.token_hash, unit.now))
            unit.record(
                _client_actor(client_id, row.patient_id),
                _REVOKE,
                Resource(row.patient_id, "oauth", row.family_id),
                f"{row.kind}_token_revoked" if count else "already_revoked",
            )
        return count > 0

    def introspect(self, *, client_id: str, token: str) -> Introspection:
        """What *token* is (RFC 7662), for the app it was issued to: any other caller, and
        any token that is expired, revoked, rotated, or whose app or consent is gone, gets
        ``active: false`` and nothing else."""
        row = self._row(token)
        if (
            row is None
            or row.client_id != client_id
            or token_state(self._core.now(), row.expires_at, row.revoked_at, row.rotated_at)
            is not TokenState.VALID
            or not self._may_exchange(client_id, row.patient_id)
        ):
            return Introspection(False)
        return Introspection(
            True,
            client_id=row.client_id,
            patient_id=row.patient_id,
            scopes=frozenset(row.scopes.split()),
            token_type=f"{row.kind}_token",
            issued_at=row.issued_at,
            expires_at=row.expires_at,
        )

    def actor(self, access_token: str) -> Actor:
        """The actor an access token stands for: ``Actor.app(client_id, patient_id,
        scopes)``. Whether it may do anything is the policy's: a token whose consent was
        revoked, or whose app was suspended, still resolves, and every action is then denied
        (``consent_not_given``, ``app_not_referenced``) and audited.

        :raises OAuthError: ``invalid_token`` for an unknown, expired or revoked token, or a
            refresh token (RFC 6750 §3.1); the refusal is traced.
        """
        row = self._row(access_token)
        if row is None or row.kind != _ACCESS:
            client_id = "unknown" if row is None else row.client_id
            raise self._refuse(
                client_id,
                OAuthError("invalid_token", "the access token is invalid"),
                patient_id=None if row is None else row.patient_id,
            )
        state = token_state(self._core.now(), row.expires_at, row.revoked_at)
        if state is not TokenState.VALID:
            raise self._refuse(
                row.client_id,
                OAuthError("invalid_token", f"the access token is {state}"),
                patient_id=row.patient_id,
                family_id=row.family_id,
            )
        return Actor.app(row.client_id, row.patient_id, row.scopes.split())

    def tick(
        self, now: datetime, *, batch: int = 1000, part: Slice | None = None
    ) -> dict[str, int]:
        """Delete codes and tokens that expired before *now* (their use is traced in the
        audit trail; the rows only served to check them).

        :param part: only the patients of this slice (:class:`~monespace.storage.Slice`):
            several runs, one per slice, share the work (``Space.tick``).

        .. versionchanged:: 0.3 *part*.
        """
        total = 0
        while True:
            with self._core.unit() as unit:
                purged = unit.tx.oauth.purge(now, limit=batch, part=part)
            total += purged
            if purged < batch:
                return {"oauth_purged": total}
