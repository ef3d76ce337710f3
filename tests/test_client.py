"""monespace.client: against the demo app in process (async through httpx's ASGI transport,
sync through the same transport driven from a blocking portal), faults injected with
httpx.MockTransport (429 with Retry-After, 503, timeouts, refused tokens), the OAuth helpers
against authlib's PKCE, and once over a real loopback socket, sync and async."""

from __future__ import annotations

import email.utils
import html
import inspect
import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.from_thread
import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from hypothesis import given
from hypothesis import strategies as st

from monespace import Actor, ManualClock
from monespace.client import (
    PKCE,
    AsyncClient,
    Call,
    Client,
    Code,
    RetryBudget,
    RetryPolicy,
    TokenHolder,
    TokenSet,
    authorization_url,
    code_challenge,
    new_state,
    parse_redirect,
)
from monespace.client._core import (
    Core,
    error_for_response,
    next_offset,
    parse_retry_after,
    parse_www_authenticate,
)
from monespace.errors import (
    AccessDeniedError,
    ApiError,
    ClientError,
    ConfigurationError,
    ConsentNotGivenError,
    InvalidTokenError,
    NotFoundError,
    OAuthError,
    RateLimitedError,
    RemoteConflictError,
    RemoteNotFoundError,
    RemoteValidationError,
    ServerError,
    UnreachableError,
    ValidationError,
)
from monespace.record import TRE_A05_TYPE
from monespace.testing import reference_app

from .test_server_live import running
from .test_server_world import CANARY, build_world, create_app

pytestmark = pytest.mark.anyio

BASE = "http://testserver"


# --- in process ---------------------------------------------------------------------------


class PortalTransport(httpx.BaseTransport):
    """A blocking transport that runs the ASGI app in an event loop of its own thread, so
    that the sync :class:`Client` talks to the same in-process app as the async one."""

    def __init__(self, app, portal) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def relay() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return self._portal.call(relay)


@pytest.fixture
def world():
    w = build_world()
    me = Actor.patient(w.alice.id)
    # Enough documents for several pages.
    for n in range(7):
        w.space.record.add_document(
            me,
            w.alice.id,
            f"note {n}\n".encode(),
            media_type="text/plain",
            type_code=Code("DOCPAT01", TRE_A05_TYPE),  # type: ignore[arg-type]
            title=f"Note {n}",
        )
    yield w
    w.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space, secure_cookies=False)


def async_client(app, **kwargs) -> AsyncClient:
    return AsyncClient(BASE, transport=httpx.ASGITransport(app=app), **kwargs)


@pytest.fixture
def sync_client(app):
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        Client(BASE, transport=PortalTransport(app, portal)) as api,
    ):
        yield api


def _login_args(person):
    return person.nir, person.vitale_serial, person.birth_date


async def test_async_login_and_paginate_to_the_end(world, app):
    """The iterator follows the pages to the last one: every document once, newest first."""
    async with async_client(app) as api:
        session = await api.login_patient(*_login_args(world.alice))
        assert session.session.person_id == world.alice.id
        # Secrets are kept out of reprs (and so out of logs and tracebacks).
        assert session.token not in repr(session)
        assert session.session.csrf_token not in repr(session)
        info = await api.session()
        assert info.spaces[0] == world.alice.id
        everything = await api.documents_page(world.alice.id, limit=500)
        paged = [d async for d in api.documents(world.alice.id, page_size=2)]
    assert everything.total == len(everything.documents) == 9
    assert [d.id for d in paged] == [d.id for d in everything.documents]
    assert len({d.id for d in paged}) == 9


def test_sync_matches_async(world, app, sync_client):
    """The two clients share one core: the same calls give the same objects."""
    sync_client.login_patient(*_login_args(world.alice))
    pid = world.alice.id
    sync_docs = list(sync_client.documents(pid, page_size=4))
    sync_search = list(sync_client.search_documents(pid, text="Note", page_size=3))
    sync_measures = sync_client.measures(pid, "weight")
    sync_events = sync_client.events(pid)
    sync_threads = list(sync_client.threads(pid, page_size=1))

    async def read():
        async with async_client(app) as api:
            await api.login_patient(*_login_args(world.alice))
            return (
                [d async for d in api.documents(pid, page_size=4)],
                [d async for d in api.search_documents(pid, text="Note", page_size=3)],
                await api.measures(pid, "weight"),
                await api.events(pid),
                [t async for t in api.threads(pid, page_size=1)],
            )

    async_docs, async_search, async_measures, async_events, async_threads = anyio.run(read)
    assert sync_docs == async_docs
    assert len(sync_docs) == 9
    # The seven notes and the "Note personnelle" of the world.
    assert sync_search == async_search
    assert len(sync_search) == 8
    assert sync_measures == async_measures
    assert sync_measures[0].value == 70.5
    assert sync_events == async_events
    assert len(sync_events) == 1
    assert sync_threads == async_threads
    assert len(sync_threads) == 2


def test_sync_writes_and_reads_back(world, sync_client):
    pid = world.alice.id
    sync_client.login_patient(*_login_args(world.alice))
    added = sync_client.add_document(
        pid,
        b"hello\n",
        media_type="text/plain",
        type_code=Code("DOCPAT01", TRE_A05_TYPE),
        title="Client note",
    )
    assert sync_client.document(pid, added.id) == added
    assert sync_client.document_content(pid, added.id) == b"hello\n"
    measured = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    measure = sync_client.add_measure(pid, "weight", 71.2, measured_at=measured)
    assert measure.measured_at == measured
    assert measure.unit == "kg"
    event = sync_client.add_event(
        pid, kind="appointment", starts_at=datetime(2026, 4, 1, 9, 0, tzinfo=UTC), title="RDV"
    )
    assert event in sync_client.events(pid, from_=date(2026, 3, 1))
    assert sync_client.event(pid, event.id) == event
    later = datetime(2026, 4, 2, 10, 0, tzinfo=UTC)
    moved = sync_client.reschedule_event(pid, event.id, starts_at=later)
    assert moved.starts_at == later
    assert moved.sequence > event.sequence
    assert sync_client.cancel_event(pid, event.id).status == "cancelled"
    done = sync_client.add_event(
        pid, kind="vaccination", starts_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    )
    assert sync_client.mark_event_done(pid, done.id).status == "done"
    history = sync_client.access_history(pid)
    assert history
    assert all(entry.outcome for entry in history)
    with pytest.raises(ValidationError, match="timezone-aware"):
        sync_client.add_measure(pid, "weight", 70, measured_at=datetime(2026, 3, 1))
    sync_client.logout()
    assert sync_client.token is None


async def test_problem_documents_map_to_the_error_tree(world, app):
    async with async_client(app) as api:
        with pytest.raises(ClientError) as refused:
            await api.login_patient(world.alice.nir, "0000000000", world.alice.birth_date)
        assert refused.value.status == 401
        assert not isinstance(refused.value, InvalidTokenError)
        await api.login_patient(*_login_args(world.alice))
        # Bob's document: the same answer as a document that does not exist.
        with pytest.raises(NotFoundError) as other:
            await api.document(world.bob.id, world.documents[world.bob.id][0])
        assert isinstance(other.value, RemoteNotFoundError)
        assert other.value.status == 404
        assert other.value.problem["type"] == "urn:monespace:problem:not-found"
        assert world.bob.id in other.value.path
        with pytest.raises(ValidationError) as invalid:
            await api.measures(world.alice.id, "not-a-kind")
        assert isinstance(invalid.value, RemoteValidationError)
        assert invalid.value.status == 422
        # An id that would change the path is quoted: it stays one (unknown) segment.
        with pytest.raises(RemoteNotFoundError):
            await api.document(world.alice.id, "../../bob")
        token = api.token
        await api.logout()
        api._core.token = token  # the old token, after logout
        with pytest.raises(InvalidTokenError) as expired:
            await api.session()
        assert expired.value.error == "invalid_token"
        for error in (refused.value, other.value, invalid.value, expired.value):
            assert CANARY not in str(error)
            assert world.alice.nir not in str(error)


async def test_generic_request_for_other_routes(world, app):
    async with async_client(app) as api:
        await api.login_patient(*_login_args(world.alice))
        settings = await api.request(Call("GET", f"/api/v1/patients/{world.alice.id}/profile"))
    assert settings[0]["section"] == "allergy"


# --- faults, with httpx.MockTransport --------------------------------------------------------


class Script:
    """A MockTransport handler answering from a list, recording what it saw."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(body=None) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"ok": True})


def problem(status: int, title: str, headers=None, kind="x") -> httpx.Response:
    body = {"type": f"urn:monespace:problem:{kind}", "title": title, "status": status}
    return httpx.Response(
        status,
        headers={"content-type": "application/problem+json", **(headers or {})},
        content=json.dumps(body).encode(),
    )


def scripted(script, **kwargs):
    sleeps: list[float] = []
    kwargs.setdefault("rng", random.Random(7))
    api = Client(BASE, transport=httpx.MockTransport(script), sleep=sleeps.append, **kwargs)
    return api, sleeps


GET = Call("GET", "/api/v1/thing")
POST = Call("POST", "/api/v1/thing", json={"a": 1})


def test_429_waits_what_retry_after_says():
    script = Script(problem(429, "Too many", {"retry-after": "3"}), ok())
    api, sleeps = scripted(script)
    assert api.request(GET) == {"ok": True}
    assert sleeps == [3.0]
    assert len(script.seen) == 2


def test_every_request_names_the_client():
    """Requests are built by the core, outside httpx's default headers: each one still
    carries the client's User-Agent (the conformance kit's ``user-agent`` criterion)."""
    script = Script(ok(), ok())
    api, _ = scripted(script)
    api.request(GET)
    api.request(POST)
    assert [r.headers.get("user-agent", "").split("/")[0] for r in script.seen] == [
        "monespace-client",
        "monespace-client",
    ]


def test_retry_after_as_an_http_date():
    now = datetime(2026, 10, 21, 7, 27, 55, tzinfo=UTC)
    script = Script(problem(503, "Down", {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}), ok())
    api, sleeps = scripted(script, clock=lambda: now)
    api.request(GET)
    assert sleeps == [5.0]
    assert parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_503_backs_off_exponentially_with_jitter_then_gives_up():
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0)
    script = Script(*[problem(503, "Down")] * 4)
    api, sleeps = scripted(script, retry=policy)
    with pytest.raises(ServerError) as failed:
        api.request(GET)
    assert failed.value.status == 503
    assert len(script.seen) == 4
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps, start=1):
        assert 0 <= slept <= min(3.0, 1.0 * 2 ** (attempt - 1))
    assert len(set(sleeps)) == 3  # jittered, not a fixed schedule


def test_a_non_idempotent_call_is_retried_only_when_the_caller_opts_in():
    script = Script(problem(503, "Down"))
    api, sleeps = scripted(script)
    with pytest.raises(ServerError):
        api.request(POST)
    assert len(script.seen) == 1
    assert sleeps == []
    script = Script(problem(503, "Down"), ok())
    api, sleeps = scripted(script)
    api.request(Call("POST", "/api/v1/thing", json={"a": 1}, retry_unsafe=True))
    assert len(script.seen) == 2


def test_timeouts_are_retried_then_reported_as_unreachable():
    script = Script(httpx.ReadTimeout("slow"), ok())
    api, _ = scripted(script)
    assert api.request(GET) == {"ok": True}
    script = Script(*[httpx.ConnectError("refused")] * 2)
    api, _ = scripted(script, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(UnreachableError) as failed:
        api.request(GET)
    assert failed.value.status is None
    assert isinstance(failed.value.__cause__, httpx.ConnectError)


def test_a_retry_after_beyond_the_limit_is_not_waited_for():
    script = Script(problem(429, "Too many", {"retry-after": "3600"}))
    api, sleeps = scripted(script, retry=RetryPolicy(max_retry_after=60))
    with pytest.raises(RateLimitedError) as limited:
        api.request(GET)
    assert limited.value.retry_after == 3600.0
    assert sleeps == []


def test_the_retry_budget_stops_retry_storms():
    budget = RetryBudget(ratio=0.0, reserve=1)
    script = Script(problem(503, "Down"), ok(), problem(503, "Down"))
    api, sleeps = scripted(script, budget=budget)
    api.request(GET)  # spends the one retry
    with pytest.raises(ServerError):
        api.request(GET)  # nothing left: fails at once
    assert len(sleeps) == 1
    assert budget.balance == 0


def test_bearer_and_oauth_errors():
    insufficient = problem(
        403,
        "Consent not given",
        {"www-authenticate": 'Bearer realm="monespace", error="insufficient_scope"'},
        kind="consent-not-given",
    )
    script = Script(
        insufficient,
        problem(403, "Forbidden"),
        problem(409, "Conflict"),
        httpx.Response(400, json={"error": "invalid_grant", "error_description": "used"}),
        httpx.Response(400, json={"error": "unsupported_grant_type"}),
        httpx.Response(418, text="teapot"),
    )
    api, _ = scripted(script)
    with pytest.raises(ConsentNotGivenError) as consent:
        api.request(GET)
    assert isinstance(consent.value, AccessDeniedError)
    assert consent.value.rule == "remote"
    with pytest.raises(AccessDeniedError) as denied:
        api.request(GET)
    assert not isinstance(denied.value, ConsentNotGivenError)
    with pytest.raises(RemoteConflictError):
        api.request(GET)
    with pytest.raises(InvalidTokenError) as grant:
        api.request(GET)
    assert grant.value.error == "invalid_grant"
    assert grant.value.description == "used"
    with pytest.raises(OAuthError) as other:
        api.request(GET)
    assert other.value.error == "unsupported_grant_type"
    assert not isinstance(other.value, InvalidTokenError)
    with pytest.raises(ClientError) as teapot:
        api.request(GET)
    assert teapot.value.status == 418
    assert teapot.value.problem == {}


def test_www_authenticate_parsing():
    assert parse_www_authenticate(
        'Bearer realm="monespace", error="invalid_token", error_description="the \\"x\\""'
    ) == {"realm": "monespace", "error": "invalid_token", "error_description": 'the \\"x\\"'}
    assert parse_www_authenticate("Basic realm=x") == {}
    assert parse_www_authenticate(None) == {}


def test_secrets_are_refused_in_query_parameters():
    api, _ = scripted(Script())
    with pytest.raises(ValidationError, match="never go in a URL"):
        api.request(Call("GET", "/api/v1/thing", params={"access_token": "abc"}))


def test_a_malformed_success_body_is_the_servers_error():
    api, _ = scripted(Script(ok({"kind": "patient"})))
    with pytest.raises(ServerError, match="not a SessionInfo"):
        api.session()


# --- OAuth helpers ---------------------------------------------------------------------------

VERIFIER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


@given(st.text(alphabet=VERIFIER_CHARS, min_size=43, max_size=128))
def test_the_s256_challenge_is_authlibs(verifier):
    assert code_challenge(verifier) == create_s256_code_challenge(verifier)


def test_pkce_pairs_and_bad_verifiers():
    pair = PKCE.generate()
    assert len(pair.verifier) == 64
    assert pair.method == "S256"
    assert PKCE.from_verifier(pair.verifier) == pair
    assert pair.verifier not in repr(pair)
    assert PKCE.generate() != pair
    for bad in ("short", "x" * 129, "é" * 50, "a b" * 20):
        with pytest.raises(ValidationError):
            code_challenge(bad)
    with pytest.raises(ValidationError):
        PKCE.generate(42)


def test_authorization_url_and_redirect():
    pair = PKCE.generate()
    state = new_state()
    url = authorization_url(
        "https://ms.example/oauth/authorize",
        client_id="weight-app",
        redirect_uri="https://app.example/cb",
        scopes=["mesures.read", "mesures.write"],
        state=state,
        pkce=pair,
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {
        "response_type": "code",
        "client_id": "weight-app",
        "redirect_uri": "https://app.example/cb",
        "scope": "mesures.read mesures.write",
        "state": state,
        "code_challenge": pair.challenge,
        "code_challenge_method": "S256",
    }
    assert pair.verifier not in url
    assert parse_redirect(f"https://app.example/cb?code=abc&state={state}", state=state) == "abc"
    with pytest.raises(OAuthError) as forged:
        parse_redirect("https://app.example/cb?code=abc&state=other", state=state)
    assert forged.value.error == "invalid_state"
    with pytest.raises(OAuthError) as refused:
        parse_redirect(f"https://app.example/cb?error=access_denied&state={state}", state=state)
    assert refused.value.error == "access_denied"
    with pytest.raises(ValidationError):
        authorization_url(
            "https://x/a", client_id="c", redirect_uri="r", scopes=[], state="s", pkce=pair
        )


def test_token_sets_keep_the_rotated_refresh_token():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    first = TokenSet.from_response(
        {
            "access_token": "a1",
            "token_type": "bearer",
            "expires_in": 600,
            "refresh_token": "r1",
            "scope": "mesures.read",
            "patient": "p1",
        },
        now=now,
    )
    assert first.expires_at == now + timedelta(minutes=10)
    assert first.patient_id == "p1"
    assert first.scopes == ("mesures.read",)
    rotated = TokenSet.from_response(
        {"access_token": "a2", "token_type": "Bearer", "refresh_token": "r2"},
        now=now,
        previous=first,
    )
    assert rotated.refresh_token == "r2"
    assert rotated.scopes == ("mesures.read",)
    kept = TokenSet.from_response(
        {"access_token": "a3", "token_type": "Bearer"}, now=now, previous=rotated
    )
    assert kept.refresh_token == "r2"
    assert kept.patient_id == "p1"
    assert "a1" not in repr(first)
    assert "r1" not in repr(first)
    for bad in ({"token_type": "Bearer"}, {"access_token": "a", "token_type": "mac"}):
        with pytest.raises(OAuthError):
            TokenSet.from_response(bad, now=now)


class FakeAuthorizationServer:
    """An RFC 8414 / 6749 / 7009 server with one protected route, for the token holder:
    it issues rotating tokens and records every request."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.seen: list[httpx.Request] = []
        self.forms: list[dict[str, str]] = []
        self.issued = 0
        self.valid: dict[str, datetime] = {}
        self.refresh_tokens = {"r0"}
        self.revoked: list[str] = []
        self.challenge: str | None = None

    def issue(self) -> dict[str, object]:
        self.issued += 1
        access, refresh = f"a{self.issued}", f"r{self.issued}"
        self.valid[access] = self.clock.now() + timedelta(seconds=600)
        self.refresh_tokens = {refresh}
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 600,
            "refresh_token": refresh,
            "scope": "mesures.read",
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path == "/.well-known/oauth-authorization-server":
            return ok(
                {
                    "issuer": BASE,
                    "authorization_endpoint": BASE + "/oauth/authorize",
                    "token_endpoint": BASE + "/oauth/token",
                    "revocation_endpoint": BASE + "/oauth/revoke",
                    "code_challenge_methods_supported": ["S256"],
                    "service_documentation": "https://docs.example",
                }
            )
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.forms.append(form)
        if request.url.path == "/oauth/token":
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            if form["grant_type"] == "authorization_code":
                assert code_challenge(form["code_verifier"]) == self.challenge
                return ok(self.issue())
            if form.get("refresh_token") not in self.refresh_tokens:
                return httpx.Response(400, json={"error": "invalid_grant"})
            return ok(self.issue())
        if request.url.path == "/oauth/revoke":
            self.revoked.append(form["token"])
            return httpx.Response(200)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.valid.get(token, self.clock.now()) <= self.clock.now():
            return httpx.Response(401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
        return ok({"token": token})


def _oauth_client(server, clock, **kwargs):
    return Client(BASE, transport=httpx.MockTransport(server), clock=clock.now, **kwargs)


def test_the_holder_refreshes_before_expiry_and_keeps_the_new_refresh_token():
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    server = FakeAuthorizationServer(clock)
    pair = PKCE.generate()
    server.challenge = pair.challenge
    saved: list[TokenSet] = []
    with _oauth_client(server, clock) as api:
        metadata = api.server_metadata()
        assert metadata.code_challenge_methods_supported == ["S256"]
        assert metadata.extra == {"service_documentation": "https://docs.example"}
        api.exchange_code(
            "the-code", verifier=pair.verifier, redirect_uri="https://app/cb", client_id="app"
        )
        api.tokens._on_update = saved.append  # persist what comes next
        assert api.request(GET) == {"token": "a1"}
        clock.advance(seconds=575)  # 25 s left, within the 30 s margin
        assert api.request(GET) == {"token": "a2"}
        refresh = [f for f in server.forms if f.get("grant_type") == "refresh_token"]
        assert refresh == [
            {"grant_type": "refresh_token", "refresh_token": "r1", "client_id": "app"}
        ]
        assert api.tokens.tokens.refresh_token == "r2"
        assert [t.refresh_token for t in saved] == ["r2"]
        api.revoke()
        assert server.revoked == ["r2", "a2"]
    for request in server.seen:  # tokens, codes and verifiers never in a URL
        for secret in ("a1", "a2", "r1", "r2", "the-code", pair.verifier):
            assert secret not in str(request.url)


def test_a_refused_token_is_refreshed_once_then_the_call_repeated():
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    server = FakeAuthorizationServer(clock)
    holder = TokenHolder(
        TokenSet("stale", expires_at=clock.now() + timedelta(hours=1), refresh_token="r0"),
        clock=clock.now,
    )
    with _oauth_client(server, clock, tokens=holder, client_id="app") as api:
        assert api.request(GET) == {"token": "a1"}
        assert holder.refreshes == 1
        server.valid.clear()  # the server forgets every token, and the refresh token is spent
        server.refresh_tokens = set()
        with pytest.raises(InvalidTokenError) as refused:
            api.request(GET)
        assert refused.value.error == "invalid_grant"
        assert holder.refreshes == 1


async def test_the_async_holder_refreshes_on_its_clock():
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    server = FakeAuthorizationServer(clock)
    holder = TokenHolder(
        TokenSet("a0", expires_at=clock.now() + timedelta(seconds=600), refresh_token="r0"),
        clock=clock.now,
    )
    server.valid["a0"] = clock.now() + timedelta(seconds=600)
    async with AsyncClient(
        BASE,
        transport=httpx.MockTransport(server),
        tokens=holder,
        client_id="app",
        token_endpoint=BASE + "/oauth/token",
    ) as api:
        assert await api.request(GET) == {"token": "a0"}
        clock.advance(seconds=600)  # expired: refreshed before the call, not after a 401
        assert await api.request(GET) == {"token": "a1"}
    statuses = [r.url.path for r in server.seen]
    assert statuses == ["/api/v1/thing", "/oauth/token", "/api/v1/thing"]


async def test_async_faults_share_the_sync_decisions():
    script = Script(problem(429, "Too many", {"retry-after": "2"}), httpx.ReadTimeout("x"), ok())
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async with AsyncClient(
        BASE, transport=httpx.MockTransport(script), sleep=sleep, rng=random.Random(1)
    ) as api:
        assert await api.request(GET) == {"ok": True}
    assert sleeps[0] == 2.0
    assert 0 <= sleeps[1] <= 1.0


# --- over a real socket ---------------------------------------------------------------------


@pytest.fixture
def live(tmp_path):
    w = build_world(f"sqlite:///{tmp_path / 'client.db'}")
    with running(create_app(w.space)) as url:
        yield w, url
    w.space.close()


def test_over_a_real_socket_sync_and_async(live):
    world, url = live
    with Client(url) as api:
        api.login_patient(*_login_args(world.alice))
        sync_docs = list(api.documents(world.alice.id, page_size=1))
        with pytest.raises(RemoteNotFoundError):
            api.document(world.bob.id, world.documents[world.bob.id][0])

    async def read():
        async with AsyncClient(url) as api:
            await api.login_patient(*_login_args(world.alice))
            return [d async for d in api.documents(world.alice.id, page_size=1)]

    async_docs = anyio.run(read)
    assert [d.id for d in sync_docs] == [d.id for d in async_docs]
    assert sorted(d.id for d in sync_docs) == sorted(world.documents[world.alice.id])


def test_start_and_finish_an_authorization():
    """The request carries a fresh state and S256 challenge; the callback's state is checked
    before the code is exchanged with the verifier."""
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    server = FakeAuthorizationServer(clock)
    with _oauth_client(server, clock) as api:
        started = api.start_authorization(
            client_id="app", redirect_uri="https://app.example/cb", scopes=["mesures.read"]
        )
        query = {k: v[0] for k, v in parse_qs(urlsplit(started.url).query).items()}
        assert started.url.startswith(BASE + "/oauth/authorize?")
        assert query["code_challenge_method"] == "S256"
        assert started.pkce.verifier not in started.url
        server.challenge = query["code_challenge"]
        with pytest.raises(OAuthError, match="state"):
            api.finish_authorization(started, "https://app.example/cb?code=c&state=forged")
        assert server.forms == []  # nothing was sent for a forged callback
        tokens = api.finish_authorization(
            started, f"https://app.example/cb?code=c&state={query['state']}"
        )
        assert tokens.scopes == ("mesures.read",)
        assert server.forms[-1]["code_verifier"] == started.pkce.verifier
        assert api.request(GET) == {"token": tokens.access_token}


def test_unreadable_answers_and_redirections_are_not_retried():
    script = Script(httpx.DecodingError("bad gzip"))
    api, sleeps = scripted(script)
    with pytest.raises(ServerError, match="could not be read"):
        api.request(GET)
    script = Script(httpx.Response(302, headers={"location": "https://elsewhere.example/"}))
    api, sleeps = scripted(script)
    with pytest.raises(ApiError) as moved:
        api.request(GET)
    assert moved.value.status == 302
    assert not isinstance(moved.value, ClientError)  # never followed: it is not a 4xx either
    assert sleeps == []


def test_a_holder_without_client_id_cannot_refresh():
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    holder = TokenHolder(
        TokenSet("a0", expires_at=clock.now(), refresh_token="r0"), clock=clock.now
    )
    api, _ = scripted(Script(), tokens=holder, token_endpoint=BASE + "/oauth/token")
    with pytest.raises(ConfigurationError, match="client_id"):
        api.request(GET)


# --- against the demo server's OAuth endpoints ----------------------------------------------

CALLBACK = "https://poids.example/callback"


def referenced(world) -> str:
    """A weight tracker taken through the whole référencement; its client id."""
    app = reference_app(
        world.space,
        "suivi-poids",
        redirect_uris=(CALLBACK,),
        name="Suivi Poids",
        publisher="Balance SAS",
    )
    return app.client_id


def _hidden_fields(page: str) -> dict[str, str]:
    """The hidden fields of the consent page's form (the request and the CSRF token)."""
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page)
    return {name: html.unescape(value) for name, value in found}


async def _consent_in_browser(app, person, url: str, decision: str = "approve") -> str:
    """The patient's browser: log in, open the consent page, answer it; the redirect."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        login = await browser.post("/api/v1/session/patient", json=person.login())
        assert login.status_code == 201
        page = await browser.get(url)
        assert page.status_code == 200, page.text
        fields = _hidden_fields(page.text)
        assert fields["code_challenge_method"] == "S256"
        answer = await browser.post("/oauth/authorize", data={**fields, "decision": decision})
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]


async def test_an_app_through_the_demo_servers_oauth(world, app):
    """Authorize with PKCE, read and write within the scopes, refresh on expiry (rotation),
    be refused outside the scopes, and lose access when the patient revokes the consent."""
    client_id = referenced(world)
    async with async_client(app, clock=world.clock.now) as vendor:
        metadata = await vendor.server_metadata()
        assert metadata.code_challenge_methods_supported == ["S256"]
        (listed,) = await vendor.catalogue(text="Suivi")
        assert listed.client_id == client_id
        assert "mesures.write" in listed.scopes
        started = await vendor.start_authorization(
            client_id=client_id, redirect_uri=CALLBACK, scopes=["mesures.read", "mesures.write"]
        )
        location = await _consent_in_browser(app, world.alice, started.url)
        assert location.startswith(CALLBACK + "?")
        tokens = await vendor.finish_authorization(started, location)
        pid = tokens.patient_id
        assert pid == world.alice.id
        assert set(tokens.scopes) == {"mesures.read", "mesures.write"}
        assert [m.value for m in await vendor.measures(pid, "weight")] == [70.5]
        added = await vendor.add_measure(pid, "weight", 71.0)
        assert added.value == 71.0
        with pytest.raises(ConsentNotGivenError):  # documents.read was never granted
            await vendor.document(pid, world.documents[pid][0])

        # The access token expires: the holder refreshes first, and keeps the new refresh token.
        first = vendor.tokens.tokens
        world.clock.advance(first.expires_at - world.clock.now())
        assert len(await vendor.measures(pid, "weight")) == 2
        assert vendor.tokens.refreshes == 1
        second = vendor.tokens.tokens
        assert second.refresh_token != first.refresh_token
        assert second.access_token != first.access_token

        # The patient narrows the consent, then revokes it: the app's calls are refused.
        async with async_client(app) as patient:
            await patient.login_patient(*_login_args(world.alice))
            (consent,) = await patient.consents(pid)
            assert consent.client_id == client_id
            assert consent.active
            narrowed = await patient.narrow_consent(pid, client_id, ["mesures.read"])
            assert narrowed.scopes == ["mesures.read"]
            with pytest.raises(ConsentNotGivenError):
                await vendor.add_measure(pid, "weight", 72.0)
            assert len(await vendor.measures(pid, "weight")) == 2
            await patient.revoke_consent(pid, client_id)
            assert not (await patient.consents(pid))[0].active
        with pytest.raises(ConsentNotGivenError) as refused:
            await vendor.measures(pid, "weight")
    assert refused.value.status == 403
    assert refused.value.problem["title"] == "Consent not given"


async def test_a_refusal_and_a_revoked_grant(world, app):
    client_id = referenced(world)
    async with async_client(app, clock=world.clock.now) as vendor:
        started = await vendor.start_authorization(
            client_id=client_id, redirect_uri=CALLBACK, scopes=["mesures.read"]
        )
        location = await _consent_in_browser(app, world.alice, started.url, decision="deny")
        with pytest.raises(OAuthError) as denied_by_patient:
            await vendor.finish_authorization(started, location)
        assert denied_by_patient.value.error == "access_denied"

        started = await vendor.start_authorization(
            client_id=client_id, redirect_uri=CALLBACK, scopes=["mesures.read"]
        )
        location = await _consent_in_browser(app, world.alice, started.url)
        tokens = await vendor.finish_authorization(started, location)
        with pytest.raises(InvalidTokenError) as replayed:  # a code is single use
            await vendor.finish_authorization(started, location)
        assert replayed.value.error == "invalid_grant"
        # RFC 6749 section 4.1.2: a replayed code revokes what it gave.
        found = await vendor.introspect(tokens.access_token, client_id=client_id)
        assert found == {"active": False}

        started = await vendor.start_authorization(
            client_id=client_id, redirect_uri=CALLBACK, scopes=["mesures.read"]
        )
        tokens = await vendor.finish_authorization(
            started, await _consent_in_browser(app, world.alice, started.url)
        )
        found = await vendor.introspect(tokens.access_token, client_id=client_id)
        assert found["active"] is True
        assert found["scope"] == "mesures.read"
        await vendor.revoke()
        found = await vendor.introspect(tokens.access_token, client_id=client_id)
        assert found == {"active": False}
        with pytest.raises(InvalidTokenError):
            await vendor.refresh()
        with pytest.raises(InvalidTokenError):
            await vendor.measures(tokens.patient_id, "weight")


def test_an_app_over_a_real_socket(live):
    """The blocking client through the whole OAuth flow over loopback."""
    world, url = live
    client_id = referenced(world)
    with Client(url, clock=world.clock.now) as vendor:
        started = vendor.start_authorization(
            client_id=client_id, redirect_uri=CALLBACK, scopes=["mesures.read"]
        )
        with httpx.Client(base_url=url) as browser:
            browser.post("/api/v1/session/patient", json=world.alice.login())
            page = browser.get(started.url)
            fields = _hidden_fields(page.text)
            answer = browser.post("/oauth/authorize", data={**fields, "decision": "approve"})
        tokens = vendor.finish_authorization(started, answer.headers["location"])
        assert [m.value for m in vendor.measures(tokens.patient_id, "weight")] == [70.5]
        world.clock.advance(minutes=10)
        assert len(vendor.measures(tokens.patient_id, "weight")) == 1
        assert vendor.tokens.refreshes == 1
        with pytest.raises(ConsentNotGivenError):
            vendor.add_measure(tokens.patient_id, "weight", 70.0)
        vendor.revoke()
        with pytest.raises(InvalidTokenError):
            vendor.measures(tokens.patient_id, "weight")


# --- the core's decisions, as properties ---------------------------------------------------

STATUSES = st.sampled_from([200, 201, 400, 401, 404, 409, 429, 500, 502, 503])


@given(
    answers=st.lists(STATUSES, min_size=1, max_size=8),
    retry_after=st.one_of(st.none(), st.integers(0, 300)),
    method=st.sampled_from(["GET", "PUT", "DELETE", "POST", "PATCH"]),
    max_attempts=st.integers(1, 5),
    seed=st.integers(0, 2**32),
)
def test_retry_decisions(answers, retry_after, method, max_attempts, seed):
    """Whatever the server answers: no more attempts than the policy allows, retries only
    on 429/503 and only for idempotent methods, waits that honour Retry-After (up to the
    limit) or stay within the backoff's ceiling, and a success or an error at the end."""
    policy = RetryPolicy(max_attempts=max_attempts, base_delay=0.5, max_delay=4.0)
    core = Core(BASE, retry=policy, budget=None, rng=random.Random(seed))
    exchange = core.exchange(Call(method, "/api/v1/thing"))
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    outcome = None
    for status in answers:
        request = exchange.request()
        response = httpx.Response(status, headers=headers, request=request)
        try:
            wait = exchange.answered(response)
        except ApiError as exc:
            outcome = exc
            break
        if wait is None:
            outcome = status
            break
        assert status in (429, 503)
        assert method in ("GET", "PUT", "DELETE")
        if retry_after is not None:
            assert wait == retry_after <= policy.max_retry_after
        else:
            assert 0 <= wait <= min(4.0, 0.5 * 2 ** (exchange.attempts - 1))
    assert exchange.attempts <= max_attempts
    if outcome is None:  # the script ran out while retries were still allowed
        assert exchange.attempts == len(answers)
    elif isinstance(outcome, ApiError):
        assert outcome.status == answers[exchange.attempts - 1]
    else:
        assert 200 <= outcome < 300


@given(
    total=st.integers(0, 60),
    page_size=st.integers(1, 10),
    shrink=st.integers(0, 60),
)
def test_pagination_ends_and_misses_nothing(total, page_size, shrink):
    """Following next_offset reads every item once, and ends even when items disappear
    between pages (the total the server reported is then never reached)."""
    items = list(range(total))
    seen: list[int] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        pages += 1
        assert pages <= total + 2
        reported = len(items)
        page = items[offset : offset + page_size]
        seen.extend(page)
        if pages == 2 and shrink:  # items deleted after the first pages were served
            items = items[: max(0, len(items) - shrink)]
        offset = next_offset(offset, len(page), reported)
    if not shrink or total <= page_size:
        assert seen == list(range(total))
    assert len(seen) == len(set(seen))


@given(seconds=st.integers(0, 10**6))
def test_retry_after_in_both_forms(seconds):
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert parse_retry_after(str(seconds), now) == seconds
    date_form = email.utils.format_datetime(now + timedelta(seconds=seconds), usegmt=True)
    assert parse_retry_after(date_form, now) == seconds


def test_metadata_naming_another_issuer_is_refused():
    """RFC 8414 section 3.3: a document naming another issuer could send the app's codes
    and refresh tokens elsewhere."""
    forged = {
        "issuer": "https://evil.example",
        "authorization_endpoint": "https://evil.example/authorize",
        "token_endpoint": "https://evil.example/token",
    }
    api, _ = scripted(Script(ok(forged), ok({"issuer": BASE})))
    with pytest.raises(ServerError, match="another issuer"):
        api.server_metadata()
    with pytest.raises(ServerError, match="lacks"):
        api.server_metadata()


@given(
    status=st.integers(300, 599),
    body=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.sampled_from(["error", "title", "detail", "type"]), inner)
            ),
            max_leaves=8,
        ).map(lambda value: json.dumps(value).encode()),
    ),
    media=st.sampled_from(["application/json", "application/problem+json", "text/html", ""]),
    challenge=st.one_of(st.none(), st.text(max_size=60)),
    retry_after=st.one_of(st.none(), st.text(max_size=30)),
)
def test_any_error_answer_maps_to_an_api_error(status, body, media, challenge, retry_after):
    """Whatever an error answer carries (any body, media type, challenge or Retry-After),
    it becomes an ApiError with its status, never another exception."""
    headers = {}
    if media:
        headers["content-type"] = media
    if challenge is not None:
        headers["www-authenticate"] = challenge.encode("ascii", "ignore").decode()
    if retry_after is not None:
        headers["retry-after"] = retry_after.encode("ascii", "ignore").decode()
    response = httpx.Response(status, headers=headers, content=body)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    error = error_for_response(response, method="GET", path="/api/v1/x", now=now)
    assert isinstance(error, ApiError)
    assert error.status == status
    assert isinstance(error.problem, dict)
    assert str(error).startswith(f"GET /api/v1/x: {status} ")


def test_the_two_clients_offer_the_same_methods():
    """Client and AsyncClient have the same methods, parameters, defaults and docstrings
    (close is aclose on the async side): one cannot gain a feature the other lacks."""

    def surface(cls):
        found = {}
        for name, member in vars(cls).items():
            if name.startswith("__") or not callable(member):
                continue
            signature = inspect.signature(member)
            parameters = [(p.name, p.kind, p.default) for p in signature.parameters.values()]
            found[{"aclose": "close"}.get(name, name)] = (parameters, member.__doc__)
        return found

    sync, asynchronous = surface(Client), surface(AsyncClient)
    assert sync.keys() == asynchronous.keys()
    for name in sync:
        assert sync[name] == asynchronous[name], name
    for name, member in vars(AsyncClient).items():
        if name.startswith("_") and name != "_send":
            continue
        if callable(member) and not name.startswith("__"):
            assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)


async def test_concurrent_calls_refresh_once():
    """Calls made together on expired tokens share one refresh: a second one would spend
    the rotated refresh token and, on a real server, revoke the whole authorization."""
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    server = FakeAuthorizationServer(clock)
    holder = TokenHolder(
        TokenSet("a0", expires_at=clock.now(), refresh_token="r0"), clock=clock.now
    )
    results: list[object] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.01)  # every exchange yields: the calls interleave
        return server(request)

    async with AsyncClient(
        BASE,
        transport=httpx.MockTransport(slow),
        tokens=holder,
        client_id="app",
        token_endpoint=BASE + "/oauth/token",
    ) as api:

        async def call() -> None:
            results.append(await api.request(GET))

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(call)
    assert holder.refreshes == 1
    assert results == [{"token": "a1"}] * 5
    assert [r.url.path for r in server.seen].count("/oauth/token") == 1


def test_threads_refresh_once():
    """The blocking client's refresh lock: five threads on expired tokens, one refresh."""
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    server = FakeAuthorizationServer(clock)
    holder = TokenHolder(
        TokenSet("a0", expires_at=clock.now(), refresh_token="r0"), clock=clock.now
    )

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.01)  # every exchange takes a moment: the threads overlap
        return server(request)

    with (
        Client(
            BASE,
            transport=httpx.MockTransport(slow),
            tokens=holder,
            client_id="app",
            token_endpoint=BASE + "/oauth/token",
        ) as api,
        ThreadPoolExecutor(5) as pool,
    ):
        results = list(pool.map(lambda _: api.request(GET), range(5)))
    assert holder.refreshes == 1
    assert results == [{"token": "a1"}] * 5
