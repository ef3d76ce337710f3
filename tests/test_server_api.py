"""The demo server's JSON API, in process (httpx over ASGI): every route, sessions, CSRF,
rate limits, bad input, headers and logs."""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio.to_thread
import httpx
import pytest

from monespace import Actor
from monespace.server import RateLimits
from monespace.server._api import api_operations
from monespace.server._apps import app_operations
from monespace.server._routing import Auth, Operation, Reply

from .test_server_world import (
    CANARY,
    _identity,
    b64,
    build_world,
    client,
    create_app,
    login_patient,
    login_professional,
)

pytestmark = pytest.mark.anyio

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def world():
    w = build_world()
    yield w
    w.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space, secure_cookies=False)


async def test_health_and_openapi(app):
    async with client(app) as http:
        health = await http.get("/health")
        assert health.json() == {"status": "ok"}
        spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    assert "not an HDS deployment" in spec["info"]["description"]


async def test_openapi_lists_exactly_the_served_routes(app):
    served = set()
    for route in app.routes:
        if route.path.startswith(("/api/", "/health", "/openapi.json", "/oauth/", "/.well-known/")):
            served |= {(route.path, m.lower()) for m in route.methods - {"HEAD"}}
    async with client(app) as http:
        spec = (await http.get("/openapi.json")).json()
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert documented == served
    # every page route is outside the API's namespace
    others = {r.path for r in app.routes} - {p for p, _ in served}
    assert all(not p.startswith("/api/") for p in others)
    # every documented operation answers with one of its documented statuses
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert op["responses"], path


async def test_openapi_schemas_come_from_the_models(app):
    async with client(app) as http:
        spec = (await http.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert schemas["DocumentOut"]["properties"]["created_at"]["format"] == "date-time"
    assert schemas["ProfessionalLogin"]["properties"]["rpps"]["pattern"] == "^[0-9]{11}$"
    login = spec["paths"]["/api/v1/session/patient"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PatientLogin"
    }
    listing = spec["paths"]["/api/v1/patients/{patient_id}/documents"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "patient_id",
        "category",
        "offset",
        "limit",
        "after",
    }


async def test_without_demo_mode_there_is_no_login_to_simulate(world):
    app = create_app(world.space, demo=False)
    async with client(app) as http:
        for path in ("/api/v1/session/patient", "/api/v1/session/professional"):
            response = await http.post(path, json={"rpps": "10003456786"})
            assert response.status_code == 404
        spec = (await http.get("/openapi.json")).json()
    assert "/api/v1/session/professional" not in spec["paths"]


async def test_patient_login_session_and_logout(world, app):
    async with client(app) as http:
        response = await http.post("/api/v1/session/patient", json=world.alice.login())
        assert response.status_code == 201
        body = response.json()
        token = body["token"]
        assert len(token) >= 43  # 32 random bytes, URL-safe base64
        assert body["session"]["spaces"] == [world.alice.id, world.child]
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Secure" not in cookie
        headers = {"authorization": f"Bearer {token}"}
        me = await http.get("/api/v1/session", headers=headers)
        assert me.json()["person_id"] == world.alice.id
        out = await http.delete("/api/v1/session", headers=headers)
        assert out.status_code == 204
        again = await http.get("/api/v1/session", headers=headers)
        assert again.status_code == 401
        assert again.headers["content-type"] == "application/problem+json"


async def test_login_rotates_the_token_and_revokes_the_previous_one(world, app):
    async with client(app) as http:
        first = await http.post("/api/v1/session/patient", json=world.alice.login())
        old = first.json()["token"]
        second = await http.post("/api/v1/session/patient", json=world.alice.login())
        new = second.json()["token"]
        assert new != old
        # the cookie of the first login was sent with the second: it was revoked
        stale = await http.get("/api/v1/session", headers={"authorization": f"Bearer {old}"})
        assert stale.status_code == 401
        fresh = await http.get("/api/v1/session", headers={"authorization": f"Bearer {new}"})
        assert fresh.status_code == 200


async def test_secure_cookie_over_https_and_on_non_loopback(world):
    app = create_app(world.space)  # automatic: Secure except plain HTTP on loopback
    async with client(app, https=True) as http:
        response = await http.post("/api/v1/session/patient", json=world.alice.login())
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-monespace_session=")
        assert "Secure" in cookie
        # the browser-like client sends it back over HTTPS
        assert (await http.get("/api/v1/session")).status_code == 200


async def test_sessions_expire_when_idle_and_absolutely(world):
    app = create_app(
        world.space,
        secure_cookies=False,
        session_idle=timedelta(minutes=30),
        session_absolute=timedelta(hours=2),
    )
    async with client(app) as http:
        headers = await login_patient(http, world.alice)
        world.clock.advance(minutes=29)
        assert (await http.get("/api/v1/session", headers=headers)).status_code == 200
        world.clock.advance(minutes=31)
        assert (await http.get("/api/v1/session", headers=headers)).status_code == 401
        headers = await login_patient(http, world.alice)
        for _ in range(4):
            world.clock.advance(minutes=25)
            assert (await http.get("/api/v1/session", headers=headers)).status_code == 200
        world.clock.advance(minutes=25)  # 2 h 05 after login
        assert (await http.get("/api/v1/session", headers=headers)).status_code == 401


async def test_forged_or_malformed_tokens_are_401_problems(app):
    async with client(app) as http:
        for header in ("Bearer forged", "Bearer " + "x" * 500, "Basic abc", "Bearer"):
            response = await http.get("/api/v1/session", headers={"authorization": header})
            assert response.status_code == 401
            assert response.json()["type"] == "urn:monespace:problem:unauthenticated"
        http.cookies.set("monespace_session", "forged")
        response = await http.get("/api/v1/session")
        assert response.status_code == 401


async def test_wrong_login_is_uniform_and_rate_limited(world):
    app = create_app(world.space, rate_limits=RateLimits(per_ip=100, per_person=3))
    async with client(app) as http:
        bad = {**world.alice.login(), "vitale_serial": "0000000000"}
        unknown = {**world.alice.login(), "nir": "185057511223344"}  # well-formed, nobody's
        bodies = set()
        for body in (bad, unknown):
            response = await http.post("/api/v1/session/patient", json=body)
            assert response.status_code == 401
            bodies.add(response.content)
        assert len(bodies) == 1
        # A malformed NIR is said as such (a property of the string, not of anyone's data),
        # without echoing it, and with what to do next.
        for nir in ("1" * 15, "not a nir at all"):
            response = await http.post("/api/v1/session/patient", json={**bad, "nir": nir})
            assert response.status_code == 422
            problem = response.json()
            assert problem["detail"].startswith("the NIR is malformed")
            assert "carte Vitale" in problem["detail"]
            assert problem["hint"]
            assert nir not in response.text
        for _ in range(2):
            await http.post("/api/v1/session/patient", json=bad)
        limited = await http.post("/api/v1/session/patient", json=bad)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
    app = create_app(world.space, rate_limits=RateLimits(per_ip=2, per_person=100))
    async with client(app) as http:
        for _ in range(2):
            await http.post("/api/v1/activation", json={**bad, "code": "AAAA-BBBB-CCCC"})
        other = {**bad, "nir": world.bob.nir, "code": "AAAA-BBBB-CCCC"}
        assert (await http.post("/api/v1/activation", json=other)).status_code == 429


async def test_an_attacker_from_ten_addresses_does_not_lock_the_holder_out(world, app):
    """Ten wrong logins with the holder's NIR from ten addresses, then the holder's correct
    login from their own address: 201 at once (no 429, no refusal), while the addresses that
    failed are delayed."""

    def from_address(host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    wrong = {**world.alice.login(), "vitale_serial": "0000000000"}
    for n in range(10):
        async with from_address(f"203.0.113.{n}") as http:
            for _ in range(2):
                response = await http.post("/api/v1/session/patient", json=wrong)
                assert response.status_code == 401
    async with from_address("192.0.2.10") as http:
        response = await http.post("/api/v1/session/patient", json=world.alice.login())
        assert response.status_code == 201, response.text
    async with from_address("203.0.113.9") as http:
        refused = await http.post("/api/v1/session/patient", json=world.alice.login())
        assert refused.status_code == 401  # a source that failed waits, without a hint
    world.clock.advance(minutes=15)
    async with from_address("203.0.113.9") as http:
        response = await http.post("/api/v1/session/patient", json=world.alice.login())
        assert response.status_code == 201


async def test_activation_and_opposition(world, app):
    operator = Actor.system("t")
    person = _identity(21, world.alice.birth_date)
    patient = world.space.accounts.register_patient(operator, person)
    world.space.accounts.invite(operator, patient.id)
    code = world.space.accounts.issue_code(operator, patient.id, send=False)
    proof = {
        "nir": person.ins.matricule.value,
        "code": code,
        "vitale_serial": person.vitale_serial,
        "birth_date": world.alice.birth_date.isoformat(),
    }
    async with client(app) as http:
        wrong = await http.post("/api/v1/activation", json={**proof, "code": "ZZZZ-ZZZZ-ZZZZ"})
        assert wrong.status_code == 400
        assert wrong.json()["type"] == "urn:monespace:problem:proof-refused"
        done = await http.post("/api/v1/opposition", json=proof)
        assert done.status_code == 200, done.text
        assert done.json()["proof_id"]
        code = world.space.accounts.issue_code(operator, patient.id, send=False)
        again = await http.post("/api/v1/activation", json={**proof, "code": code})
        assert again.status_code in (200, 409)


async def test_record_listing_search_reading_adding_masking(world, app):
    alice = world.alice.id
    base = f"/api/v1/patients/{alice}"
    async with client(app) as http:
        h = await login_patient(http, world.alice)
        listing = (await http.get(f"{base}/documents?limit=10", headers=h)).json()
        assert listing["total"] == 2
        found = await http.post(
            f"{base}/documents/search", json={"text": "consultation"}, headers=h
        )
        assert [d["title"] for d in found.json()["documents"]] == [
            f"Compte rendu de consultation {CANARY}"
        ]
        by_category = await http.get(f"{base}/documents?category=patient_documents", headers=h)
        assert by_category.json()["total"] == 1
        added = await http.post(
            f"{base}/documents",
            json={
                "content": b64(PDF),
                "media_type": "application/pdf",
                "type_code": {"code": "DOCPAT01", "system": "1.2.250.1.213.1.1.4.12"},
                "title": "Mon ordonnance scannée",
            },
            headers=h,
        )
        assert added.status_code == 201, added.text
        did = added.json()["id"]
        meta = await http.get(f"{base}/documents/{did}", headers=h)
        assert meta.json()["title"] == "Mon ordonnance scannée"
        content = await http.get(f"{base}/documents/{did}/content", headers=h)
        assert content.content == PDF
        assert content.headers["content-type"] == "application/pdf"
        assert content.headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in content.headers["content-security-policy"]
        masked = await http.post(f"{base}/documents/{did}/mask", headers=h)
        assert masked.json()["masked"] is True
        unmasked = await http.post(f"{base}/documents/{did}/unmask", headers=h)
        assert unmasked.json()["masked"] is False
        # Keyset paging: the next page from the previous page's token, in the query or in
        # a search's body; a token that is not one is refused before the service.
        first = (await http.get(f"{base}/documents?limit=1", headers=h)).json()
        assert first["total"] == 3
        assert first["next"] is not None
        pages = [first]
        while pages[-1]["next"] is not None:
            after = pages[-1]["next"]
            page = await http.get(f"{base}/documents?limit=1&after={after}", headers=h)
            assert page.status_code == 200, page.text
            pages.append(page.json())
        listed = [d["id"] for p in pages for d in p["documents"]]
        everything = (await http.get(f"{base}/documents", headers=h)).json()["documents"]
        assert listed == [d["id"] for d in everything]
        searched = await http.post(
            f"{base}/documents/search", json={"limit": 1, "after": first["next"]}, headers=h
        )
        assert [d["id"] for d in searched.json()["documents"]] == listed[1:2]
        bad = await http.get(f"{base}/documents?after=nope", headers=h)
        assert bad.status_code in (400, 422)


async def test_profile_and_measures(world, app):
    base = f"/api/v1/patients/{world.alice.id}"
    async with client(app) as http:
        h = await login_patient(http, world.alice)
        entries = (await http.get(f"{base}/profile", headers=h)).json()
        assert [e["section"] for e in entries] == ["allergy"]
        added = await http.post(
            f"{base}/profile",
            json={"section": "treatment", "label": "Metformine 500 mg", "started": "2024-01-02"},
            headers=h,
        )
        assert added.status_code == 201
        only = await http.get(f"{base}/profile?section=treatment", headers=h)
        assert [e["label"] for e in only.json()] == ["Metformine 500 mg"]
        gone = await http.delete(f"{base}/profile/{added.json()['id']}", headers=h)
        assert gone.status_code == 204
        measure = await http.post(
            f"{base}/measures",
            json={"kind": "blood_pressure", "value": 130, "second": 85},
            headers=h,
        )
        assert measure.status_code == 201
        assert measure.json()["code"]["code"] == "85354-9"
        series = await http.get(f"{base}/measures?kind=weight", headers=h)
        assert [m["value"] for m in series.json()] == [70.5]
        implausible = await http.post(
            f"{base}/measures", json={"kind": "weight", "value": 7500}, headers=h
        )
        assert implausible.status_code == 422
        missing = await http.get(f"{base}/measures", headers=h)
        assert missing.status_code == 422


async def test_access_settings_authorisations_blocking_and_history(world, app):
    base = f"/api/v1/patients/{world.alice.id}/access"
    async with client(app) as http:
        h = await login_patient(http, world.alice)
        settings = (await http.get(f"{base}/settings", headers=h)).json()
        assert settings["object_emergency"] is False
        changed = await http.patch(f"{base}/settings", json={"object_emergency": True}, headers=h)
        assert changed.json()["object_emergency"] is True
        assert changed.json()["mask_all"] is False
        grant = await http.post(f"{base}/authorisations", json={"rpps": world.stranger}, headers=h)
        assert grant.status_code == 201
        grants = (await http.get(f"{base}/authorisations", headers=h)).json()
        assert {g["professional_id"] for g in grants} == {world.doctor, world.stranger}
        revoked = await http.delete(f"{base}/authorisations/{world.stranger}", headers=h)
        assert revoked.status_code == 204
        blocked = await http.post(f"{base}/blocked", json={"rpps": world.stranger}, headers=h)
        assert blocked.status_code == 204
        assert (await http.get(f"{base}/blocked", headers=h)).json() == {"rpps": [world.stranger]}
        lifted = await http.delete(f"{base}/blocked/{world.stranger}", headers=h)
        assert lifted.status_code == 204
        doctor = await http.put(f"{base}/treating-doctor", json={"rpps": world.doctor}, headers=h)
        assert doctor.json()["kind"] == "treating_doctor"
        history = (await http.get(f"{base}/history", headers=h)).json()
        assert history[0]["who"] == "vous"
        assert any("bloqué" in e["what"] for e in history)


async def test_professional_login_view_and_emergency_access(world, app):
    alice, bob = world.alice.id, world.bob.id
    async with client(app) as http:
        doctor = await login_professional(http, world.doctor)
        me = (await http.get("/api/v1/session", headers=doctor)).json()
        assert me["professional"]["name"] == "Dr Claire Martin"
        found = await http.post(
            "/api/v1/patients/lookup",
            json={"nir": world.alice.nir, "birth_date": world.alice.birth_date.isoformat()},
            headers=doctor,
        )
        assert found.json() == {"patient_id": alice}
        wrong = await http.post(
            "/api/v1/patients/lookup",
            json={"nir": world.alice.nir, "birth_date": "1999-01-01"},
            headers=doctor,
        )
        assert wrong.status_code == 404
        docs = (await http.get(f"/api/v1/patients/{alice}/documents", headers=doctor)).json()
        assert docs["total"] == 2  # the médecin traitant sees the record
        stranger = await login_professional(http, world.stranger)
        denied = await http.get(f"/api/v1/patients/{bob}/documents", headers=stranger)
        assert denied.status_code == 404
        short = await http.post(
            f"/api/v1/patients/{bob}/emergency-access",
            json={"justification": "court"},
            headers=stranger,
        )
        assert short.status_code == 422
        glass = await http.post(
            f"/api/v1/patients/{bob}/emergency-access",
            json={"justification": "Patient inconscient aux urgences, allergies inconnues"},
            headers=stranger,
        )
        assert glass.status_code == 201, glass.text
        assert glass.json()["mode"] == "emergency"
        now_visible = await http.get(f"/api/v1/patients/{bob}/documents", headers=stranger)
        assert now_visible.status_code == 200
        assert now_visible.json()["total"] >= 1
        joined = await http.post(f"/api/v1/patients/{bob}/care-team", headers=stranger)
        assert joined.status_code == 201
        # a professional does not reach the patient's own controls
        settings = await http.get(f"/api/v1/patients/{bob}/access/settings", headers=stranger)
        assert settings.status_code == 404
        # Alice objected to emergency access: refused
        await http.post("/api/v1/session/patient", json=world.alice.login())
    async with client(app) as http, client(app) as pro_http:
        h = await login_patient(http, world.alice)
        await http.patch(
            f"/api/v1/patients/{alice}/access/settings", json={"object_emergency": True}, headers=h
        )
        stranger = await login_professional(pro_http, world.stranger)
        refused = await pro_http.post(
            f"/api/v1/patients/{alice}/emergency-access",
            json={"justification": "Patient inconscient aux urgences, allergies inconnues"},
            headers=stranger,
        )
        assert refused.status_code == 404
        history = await http.get(f"/api/v1/patients/{bob}/access/history", headers=h)
        assert history.status_code == 404


async def test_bad_input_is_a_4xx_problem_never_a_500(world, app):
    base = f"/api/v1/patients/{world.alice.id}"
    async with client(app) as http:
        h = await login_patient(http, world.alice)
        cases = [
            (
                "POST",
                "/api/v1/session/patient",
                {"content": b"{not json", "headers": {"content-type": "application/json"}},
                400,
            ),
            (
                "POST",
                "/api/v1/session/patient",
                {"content": b"[]", "headers": {"content-type": "application/json"}},
                422,
            ),
            (
                "POST",
                "/api/v1/session/patient",
                {"content": b'{"nir": 1}', "headers": {"content-type": "text/plain"}},
                415,
            ),
            ("POST", "/api/v1/session/patient", {"json": {"nir": "1" * 15}}, 422),
            (
                "POST",
                "/api/v1/session/patient",
                {"json": {"nir": "x", "vitale_serial": "1", "birth_date": "2020-02-30"}},
                422,
            ),
            (
                "POST",
                f"{base}/documents",
                {"json": {"content": "!!!", "media_type": "application/pdf"}},
                422,
            ),
            (
                "POST",
                f"{base}/documents",
                {"json": {"content": b64(b"<html></html>"), "media_type": "text/html"}},
                422,
            ),
            (
                "POST",
                f"{base}/documents",
                {"json": {"content": b64(PDF), "media_type": "application/pdf"}},
                422,
            ),
            ("POST", f"{base}/documents/search", {"json": {"limit": 100000}}, 422),
            ("POST", f"{base}/documents/search", {"json": {"since": "2024-01-01T00:00:00"}}, 422),
            ("GET", f"{base}/documents?limit=abc", {}, 422),
            ("GET", f"{base}/documents?category=nope", {}, 422),
            ("GET", f"{base}/documents?unknown=1", {}, 422),
            ("GET", f"{base}/documents?offset=1&offset=2", {}, 422),
            ("GET", f"{base}/documents/..%2F..%2Fetc", {}, 404),
            ("GET", f"{base}/documents/{'a' * 200}", {}, 404),
            ("GET", "/api/v1/patients/%00/documents", {}, 404),
            ("GET", "/api/v2/nothing", {}, 404),
            ("DELETE", "/health", {}, 405),
            ("POST", f"{base}/profile", {"json": {"section": "allergy", "label": "x\u0000y"}}, 422),
            (
                "POST",
                f"{base}/profile",
                {
                    "json": {
                        "section": "allergy",
                        "label": "a",
                        "started": "2024-02-01",
                        "ended": "2024-01-01",
                    }
                },
                422,
            ),
            ("PATCH", f"{base}/access/settings", {"json": {"mask_all": "yes"}}, 422),
            ("POST", f"{base}/access/authorisations", {"json": {"rpps": "12345678901"}}, 422),
            (
                "POST",
                f"{base}/access/authorisations",
                {"json": {"rpps": "10003456786", "until": "2000-01-01T00:00:00Z"}},
                422,
            ),
            ("DELETE", f"{base}/access/blocked/12345678901", {}, 422),
        ]
        for method, url, kwargs, status in cases:
            kwargs.setdefault("headers", {})
            kwargs["headers"] = {**h, **kwargs["headers"]}
            response = await http.request(method, url, **kwargs)
            assert response.status_code == status, (method, url, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert set(problem) <= {"type", "title", "status", "detail", "hint"}
            assert problem["hint"]  # what to do next
            assert "Traceback" not in response.text
            assert "rule" not in (problem.get("detail") or "")


async def test_oversized_bodies_are_refused(world):
    app = create_app(world.space, max_body_bytes=1000)
    async with client(app) as http:
        h = await login_patient(http, world.alice)
        big = {"content": b64(b"%PDF-" + b"x" * 2000), "media_type": "application/pdf"}
        response = await http.post(
            f"/api/v1/patients/{world.alice.id}/documents", json=big, headers=h
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"

        async def chunks():
            for _ in range(10):
                yield b"x" * 200

        streamed = await http.post(
            "/api/v1/session/patient",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413


async def test_cookie_sessions_need_the_csrf_token_and_the_same_origin(world, app):
    base = f"/api/v1/patients/{world.alice.id}"
    async with client(app) as http:
        login = await http.post("/api/v1/session/patient", json=world.alice.login())
        csrf = login.json()["session"]["csrf_token"]
        # reading with the cookie alone works
        assert (await http.get(f"{base}/documents")).status_code == 200
        body = {"section": "allergy", "label": "Arachide"}
        missing = await http.post(f"{base}/profile", json=body)
        assert missing.status_code == 403
        assert missing.json()["type"] == "urn:monespace:problem:csrf"
        wrong = await http.post(f"{base}/profile", json=body, headers={"x-csrf-token": "nope"})
        assert wrong.status_code == 403
        cross = await http.post(
            f"{base}/profile",
            json=body,
            headers={"x-csrf-token": csrf, "origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        assert cross.json()["type"] == "urn:monespace:problem:cross-origin"
        good = await http.post(
            f"{base}/profile",
            json=body,
            headers={"x-csrf-token": csrf, "origin": "http://testserver"},
        )
        assert good.status_code == 201
        # a cross-site login attempt is refused too (login CSRF)
        forged = await http.post(
            "/api/v1/session/patient",
            json=world.bob.login(),
            headers={"origin": "https://evil.example"},
        )
        assert forged.status_code == 403


async def test_every_response_is_no_store(world, app):
    async with client(app) as http:
        h = await login_patient(http, world.alice)
        for method, url in [
            ("GET", "/health"),
            ("GET", "/openapi.json"),
            ("GET", "/nowhere"),
            ("GET", "/"),
            ("GET", "/static/style.css"),
            ("GET", f"/api/v1/patients/{world.alice.id}/documents"),
            (
                "GET",
                f"/api/v1/patients/{world.alice.id}/documents/{world.documents[world.alice.id][0]}/content",
            ),
            ("POST", "/api/v1/session/patient"),
        ]:
            response = await http.request(method, url, headers=h)
            assert response.headers["cache-control"] == "no-store", url
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.status_code < 500


async def test_logs_and_urls_hold_no_nir_nor_health_data(world, app, caplog):
    caplog.set_level(logging.DEBUG)
    urls = []
    async with client(app) as http:

        async def remember(request):
            urls.append(str(request.url))

        http.event_hooks["request"] = [remember]
        h = await login_patient(http, world.alice)
        base = f"/api/v1/patients/{world.alice.id}"
        await http.get(f"{base}/documents", headers=h)
        await http.post(f"{base}/documents/search", json={"text": CANARY}, headers=h)
        await http.get(f"{base}/documents/{world.documents[world.alice.id][0]}", headers=h)
        await http.get(f"{base}/profile", headers=h)
        await http.post("/api/v1/session/patient", json={**world.bob.login(), "vitale_serial": "1"})
    text = caplog.text + " ".join(urls)
    assert "/api/v1/patients/{patient_id}/documents" in caplog.text  # route templates only
    for secret in (CANARY, world.alice.nir, world.bob.nir, world.alice.vitale_serial):
        assert secret not in text


async def test_an_unexpected_error_is_a_bare_500_problem(world, app, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError(f"boom {CANARY}")

    monkeypatch.setattr(world.space.record, "search", broken)
    async with client(app) as http:
        h = await login_patient(http, world.alice)
        response = await http.get(f"/api/v1/patients/{world.alice.id}/documents", headers=h)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    assert CANARY not in response.text
    assert "Traceback" not in response.text
    assert CANARY not in caplog.text
    assert "RuntimeError" in caplog.text


def _deferred_operations():
    return [op for op in api_operations(demo=True) + app_operations() if op.deferred_session]


def _url(op, patient_id: str) -> str:
    path = op.path.replace("{patient_id}", patient_id)
    for name in op.path_params:
        path = path.replace("{" + name + "}", "x1")
    return path


async def test_reads_that_defer_their_session_still_check_it(world, app):
    """A GET that reads its session in the library call's worker thread refuses a missing,
    forged or ended token with 401 (before it looks at the query), and serves a live
    session (never a 500)."""
    operations = _deferred_operations()
    assert {op.operation_id for op in operations} >= {"listDocuments", "getDocument"}
    alice = world.alice.id
    async with client(app) as http:
        headers = await login_patient(http, world.alice)
        http.cookies.clear()  # the bearer token only
        for op in operations:
            url = _url(op, alice)
            assert (await http.get(url)).status_code == 401, op.operation_id
            forged = await http.get(url, headers={"authorization": "Bearer forged"})
            assert forged.status_code == 401, op.operation_id
            # An operation open to apps takes an unknown bearer token for an app's.
            problem = "invalid-token" if op.app_scope else "unauthenticated"
            assert forged.json()["type"] == f"urn:monespace:problem:{problem}"
            live = await http.get(url, headers=headers)
            # 422: a required query parameter (measures' kind) is missing.
            assert live.status_code in (200, 404, 422), (op.operation_id, live.text)
        assert (await http.delete("/api/v1/session", headers=headers)).status_code == 204
        for op in operations:
            ended = await http.get(_url(op, alice), headers=headers)
            assert ended.status_code == 401, op.operation_id


async def test_a_listing_crosses_to_a_worker_thread_once(world, app, monkeypatch):
    """The session is read in the worker thread of the library call: one hand-over per
    listing (two before), and the read is still decided and audited."""
    crossings = []
    run_sync = anyio.to_thread.run_sync

    async def counting(function, *args, **kwargs):
        crossings.append(function)
        return await run_sync(function, *args, **kwargs)

    alice = world.alice.id
    async with client(app) as http:
        headers = await login_patient(http, world.alice)
        monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
        listing = await http.get(f"/api/v1/patients/{alice}/documents", headers=headers)
        assert listing.status_code == 200
        assert len(crossings) == 1
        monkeypatch.undo()
        history = await http.get(f"/api/v1/patients/{alice}/access/history", headers=headers)
    assert history.status_code == 200
    assert any(entry["outcome"] == "success" for entry in history.json())


def test_only_reads_open_to_sessions_may_defer_theirs():
    async def handler(call):
        return Reply()

    for method, auth in (("POST", Auth.SESSION), ("GET", Auth.PROFESSIONAL), ("GET", Auth.NONE)):
        with pytest.raises(ValueError, match="deferred_session"):
            Operation(method, "/x", handler, "x", "x", "x", auth=auth, deferred_session=True)
