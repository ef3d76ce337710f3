"""Every problem document the server answers says what to do next (``hint``); an RPPS
number the directory does not hold is said as such, never as a denial."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import monespace
from monespace.errors import (
    AccessDeniedError,
    ActivationError,
    ConflictError,
    DataShreddedError,
    InvalidNIRError,
    InvalidTransitionError,
    MonespaceError,
    NotFoundError,
    UnknownProfessionalError,
)
from monespace.server._problems import HINTS, ProblemError, bad_request, from_library_error

from .test_server_world import build_world, client, create_app, login_patient

SOURCES = Path(monespace.__file__).parent
UNKNOWN_RPPS = "10000000025"  # valid, and not in the world's directory


def _kinds_in_the_code() -> set[str]:
    """Every kind of problem the code can answer: the literal kind of each
    ``ProblemError(status, kind, …)`` and ``bad_request(…, kind=…)``, and bad_request's
    default kind. A kind computed at run time would escape this: the test refuses it."""
    kinds = {inspect.signature(bad_request).parameters["kind"].default}
    computed = []
    for path in sorted(SOURCES.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            given: ast.expr | None = None
            if name == "ProblemError" and len(node.args) > 1:
                given = node.args[1]
            elif name == "bad_request":
                given = next((k.value for k in node.keywords if k.arg == "kind"), None)
            if given is None:
                continue
            if isinstance(given, ast.Constant) and isinstance(given.value, str):
                kinds.add(given.value)
            elif not (path.name == "_problems.py" and isinstance(given, ast.Name)):
                computed.append(f"{path.relative_to(SOURCES)}:{node.lineno}")
    assert computed == [], "give each problem's kind as a literal, so that it is checked here"
    return kinds


def test_every_kind_of_problem_the_server_answers_has_a_hint():
    """A new kind of problem without a hint fails here: add it to ``_problems.HINTS``."""
    kinds = _kinds_in_the_code()
    assert "unknown-professional" in kinds
    assert sorted(kinds - set(HINTS)) == []
    assert sorted(set(HINTS) - kinds) == []  # no hint for a problem nobody answers


@pytest.mark.parametrize("kind", sorted(HINTS))
def test_each_hint_is_a_sentence(kind):
    hint = HINTS[kind]
    assert hint[0].isupper()
    assert hint.endswith(".")
    assert "\n" not in hint
    problem = ProblemError(400, kind, "Title").problem
    assert problem.hint == hint
    assert problem.type == f"urn:monespace:problem:{kind}"


@pytest.mark.parametrize(
    "error",
    [
        AccessDeniedError("some_rule"),
        NotFoundError("no such document"),
        DataShreddedError("shredded"),
        ActivationError(),
        InvalidTransitionError("close", "registered"),
        ConflictError("clash"),
        InvalidNIRError("the NIR is malformed"),
        UnknownProfessionalError(),
        MonespaceError("anything"),
    ],
)
def test_every_library_error_becomes_a_problem_with_a_hint(error):
    problem = from_library_error(error).problem
    assert problem.hint
    assert "some_rule" not in (problem.detail or "")


def test_an_unknown_rpps_is_its_own_problem_and_a_denial_stays_not_found():
    unknown = from_library_error(UnknownProfessionalError()).problem
    assert (unknown.status, unknown.type) == (404, "urn:monespace:problem:unknown-professional")
    assert "directory" in (unknown.detail or "")
    denied = from_library_error(AccessDeniedError("no_authorisation")).problem
    missing = from_library_error(NotFoundError("no such document")).problem
    assert denied == missing  # a denial still says no more than a missing object


@pytest.fixture
def world():
    w = build_world()
    yield w
    w.space.close()


@pytest.mark.anyio
async def test_the_api_says_an_unknown_rpps_is_not_in_the_directory(world):
    app = create_app(world.space, secure_cookies=False)
    base = f"/api/v1/patients/{world.alice.id}/access"
    async with client(app) as http:
        h = await login_patient(http, world.alice)
        response = await http.post(f"{base}/authorisations", json={"rpps": UNKNOWN_RPPS}, headers=h)
        assert response.status_code == 404
        problem = response.json()
        assert problem["type"] == "urn:monespace:problem:unknown-professional"
        assert problem["hint"] == HINTS["unknown-professional"]
        assert "denied" not in response.text
        login = await http.post("/api/v1/session/professional", json={"rpps": UNKNOWN_RPPS})
        assert login.status_code == 404
        assert login.json()["type"] == "urn:monespace:problem:unknown-professional"
