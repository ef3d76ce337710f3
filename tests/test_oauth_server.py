"""OAuth 2 in the demo server, in process (httpx over ASGI): the metadata, the consent page,
the token, revocation and introspection endpoints, bearer tokens of apps on the exchange
routes, the public catalogue and the patient's consents; and every bad input of issue 14
refused with the standard error, audited, nothing granted."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from monespace import Actor
from monespace.audit import Outcome
from monespace.catalogue import (
    Scope,
    pkce_challenge,
)
from monespace.server import RateLimits
from monespace.testing import reference_app

from .test_server_world import build_world, client, create_app, login_patient

pytestmark = pytest.mark.anyio

REDIRECT = "https://poids.example/callback"
MINISTER = Actor.authority("cabinet", "minister")
ALL = " ".join(sorted(str(s) for s in Scope))


def reference(space, client_id: str, scopes=frozenset(Scope), service="Suivi Poids") -> str:
    """Take an app through the référencement; return its client id."""
    app = reference_app(
        space,
        client_id,
        scopes=scopes,
        redirect_uris=(REDIRECT, "http://127.0.0.1/cb"),
        name=service,
        publisher="Balance SAS",
        category="Suivi du poids",
    )
    return app.client_id


@pytest.fixture
def world():
    w = build_world()
    reference(w.space, "suivi-poids")
    reference(w.space, "autre-appli", scopes=frozenset({Scope.MESURES_READ}), service="Autre")
    yield w
    w.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space, secure_cookies=False)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


def auth_query(client_id="suivi-poids", scope=ALL, challenge=None, **changes) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "xyz-123",
        "code_challenge": challenge or pkce()[1],
        "code_challenge_method": "S256",
    }
    query.update(changes)
    return {k: v for k, v in query.items() if v is not None}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found[1]


async def consent(http, world, query, *, decision="approve", csrf=True):
    """Log Alice in (cookie), open the consent page and answer it; the last response."""
    await login_patient(http, world.alice)
    page = await http.get("/oauth/authorize?" + urlencode(query))
    assert page.status_code == 200, page.text
    form = {**query, "decision": decision}
    if csrf:
        form["csrf_token"] = csrf_of(page.text)
    return await http.post("/oauth/authorize", data=form)


def redirected(response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def tokens(http, world, scope=ALL, client_id="suivi-poids") -> dict[str, str]:
    verifier, challenge = pkce()
    answer = redirected(
        await consent(http, world, auth_query(client_id, scope=scope, challenge=challenge))
    )
    response = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def oauth_events(world, outcome: Outcome | None = None) -> list:
    events = world.space.audit.events(Actor.system("test"), limit=100_000)
    return [
        e
        for e in events
        if e.action.startswith("oauth.") and (outcome is None or e.outcome is outcome)
    ]


# --- metadata and the happy path --------------------------------------------------------------


async def test_the_metadata_describes_a_pkce_only_code_flow(app):
    async with client(app) as http:
        meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == "http://testserver"
    assert meta["token_endpoint"] == "http://testserver/oauth/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["scopes_supported"]) == set(ALL.split())


async def test_an_app_reads_and_writes_within_its_scopes(world, app):
    async with client(app) as http:
        verifier, challenge = pkce()
        await login_patient(http, world.alice)
        page = await http.get("/oauth/authorize?" + urlencode(auth_query(challenge=challenge)))
        assert "Suivi Poids" in page.text
        assert "Balance SAS" in page.text
        assert "Enregistrer des mesures de santé" in page.text
        assert "form-action 'self' https://poids.example" in page.headers["content-security-policy"]
        form = {**auth_query(challenge=challenge), "decision": "approve"}
        form["csrf_token"] = csrf_of(page.text)
        answer = redirected(await http.post("/oauth/authorize", data=form))
        assert answer["state"] == "xyz-123"
        http.cookies.clear()
        response = await http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": REDIRECT,
                "client_id": "suivi-poids",
                "code_verifier": verifier,
            },
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        got = response.json()
        assert got["token_type"] == "Bearer"
        assert got["expires_in"] == 600
        assert got["patient"] == world.alice.id
        assert got["scope"] == ALL
        pid = world.alice.id
        added = await http.post(
            f"/api/v1/patients/{pid}/measures",
            json={"kind": "weight", "value": 71.5},
            headers=bearer(got["access_token"]),
        )
        assert added.status_code == 201, added.text
        series = await http.get(
            f"/api/v1/patients/{pid}/measures?kind=weight", headers=bearer(got["access_token"])
        )
        assert series.status_code == 200
        assert 71.5 in [m["value"] for m in series.json()]
        documents = await http.get(
            f"/api/v1/patients/{pid}/documents", headers=bearer(got["access_token"])
        )
        assert documents.status_code == 200
        # Never another patient, never a route outside the exchange APIs.
        other = await http.get(
            f"/api/v1/patients/{world.bob.id}/documents", headers=bearer(got["access_token"])
        )
        assert other.status_code == 404
        settings = await http.get(
            f"/api/v1/patients/{pid}/access/settings", headers=bearer(got["access_token"])
        )
        assert settings.status_code == 401
    assert world.space.consents.active(pid, "suivi-poids") is not None
    actions = [e.action for e in oauth_events(world, Outcome.SUCCESS)]
    assert actions == ["oauth.code", "oauth.token"]


# --- the authorization endpoint refuses ---------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": REDIRECT + "/"},
        {"redirect_uri": None},
        {"client_id": "inconnue"},
        {"client_id": "../etc"},
    ],
    ids=["foreign", "not-exact", "missing", "unknown-client", "malformed-client"],
)
async def test_an_untrusted_client_or_redirect_gets_a_page_never_a_redirect(world, app, changes):
    async with client(app) as http:
        await login_patient(http, world.alice)
        response = await http.get("/oauth/authorize?" + urlencode(auth_query(**changes)))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Aucun accès n'a été donné" in response.text
    assert oauth_events(world, Outcome.DENIED)
    assert world.space.consents.active(world.alice.id, "suivi-poids") is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "trop-court"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "documents.read profil.read"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"client_id": "autre-appli", "scope": "mesures.read mesures.write"}, "invalid_scope"),
    ],
    ids=[
        "plain-pkce",
        "no-method",
        "bad-challenge",
        "implicit",
        "unknown-scope",
        "no-scope",
        "beyond-convention",
    ],
)
async def test_a_bad_request_goes_back_to_the_app_with_its_error(world, app, changes, error):
    async with client(app) as http:
        await login_patient(http, world.alice)
        response = await http.get("/oauth/authorize?" + urlencode(auth_query(**changes)))
    answer = redirected(response)
    assert answer["error"] == error
    assert answer["state"] == "xyz-123"
    assert "code" not in answer
    assert [e.rule for e in oauth_events(world, Outcome.DENIED)] == [error]
    assert world.space.consents.of(Actor.patient(world.alice.id), world.alice.id) == []


async def test_a_repeated_parameter_is_refused(world, app):
    async with client(app) as http:
        query = urlencode(auth_query()) + "&scope=agenda.read"
        response = await http.get("/oauth/authorize?" + query)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_without_a_session_the_patient_logs_in_first_and_comes_back(world, app):
    query = urlencode(auth_query())
    async with client(app) as http:
        response = await http.get("/oauth/authorize?" + query)
        assert response.status_code == 401
        assert 'name="next"' in response.text
        login = await http.post(
            "/login", data={**world.alice.login(), "next": "/oauth/authorize?" + query}
        )
        assert login.status_code == 303
        assert login.headers["location"] == "/oauth/authorize?" + query
        again = await http.post(
            "/login", data={**world.alice.login(), "next": "https://evil.example/"}
        )
        assert again.headers["location"] == f"/espace/{world.alice.id}"


async def test_a_consent_form_without_its_csrf_token_grants_nothing(world, app):
    async with client(app) as http:
        response = await consent(http, world, auth_query(), csrf=False)
        assert response.status_code == 403
        assert "location" not in response.headers
        forged = await http.post(
            "/oauth/authorize", data={**auth_query(), "decision": "approve", "csrf_token": "x"}
        )
        assert forged.status_code == 403
    assert world.space.consents.active(world.alice.id, "suivi-poids") is None
    assert [e.rule for e in oauth_events(world, Outcome.DENIED)] == ["access_denied"] * 2
    assert not oauth_events(world, Outcome.SUCCESS)


async def test_a_patient_who_refuses_sends_access_denied(world, app):
    async with client(app) as http:
        answer = redirected(await consent(http, world, auth_query(), decision="deny"))
    assert answer == {
        "error": "access_denied",
        "error_description": "the patient refused",
        "state": "xyz-123",
    }
    assert world.space.consents.active(world.alice.id, "suivi-poids") is None


async def test_a_suspended_app_gets_no_consent_page_and_its_tokens_stop(world, app):
    async with client(app) as http:
        got = await tokens(http, world)
        application = next(
            a for a in world.space.catalogue.applications() if a.client_id == "suivi-poids"
        )
        world.space.catalogue.suspend(MINISTER, application.id)
        page = await http.get("/oauth/authorize?" + urlencode(auth_query()))
        assert page.status_code == 400
        read = await http.get(
            f"/api/v1/patients/{world.alice.id}/documents", headers=bearer(got["access_token"])
        )
        assert read.status_code == 403
        assert read.json()["title"] == "Consent not given"
        refresh = await http.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": got["refresh_token"],
                "client_id": "suivi-poids",
            },
        )
        assert refresh.status_code == 400
        assert refresh.json()["error"] == "invalid_grant"


# --- the token endpoint refuses -----------------------------------------------------------------


async def _code(http, world, challenge, client_id="suivi-poids", scope=ALL) -> str:
    query = auth_query(client_id, scope=scope, challenge=challenge)
    return redirected(await consent(http, world, query))["code"]


def _exchange(code, verifier, client_id="suivi-poids", redirect_uri=REDIRECT) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }


async def test_a_code_works_once_and_its_replay_revokes_what_it_gave(world, app):
    async with client(app) as http:
        verifier, challenge = pkce()
        code = await _code(http, world, challenge)
        first = await http.post("/oauth/token", data=_exchange(code, verifier))
        assert first.status_code == 200
        replay = await http.post("/oauth/token", data=_exchange(code, verifier))
        assert replay.status_code == 400
        assert replay.json()["error"] == "invalid_grant"
        read = await http.get(
            f"/api/v1/patients/{world.alice.id}/documents",
            headers=bearer(first.json()["access_token"]),
        )
        assert read.status_code == 401
        assert read.headers["www-authenticate"].endswith('error="invalid_token"')
    assert [e.rule for e in oauth_events(world, Outcome.DENIED)] == [
        "code_replayed",
        "invalid_token",
    ]


@pytest.mark.parametrize(
    "case",
    ["forged", "expired", "other-app", "pkce-mismatch", "no-verifier", "other-redirect"],
)
async def test_a_bad_code_is_invalid_grant_and_gives_nothing(world, app, case):
    async with client(app) as http:
        verifier, challenge = pkce()
        code = await _code(http, world, challenge)
        data = _exchange(code, verifier)
        if case == "forged":
            data["code"] = secrets.token_urlsafe(32)
        elif case == "expired":
            world.clock.advance(timedelta(seconds=61))
        elif case == "other-app":
            data["client_id"] = "autre-appli"
        elif case == "pkce-mismatch":
            data["code_verifier"] = pkce()[0]
        elif case == "no-verifier":
            del data["code_verifier"]
        else:
            data["redirect_uri"] = "http://127.0.0.1/cb"
        response = await http.post("/oauth/token", data=data)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        # Refused once, the code is not burnt for its rightful use (unless it expired).
        if case != "expired":
            good = await http.post("/oauth/token", data=_exchange(code, verifier))
            assert good.status_code == 200
    denied = oauth_events(world, Outcome.DENIED)
    assert [e.rule for e in denied] == ["invalid_grant"]
    assert all(code not in str(e) for e in denied)


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({"grant_type": "password", "client_id": "suivi-poids"}, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": "suivi-poids"},
            400,
            "unsupported_grant_type",
        ),
    ],
)
async def test_token_endpoint_errors_are_rfc6749_json(app, data, status, error):
    async with client(app) as http:
        response = await http.post("/oauth/token", data=data)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.headers["content-type"] == "application/json"


async def test_the_token_endpoint_takes_forms_only_and_each_parameter_once(app):
    async with client(app) as http:
        as_json = await http.post("/oauth/token", json={"grant_type": "refresh_token"})
        twice = await http.post(
            "/oauth/token",
            content="grant_type=refresh_token&grant_type=password&client_id=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        huge = await http.post(
            "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x" * 20_000}
        )
    assert as_json.json()["error"] == "invalid_request"
    assert twice.json()["error"] == "invalid_request"
    assert huge.status_code == 400
    assert huge.json()["error"] == "invalid_request"


async def test_a_secret_is_refused_apps_are_public_clients(app):
    async with client(app) as http:
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            auth=("suivi-poids", "secret"),
        )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


# --- refresh, revocation, introspection ---------------------------------------------------------


def _refresh(token, client_id="suivi-poids", **more) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id, **more}


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(world, app):
    async with client(app) as http:
        first = await tokens(http, world)
        second = await http.post("/oauth/token", data=_refresh(first["refresh_token"]))
        assert second.status_code == 200
        fresh = second.json()
        assert fresh["refresh_token"] != first["refresh_token"]
        narrower = await http.post(
            "/oauth/token", data=_refresh(fresh["refresh_token"], scope="mesures.read")
        )
        assert narrower.json()["scope"] == "mesures.read"
        latest = narrower.json()
        reuse = await http.post("/oauth/token", data=_refresh(first["refresh_token"]))
        assert reuse.status_code == 400
        assert reuse.json()["error"] == "invalid_grant"
        for token in (first["access_token"], fresh["access_token"], latest["access_token"]):
            read = await http.get(
                f"/api/v1/patients/{world.alice.id}/documents", headers=bearer(token)
            )
            assert read.status_code == 401
        after = await http.post("/oauth/token", data=_refresh(latest["refresh_token"]))
        assert after.json()["error"] == "invalid_grant"
    reuses = [e for e in oauth_events(world) if e.action == "oauth.reuse"]
    assert [e.rule for e in reuses] == ["refresh_token_reused"]


async def test_refresh_refuses_wider_scopes_other_apps_and_access_tokens(world, app):
    async with client(app) as http:
        got = await tokens(http, world, scope="mesures.read")
        wider = await http.post(
            "/oauth/token", data=_refresh(got["refresh_token"], scope="mesures.read mesures.write")
        )
        assert wider.json()["error"] == "invalid_scope"
        other = await http.post("/oauth/token", data=_refresh(got["refresh_token"], "autre-appli"))
        assert other.json()["error"] == "invalid_grant"
        access = await http.post("/oauth/token", data=_refresh(got["access_token"]))
        assert access.json()["error"] == "invalid_grant"
        world.clock.advance(timedelta(days=31))
        expired = await http.post("/oauth/token", data=_refresh(got["refresh_token"]))
        assert expired.json()["error"] == "invalid_grant"


async def test_an_access_token_expires(world, app):
    async with client(app) as http:
        got = await tokens(http, world)
        world.clock.advance(timedelta(minutes=10))
        read = await http.get(
            f"/api/v1/patients/{world.alice.id}/documents", headers=bearer(got["access_token"])
        )
    assert read.status_code == 401
    assert read.headers["www-authenticate"] == 'Bearer realm="monespace", error="invalid_token"'


async def test_revocation_rfc7009(world, app):
    async with client(app) as http:
        got = await tokens(http, world)
        url = f"/api/v1/patients/{world.alice.id}/documents"
        # Another app's revocation is answered the same and changes nothing.
        other = await http.post(
            "/oauth/revoke", data={"token": got["access_token"], "client_id": "autre-appli"}
        )
        assert other.status_code == 200
        assert (await http.get(url, headers=bearer(got["access_token"]))).status_code == 200
        unknown = await http.post(
            "/oauth/revoke", data={"token": "inconnu", "client_id": "suivi-poids"}
        )
        assert unknown.status_code == 200
        own = await http.post(
            "/oauth/revoke", data={"token": got["access_token"], "client_id": "suivi-poids"}
        )
        assert own.status_code == 200
        assert (await http.get(url, headers=bearer(got["access_token"]))).status_code == 401
        refreshed = await http.post("/oauth/token", data=_refresh(got["refresh_token"]))
        assert refreshed.status_code == 200
        new = refreshed.json()
        await http.post(
            "/oauth/revoke",
            data={
                "token": new["refresh_token"],
                "token_type_hint": "refresh_token",
                "client_id": "suivi-poids",
            },
        )
        assert (await http.get(url, headers=bearer(new["access_token"]))).status_code == 401
        missing = await http.post("/oauth/revoke", data={"client_id": "suivi-poids"})
        assert missing.json()["error"] == "invalid_request"


async def test_introspection_rfc7662_answers_the_app_itself_only(world, app):
    async with client(app) as http:
        got = await tokens(http, world, scope="mesures.read mesures.write")
        own = await http.post(
            "/oauth/introspect", data={"token": got["access_token"], "client_id": "suivi-poids"}
        )
        body = own.json()
        assert body["active"] is True
        assert body["scope"] == "mesures.read mesures.write"
        assert body["patient"] == world.alice.id
        assert body["token_type"] == "access_token"
        assert body["exp"] - body["iat"] == 600
        other = await http.post(
            "/oauth/introspect", data={"token": got["access_token"], "client_id": "autre-appli"}
        )
        assert other.json() == {"active": False}
        forged = await http.post(
            "/oauth/introspect", data={"token": "forgé", "client_id": "suivi-poids"}
        )
        assert forged.json() == {"active": False}
        world.space.consents.revoke(Actor.patient(world.alice.id), world.alice.id, "suivi-poids")
        gone = await http.post(
            "/oauth/introspect", data={"token": got["access_token"], "client_id": "suivi-poids"}
        )
        assert gone.json() == {"active": False}


# --- bearer tokens on the exchange routes --------------------------------------------------------


async def test_after_revocation_of_consent_the_app_gets_consent_not_given(world, app):
    async with client(app) as http:
        got = await tokens(http, world)
        headers = await login_patient(http, world.alice)
        revoked = await http.delete(
            f"/api/v1/patients/{world.alice.id}/consents/suivi-poids", headers=headers
        )
        assert revoked.status_code == 204
        http.cookies.clear()
        for method, path, body in (
            ("GET", "/documents", None),
            ("GET", "/measures?kind=weight", None),
            ("POST", "/measures", {"kind": "weight", "value": 70}),
            ("GET", "/agenda/events", None),
        ):
            response = await http.request(
                method,
                f"/api/v1/patients/{world.alice.id}{path}",
                json=body,
                headers=bearer(got["access_token"]),
            )
            assert response.status_code == 403, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["title"] == "Consent not given"
            assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    denied = [
        e
        for e in world.space.audit.events(Actor.system("t"), limit=100_000)
        if e.actor_id == "suivi-poids" and e.outcome is Outcome.DENIED
    ]
    assert {e.rule for e in denied} == {"consent_not_given"}


async def test_outside_its_scopes_the_app_gets_insufficient_scope(world, app):
    async with client(app) as http:
        got = await tokens(http, world, scope="mesures.read")
        write = await http.post(
            f"/api/v1/patients/{world.alice.id}/measures",
            json={"kind": "weight", "value": 70},
            headers=bearer(got["access_token"]),
        )
        assert write.status_code == 403
        assert 'scope="mesures.write"' in write.headers["www-authenticate"]
        documents = await http.get(
            f"/api/v1/patients/{world.alice.id}/documents", headers=bearer(got["access_token"])
        )
        assert documents.status_code == 403


async def test_tokens_are_refused_in_urls_and_forged_tokens_are_invalid(world, app):
    async with client(app) as http:
        got = await tokens(http, world)
        http.cookies.clear()
        in_query = await http.get(
            f"/api/v1/patients/{world.alice.id}/documents?access_token={got['access_token']}"
        )
        assert in_query.status_code == 400
        assert got["access_token"] not in in_query.text
        forged = await http.get(
            f"/api/v1/patients/{world.alice.id}/documents", headers=bearer("forged" * 8)
        )
        assert forged.status_code == 401
        refresh_as_access = await http.get(
            f"/api/v1/patients/{world.alice.id}/documents", headers=bearer(got["refresh_token"])
        )
        assert refresh_as_access.status_code == 401
    refused = [e for e in oauth_events(world, Outcome.DENIED) if e.rule == "invalid_token"]
    assert [(e.actor_id, e.patient_id) for e in refused] == [
        ("unknown", None),
        ("suivi-poids", world.alice.id),
    ]


# --- the public catalogue and the patient's consents ----------------------------------------------


async def test_the_public_catalogue_needs_no_login(world, app):
    async with client(app) as http:
        everything = (await http.get("/api/v1/catalogue")).json()
        found = (await http.get("/api/v1/catalogue", params={"q": "autre"})).json()
    assert {a["client_id"] for a in everything} == {"suivi-poids", "autre-appli"}
    assert [a["client_id"] for a in found] == ["autre-appli"]
    assert found[0]["publisher"] == "Balance SAS"


async def test_the_patient_lists_narrows_and_revokes_consents(world, app):
    async with client(app) as http:
        await tokens(http, world)
        headers = await login_patient(http, world.alice)
        http.cookies.clear()
        base = f"/api/v1/patients/{world.alice.id}/consents"
        listed = (await http.get(base, headers=headers)).json()
        assert [(c["client_id"], c["app_name"], c["active"]) for c in listed] == [
            ("suivi-poids", "Suivi Poids", True)
        ]
        narrowed = await http.patch(
            base + "/suivi-poids", json={"scopes": ["mesures.read"]}, headers=headers
        )
        assert narrowed.status_code == 200, narrowed.text
        assert narrowed.json()["scopes"] == ["mesures.read"]
        bob = await login_patient(http, world.bob)
        assert (await http.get(base, headers=bob)).status_code == 404
        assert (await http.delete(base + "/suivi-poids", headers=bob)).status_code == 404
        assert (await http.delete(base + "/suivi-poids", headers=headers)).status_code == 204
        assert (await http.delete(base + "/suivi-poids", headers=headers)).status_code == 404


async def test_only_refusals_count_against_an_address(world):
    app = create_app(world.space, secure_cookies=False, rate_limits=RateLimits(per_ip=3))
    async with client(app) as http:
        got = await tokens(http, world)
        refresh = got["refresh_token"]
        for _ in range(5):  # more than the limit, all successful
            answer = await http.post("/oauth/token", data=_refresh(refresh))
            assert answer.status_code == 200
            refresh = answer.json()["refresh_token"]
        for _ in range(3):
            forged = await http.post("/oauth/token", data=_refresh(secrets.token_urlsafe(32)))
            assert forged.status_code == 400
        blocked = await http.post("/oauth/token", data=_refresh(refresh))
        assert blocked.status_code == 429
        assert blocked.json() == {"error": "slow_down"}
        assert int(blocked.headers["retry-after"]) > 0
        world.clock.advance(timedelta(minutes=15))
        assert (await http.post("/oauth/token", data=_refresh(refresh))).status_code == 200


async def test_a_parent_connects_an_app_to_their_childs_space_and_no_one_else_can(world, app):
    async with client(app) as http:
        verifier, challenge = pkce()
        query = auth_query(scope="mesures.read", challenge=challenge)
        await login_patient(http, world.alice)
        page = await http.get("/oauth/authorize?" + urlencode(query))
        assert f'value="{world.child}"' in page.text
        form = {**query, "decision": "approve", "csrf_token": csrf_of(page.text)}
        answer = redirected(
            await http.post("/oauth/authorize", data={**form, "patient": world.child})
        )
        got = await http.post("/oauth/token", data=_exchange(answer["code"], verifier))
        assert got.json()["patient"] == world.child
        http.cookies.clear()
        read = await http.get(
            f"/api/v1/patients/{world.child}/measures?kind=weight",
            headers=bearer(got.json()["access_token"]),
        )
        assert read.status_code == 200
        # Bob represents nobody: naming Alice's space in the form grants nothing.
        await login_patient(http, world.bob)
        page = await http.get("/oauth/authorize?" + urlencode(query))
        assert "for-whom" not in page.text
        form = {**query, "decision": "approve", "csrf_token": csrf_of(page.text)}
        refused = redirected(
            await http.post("/oauth/authorize", data={**form, "patient": world.alice.id})
        )
        assert refused["error"] == "access_denied"
    assert world.space.consents.active(world.alice.id, "suivi-poids") is None
    consent = world.space.consents.active(world.child, "suivi-poids")
    assert consent is not None
    assert consent.by == f"representative:{world.alice.id}"
