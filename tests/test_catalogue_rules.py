"""The catalogue's pure rules and mapping: properties that hold for any input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monespace.catalogue import (
    TIER_SCOPES,
    App,
    Application,
    ApplicationStatus,
    Consent,
    Convention,
    Dossier,
    ExchangeTier,
    Purpose,
    Scope,
    app_from_row,
    app_of,
    app_row,
    application_from_row,
    application_row,
    check_grant,
    check_redirect_uri,
    consent_from_row,
    consent_row,
    load_referentiel,
    may_exchange,
    narrowed,
)
from monespace.errors import ReferencementError, ValidationError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CRITERIA = [c.id for c in load_referentiel().criteria]

#: Printable one-line text: the categories str.isprintable refuses are left out of the
#: alphabet (the ASCII space aside) rather than filtered afterwards.
texts = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
        include_characters=" ",
    ),
    min_size=1,
    max_size=40,
).filter(lambda t: t.strip() and t.isprintable())


@given(st.text(max_size=80))
@example("https://app.example/cb")
@example("http://127.0.0.1:8765/cb")
@example("http://localhost/cb")
@example("http://[::1]:9000/cb")
@example("http://app.example/cb")
@example("https://app.example/cb#frag")
@example("https://user:pw@app.example/cb")
@example("https://app.example:99999/cb")
@example("javascript:alert(1)")
def test_a_redirect_uri_is_https_or_loopback_http_and_kept_as_given(uri):
    try:
        kept = check_redirect_uri(uri)
    except ValidationError:
        return
    assert kept == uri  # exact match: nothing normalised
    parts = urlsplit(uri)
    assert not parts.fragment
    assert parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    )


@st.composite
def dossiers(draw) -> Dossier:
    tier = draw(st.sampled_from(list(ExchangeTier)))
    allowed = sorted(TIER_SCOPES[tier])
    exchange = tier is not ExchangeTier.NONE
    scopes = draw(st.frozensets(st.sampled_from(allowed), min_size=1)) if exchange else frozenset()
    return Dossier(
        publisher=draw(texts),
        service=draw(texts),
        category=draw(texts),
        purposes=draw(st.frozensets(st.sampled_from(list(Purpose)), min_size=1)),
        exchange_tier=tier,
        scopes=scopes,
        retention=draw(texts) if exchange else "",
        consent_text=draw(texts) if exchange else "",
        dpia_reference=draw(texts) if exchange else None,
        redirect_uris=("https://app.example/cb",) if exchange else (),
        evidence=draw(st.dictionaries(st.sampled_from(CRITERIA), texts, max_size=4)),
    )


@given(
    dossier=dossiers(),
    status=st.sampled_from(list(ApplicationStatus)),
    findings=st.dictionaries(st.sampled_from(CRITERIA), st.sampled_from(["met", "failed"])),
    days=st.none() | st.integers(1, 5000),
)
def test_applications_and_apps_survive_their_rows(dossier, status, findings, days):
    convention = (
        None
        if days is None
        else Convention(T0, T0 + timedelta(days=days), dossier.scopes, "Retrait sur décision.")
    )
    application = Application(
        id="a1",
        client_id="suivi-poids",
        vendor_id="v1",
        dossier=dossier,
        status=status,
        applied_at=T0,
        changed_at=T0 + timedelta(hours=1),
        edition="2022-06-23",
        assessments=findings,
        convention=convention,
    )
    assert application_from_row(application_row(application)) == application
    app = app_of(application)
    assert app_from_row(app_row(app, application.id)) == app
    assert app.scopes <= dossier.scopes


@given(
    convention=st.frozensets(st.sampled_from(list(Scope))),
    asked=st.frozensets(st.sampled_from(list(Scope))),
    status=st.sampled_from(list(ApplicationStatus)),
    hours=st.integers(-48, 48),
)
def test_a_grant_is_within_the_convention_of_an_app_that_may_act(convention, asked, status, hours):
    app = App(
        "suivi-poids", "Suivi", "Éditeur", "Poids", "mesures", ("https://a.example/cb",),
        convention, status, T0 + timedelta(hours=hours),
    )  # fmt: skip
    try:
        granted = check_grant(app, asked, T0)
    except ReferencementError:
        assert not app.may_act(T0)
        return
    except ValidationError:
        assert app.may_act(T0)
        assert not asked or not asked <= convention
        return
    assert app.may_act(T0)
    assert granted == asked
    assert asked
    assert asked <= convention
    consent = Consent("p1", app.client_id, granted, T0, "patient:p1")
    assert consent_from_row(consent_row(consent)) == consent
    assert may_exchange(app, consent, T0) == granted
    assert may_exchange(app, consent, app.convention_until) == frozenset()


@given(
    scopes=st.frozensets(st.sampled_from(list(Scope)), min_size=1),
    kept=st.frozensets(st.sampled_from(list(Scope))),
)
def test_narrowing_only_removes_scopes(scopes, kept):
    consent = Consent("p1", "suivi-poids", scopes, T0, "patient:p1")
    if not kept or not kept <= scopes:
        with pytest.raises(ValidationError):
            narrowed(consent, kept)
        return
    assert narrowed(consent, kept) == kept
