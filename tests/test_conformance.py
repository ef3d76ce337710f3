"""The conformance kit: the two example apps through the CLI (the well-behaved one passes,
the careless one fails on named criteria), usage errors, and the recorder in process (no
token value in a report, the HTML escaped, the sandbox's consent path)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from monespace.cli import main
from monespace.conformance import (
    CLIENT_ID,
    CRITERIA,
    ENVIRONMENT,
    REDIRECT_URI,
    SANDBOX_AUTHORIZE_PATH,
    Evidence,
    Exchange,
    Fault,
    Recorder,
    Report,
    Status,
    build_space,
    dumps,
    judge,
    report_html,
)
from monespace.server import create_app

APPS = Path(__file__).resolve().parent.parent / "examples" / "apps"
MANDATORY = {c.id for c in CRITERIA if c.mandatory}


def _run(tmp_path: Path, *args: str, options: tuple[str, ...] = ()) -> tuple[int, str, dict, str]:
    report, page = tmp_path / "report.json", tmp_path / "report.html"
    result = CliRunner().invoke(
        main,
        ["conformance", "run", "--report", str(report), "--html", str(page), *options, "--", *args],
    )
    body = json.loads(report.read_text()) if report.exists() else {}
    return result.exit_code, result.output, body, page.read_text() if page.exists() else ""


def _statuses(report: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["criteria"]}


def test_the_well_behaved_tracker_passes(tmp_path):
    code, output, report, page = _run(tmp_path, sys.executable, str(APPS / "weight_tracker.py"))
    assert code == 0, output
    assert report["passed"] is True
    statuses = _statuses(report)
    assert {statuses[c] for c in MANDATORY} == {"pass"}
    assert statuses["user-agent"] == "pass"
    assert statuses["exits-cleanly"] == "pass"
    # Every fault of the scenario reached it.
    faults = {f["fault"] for f in report["faults"]}
    assert faults == {
        Fault.RATE_LIMITED,
        Fault.UNAVAILABLE,
        Fault.TOKEN_EXPIRED,
        Fault.CONSENT_REVOKED,
        Fault.PAGE_CAPPED,
    }
    assert "conformance PASSED" in output
    assert "Every mandatory criterion passed." in page
    # The environment's base URL is loopback, the report holds names, never a bearer.
    assert report["sandbox"]["base_url"].startswith("http://127.0.0.1:")
    assert "Bearer " not in json.dumps(report)


def test_the_careless_tracker_fails_on_named_criteria(tmp_path):
    code, output, report, page = _run(tmp_path, sys.executable, str(APPS / "careless_tracker.py"))
    assert code == 1, output
    assert report["passed"] is False
    assert set(report["failed_mandatory"]) == {
        "declared-scopes",
        "no-tokens-in-urls",
        "refresh-on-expiry",
        "retry-after",
        "stops-after-revocation",
        "paginates-to-the-end",
    }
    assert _statuses(report)["pkce-s256"] == "pass"  # the server leaves it no choice
    assert "FAILED: declared-scopes" in output
    for criterion in report["failed_mandatory"]:
        assert criterion in page
    scopes = next(c for c in report["criteria"] if c["id"] == "declared-scopes")
    assert "agenda.read documents.write" in scopes["observations"][0]


def test_an_app_that_does_nothing_passes_nothing(tmp_path):
    """Not observed is not a pass; a command that outlives --timeout is stopped; the
    environment has the redirect URI registered with --redirect-uri."""
    seen = tmp_path / "seen"
    script = (
        "import os, pathlib, time; "
        f"pathlib.Path({str(seen)!r}).write_text(os.environ['MONESPACE_REDIRECT_URI']); "
        "time.sleep(60)"
    )
    options = ("--timeout", "2", "--redirect-uri", "https://app.example/cb")
    code, output, report, _ = _run(tmp_path, sys.executable, "-c", script, options=options)
    assert seen.read_text() == "https://app.example/cb"
    assert code == 1
    statuses = _statuses(report)
    assert {statuses[c] for c in MANDATORY} == {"not_observed"}
    assert statuses["exits-cleanly"] == "fail"
    assert report["exit_status"] is None
    assert report["exchanges"] == []
    assert "was stopped at the time limit" in output


def test_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["conformance", "run"]).exit_code == 2
    unknown = runner.invoke(main, ["conformance", "run", "--scopes", "everything", "--", "true"])
    assert unknown.exit_code == 2
    assert "unknown: everything" in unknown.output
    existing = tmp_path / "r.json"
    existing.write_text("keep me")
    in_the_way = runner.invoke(
        main, ["conformance", "run", "--report", str(existing), "--", "true"]
    )
    assert in_the_way.exit_code == 2
    assert existing.read_text() == "keep me"
    refused = runner.invoke(
        main, ["conformance", "run", "--redirect-uri", "http://app.example/cb", "--", "true"]
    )
    assert refused.exit_code == 2
    assert "must use https" in refused.output
    missing = runner.invoke(main, ["conformance", "run", "--", str(tmp_path / "no-such-app")])
    assert missing.exit_code == 2
    assert "cannot start the command" in missing.output


# --- the recorder in process ---------------------------------------------------------------


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.anyio
async def test_no_token_value_reaches_the_report_and_the_page_is_escaped():
    space, patient_id = build_space(["documents.read"])
    recorder = Recorder(
        create_app(space, secure_cookies=False), space, patient_id=patient_id, client_id=CLIENT_ID
    )
    transport = httpx.ASGITransport(app=recorder)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        # An unregistered redirect URI: an error, never a redirect there.
        verifier, challenge = _pkce()
        query = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "scope": "documents.read",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s1",
        }
        elsewhere = await http.get(
            SANDBOX_AUTHORIZE_PATH
            + "?"
            + urlencode({**query, "redirect_uri": "https://evil.example/cb"})
        )
        assert elsewhere.status_code == 400
        assert "location" not in elsewhere.headers
        answer = await http.get(
            SANDBOX_AUTHORIZE_PATH + "?" + urlencode({**query, "redirect_uri": REDIRECT_URI})
        )
        assert answer.status_code == 303
        assert answer.headers["x-monespace-sandbox"].startswith("auto-approved")
        back = parse_qs(urlsplit(answer.headers["location"]).query)
        assert back["state"] == ["s1"]
        form = {
            "grant_type": "authorization_code",
            "code": back["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        }
        tokens = (await http.post("/oauth/token", data=form)).json()
        secret = tokens["access_token"]
        docs = f"/api/v1/patients/{patient_id}/documents"
        await http.get(docs, params={"access_token": secret})
        await http.get(docs, headers={"authorization": f"Bearer {secret}"})
        await http.get(f"/api/v1/tokens/{tokens['refresh_token']}")
        await http.get("/api/v1/<script>alert(1)</script>")
    space.close()
    exchanges = tuple(recorder.exchanges)
    verdicts = judge(Evidence(exchanges, frozenset({"documents.read"})))
    report = Report(
        ("app",),
        "http://sandbox",
        CLIENT_ID,
        ("documents.read",),
        tuple(verdicts),
        exchanges,
        0,
        1.0,
    )
    text, page = dumps(report), report_html(report)
    for value in (secret, tokens["refresh_token"], verifier, back["code"][0], patient_id):
        assert value not in text
        assert value not in page
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    in_url = [e for e in exchanges if e.secret_in_url]
    assert [e.token for e in in_url] == ["access-1", None]  # in the query, in the path
    assert report.verdict("no-tokens-in-urls").status is Status.FAIL
    assert report.verdict("pkce-s256").status is Status.PASS


def _exchange(seq: int, at: float, **kwargs) -> Exchange:
    fields = {"method": "GET", "kind": "data", "route": "/r", "token": "access-1"}
    fields.update(kwargs)
    return Exchange(seq=seq, at=at, answered=at, **fields)


def test_retry_after_is_judged_on_the_wait():
    asked = _exchange(1, 0.0, status=429, retry_after=1.0, fault=Fault.RATE_LIMITED)
    soon = judge(Evidence([asked, _exchange(2, 0.5, status=200)], frozenset()))
    later = judge(Evidence([asked, _exchange(2, 1.0, status=200)], frozenset()))
    verdict = {c.id: v for c, v in soon}["retry-after"]
    assert verdict.status is Status.FAIL
    assert verdict.exchanges == (2,)
    assert {c.id: v for c, v in later}["retry-after"].status is Status.PASS


def test_the_documented_environment_is_the_one_set():
    docs = Path(__file__).resolve().parent.parent / "docs"
    reference = (docs / "reference" / "cli.md").read_text()
    tutorial = (docs / "tutorial" / "app-vendors.md").read_text()
    for name in ENVIRONMENT:
        assert f"`{name}`" in reference
        assert f"`{name}`" in tutorial
    for criterion in CRITERIA:
        assert f"`{criterion.id}` | {'mandatory' if criterion.mandatory else 'optional'}" in (
            tutorial
        )


FAULTS = (
    Fault.RATE_LIMITED,
    Fault.UNAVAILABLE,
    Fault.TOKEN_EXPIRED,
    Fault.CONSENT_REVOKED,
    Fault.PAGE_CAPPED,
)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@given(
    st.lists(
        st.tuples(_text, st.integers(100, 599), st.sampled_from([None, *FAULTS])),
        max_size=8,
    ),
    _text,
)
def test_any_exchanges_are_judged_and_printed_escaped(rows, scope):
    exchanges = tuple(
        _exchange(
            n + 1,
            float(n),
            route=route,
            status=status,
            fault=fault,
            params={"scope": scope},
            kind="authorize" if n == 0 else "data",
        )
        for n, (route, status, fault) in enumerate(rows)
    )
    verdicts = judge(Evidence(exchanges, frozenset({"documents.read"})))
    assert len(verdicts) == len(CRITERIA)
    report = Report(("app", scope), "http://x", CLIENT_ID, (), tuple(verdicts), exchanges, 0, 0.0)
    page = report_html(report)
    body = page.split("<body>", 1)[1]
    for route, _, _ in rows:
        assert f"<td>{html.escape(route)}</td>" in body  # every text escaped
    assert json.loads(dumps(report))["passed"] is report.passed


def _verdicts(*exchanges: Exchange, declared=("documents.read",)) -> dict:
    return {c.id: v for c, v in judge(Evidence(exchanges, frozenset(declared)))}


def test_an_expired_token_must_be_refreshed_not_reused_nor_replaced_by_a_new_login():
    expired = _exchange(1, 0.0, status=401, fault=Fault.TOKEN_EXPIRED)
    refresh = _exchange(
        2, 0.1, kind="token", token=None, status=200, params={"grant_type": "refresh_token"}
    )
    login_again = _exchange(
        2,
        0.1,
        kind="token",
        token=None,
        status=200,
        params={"grant_type": "authorization_code"},
    )
    after = _exchange(3, 0.2, token="access-2", status=200)
    assert _verdicts(expired, refresh, after)["refresh-on-expiry"].status is Status.PASS
    again = _verdicts(expired, login_again, after)["refresh-on-expiry"]
    assert again.status is Status.FAIL
    assert again.exchanges == (3,)
    reused = _verdicts(expired, refresh, _exchange(3, 0.2, status=200))["refresh-on-expiry"]
    assert reused.status is Status.FAIL
    # Told once, and never called again: nothing to judge.
    assert _verdicts(expired)["refresh-on-expiry"].status is Status.NOT_OBSERVED


def test_pkce_and_scopes_on_the_authorization_request():
    plain = _exchange(
        1,
        0.0,
        kind="authorize",
        token=None,
        status=303,
        query_keys=("client_id", "code_challenge", "code_challenge_method"),
        params={"code_challenge_method": "plain"},
    )
    verdicts = _verdicts(plain)
    assert verdicts["pkce-s256"].status is Status.FAIL
    # No scope asked is within the declaration.
    assert verdicts["declared-scopes"].status is Status.PASS
    exchange = _exchange(
        2,
        0.1,
        kind="token",
        token=None,
        status=200,
        params={"grant_type": "authorization_code", "scope": "documents.read agenda.write"},
    )
    verdicts = _verdicts(plain, exchange)
    assert verdicts["pkce-s256"].observations[-1].startswith("A code exchanged without")
    assert "agenda.write" in verdicts["declared-scopes"].observations[0]


@pytest.mark.anyio
async def test_the_auto_approving_path_exists_only_in_the_sandbox():
    space, _ = build_space(["documents.read"])
    _, challenge = _pkce()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "scope": "documents.read",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    transport = httpx.ASGITransport(app=create_app(space, secure_cookies=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
        answer = await http.get(f"{SANDBOX_AUTHORIZE_PATH}?{query}")
    space.close()
    assert answer.status_code == 404
    assert "location" not in answer.headers


@pytest.mark.anyio
async def test_an_app_that_never_connected_meets_the_revocation_without_an_error():
    """Forged tokens count as calls; when the revocation is due there is no consent to
    revoke, and the sandbox still answers as the server does (401), never a 500."""
    space, patient_id = build_space(["documents.read"])
    recorder = Recorder(
        create_app(space, secure_cookies=False), space, patient_id=patient_id, client_id=CLIENT_ID
    )
    transport = httpx.ASGITransport(app=recorder)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        for _ in range(14):
            await http.get(
                f"/api/v1/patients/{patient_id}/documents",
                headers={"authorization": "Bearer forged-token-of-some-length"},
            )
    space.close()
    assert recorder.revoked
    statuses = [e.status for e in recorder.exchanges]
    assert 500 not in statuses
    assert statuses.count(401) >= 10
    assert {e.token for e in recorder.exchanges} == {"unknown"}
