"""The sans-I/O core shared by :class:`Client` and :class:`AsyncClient`.

Everything that decides is here: how a request is built, how a response is decoded, which
error a failure becomes, whether and when to try again, when to refresh the tokens. The two
clients only move bytes and sleep, with the same dozen lines each (``_send``), so that the
sync and async behaviours cannot drift apart.

.. versionadded:: 0.1
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

import attrs
import cattrs
import httpx

from ..codec import make_converter
from ..errors import (
    ApiError,
    ClientError,
    ConfigurationError,
    ConsentNotGivenError,
    InvalidTokenError,
    OAuthError,
    RateLimitedError,
    RemoteAccessDeniedError,
    RemoteConflictError,
    RemoteNotFoundError,
    RemoteValidationError,
    ServerError,
    UnreachableError,
    ValidationError,
)
from ._oauth import TokenHolder
from ._shared import user_agent

__all__ = [
    "IDEMPOTENT_METHODS",
    "Call",
    "Core",
    "Exchange",
    "RetryBudget",
    "RetryPolicy",
    "error_for_response",
    "parse_retry_after",
    "parse_www_authenticate",
]

T = TypeVar("T")

#: Methods that may be sent twice with the effect of once (RFC 9110 section 9.2.2).
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

#: Query parameter names that would put a secret in a URL; refused before sending.
_SECRET_PARAMS: Final = frozenset(
    {"access_token", "refresh_token", "token", "code_verifier", "client_secret"}
)


@attrs.frozen
class Call:
    """One API call to make, before any attempt.

    :param path: the path below the base URL, with its parameters already quoted (see
        :func:`path`).
    :param params: query parameters (never secrets: tokens go in headers or bodies).
    :param json: a JSON body; *form* an ``application/x-www-form-urlencoded`` one.
    :param authenticated: send the bearer token, if the client has one.
    :param retry_unsafe: retry a non-idempotent method too (the caller knows that doing it
        twice is harmless: a search sent as a POST, a body carrying an idempotency key).
    """

    method: str
    path: str
    params: Mapping[str, str | int | float | bool] | None = None
    json: Any = None
    form: Mapping[str, str] | None = None
    authenticated: bool = True
    retry_unsafe: bool = False

    @property
    def retryable(self) -> bool:
        """Whether sending this call again is allowed."""
        return self.method in IDEMPOTENT_METHODS or self.retry_unsafe


def path(template: str, **params: str) -> str:
    """*template* with each ``{name}`` replaced by the quoted value: an id can never add a
    path segment or a query."""
    return template.format(**{k: quote(v, safe="") for k, v in params.items()})


@attrs.frozen
class RetryPolicy:
    """When to try a call again.

    A call is retried on the statuses in *statuses* (429 and 503: the server refused it
    before doing anything) and when no response came (a timeout, a refused connection),
    and only if its method is idempotent or the caller opted in. The wait honours
    ``Retry-After`` (seconds or an HTTP date); without it, exponential backoff with full
    jitter: a random wait between 0 and ``base_delay * 2**(attempt - 1)``, capped at
    *max_delay*.

    :param max_attempts: attempts in all, the first included (1 disables retries).
    :param max_retry_after: a longer ``Retry-After`` is not waited for: the error is raised
        at once with :attr:`~monespace.errors.RateLimitedError.retry_after` set.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    statuses: frozenset[int] = frozenset({429, 503})
    retry_unreachable: bool = True

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValidationError(f"'max_attempts' must be at least 1 (got {self.max_attempts})")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValidationError("delays must not be negative")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The jittered wait after the *attempt*-th failed attempt (1 for the first)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling)


class RetryBudget:
    """Retries allowed across all the calls of a client, so that a failing server is not
    hammered by every call retrying at once.

    Each call (its first attempt) earns *ratio* of a retry and each retry spends one; the
    balance starts at *reserve* and never exceeds it. With the defaults: ten retries in a
    burst, then about one per five calls.
    """

    def __init__(self, *, ratio: float = 0.2, reserve: int = 10) -> None:
        if ratio < 0 or reserve < 0:
            raise ValidationError("'ratio' and 'reserve' must not be negative")
        self.ratio = ratio
        self.reserve = float(reserve)
        self._balance = float(reserve)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio}, reserve={self.reserve:g}, balance={self.balance:g})"
        )

    @property
    def balance(self) -> float:
        """The retries available now."""
        with self._lock:
            return self._balance

    def deposit(self) -> None:
        """A call starts: it earns *ratio* of a retry."""
        with self._lock:
            self._balance = min(self.reserve, self._balance + self.ratio)

    def withdraw(self) -> bool:
        """Spend one retry; ``False`` (and nothing spent) when the budget is exhausted."""
        with self._lock:
            if self._balance < 1:
                return False
            self._balance -= 1
            return True


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """The seconds to wait that a ``Retry-After`` header asks for (RFC 9110 section 10.2.3):
    a number of seconds or an HTTP date. ``None`` when absent or unreadable; a date in the
    past is 0."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


_AUTH_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_www_authenticate(value: str | None) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer …`` challenge (RFC 6750 section 3):
    ``{"realm": …, "error": "invalid_token", …}``; empty for another scheme or none."""
    if not value:
        return {}
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return {}
    return {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _AUTH_PARAM.finditer(rest)
    }


def _body(response: httpx.Response) -> dict[str, Any]:
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        return {}
    try:
        decoded = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _text(value: Any, limit: int = 300) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


# One return per kind of answer: the function is the mapping table, read top to bottom.
def error_for_response(  # noqa: PLR0911
    response: httpx.Response, *, method: str, path: str, now: datetime
) -> ApiError:
    """The library error for an error *response* to ``method path``.

    Problem documents (RFC 9457) map on their status: 404 to
    :class:`~monespace.errors.RemoteNotFoundError`, 403 to
    :class:`~monespace.errors.RemoteAccessDeniedError` (or
    :class:`~monespace.errors.ConsentNotGivenError` for ``insufficient_scope`` or a "consent
    not given" problem), 409 to a conflict, 400/413/415/422 to a validation error. OAuth
    error bodies (RFC 6749 section 5.2) and ``WWW-Authenticate: Bearer error=…`` challenges
    (RFC 6750) become :class:`~monespace.errors.OAuthError`, and
    :class:`~monespace.errors.InvalidTokenError` for ``invalid_grant`` and
    ``invalid_token``.
    """
    status = response.status_code
    body = _body(response)
    challenge = parse_www_authenticate(response.headers.get("www-authenticate"))
    oauth_error = _text(body.get("error"), 64) or challenge.get("error")
    title = _text(body.get("title")) or response.reason_phrase or f"HTTP {status}"
    detail = _text(body.get("detail")) or _text(body.get("error_description"))
    detail = detail or challenge.get("error_description")
    # What to do next ends the message, when the server says it (monespace's problems do).
    hint = _text(body.get("hint"))
    message = (
        f"{method} {path}: {status} {title}"
        + (f" ({detail})" if detail else "")
        + (f"; {hint}" if hint else "")
    )
    common: dict[str, Any] = {"status": status, "problem": body, "method": method, "path": path}
    problem_type = _text(body.get("type")) or ""

    if status == 429:
        wait = parse_retry_after(response.headers.get("retry-after"), now)
        return RateLimitedError(message, retry_after=wait, **common)
    if status >= 500:
        return ServerError(message, **common)
    if status == 403 and (
        challenge.get("error") == "insufficient_scope"
        or "consent" in problem_type
        or title.lower() == "consent not given"
    ):
        return ConsentNotGivenError(message, **common)
    if oauth_error in ("invalid_grant", "invalid_token"):
        return InvalidTokenError(message, error=oauth_error, description=detail, **common)
    if status == 401:
        if problem_type.endswith(":login-refused"):
            return ClientError(message, **common)
        # An authenticated route without a valid session or token (RFC 6750 section 3.1:
        # no error code when the request had none).
        return InvalidTokenError(message, error="invalid_token", description=detail, **common)
    if oauth_error is not None:
        return OAuthError(message, error=oauth_error, description=detail, **common)
    if status == 404:
        return RemoteNotFoundError(message, **common)
    if status == 403:
        return RemoteAccessDeniedError(message, **common)
    if status == 409:
        return RemoteConflictError(message, **common)
    if status in (400, 413, 415, 422):
        return RemoteValidationError(message, **common)
    if status < 400:
        # A redirection or an informational answer where a result was expected (the
        # client never follows redirects: they could carry the token elsewhere).
        return ApiError(message, **common)
    return ClientError(message, **common)


@attrs.define
class Exchange:
    """The attempts of one call: what to send next, and what each outcome means.

    The clients drive it::

        while True:
            if exchange.wants_refresh(): refresh the tokens
            request = exchange.request()
            send it; on a transport failure: delay = exchange.failed(exc)
            otherwise: delay = exchange.answered(response); None means done
            sleep(delay)

    ``answered`` and ``failed`` raise the call's error when there is nothing left to try.

    :ivar force_refresh: the server refused the access token: refresh it even though it
        has not expired as far as the holder knows.
    """

    core: Core
    call: Call
    attempts: int = 0
    refreshed: bool = False
    force_refresh: bool = False

    def wants_refresh(self) -> bool:
        """Whether to refresh the tokens before the next attempt."""
        holder = self.core.tokens
        if not self.call.authenticated or holder is None:
            return False
        return self.force_refresh or holder.needs_refresh()

    def refreshed_tokens(self) -> None:
        """The client refreshed the tokens."""
        self.force_refresh = False
        self.refreshed = True

    def request(self) -> httpx.Request:
        """The request of the next attempt."""
        if self.attempts == 0 and self.core.budget is not None:
            self.core.budget.deposit()
        self.attempts += 1
        return self.core.build(self.call)

    def answered(self, response: httpx.Response) -> float | None:
        """``None`` for a success; the wait before the next attempt; or raise the error."""
        if response.is_success:
            return None
        now = self.core.now()
        error = error_for_response(response, method=self.call.method, path=self.call.path, now=now)
        holder = self.core.tokens
        if (
            isinstance(error, InvalidTokenError)
            and response.status_code == 401
            and self.call.authenticated
            and holder is not None
            and holder.tokens.refresh_token is not None
            and not self.refreshed
        ):
            # The access token was refused before its expiry as we knew it (a clock skew,
            # a server restart): one refresh, then the same call again.
            self.force_refresh = True
            return 0.0
        if response.status_code not in self.core.retry.statuses:
            raise error
        wait = None
        if isinstance(error, RateLimitedError) or response.status_code == 503:
            wait = parse_retry_after(response.headers.get("retry-after"), now)
        if wait is not None and wait > self.core.retry.max_retry_after:
            raise error
        return self._next_wait(error, wait)

    def failed(self, exc: httpx.RequestError) -> float:
        """A request that got no usable response: the wait before the next attempt, or
        raise. Timeouts and connection failures may be retried; an answer that could not
        be decoded (``httpx.DecodingError``) is the server's error, not retried."""
        where = f"{self.call.method} {self.call.path}"
        if not isinstance(exc, httpx.TransportError):
            raise ServerError(
                f"{where}: the response could not be read ({type(exc).__name__})",
                method=self.call.method,
                path=self.call.path,
            ) from exc
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
        error = UnreachableError(
            f"{where}: the connection {kind} ({type(exc).__name__})",
            method=self.call.method,
            path=self.call.path,
        )
        if not self.core.retry.retry_unreachable:
            raise error from exc
        try:
            return self._next_wait(error, None)
        except ApiError:
            raise error from exc

    def _next_wait(self, error: ApiError, wait: float | None) -> float:
        policy = self.core.retry
        if not self.call.retryable or self.attempts >= policy.max_attempts:
            raise error
        budget = self.core.budget
        if budget is not None and not budget.withdraw():
            raise error
        return wait if wait is not None else policy.backoff(self.attempts, self.core.rng)


@attrs.define
class Core:
    """What a client knows: where the server is, its tokens, how to retry and decode.

    :param token: a fixed bearer token (a session's, or an app's without refresh).
    :param tokens: an app's tokens, refreshed by the client (takes precedence over *token*).
    """

    base_url: str
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    budget: RetryBudget | None = attrs.field(factory=RetryBudget)
    token: str | None = attrs.field(default=None, repr=False)
    tokens: TokenHolder | None = None
    client_id: str | None = None
    token_endpoint: str | None = None
    rng: random.Random = attrs.field(factory=random.SystemRandom)
    clock: Callable[[], datetime] | None = None
    converter: cattrs.Converter = attrs.field(factory=make_converter, repr=False)

    def __attrs_post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def now(self) -> datetime:
        """The current time (the holder's clock, the one given, or the wall clock)."""
        if self.clock is not None:
            return self.clock()
        if self.tokens is not None:
            return self.tokens.now()
        return datetime.now(UTC)

    def bearer(self) -> str | None:
        """The token to send, if any."""
        if self.tokens is not None:
            return self.tokens.tokens.access_token
        return self.token

    def url(self, target: str) -> str:
        """An absolute URL for a path below the base URL (absolute URLs are kept)."""
        if target.startswith(("http://", "https://")):
            return target
        return self.base_url + target

    def build(self, call: Call) -> httpx.Request:
        """The HTTP request of *call*."""
        params = dict(call.params or {})
        if _SECRET_PARAMS & {k.lower() for k in params}:
            raise ValidationError("secrets never go in a URL: send them in a header or a body")
        # Requests built here bypass the httpx client's default headers: name the client.
        headers = {
            "accept": "application/json, application/problem+json",
            "user-agent": user_agent(),
        }
        token = self.bearer() if call.authenticated else None
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        query = {k: _query_value(v) for k, v in params.items()}
        if call.form is not None:
            return httpx.Request(
                call.method,
                self.url(call.path),
                params=query,
                data=dict(call.form),
                headers=headers,
            )
        if call.json is not None:
            return httpx.Request(
                call.method, self.url(call.path), params=query, json=call.json, headers=headers
            )
        return httpx.Request(call.method, self.url(call.path), params=query, headers=headers)

    def exchange(self, call: Call) -> Exchange:
        """The attempts of *call*."""
        return Exchange(self, call)

    def refresh_call(self) -> Call:
        """The token endpoint call that refreshes the holder's tokens."""
        if self.tokens is None or self.client_id is None or self.token_endpoint is None:
            raise ConfigurationError("refreshing needs tokens=, client_id= and token_endpoint=")
        # A refresh is a POST, but retrying it is safe: the server answers a replayed
        # refresh token with invalid_grant, never with a second pair.
        return Call(
            "POST",
            self.token_endpoint,
            form=self.tokens.token_form(self.client_id),
            authenticated=False,
        )

    def decode(self, response: httpx.Response, model: type[T]) -> T:
        """The response's JSON as *model*; a body that does not fit is the server's error."""
        try:
            return self.converter.structure(response.json(), model)
        except (ValueError, TypeError, KeyError, cattrs.BaseValidationError) as exc:
            raise ServerError(
                f"the response to {response.request.method} {response.request.url.path} "
                f"is not a {model.__name__}",
                status=response.status_code,
                method=response.request.method,
                path=response.request.url.path,
            ) from exc

    def json(self, response: httpx.Response) -> Any:
        """The response's JSON (``None`` for an empty body)."""
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError("the response is not JSON", status=response.status_code) from exc


def _query_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def next_offset(offset: int, count: int, total: int) -> int | None:
    """The offset of the page after one of *count* items at *offset*, or ``None`` at the
    end. An empty page ends the listing even if *total* says more (items removed meanwhile),
    so that a listing always terminates."""
    if count <= 0:
        return None
    following = offset + count
    return following if following < total else None
