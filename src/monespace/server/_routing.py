"""One table of operations, from which both the routes and ``/openapi.json`` are built.

An :class:`Operation` names its method, path, request body, query parameters, response
model and who may call it. :func:`endpoint` turns it into a Starlette endpoint that checks
the session, the CSRF token, the content type and the body against the models before the
handler runs, and turns every error into a problem document.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final, TypeVar, get_args, get_type_hints

import anyio.to_thread
import attrs
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .._space import Space
from ..actors import Actor
from ..catalogue import OAuthError
from ..errors import AccessDeniedError, MonespaceError
from ._problems import (
    SECURITY_HEADERS,
    ProblemError,
    bad_request,
    from_library_error,
    not_found,
    problem_response,
    unauthenticated,
)
from ._sessions import RateLimiter, Session, SessionKind, SessionStore

__all__ = [
    "CONSENT_RULES",
    "Auth",
    "Call",
    "Operation",
    "Reply",
    "ServerState",
    "app_actor_of",
    "check_session",
    "consent_not_given",
    "endpoint",
    "invalid_token",
    "query_name",
]

_T = TypeVar("_T")
LOG: Final = logging.getLogger("monespace.server")

#: Path parameters are opaque ids (or RPPS numbers): anything else is "not found".
_PATH_PARAM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA_TYPE: Final = "application/json"


class Auth(StrEnum):
    """Who may call an operation."""

    NONE = "none"
    """Anyone (the session, if any, is ignored)."""
    SESSION = "session"
    """Any logged-in person or professional."""
    PROFESSIONAL = "professional"
    """A logged-in professional only."""


@attrs.frozen
class RateLimits:
    """Attempts allowed on the activation and login routes, within *window*: per client IP
    (across persons), and per NIR (or RPPS) *from one client IP*.

    The per-person limit is counted per address so that an attacker trying a person's NIR
    from many addresses never gets the holder's own login refused. They come on top of the
    library's growing delays (:class:`monespace.accounts.AttemptPolicy`), which the server
    asks for with the client's address as the source."""

    per_ip: int = 30
    per_person: int = 10
    window_seconds: int = 15 * 60


@attrs.define
class ServerState:
    """What the endpoints share: the space, the sessions, the limits and the settings."""

    space: Space
    sessions: SessionStore
    limits: dict[str, RateLimiter]
    secure_cookies: bool | None
    max_body_bytes: int
    demo: bool
    cookie_name_plain: str = "monespace_session"
    cookie_name_secure: str = "__Host-monespace_session"

    def now(self) -> datetime:
        """The space's time."""
        return self.space.clock.now()


@attrs.frozen
class Reply:
    """What a handler returns: a status, a body (an attrs object, a list of them or
    ``None``) and extra headers."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    set_session: str | None = None
    clear_session: bool = False


@attrs.define
class Call:
    """One request, checked: the session, the decoded body and query, the path parameters.

    On an operation with ``deferred_session``, the session is not read before the handler
    runs: the handler's first :meth:`run_as` reads and checks it in its worker thread, in
    the same hand-over as the library call (a request then crosses to a worker thread
    once, not twice). Until then :attr:`session` and :meth:`actor` refuse to answer.
    """

    request: Request
    state: ServerState
    _session: Session | None
    token: str | None
    body: Any
    query: Any
    path: dict[str, str]
    #: The app an OAuth access token stands for, on the operations open to apps.
    app: Actor | None = None
    #: The operation, when its session is still to be read by :meth:`run_as`.
    _pending: Operation | None = None
    _from_cookie: bool = False

    @property
    def session(self) -> Session | None:
        """The caller's session (``None`` for an app, or on an operation open to anyone)."""
        if self._pending is not None:
            raise RuntimeError("the session of a deferred_session operation is read by run_as")
        return self._session

    @session.setter
    def session(self, session: Session | None) -> None:
        self._session = session
        self._pending = None

    async def run(self, function: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """Run a (blocking) library call in a worker thread."""
        return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))

    async def run_as(
        self, patient_id: str, function: Callable[..., _T], /, *args: Any, **kwargs: Any
    ) -> _T:
        """Run ``function(actor, *args, **kwargs)`` in a worker thread, where *actor* is
        :meth:`actor` on *patient_id*'s space; a session still to be read is read and
        checked there first (401, 403 or 404 as :func:`check_session` decides)."""

        def work() -> _T:
            self._read_session()
            return function(self.actor(patient_id), *args, **kwargs)

        return await anyio.to_thread.run_sync(work)

    async def check(self) -> None:
        """Read and check a session still to be read, in a worker thread of its own (before
        answering a bad request, so that a caller without a session gets its 401 first)."""
        if self._pending is not None:
            await anyio.to_thread.run_sync(self._read_session)

    def _read_session(self) -> None:
        if self._pending is not None:
            self._session, self.app = check_session(
                self._pending,
                self.state,
                self.token,
                from_cookie=self._from_cookie,
                csrf=self.request.headers.get("x-csrf-token"),
            )
            self._pending = None

    def actor(self, patient_id: str) -> Actor:
        """The actor the session (or the app's access token) acts as on *patient_id*'s
        space. An app always acts as itself for the patient of its token; the policy
        refuses it any other patient."""
        if self.app is not None:
            return self.app
        session = self.session
        assert session is not None
        return session.actor_for(patient_id, self.state.now())

    def client_ip(self) -> str:
        """The peer's address (the demo server is not meant to run behind a proxy)."""
        client = self.request.client
        return client.host if client is not None else "unknown"

    async def limit(self, bucket: str, key: str) -> None:
        """Count one attempt in *bucket* for *key*; refuse with 429 past the limit."""
        wait = await self.state.limits[bucket].ahit(key)
        if wait is not None:
            raise ProblemError(
                429,
                "too-many-attempts",
                "Too many attempts",
                "Wait before trying again.",
                headers={"retry-after": str(int(wait))},
            )


Handler = Callable[[Call], Awaitable[Reply]]


@attrs.frozen
class Operation:
    """One operation of the API.

    :param body: the attrs class of the JSON request body, if any.
    :param query: the attrs class whose fields are the query parameters, if any.
    :param response: the response model (an attrs class, ``list[Model]``), or ``None`` for
        204 or for a non-JSON response described by *response_media_type*.
    :param errors: the problem statuses the operation may answer, for the documentation.
    :param app_scope: the OAuth scope an app needs for this operation; only operations that
        name one accept an app's access token (the policy still decides, on the scope
        of the token *and* of the patient's consent).
    :param deferred_session: read the session in the worker thread of the handler's first
        :meth:`Call.run_as`, not in a hand-over of its own before the handler. Only for a
        ``GET`` open to sessions whose handler uses the session through ``run_as`` first;
        a request without any token is still refused before the handler.
    """

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    auth: Auth = Auth.SESSION
    body: type | None = None
    query: type | None = None
    response: Any = None
    status: int = 200
    response_media_type: str | None = None
    errors: tuple[int, ...] = ()
    description: str | None = None
    app_scope: str | None = None
    deferred_session: bool = False

    def __attrs_post_init__(self) -> None:
        if self.deferred_session and (self.method != "GET" or self.auth is not Auth.SESSION):
            raise ValueError(f"{self.operation_id}: deferred_session is for GETs open to sessions")

    @property
    def path_params(self) -> list[str]:
        """The names of the path's parameters, in order."""
        return re.findall(r"{([a-z_]+)}", self.path)


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}
_ENCODER = msgspec.json.Encoder()


def _decoder(model: type) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = _DECODERS[model] = msgspec.json.Decoder(model)
    return decoder


def encode(value: Any) -> bytes:
    """JSON bytes of a response body."""
    return _ENCODER.encode(value)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past *limit* bytes (checked while it streams)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> ProblemError:
    """The answer to a body over the limit."""
    return ProblemError(
        413, "too-large", "Request too large", f"Request bodies are limited to {limit} bytes."
    )


def session_token(request: Request, state: ServerState) -> tuple[str | None, bool]:
    """The session token the client sent, and whether it came in a cookie.

    ``Authorization: Bearer`` wins over the cookie; a cookie-borne session needs a CSRF token
    for changes, a bearer token does not (browsers never add it by themselves).
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return None, False
    for name in (state.cookie_name_secure, state.cookie_name_plain):
        cookie = request.cookies.get(name)
        if cookie:
            return cookie, True
    return None, False


def check_origin(request: Request) -> None:
    """Refuse a state-changing request that a browser sent from another site."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser (curl, scripts): CSRF needs a browser
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != expected:
        raise ProblemError(
            403, "cross-origin", "Cross-site request refused", "The request came from another site."
        )


def wants_secure_cookie(request: Request, state: ServerState) -> bool:
    """Whether the session cookie gets the ``Secure`` attribute.

    Explicit when ``secure_cookies`` was given; otherwise always, except for plain HTTP on a
    loopback address (``monespace demo`` on a laptop).
    """
    if state.secure_cookies is not None:
        return state.secure_cookies
    if request.url.scheme == "https":
        return True
    server = request.scope.get("server")
    host = str(server[0]) if server else ""
    return not (host in ("localhost", "::1") or host.startswith("127."))


def set_session_cookie(
    response: Response, request: Request, state: ServerState, token: str
) -> None:
    """Attach the session cookie: HttpOnly, SameSite=Strict, Secure except on loopback."""
    secure = wants_secure_cookie(request, state)
    response.set_cookie(
        state.cookie_name_secure if secure else state.cookie_name_plain,
        token,
        max_age=int(state.sessions.absolute.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, request: Request, state: ServerState) -> None:
    """Remove both possible session cookies."""
    response.delete_cookie(state.cookie_name_plain, path="/", httponly=True, samesite="strict")
    response.delete_cookie(
        state.cookie_name_secure, path="/", secure=True, httponly=True, samesite="strict"
    )


def _json_content_type(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media == JSON_MEDIA_TYPE


#: What a date or date-time in a query looks like: an ISO 8601 calendar date, with a time
#: after it or not. msgspec's lax conversion (which turns the strings of a query into
#: numbers and booleans) would also take a number as a Unix timestamp: ``until=769907``.
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")


@functools.cache
def _moment_fields(model: type) -> frozenset[str]:
    """The fields of a query model whose type is (or includes) a date or a date-time."""

    def temporal(hint: Any) -> bool:
        if isinstance(hint, type) and issubclass(hint, date):
            return True
        return any(temporal(arg) for arg in get_args(hint))

    hints = get_type_hints(model, include_extras=True)
    return frozenset(f.name for f in attrs.fields(model) if temporal(hints[f.name]))


def query_name(field: str) -> str:
    """The query parameter of a query model's field: its name without a trailing ``_``
    (``from_`` is ``from``)."""
    return field.removesuffix("_")


def _query(op: Operation, request: Request) -> Any:
    assert op.query is not None
    # A field named after a Python keyword (``from_``) is the parameter without its "_".
    fields = {query_name(f.name): f.name for f in attrs.fields(op.query)}
    moments = _moment_fields(op.query)
    raw: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        name = fields.get(key)
        if name is None:
            raise bad_request(f"unknown query parameter {key[:40]!r}")
        if name in raw:
            raise bad_request(f"query parameter {key!r} given twice")
        if name in moments and not _ISO_MOMENT.match(value):
            raise bad_request(f"query parameter {key!r} must be an ISO 8601 date or date-time")
        raw[name] = value
    try:
        return msgspec.convert(raw, op.query, strict=False)
    except msgspec.ValidationError as exc:
        raise bad_request(str(exc)) from None


def endpoint(op: Operation, state: ServerState) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of *op*."""

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await _handle(op, state, request)
        except ProblemError as error:
            response = problem_response(error)
        except MonespaceError as exc:
            response = problem_response(from_library_error(exc))
        LOG.info(
            "%s %s -> %d (%.1f ms)",
            op.method,
            op.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    handle.__name__ = op.operation_id
    return handle


def check_session(
    op: Operation, state: ServerState, token: str | None, *, from_cookie: bool, csrf: str | None
) -> tuple[Session | None, Actor | None]:
    """The session of *token* (or, on an operation open to apps, the app of an access
    token), checked against what *op* needs: 401 without either, 404 for a patient on a
    professional's operation, 403 for a cookie-borne change without its CSRF token.

    It reads the database: call it in a worker thread."""
    session = state.sessions.get(token)
    if session is None:
        if op.app_scope is not None and token is not None and not from_cookie:
            return None, app_actor_of(state, token)
        raise unauthenticated()
    if op.auth is Auth.PROFESSIONAL and session.kind is not SessionKind.PROFESSIONAL:
        raise not_found()
    if from_cookie and op.method in _UNSAFE and not session.csrf_matches(csrf):
        raise ProblemError(
            403,
            "csrf",
            "CSRF token missing or wrong",
            "Send the session's csrf_token in the X-CSRF-Token header.",
        )
    return session, None


async def _call(op: Operation, state: ServerState, request: Request, path: dict[str, str]) -> Call:
    """The call of a request, its body and query still to be read: its session checked now,
    or left to the handler's first :meth:`Call.run_as` on a ``deferred_session``
    operation."""
    token, from_cookie = session_token(request, state)
    if op.auth is Auth.NONE:
        return Call(request, state, None, token, None, None, path)
    if op.deferred_session:
        if token is None:
            raise unauthenticated()
        return Call(
            request, state, None, token, None, None, path, pending=op, from_cookie=from_cookie
        )
    session, app = await anyio.to_thread.run_sync(
        functools.partial(
            check_session,
            op,
            state,
            token,
            from_cookie=from_cookie,
            csrf=request.headers.get("x-csrf-token"),
        )
    )
    return Call(request, state, session, token, None, None, path, app)


async def _handle(op: Operation, state: ServerState, request: Request) -> Response:
    path = {name: str(request.path_params[name]) for name in op.path_params}
    if any(not _PATH_PARAM.match(value) for value in path.values()):
        raise not_found()
    if "access_token" in request.query_params:
        # RFC 6750 §2.3 allows it, but a token in a URL ends up in logs and histories.
        raise ProblemError(
            400,
            "token-in-query",
            "Malformed request",
            "Send the access token in the Authorization header, never in the URL.",
            headers={"www-authenticate": 'Bearer realm="monespace", error="invalid_request"'},
        )
    if op.method in _UNSAFE:
        check_origin(request)
    call = await _call(op, state, request, path)
    if op.body is not None:
        if not _json_content_type(request):
            raise ProblemError(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"Send the body as {JSON_MEDIA_TYPE}.",
            )
        raw = await read_body(request, state.max_body_bytes)
        try:
            call.body = _decoder(op.body).decode(raw)
        except msgspec.ValidationError as exc:
            raise bad_request(str(exc)) from None
        except (msgspec.DecodeError, RecursionError):
            # msgspec refuses nesting deeper than its recursion limit with RecursionError.
            raise bad_request("the body is not valid JSON", kind="malformed", status=400) from None
    try:
        if op.query is not None:
            call.query = _query(op, request)
        elif request.query_params:
            raise bad_request("this operation takes no query parameters")
    except ProblemError:
        await call.check()
        raise
    try:
        reply = await op.handler(call)
    except AccessDeniedError as exc:
        if call.app is not None and exc.rule in CONSENT_RULES:
            raise consent_not_given(op.app_scope) from None
        raise
    return render(reply, request, state)


#: The policy's denials of an app that the app can act on: the patient's consent (or the
#: app's référencement) does not cover the request. Other denials (another patient, what
#: the patient cannot see) stay "not found".
CONSENT_RULES: Final = frozenset({"consent_not_given", "app_not_referenced", "outside_app_scopes"})


def consent_not_given(scope: str | None) -> ProblemError:
    """The answer to an app whose consent is gone or does not cover the request
    (RFC 6750 §3.1 ``insufficient_scope``)."""
    challenge = 'Bearer realm="monespace", error="insufficient_scope"'
    if scope is not None:
        challenge += f', scope="{scope}"'
    return ProblemError(
        403,
        "consent-not-given",
        "Consent not given",
        "The patient's consent does not cover this request, or the app may not act now.",
        headers={"www-authenticate": challenge},
    )


def invalid_token() -> ProblemError:
    """The answer to an unknown, expired or revoked access token (RFC 6750 §3.1)."""
    return ProblemError(
        401,
        "invalid-token",
        "Invalid token",
        "The access token is invalid, expired or revoked.",
        headers={"www-authenticate": 'Bearer realm="monespace", error="invalid_token"'},
    )


def app_actor_of(state: ServerState, token: str) -> Actor:
    """The app an access token stands for, or a 401 ``invalid_token``. It reads the
    database: call it in a worker thread."""
    if len(token) > 256:
        raise invalid_token()
    try:
        return state.space.oauth.actor(token)
    except OAuthError:
        raise invalid_token() from None


def render(reply: Reply, request: Request, state: ServerState) -> Response:
    """The HTTP response of a handler's reply."""
    if isinstance(reply.body, Response):
        response = reply.body
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.update(reply.headers)
    else:
        # A response built here takes every header at once (one pass over them, not one
        # per header).
        headers = {**SECURITY_HEADERS, **reply.headers}
        if reply.body is None:
            response = Response(status_code=reply.status, headers=headers)
        else:
            response = Response(
                encode(reply.body),
                status_code=reply.status,
                media_type=JSON_MEDIA_TYPE,
                headers=headers,
            )
    if reply.clear_session:
        clear_session_cookie(response, request, state)
    if reply.set_session is not None:
        set_session_cookie(response, request, state, reply.set_session)
    return response
