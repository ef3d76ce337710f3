"""The demo server against its own OpenAPI document, with schemathesis.

Every operation of ``/openapi.json`` is called with generated requests (valid ones and
invalid ones), over a loopback socket (uvicorn in a thread), as a logged-in patient of a
seeded space (the demo's carte Vitale login), and every check of schemathesis runs on the
answers: no 5xx, every status and body as documented, 405 answers listing the path's
methods, invalid input refused. The authorization server's endpoints are in the document
too (form bodies, RFC 6749 errors, the consent page's HTML and redirects) and are called
like the rest: generated forms reach the token service, which must refuse them with its
documented errors. The number of examples per operation and mode follows the
Hypothesis profile (a fiftieth of its ``max_examples``, at least 2: 2 with "ci", 20 with
"thorough"); ``MONESPACE_SCHEMATHESIS_EXAMPLES=N`` sets it.

The tests before it pin what the first runs found.
"""

from __future__ import annotations

import os
from http.cookiejar import DefaultCookiePolicy

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from monespace.server import RateLimits

from .test_server_live import running
from .test_server_world import build_world, create_app

#: Among the longest tests: run first (tests/conftest.py), so short ones fill the end of a run.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world():
    w = build_world()
    yield w
    w.space.close()


@pytest.fixture(scope="module")
def app(world):
    # Generated logins must not lock the test's own patient out.
    limits = RateLimits(per_ip=10**9, per_person=10**9)
    return create_app(world.space, secure_cookies=False, rate_limits=limits)


@pytest.fixture(scope="module")
def base_url(app):
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def http(base_url):
    with httpx.Client(base_url=base_url) as client:
        yield client


def login(http, person) -> dict[str, str]:
    response = http.post("/api/v1/session/patient", json=person.login())
    assert response.status_code == 201, response.text
    # Spelt as the OpenAPI security scheme names it, for schemathesis to find and remove it.
    return {"Authorization": f"Bearer {response.json()['token']}"}


# --- what the first runs found ---------------------------------------------------------------


def test_a_405_lists_every_method_of_the_path(http, world):
    headers = login(http, world.alice)
    response = http.put(f"/api/v1/patients/{world.alice.id}/documents", headers=headers)
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "PUT" not in allowed


def test_a_405_on_a_single_method_path(http):
    response = http.delete("/health")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD"}


def test_every_operation_with_a_body_documents_the_malformed_body_answer(http):
    spec = http.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert "400" in operation["responses"], f"{method.upper()} {path}"


def test_a_malformed_body_is_a_documented_400(http, world):
    headers = login(http, world.alice) | {"content-type": "application/json"}
    response = http.post(
        f"/api/v1/patients/{world.alice.id}/profile", content=b"{not json", headers=headers
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "value", ["769907", "0", "1e9", "-5", "1700000000.5", "2024", "true", "2024-13-01"]
)
def test_query_dates_are_iso_dates_only(http, world, value):
    headers = login(http, world.alice)
    response = http.get(
        f"/api/v1/patients/{world.alice.id}/measures",
        params={"kind": "weight", "until": value},
        headers=headers,
    )
    assert response.status_code == 422, value


@pytest.mark.parametrize("value", ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00+01:00"])
def test_query_dates_accept_iso_datetimes(http, world, value):
    headers = login(http, world.alice)
    response = http.get(
        f"/api/v1/patients/{world.alice.id}/measures",
        params={"kind": "weight", "since": value},
        headers=headers,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"a":' * 10_000, 400),  # past msgspec's recursion limit: not JSON it can read
        (b"[" * 100_000, 422),  # an array where an object is expected: refused at once
    ],
    ids=["objects", "arrays"],
)
def test_a_deeply_nested_body_is_refused(http, body, status):
    """Found by benchmarks/fuzz_inputs.py: the JSON decoder's recursion limit was a 500."""
    response = http.post(
        "/api/v1/session/patient", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status


# --- the whole API, generated ----------------------------------------------------------------


def _examples() -> int:
    given = os.environ.get("MONESPACE_SCHEMATHESIS_EXAMPLES")
    if given:
        return int(given)
    return max(2, settings.default.max_examples // 50)


@pytest.fixture(scope="module")
def session():
    """A keep-alive connection that keeps no cookie: each case authenticates with its own
    bearer token only, so that schemathesis's "without authentication" replay is one."""
    with requests.Session() as s:
        s.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        yield s


#: Schema-valid requests may still break a domain rule: a proof of identity that matches
#: no one (400 "proof refused"), an end before a start (422). Those answers are documented
#: refusals, not rejected valid data; every other check keeps its defaults.
CONFIG = {
    "checks": {
        "positive_data_acceptance": {
            "expected-statuses": ["2XX", "3XX", 400, 401, 403, 404, 409, 422, 429]
        }
    }
}


def _operations(base_url):
    config = schemathesis.config.SchemathesisConfig.from_dict(CONFIG)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_the_api_honours_its_openapi_document(base_url, world, http, session, mode):
    """Every operation, with valid (positive) or invalid (negative) requests; the failures
    of all operations are reported together."""
    failures: dict[str, str] = {}
    for operation in _operations(base_url):
        # The logged-in patient's own record, so that calls reach the handlers instead of
        # stopping at "not found"; the other identifiers stay generated.
        strategy = operation.as_strategy(mode, path_parameters=_own(operation, world))

        @given(case=strategy)
        @settings(
            settings.default,
            max_examples=_examples(),
            suppress_health_check=list(HealthCheck),
            deadline=None,
            database=None,
        )
        def call(case):
            # A fresh session for every case: a generated logout must not end the others'.
            # In the case itself, marked as given credentials (as schemathesis's own
            # apply_basic_auth does), not as extra headers: its "no authentication" and
            # "invalid cookie" probes then send the request without the bearer token.
            case.headers = {**(case.headers or {}), **login(http, world.alice)}
            case._has_explicit_auth = True
            case.call_and_validate(session=session)

        try:
            call()
        except Unsatisfiable:
            # No invalid request exists for it (GET /health takes no input at all).
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # every operation runs; all failures are reported below
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())


def _own(operation, world) -> dict[str, str] | None:
    names = {p.name for p in operation.path_parameters}
    return {"patient_id": world.alice.id} if "patient_id" in names else None
