"""OAuth 2 for referenced apps: the authorization server of the demo.

- ``GET /.well-known/oauth-authorization-server``: the metadata (RFC 8414);
- ``GET /oauth/authorize``: the consent page (authorization code with PKCE S256 only,
  RFC 6749 §4.1, RFC 7636), shown to the patient logged in with the demo's session;
  ``POST /oauth/authorize``: their answer, with the session's CSRF token;
- ``POST /oauth/token``: codes and refresh tokens exchanged for tokens (public clients: the
  ``client_id`` in the body, no secret; errors as RFC 6749 §5.2 JSON);
- ``POST /oauth/revoke`` (RFC 7009) and ``POST /oauth/introspect`` (RFC 7662): for the
  app the token was issued to, which names itself with its ``client_id``.

The checks are the library's (``space.oauth``): this module parses forms, renders the page
and maps errors. A redirect URI that is not registered never gets a redirect (an error
page instead), so that the server cannot be used as an open redirector.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import anyio.to_thread
import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..actors import Actor
from ..catalogue import App, OAuthError, Scope
from ..errors import MonespaceError
from ..interop.fhir import translate_scope_parameter
from ._page import _layout
from ._problems import SECURITY_HEADERS, ProblemError
from ._routing import ServerState, check_origin, read_body, session_token
from ._sessions import SessionKind

__all__ = ["SCOPE_WORDS", "metadata", "oauth_routes"]

_FORM_LIMIT: Final = 16 * 1024
_OPAQUE_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_STATE_MAX: Final = 512
#: The parameters of an authorization request carried through the consent page.
_REQUEST_FIELDS: Final = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
#: What each scope lets the app do, in the patient's words.
SCOPE_WORDS: Final = {
    Scope.DOCUMENTS_READ: "Lire les documents de votre dossier (ceux que vous pouvez voir)",
    Scope.DOCUMENTS_WRITE: "Ajouter des documents à votre dossier",
    Scope.AGENDA_READ: "Consulter votre agenda",
    Scope.AGENDA_WRITE: "Ajouter et modifier des rendez-vous de votre agenda",
    Scope.MESURES_READ: "Consulter vos mesures de santé (poids, tension…)",
    Scope.MESURES_WRITE: "Enregistrer des mesures de santé",
}
_e = html.escape
_JSON = msgspec.json.Encoder()


class _FormError(Exception):
    """A form the endpoint cannot read (wrong media type, repeated parameter...)."""


async def _form(request: Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body; a repeated parameter is refused
    (RFC 6749 §3.1, §3.2)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise _FormError("send the parameters as application/x-www-form-urlencoded")
    raw = await read_body(request, _FORM_LIMIT)
    try:
        fields = parse_qs(raw.decode("utf-8"), max_num_fields=30, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise _FormError("the form cannot be read") from None
    return _single(fields)


def _single(fields: dict[str, list[str]]) -> dict[str, str]:
    if any(len(values) > 1 for values in fields.values()):
        raise _FormError("a parameter is given more than once")
    return {name: values[0] for name, values in fields.items()}


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        _JSON.encode(body),
        status_code=status,
        media_type="application/json",
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def _oauth_error(error: str, description: str, *, basic: bool = False) -> Response:
    """An RFC 6749 §5.2 error: 401 for ``invalid_client``, 400 otherwise."""
    status = 401 if error == "invalid_client" else 400
    headers = {"www-authenticate": 'Basic realm="monespace"'} if status == 401 and basic else {}
    return _json({"error": error, "error_description": description}, status, headers)


def _client_id(request: Request, form: dict[str, str]) -> str:
    """The client's id (public clients send it in the body; HTTP Basic with an empty
    secret is accepted too, as some libraries send it)."""
    header = request.headers.get("authorization")
    if header is not None and header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "unreadable client credentials") from None
        name, _, secret = decoded.partition(":")
        if secret:
            raise OAuthError("invalid_client", "apps are public clients: send no secret")
        if "client_id" in form and form["client_id"] != name:
            raise OAuthError("invalid_request", "two different client ids")
        return name
    client_id = form.get("client_id")
    if not client_id:
        raise OAuthError("invalid_client", "send the client_id")
    return client_id


def _peer(request: Request) -> str:
    client = request.client
    return client.host if client is not None else "unknown"


def _slow_down(wait: float) -> Response:
    return _json({"error": "slow_down"}, 429, {"retry-after": str(int(wait))})


def _endpoint(
    state: ServerState,
    handler: Callable[[ServerState, Request, dict[str, str], str], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """A form-posting endpoint of the token service, with its errors as RFC 6749 JSON."""

    async def endpoint(request: Request) -> Response:
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        # Only refusals count against the address: an app's backend refreshing the tokens
        # of many patients is not slowed down, someone guessing codes or tokens is.
        limiter = state.limits["oauth-ip"]
        wait = await limiter.awaiting(_peer(request))
        if wait is not None:
            return _slow_down(wait)
        # No origin check here: these endpoints use no cookie (nothing ambient to forge).
        try:
            form = await _form(request)
            client_id = _client_id(request, form)
            return await handler(state, request, form, client_id)
        except _FormError as exc:
            return _oauth_error("invalid_request", str(exc))
        except OAuthError as exc:
            await limiter.ahit(_peer(request))
            return _oauth_error(exc.error, exc.description, basic=basic)
        except ProblemError as exc:  # a body over the limit
            return _oauth_error("invalid_request", exc.problem.detail or exc.problem.title)

    endpoint.__name__ = handler.__name__.lstrip("_")
    return endpoint


async def _token(
    state: ServerState, _request: Request, form: dict[str, str], client_id: str
) -> Response:
    oauth = state.space.oauth
    grant = form.get("grant_type")
    if grant == "authorization_code":
        tokens = await anyio.to_thread.run_sync(
            lambda: oauth.exchange(
                client_id=client_id,
                code=form.get("code", ""),
                redirect_uri=form.get("redirect_uri"),
                code_verifier=form.get("code_verifier"),
            )
        )
    elif grant == "refresh_token":
        tokens = await anyio.to_thread.run_sync(
            lambda: oauth.refresh(
                client_id=client_id,
                refresh_token=form.get("refresh_token", ""),
                scope=form.get("scope"),
            )
        )
    else:
        raise OAuthError("unsupported_grant_type", "grant types: authorization_code, refresh_token")
    return _json(
        {
            "access_token": tokens.access_token,
            "token_type": tokens.token_type,
            "expires_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token,
            "scope": " ".join(sorted(tokens.scopes)),
            "patient": tokens.patient_id,
        }
    )


async def _revoke(
    state: ServerState, _request: Request, form: dict[str, str], client_id: str
) -> Response:
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "send the token to revoke")
    hint = form.get("token_type_hint")
    if hint is not None and hint not in ("access_token", "refresh_token"):
        raise OAuthError("unsupported_token_type", "hints: access_token, refresh_token")
    oauth = state.space.oauth
    await anyio.to_thread.run_sync(lambda: oauth.revoke(client_id=client_id, token=token))
    return Response(status_code=200, headers=SECURITY_HEADERS)


async def _introspect(
    state: ServerState, _request: Request, form: dict[str, str], client_id: str
) -> Response:
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "send the token to introspect")
    oauth = state.space.oauth
    found = await anyio.to_thread.run_sync(
        lambda: oauth.introspect(client_id=client_id, token=token)
    )
    if not found.active:
        return _json({"active": False})
    assert found.issued_at is not None
    assert found.expires_at is not None
    return _json(
        {
            "active": True,
            "client_id": found.client_id,
            "scope": " ".join(sorted(found.scopes)),
            "token_type": found.token_type,
            "sub": found.patient_id,
            "patient": found.patient_id,
            "iat": int(found.issued_at.timestamp()),
            "exp": int(found.expires_at.timestamp()),
        }
    )


def _issuer(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def metadata(issuer: str) -> dict[str, Any]:
    """The authorization server's metadata (RFC 8414 §2) for *issuer*."""
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/oauth/authorize",
        "token_endpoint": issuer + "/oauth/token",
        "revocation_endpoint": issuer + "/oauth/revoke",
        "introspection_endpoint": issuer + "/oauth/introspect",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": [str(s) for s in Scope],
        "service_documentation": issuer + "/openapi.json",
    }


async def _metadata(request: Request) -> Response:
    return _json(metadata(_issuer(request)))


# --- the consent page -------------------------------------------------------------------------


def _invalid_request_page(message: str) -> Response:
    """The answer when the client or its redirect URI cannot be trusted: a page, never a
    redirect (RFC 6749 §4.1.2.1)."""
    body = (
        f'<p class="error" role="alert">{_e(message)}</p>'
        "<p>Cette demande de connexion d'une application n'est pas valide. Aucun accès n'a "
        "été donné. Vous pouvez fermer cette page.</p>"
    )
    return _layout("Demande de connexion refusée", body, status=400)


def _back_to_client(redirect_uri: str, params: dict[str, str]) -> Response:
    """A redirect to the client's (registered) redirect URI with *params* added."""
    parts = urlsplit(redirect_uri)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def _error_back(request: dict[str, str], error: OAuthError) -> Response:
    params = {"error": error.error, "error_description": error.description}
    if request.get("state"):
        params["state"] = request["state"]
    return _back_to_client(request["redirect_uri"], params)


def _login_page(next_url: str) -> Response:
    body = f"""<p>Une application demande à se connecter à votre espace. Connectez-vous d'abord
avec les informations de votre carte Vitale (connexion de démonstration).</p>
<form method="post" action="/login" class="card">
<input type="hidden" name="next" value="{_e(next_url)}">
<label>Numéro de sécurité sociale <input name="nir" id="nir" required autocomplete="off"
 inputmode="numeric" maxlength="32"></label>
<label>Numéro de série de la carte Vitale <input name="vitale_serial" id="vitale_serial"
 required autocomplete="off" maxlength="64"></label>
<label>Date de naissance <input name="birth_date" id="birth_date" type="date" required></label>
<button type="submit" id="login">Se connecter</button>
</form>"""
    return _layout("Connexion", body, status=401)


def _for_whom(spaces: list[str]) -> str:
    """The choice of the space to connect, for a person who represents others."""
    if len(spaces) < 2:
        return ""
    options = "".join(
        f'<label><input type="radio" name="patient" value="{_e(pid)}"'
        f"{' checked' if number == 0 else ''}> "
        f"{'Mon espace' if number == 0 else f'Espace représenté n° {number}'}</label>"
        for number, pid in enumerate(spaces)
    )
    return f'<fieldset id="for-whom"><legend>Pour quel espace ?</legend>{options}</fieldset>'


def _consent_page(
    app: App, scopes: frozenset[Scope], request: dict[str, str], csrf: str, spaces: list[str]
) -> Response:
    items = "".join(
        f"<li>{_e(SCOPE_WORDS[s])} <code>{_e(str(s))}</code></li>" for s in sorted(scopes)
    )
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{_e(request.get(name, ""))}">'
        for name in _REQUEST_FIELDS
    )
    body = f"""<section class="card" id="consent">
<p><strong id="app-name">{_e(app.name)}</strong>, service référencé publié par
<strong id="publisher">{_e(app.publisher)}</strong>, demande à :</p>
<ul id="scopes">{items}</ul>
<p>Vous pourrez restreindre ou retirer cet accès à tout moment ; chaque accès de
l'application apparaîtra dans l'historique de votre espace.</p>
<form method="post" action="/oauth/authorize">
{hidden}{_for_whom(spaces)}<input type="hidden" name="csrf_token" value="{_e(csrf)}">
<button type="submit" name="decision" value="approve" id="approve">Autoriser</button>
<button type="submit" name="decision" value="deny" id="deny">Refuser</button>
</form>
</section>"""
    page = _layout("Connecter une application", body)
    # The answer to the form redirects to the app: browsers apply form-action to that
    # redirect, so the app's origin is allowed for this page only.
    target = urlsplit(request["redirect_uri"])
    origin = f"{target.scheme}://{target.netloc}"
    page.headers["content-security-policy"] = SECURITY_HEADERS["content-security-policy"].replace(
        "form-action 'self'", f"form-action 'self' {origin}"
    )
    return page


def _app_scopes(scope: str | None) -> str | None:
    return None if scope is None else translate_scope_parameter(scope)


async def _check(
    state: ServerState, request: dict[str, str]
) -> tuple[App, frozenset[Scope]] | Response:
    """The app and scopes of an authorization request, or the page or redirect that
    refuses it."""
    oauth = state.space.oauth
    try:
        await anyio.to_thread.run_sync(
            lambda: oauth.client(request.get("client_id", ""), request.get("redirect_uri"))
        )
    except OAuthError as exc:
        return _invalid_request_page(exc.description)
    if len(request.get("state", "")) > _STATE_MAX:
        return _error_back(request, OAuthError("invalid_request", "state is too long"))
    try:
        return await anyio.to_thread.run_sync(
            lambda: oauth.check_request(
                request["client_id"],
                request["redirect_uri"],
                # SMART on FHIR scopes (patient/Observation.rs...) count as the app scopes
                # they amount to.
                scope=_app_scopes(request.get("scope")),
                code_challenge=request.get("code_challenge"),
                code_challenge_method=request.get("code_challenge_method"),
                response_type=request.get("response_type"),
            )
        )
    except OAuthError as exc:
        return _error_back(request, exc)


async def _patient_session(state: ServerState, request: Request) -> tuple[str, str] | None:
    """The patient logged in with the demo's session cookie: (patient id, CSRF token)."""
    token, from_cookie = session_token(request, state)
    session = await state.sessions.aget(token) if from_cookie else None
    if session is None or session.kind is not SessionKind.PATIENT:
        return None
    return session.person_id, session.csrf_token


def _authorize_get(state: ServerState) -> Callable[[Request], Awaitable[Response]]:
    async def authorize(request: Request) -> Response:
        try:
            params = _single(parse_qs(request.url.query, max_num_fields=30))
        except (_FormError, ValueError):
            return _invalid_request_page("Un paramètre est répété.")
        checked = await _check(state, params)
        if isinstance(checked, Response):
            return checked
        app, scopes = checked
        who = await _patient_session(state, request)
        if who is None:
            return _login_page("/oauth/authorize?" + request.url.query)
        spaces = await anyio.to_thread.run_sync(
            state.space.accounts.spaces_of, Actor.patient(who[0])
        )
        return _consent_page(app, scopes, params, who[1], spaces)

    return authorize


def _authorize_post(state: ServerState) -> Callable[[Request], Awaitable[Response]]:
    async def decide(request: Request) -> Response:
        try:
            check_origin(request)
            form = await _form(request)
        except (ProblemError, _FormError):
            return _invalid_request_page("La demande n'a pas pu être vérifiée.")
        fields = {k: v for k, v in form.items() if k in _REQUEST_FIELDS}
        checked = await _check(state, fields)
        if isinstance(checked, Response):
            return checked
        return await _answer(state, request, form, fields, checked[1])

    return decide


async def _answer(
    state: ServerState,
    request: Request,
    form: dict[str, str],
    fields: dict[str, str],
    scopes: frozenset[Scope],
) -> Response:
    """The patient's answer to a checked authorization request."""
    oauth = state.space.oauth
    client_id = fields["client_id"]
    token, from_cookie = session_token(request, state)
    session = await state.sessions.aget(token) if from_cookie else None
    if session is None or session.kind is not SessionKind.PATIENT:
        return _login_page("/oauth/authorize?" + urlencode(fields))
    # The holder's own space, or one they represent (the policy checks that they do).
    patient_id = form.get("patient") or session.person_id
    if not _OPAQUE_ID.match(patient_id):
        return _invalid_request_page("La demande n'a pas pu être vérifiée.")
    if not session.csrf_matches(form.get("csrf_token")):
        refusal = OAuthError("access_denied", "the consent form lacked its CSRF token")
        await anyio.to_thread.run_sync(
            lambda: oauth.refused(client_id, refusal, patient_id=patient_id)
        )
        return _layout(
            "Requête refusée",
            "<p>La requête n'a pas pu être vérifiée : aucun accès n'a été donné. "
            "Recommencez depuis l'application.</p>",
            status=403,
        )
    if form.get("decision") != "approve":
        denial = OAuthError("access_denied", "the patient refused")
        await anyio.to_thread.run_sync(
            lambda: oauth.refused(client_id, denial, patient_id=patient_id)
        )
        return _error_back(fields, denial)
    actor = session.actor_for(patient_id, state.now())
    return await _grant(state, actor, patient_id, fields, scopes)


async def _grant(
    state: ServerState,
    actor: Actor,
    patient_id: str,
    fields: dict[str, str],
    scopes: frozenset[Scope],
) -> Response:
    """Record the consent *actor* gives for *patient_id*, issue a code, and send it to the
    app."""
    client_id = fields["client_id"]
    try:
        await anyio.to_thread.run_sync(
            lambda: state.space.consents.grant(actor, patient_id, client_id, scopes)
        )
        code = await anyio.to_thread.run_sync(
            lambda: state.space.oauth.authorize(
                actor,
                patient_id,
                client_id=client_id,
                redirect_uri=fields["redirect_uri"],
                scopes=scopes,
                code_challenge=fields["code_challenge"],
            )
        )
    except OAuthError as exc:
        return _error_back(fields, exc)
    except MonespaceError:
        return _error_back(fields, OAuthError("access_denied", "the consent could not be given"))
    params = {"code": code.code}
    if fields.get("state"):
        params["state"] = fields["state"]
    return _back_to_client(fields["redirect_uri"], params)


def oauth_routes(state: ServerState) -> list[BaseRoute]:
    """The routes of the authorization server."""
    return [
        Route("/.well-known/oauth-authorization-server", _metadata, methods=["GET"]),
        Route("/oauth/authorize", _authorize_get(state), methods=["GET"]),
        Route("/oauth/authorize", _authorize_post(state), methods=["POST"]),
        Route("/oauth/token", _endpoint(state, _token), methods=["POST"]),
        Route("/oauth/revoke", _endpoint(state, _revoke), methods=["POST"]),
        Route("/oauth/introspect", _endpoint(state, _introspect), methods=["POST"]),
    ]
