"""The sandbox's ASGI middleware: it records what the app under test does and injects the
scenario's faults.

It sits in front of the demo server's application. For every request it keeps an
:class:`Exchange`: the method, the route (patient ids replaced by ``{patient_id}``), the
names of the query parameters, of the form fields and of the headers, the values of a few
parameters that are never secret (``scope``, ``grant_type``, ``code_challenge_method``…),
which issued token authenticated it (as a label, ``access-1``), the status answered, and
the fault injected, if any. Token values never leave this module: the tokens the token
endpoint issues are kept as SHA-256 digests, to recognise them in a header or in a URL.

It also answers ``GET /sandbox/authorize``, the sandbox's stand-in for the patient's
browser: the same parameters as ``/oauth/authorize``, and the synthetic patient consents
at once (no login, no consent page). That route exists only in the sandbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio.to_thread
import attrs

from .._space import Space
from ..actors import Actor
from ..catalogue import OAuthError, Scope
from ..errors import MonespaceError, NotFoundError

__all__ = ["SANDBOX_AUTHORIZE_PATH", "Exchange", "Fault", "Recorder", "Scenario"]

ASGIScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]

#: The sandbox's auto-approving authorization endpoint.
SANDBOX_AUTHORIZE_PATH: Final = "/sandbox/authorize"

#: Parameters whose values are recorded: none of them is a secret or health data.
_PLAIN_PARAMS: Final = frozenset(
    {
        "scope",
        "grant_type",
        "response_type",
        "code_challenge_method",
        "token_type_hint",
        "offset",
        "limit",
        "kind",
    }
)
#: Parameter names that carry a secret: never acceptable in a URL.
SECRET_PARAMS: Final = frozenset(
    {"access_token", "refresh_token", "token", "code_verifier", "client_secret", "id_token"}
)
_PROBLEM: Final = "application/problem+json"


class Fault:
    """The faults the sandbox injects (the values of :attr:`Exchange.fault`)."""

    RATE_LIMITED: Final = "rate_limited"
    """A 429 with ``Retry-After``."""
    UNAVAILABLE: Final = "unavailable"
    """A 503 with ``Retry-After``."""
    TOKEN_EXPIRED: Final = "token_expired"  # noqa: S105 - a fault's name, not a secret
    """A 401 ``invalid_token``: the access token expired early."""
    CONSENT_REVOKED: Final = "consent_revoked"
    """The first 403 "consent not given" after the patient revoked the consent (the server's
    own answer: the sandbox only revoked)."""
    PAGE_CAPPED: Final = "page_capped"
    """A listing answered with fewer items than asked: the app must follow ``total``."""


@attrs.frozen
class Scenario:
    """When the faults happen, counted in the app's calls to a patient's data.

    :param rate_limited_at: the call answered 429.
    :param unavailable_at: the call answered 503.
    :param expire_token_at: the call whose access token is declared expired (401).
    :param revoke_after: the patient revokes the consent once the app has read a listing to
        its last page and refreshed its token, or at the latest before this call.
    :param retry_after: the seconds the 429 and 503 ask to wait.
    :param page_cap: the most documents a listing page holds, whatever the app asks.
    """

    rate_limited_at: int = 2
    unavailable_at: int = 4
    expire_token_at: int = 6
    revoke_after: int = 12
    retry_after: int = 1
    page_cap: int = 5


@attrs.frozen
class Exchange:
    """One request of the app and the sandbox's answer, without any secret or health data.

    :param seq: its rank in the run, from 1.
    :param at: seconds since the run started, when the request arrived.
    :param answered: seconds since the run started, when the answer was sent.
    :param kind: ``authorize``, ``token``, ``revoke``, ``introspect``, ``metadata``,
        ``data`` (a patient's data with a bearer token), or ``other``.
    :param route: the path, the sandbox patient's id replaced by ``{patient_id}`` and any
        token by ``{token}``.
    :param query_keys: the names of the query parameters, in order.
    :param form_keys: the names of the form fields of a form body.
    :param params: the values of the parameters that are never secret (``scope``…).
    :param headers: the names of the request's headers.
    :param token: the label of the bearer token used (``access-2``), ``unknown`` for a
        token the sandbox never issued, ``None`` without one.
    :param secret_in_url: a secret (a token, a verifier) was in the URL.
    :param status: the status answered.
    :param fault: the fault injected (:class:`Fault`), if any.
    :param retry_after: the ``Retry-After`` answered, in seconds.
    :param listing: for a listing: the offset, the number of items and the total.
    :param issued: for a token answer: the labels of the tokens issued.
    """

    seq: int
    at: float
    answered: float
    method: str
    kind: str
    route: str
    query_keys: tuple[str, ...] = ()
    form_keys: tuple[str, ...] = ()
    params: dict[str, str] = attrs.field(factory=dict)
    headers: tuple[str, ...] = ()
    token: str | None = None
    secret_in_url: bool = False
    status: int = 0
    fault: str | None = None
    retry_after: float | None = None
    listing: tuple[int, int, int] | None = None
    issued: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The exchange as the JSON report writes it."""
        return {
            "seq": self.seq,
            "at": round(self.at, 3),
            "answered": round(self.answered, 3),
            "method": self.method,
            "kind": self.kind,
            "route": self.route,
            "query_keys": list(self.query_keys),
            "form_keys": list(self.form_keys),
            "params": dict(self.params),
            "headers": list(self.headers),
            "token": self.token,
            "secret_in_url": self.secret_in_url,
            "status": self.status,
            "fault": self.fault,
            "retry_after": self.retry_after,
            "listing": list(self.listing) if self.listing else None,
            "issued": list(self.issued),
        }


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _kind(method: str, path: str) -> str:
    if path in {SANDBOX_AUTHORIZE_PATH, "/oauth/authorize"}:
        return "authorize"
    if path.startswith("/oauth/"):
        return path.removeprefix("/oauth/")
    if path.startswith("/.well-known/"):
        return "metadata"
    if path.startswith("/api/v1/patients/"):
        return "data"
    return "other"


def _problem(
    status: int, kind: str, title: str, headers: dict[str, str]
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"type": f"urn:monespace:problem:{kind}", "title": title, "status": status}
    ).encode()
    return body, {"content-type": _PROBLEM, **headers}


@attrs.define
class _Tokens:
    """The tokens issued during the run, by digest: their labels and expiry."""

    labels: dict[str, str] = attrs.field(factory=dict)
    expires: dict[str, float] = attrs.field(factory=dict)  # access label -> run seconds
    counts: dict[str, int] = attrs.field(factory=dict)

    def add(self, kind: str, secret: str, expires_at: float | None = None) -> str:
        number = self.counts.get(kind, 0) + 1
        self.counts[kind] = number
        label = f"{kind}-{number}"
        self.labels[_digest(secret)] = label
        if expires_at is not None:
            self.expires[label] = expires_at
        return label

    def label(self, secret: str) -> str:
        return self.labels.get(_digest(secret), "unknown")

    def known(self, secret: str) -> bool:
        return _digest(secret) in self.labels


class Recorder:
    """The ASGI middleware of the sandbox (see the module's docstring).

    :param app: the demo server's application.
    :param space: its space (the sandbox patient consents and revokes through it).
    :param patient_id: the sandbox patient who connects the app.
    :param client_id: the app under test.
    :param scenario: when the faults happen.
    :param clock: seconds, monotonic (``time.monotonic``).
    """

    def __init__(
        self,
        app: ASGIApp,
        space: Space,
        *,
        patient_id: str,
        client_id: str,
        scenario: Scenario | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._space = space
        self.patient_id = patient_id
        self.client_id = client_id
        self.scenario = scenario or Scenario()
        self._clock = clock
        self._start = clock()
        self._exchanges: list[Exchange] = []
        self._seq = 0
        self._tokens = _Tokens()
        self._expired: set[str] = set()
        self._data_calls = 0
        self.revoked = False
        self._revoking = False
        self._last_page_seen = False
        self._refreshed_after_expiry = False

    @property
    def exchanges(self) -> list[Exchange]:
        """What the app did so far, in the order the requests arrived."""
        return sorted(self._exchanges, key=lambda e: e.seq)

    def _now(self) -> float:
        return self._clock() - self._start

    def _route(self, path: str) -> str:
        """The path as the report shows it: the patient's id, and any token an app put
        there, replaced by placeholders."""
        parts = [
            "{token}" if len(part) >= 16 and self._tokens.known(part) else part
            for part in path.split("/")
        ]
        return "/".join(parts).replace(self.patient_id, "{patient_id}")

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: ASGIScope, receive: Receive, send: Send) -> None:  # noqa: PLR0912, PLR0915 - one request's whole record
        at = self._now()
        method: str = scope["method"]
        path: str = scope["path"]
        kind = _kind(method, path)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = b""
        if method == "POST" and kind in {"token", "revoke", "introspect"}:
            body, receive = await _buffer(receive)
        form = (
            parse_qsl(body.decode("latin-1"), keep_blank_values=True)
            if "form-urlencoded" in headers.get("content-type", "")
            else []
        )
        params = {k: v for k, v in (*query, *form) if k in _PLAIN_PARAMS}
        secret_in_url = any(
            k in SECRET_PARAMS or (len(v) >= 16 and self._tokens.known(v)) for k, v in query
        ) or any(len(part) >= 16 and self._tokens.known(part) for part in path.split("/"))
        token: str | None = None
        bearer = headers.get("authorization", "")
        if bearer[:7].lower() == "bearer ":
            token = self._tokens.label(bearer[7:].strip())
        else:
            for k, v in query:
                if k == "access_token":
                    token = self._tokens.label(v)
        self._seq += 1
        record = {
            "seq": self._seq,
            "at": at,
            "method": method,
            "kind": kind,
            "route": self._route(path),
            "query_keys": tuple(k for k, _ in query),
            "form_keys": tuple(k for k, _ in form),
            "params": params,
            "headers": tuple(sorted(headers)),
            "token": token,
            "secret_in_url": secret_in_url,
        }
        if kind == "authorize" and path == SANDBOX_AUTHORIZE_PATH and method == "GET":
            status, answer_headers = await self._authorize(dict(query))
            await _respond(send, status, b"", answer_headers)
            self._keep(record, status=status)
            return
        fault: str | None = None
        if kind == "data" and token is not None:
            self._data_calls += 1
            injected = await self._fault(token)
            if injected is not None:
                status, fault, extra = injected
                retry = float(extra["retry-after"]) if "retry-after" in extra else None
                problem, answer_headers = _problem(status, *_FAULT_PROBLEMS[fault], extra)
                await _respond(send, status, problem, answer_headers)
                self._keep(record, status=status, fault=fault, retry_after=retry)
                return
        capped = False
        if kind == "data" and method == "GET" and path.endswith("/documents"):
            limit = dict(query).get("limit", "50")
            cap = self.scenario.page_cap
            if not limit.isdigit() or int(limit) > cap:
                capped = True
                query = [(k, v) for k, v in query if k != "limit"] + [("limit", str(cap))]
                scope = dict(scope, query_string=urlencode(query).encode("latin-1"))
        observed = _Observed()
        keep_body = kind == "token" or capped or path.endswith("/documents")
        await self._app(scope, receive, observed.wrap(send, keep_body=keep_body))
        issued: tuple[str, ...] = ()
        listing: tuple[int, int, int] | None = None
        if observed.status == 200 and kind == "token":
            issued = self._issued(observed.body)
            if params.get("grant_type") == "refresh_token" and self._expired:
                self._refreshed_after_expiry = True
        elif kind == "data" and observed.status == 403 and self.revoked:
            if self._first_after_revocation():
                fault = Fault.CONSENT_REVOKED
        elif observed.status == 200 and path.endswith("/documents") and method == "GET":
            listing = _listing(observed.body)
            if listing and listing[0] + listing[1] >= listing[2]:
                self._last_page_seen = True
            if capped and fault is None:
                fault = Fault.PAGE_CAPPED
        self._keep(record, status=observed.status, fault=fault, listing=listing, issued=issued)

    def _first_after_revocation(self) -> bool:
        return not any(e.fault == Fault.CONSENT_REVOKED for e in self._exchanges)

    def _keep(self, record: dict[str, Any], **answer: Any) -> None:
        self._exchanges.append(Exchange(answered=self._now(), **record, **answer))

    async def _fault(self, token: str) -> tuple[int, str, dict[str, str]] | None:
        """The fault to inject before the app's current call to the data, if any."""
        scenario, n = self.scenario, self._data_calls
        wait = {"retry-after": str(scenario.retry_after)}
        if token in self._expired:
            return 401, Fault.TOKEN_EXPIRED, dict(_EXPIRED_CHALLENGE)
        if n == scenario.rate_limited_at:
            return 429, Fault.RATE_LIMITED, wait
        if n == scenario.unavailable_at:
            return 503, Fault.UNAVAILABLE, wait
        if n == scenario.expire_token_at and token.startswith("access-"):
            self._expired.add(token)
            return 401, Fault.TOKEN_EXPIRED, dict(_EXPIRED_CHALLENGE)
        if not self._revoking and (
            n >= scenario.revoke_after
            or (
                self._last_page_seen
                and self._refreshed_after_expiry
                and n > scenario.expire_token_at + 1
            )
        ):
            await self._revoke()
        return None

    async def _revoke(self) -> None:
        # Flagged before the wait: a call the app makes meanwhile must not revoke twice.
        self._revoking = True
        patient = Actor.patient(self.patient_id)
        # No consent in force (the app never connected): nothing to revoke.
        with contextlib.suppress(NotFoundError):
            await anyio.to_thread.run_sync(
                lambda: self._space.consents.revoke(patient, self.patient_id, self.client_id)
            )
        self.revoked = True

    def _issued(self, body: bytes) -> tuple[str, ...]:
        try:
            answer = json.loads(body)
        except ValueError:
            return ()
        labels = []
        expires_in = answer.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else None
        if isinstance(answer.get("access_token"), str):
            expiry = self._now() + lifetime if lifetime is not None else None
            labels.append(self._tokens.add("access", answer["access_token"], expiry))
        if isinstance(answer.get("refresh_token"), str):
            labels.append(self._tokens.add("refresh", answer["refresh_token"]))
        return tuple(labels)

    def expiry_of(self, label: str) -> float | None:
        """When the access token *label* expires, in seconds since the run started."""
        return self._tokens.expires.get(label)

    async def _authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str]]:
        """The sandbox patient's immediate consent to an authorization request."""
        marked = {"x-monespace-sandbox": "auto-approved consent (sandbox only)"}
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        oauth = self._space.oauth
        try:
            await anyio.to_thread.run_sync(lambda: oauth.client(client_id, redirect_uri))
        except OAuthError:
            return 400, marked  # never a redirect to an unregistered URI
        back: dict[str, str] = {}
        try:
            _, scopes = await anyio.to_thread.run_sync(
                lambda: oauth.check_request(
                    client_id,
                    redirect_uri,
                    scope=query.get("scope"),
                    code_challenge=query.get("code_challenge"),
                    code_challenge_method=query.get("code_challenge_method"),
                    response_type=query.get("response_type"),
                )
            )
            code = await anyio.to_thread.run_sync(lambda: self._consent(query, scopes))
            back["code"] = code
        except OAuthError as exc:
            back = {"error": exc.error, "error_description": exc.description}
        except MonespaceError:
            back = {"error": "access_denied", "error_description": "consent not given"}
        if query.get("state"):
            back["state"] = query["state"]
        parts = urlsplit(redirect_uri)
        joined = parts.query + ("&" if parts.query else "") + urlencode(back)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))
        return 303, {**marked, "location": location, "cache-control": "no-store"}

    def _consent(self, query: dict[str, str], scopes: frozenset[Scope]) -> str:
        patient = Actor.patient(self.patient_id)
        if self.revoked:
            raise OAuthError("access_denied", "the patient revoked the consent")
        self._space.consents.grant(patient, self.patient_id, self.client_id, scopes)
        return self._space.oauth.authorize(
            patient,
            self.patient_id,
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            scopes=scopes,
            code_challenge=query.get("code_challenge", ""),
        ).code


_EXPIRED_CHALLENGE: Final = {
    "www-authenticate": 'Bearer realm="monespace", error="invalid_token", '
    'error_description="The access token expired"'
}
_FAULT_PROBLEMS: Final = {
    Fault.RATE_LIMITED: ("rate-limited", "Too many requests"),
    Fault.UNAVAILABLE: ("unavailable", "Service unavailable"),
    Fault.TOKEN_EXPIRED: ("invalid-token", "Invalid token"),
}


class _Observed:
    """The status and (when asked) the body of a response, as it passes."""

    def __init__(self) -> None:
        self.status = 0
        self._chunks: list[bytes] = []

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    def wrap(self, send: Send, *, keep_body: bool) -> Send:
        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = int(message["status"])
            elif message["type"] == "http.response.body" and keep_body:
                self._chunks.append(bytes(message.get("body", b"")))
            await send(message)

        return observed


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """Read a request's whole body, and a ``receive`` that gives it again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _respond(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _listing(body: bytes) -> tuple[int, int, int] | None:
    """The offset, item count and total of a documents page (nothing else is read)."""
    try:
        page = json.loads(body)
        return int(page["offset"]), len(page["documents"]), int(page["total"])
    except (ValueError, KeyError, TypeError):
        return None
