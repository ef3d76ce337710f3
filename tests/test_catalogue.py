"""space.catalogue and space.consents: the référencement, the public catalogue, consents, and
what a referenced app may do through the one policy."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest

from monespace import Actor, ActorKind
from monespace.accounts import RepresentationKind
from monespace.catalogue import (
    ApplicationStatus,
    Assessment,
    Dossier,
    ExchangeTier,
    Purpose,
    Scope,
    load_referentiel,
)
from monespace.clock import ManualClock
from monespace.errors import (
    AccessDeniedError,
    ConflictError,
    NotFoundError,
    ReferencementError,
    ValidationError,
)
from monespace.policy import Action
from monespace.testing import reference_app, storage_of

from .helpers import add_note, identity, open_patient, open_space, register_physicians

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
VENDOR = Actor.vendor("vendor-balance")
REVIEWER = Actor.authority("reviewer-1", "reviewer")
COMMISSION = Actor.authority("commission", "commission")
MINISTER = Actor.authority("cabinet", "minister")
ALL_SCOPES = frozenset(Scope)


def dossier(**changes) -> Dossier:
    """A complete dossier for a weight tracker asking every scope, with evidence for every
    criterion of the référentiel."""
    fields = {
        "publisher": "Balance SAS",
        "service": "Suivi Poids",
        "category": "Suivi du poids",
        "purposes": {Purpose.PREVENTION, Purpose.CARE},
        "exchange_tier": ExchangeTier.MESURES,
        "scopes": ALL_SCOPES,
        "retention": "3 ans après la dernière connexion",
        "consent_text": "J'autorise Suivi Poids à lire et écrire mes mesures.",
        "dpia_reference": "AIPD-2026-001",
        "redirect_uris": ("https://poids.example/callback", "http://127.0.0.1:8765/cb"),
        "evidence": {c.id: f"pièce {c.id}" for c in load_referentiel().criteria},
    }
    fields.update(changes)
    return Dossier(**fields)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def space(url, clock):
    with open_space(url, clock) as opened:
        yield opened


def referenced(space, **changes) -> str:
    """Take a dossier through the whole workflow; return its client id."""
    application = space.catalogue.apply(VENDOR, dossier(**changes))
    space.catalogue.start_review(REVIEWER, application.id)
    findings = {c.id: Assessment.MET for c in load_referentiel().criteria}
    space.catalogue.assess(REVIEWER, application.id, findings)
    space.catalogue.opinion(COMMISSION, application.id, favourable=True)
    space.catalogue.reference(MINISTER, application.id)
    return application.client_id


@contextlib.contextmanager
def denied(rule: str):
    """Expect an access denial by the policy rule *rule*."""
    with pytest.raises(AccessDeniedError) as caught:
        yield
    assert caught.value.rule == rule


def app_id_of(space, client_id: str) -> str:
    return next(a.id for a in space.catalogue.applications() if a.client_id == client_id)


# --- the référencement -------------------------------------------------------------------------


def test_a_dossier_goes_from_application_to_the_public_catalogue(space, clock):
    application = space.catalogue.apply(VENDOR, dossier())
    assert application.status is ApplicationStatus.APPLIED
    assert space.catalogue.search() == []
    space.catalogue.start_review(REVIEWER, application.id)
    with pytest.raises(ReferencementError, match="SEC-01: not assessed"):
        space.catalogue.opinion(COMMISSION, application.id, favourable=True)
    space.catalogue.assess(REVIEWER, application.id, {"SEC-01": "failed"})
    assert "SEC-01: failed" in space.catalogue.gaps(application.id)
    findings = {c.id: Assessment.MET for c in load_referentiel().criteria}
    space.catalogue.assess(REVIEWER, application.id, findings)
    assert space.catalogue.gaps(application.id) == []
    space.catalogue.opinion(COMMISSION, application.id, favourable=True)
    done = space.catalogue.reference(MINISTER, application.id, duration=dt.timedelta(days=365))
    assert done.status is ApplicationStatus.REFERENCED
    assert done.convention is not None
    assert done.convention.until == NOW + dt.timedelta(days=365)
    app = space.catalogue.app(application.client_id)
    assert app.may_act(NOW)
    assert app.scopes == ALL_SCOPES
    assert [a.client_id for a in space.catalogue.search("poids")] == [application.client_id]
    assert space.catalogue.search("POIDS", tier="mesures") == [app]
    assert space.catalogue.search(category="suivi du poids") == [app]
    assert space.catalogue.search("agenda") == []
    assert space.catalogue.search(tier=ExchangeTier.DOCUMENTS) == []


def test_mandatory_criteria_without_evidence_block_a_favourable_opinion(space):
    evidence = {c.id: "pièce" for c in load_referentiel().criteria if c.id != "ETH-02"}
    application = space.catalogue.apply(VENDOR, dossier(evidence=evidence))
    space.catalogue.start_review(REVIEWER, application.id)
    findings = {c.id: Assessment.MET for c in load_referentiel().criteria}
    space.catalogue.assess(REVIEWER, application.id, findings)
    with pytest.raises(ReferencementError, match="ETH-02: no evidence"):
        space.catalogue.opinion(COMMISSION, application.id, favourable=True)
    refused = space.catalogue.opinion(COMMISSION, application.id, favourable=False)
    assert refused.status is ApplicationStatus.UNFAVOURABLE
    with pytest.raises(ReferencementError):
        space.catalogue.reference(MINISTER, application.id)


def test_optional_and_exchange_only_criteria_do_not_block_a_listing_without_exchange(space):
    mandatory = [
        c.id
        for c in load_referentiel().criteria
        if c.level == "obligatoire" and not c.exchange_only
    ]
    listing = dossier(
        exchange_tier="none",
        scopes=(),
        dpia_reference=None,
        redirect_uris=(),
        evidence=dict.fromkeys(mandatory, "pièce"),
    )
    application = space.catalogue.apply(VENDOR, listing)
    space.catalogue.start_review(REVIEWER, application.id)
    space.catalogue.assess(REVIEWER, application.id, dict.fromkeys(mandatory, "met"))
    space.catalogue.opinion(COMMISSION, application.id, favourable=True)
    app = space.catalogue.app(space.catalogue.reference(MINISTER, application.id).client_id)
    assert app.scopes == frozenset()


@pytest.mark.parametrize(
    ("actor", "step"),
    [
        (VENDOR, "start_review"),
        (COMMISSION, "start_review"),
        (REVIEWER, "opinion"),
        (VENDOR, "opinion"),
        (COMMISSION, "reference"),
        (Actor.system("test"), "reference"),
        (Actor.patient("p1"), "reference"),
    ],
)
def test_each_step_is_taken_by_its_role_only(space, actor, step):
    application = space.catalogue.apply(VENDOR, dossier())
    calls = {
        "start_review": lambda a: space.catalogue.start_review(a, application.id),
        "opinion": lambda a: space.catalogue.opinion(a, application.id, favourable=True),
        "reference": lambda a: space.catalogue.reference(a, application.id),
    }
    with denied("wrong_role"):
        calls[step](actor)
    assert space.catalogue.application(application.id).status is ApplicationStatus.APPLIED
    with pytest.raises(AccessDeniedError):
        space.catalogue.apply(REVIEWER, dossier())


def test_suspension_withdrawal_expiry_and_renewal(space, clock):
    client_id = referenced(space)
    application_id = app_id_of(space, client_id)
    space.catalogue.suspend(MINISTER, application_id)
    assert not space.catalogue.app(client_id).may_act(NOW)
    assert space.catalogue.search() == []
    space.catalogue.reinstate(MINISTER, application_id)
    assert space.catalogue.app(client_id).may_act(NOW)
    with pytest.raises(ReferencementError, match="window"):
        space.catalogue.renew(MINISTER, application_id)
    until = space.catalogue.app(client_id).convention_until
    clock.set(until - dt.timedelta(days=30))
    renewed = space.catalogue.renew(MINISTER, application_id)
    assert renewed.convention is not None
    assert renewed.convention.until > until
    clock.set(renewed.convention.until)
    assert not space.catalogue.app(client_id).may_act(clock.now())
    assert space.tick()["apps_expired"] == 1
    assert space.catalogue.app(client_id).status is ApplicationStatus.EXPIRED
    assert "apps_expired" not in space.tick()
    with pytest.raises(ReferencementError):
        space.catalogue.reinstate(MINISTER, application_id)


def test_a_vendor_withdraws_its_own_service_only(space):
    client_id = referenced(space)
    application_id = app_id_of(space, client_id)
    with denied("wrong_role"):
        space.catalogue.withdraw(Actor.vendor("someone-else"), application_id)
    space.catalogue.withdraw(VENDOR, application_id)
    assert space.catalogue.app(client_id).status is ApplicationStatus.WITHDRAWN


def test_bad_dossiers_are_refused_with_clear_errors(space):
    with pytest.raises(ValidationError, match="https"):
        dossier(redirect_uris=("http://poids.example/cb",))
    with pytest.raises(ValidationError, match="fragment"):
        dossier(redirect_uris=("https://poids.example/cb#x",))
    with pytest.raises(ValidationError, match="beyond the exchange tier"):
        dossier(exchange_tier="documents")
    with pytest.raises(ValidationError, match="dpia_reference"):
        dossier(dpia_reference=None)
    with pytest.raises(ValidationError, match="purpose"):
        dossier(purposes=())
    with pytest.raises(ValidationError, match="unknown scope"):
        dossier(scopes=("documents.delete",))
    with pytest.raises(ValidationError, match="control"):
        dossier(service="Suivi\x1bPoids")
    with pytest.raises(ValidationError, match="unknown criteria"):
        space.catalogue.apply(VENDOR, dossier(evidence={"XXX-99": "pièce"}))
    first = space.catalogue.apply(VENDOR, dossier(), client_id="suivi-poids")
    with pytest.raises(ConflictError):
        space.catalogue.apply(VENDOR, dossier(), client_id=first.client_id)
    with pytest.raises(ValidationError, match="client id"):
        space.catalogue.apply(VENDOR, dossier(), client_id="Not Valid")
    with pytest.raises(NotFoundError):
        space.catalogue.app("nobody")


# --- consents and the policy for apps ----------------------------------------------------------


@pytest.fixture
def setup(space):
    """A referenced app and a patient with a document and a measure."""
    client_id = referenced(space)
    patient = open_patient(space)
    return client_id, patient.id


def test_a_patient_grants_narrows_and_revokes(space, setup):
    client_id, patient_id = setup
    me = Actor.patient(patient_id)
    consent = space.consents.grant(me, patient_id, client_id, ["mesures.read", "documents.read"])
    assert consent.scopes == {Scope.MESURES_READ, Scope.DOCUMENTS_READ}
    assert space.consents.active(patient_id, client_id) == consent
    narrowed = space.consents.narrow(me, patient_id, client_id, ["mesures.read"])
    assert narrowed.scopes == {Scope.MESURES_READ}
    with pytest.raises(ValidationError, match="cannot add"):
        space.consents.narrow(me, patient_id, client_id, ["agenda.read"])
    revoked = space.consents.revoke(me, patient_id, client_id)
    assert not revoked.active
    assert space.consents.active(patient_id, client_id) is None
    assert space.consents.of(me, patient_id) == [revoked]
    with pytest.raises(NotFoundError):
        space.consents.revoke(me, patient_id, client_id)
    history = [e.what for e in space.access.history(me, patient_id)]
    assert "a autorisé une application à accéder à votre espace" in history
    assert "a réduit les droits d'une application" in history
    assert "a retiré l'autorisation d'une application" in history


def test_consents_are_given_by_the_holder_within_the_convention(space, setup):
    client_id, patient_id = setup
    me = Actor.patient(patient_id)
    for stranger in (Actor.patient("someone-else"), Actor.vendor("vendor-balance")):
        with pytest.raises(AccessDeniedError):
            space.consents.grant(stranger, patient_id, client_id, ["mesures.read"])
    with pytest.raises(AccessDeniedError):
        space.consents.grant(
            Actor.app(client_id, patient_id, ALL_SCOPES), patient_id, client_id, ["mesures.read"]
        )
    with pytest.raises(ValidationError, match="at least one"):
        space.consents.grant(me, patient_id, client_id, [])
    with pytest.raises(ValidationError, match="unknown scope"):
        space.consents.grant(me, patient_id, client_id, ["everything"])
    with pytest.raises(NotFoundError):
        space.consents.grant(me, patient_id, "no-such-app", ["mesures.read"])
    narrow = referenced(space, service="Agenda Seul", scopes={Scope.AGENDA_READ})
    with pytest.raises(ValidationError, match="beyond the app's convention"):
        space.consents.grant(me, patient_id, narrow, ["mesures.read"])
    space.catalogue.suspend(MINISTER, app_id_of(space, client_id))
    with pytest.raises(ReferencementError, match="not referenced"):
        space.consents.grant(me, patient_id, client_id, ["mesures.read"])
    assert space.consents.of(me, patient_id) == []


def test_an_app_reads_within_consent_and_token_scopes_only(space, setup, clock):
    client_id, patient_id = setup
    me = Actor.patient(patient_id)
    document = add_note(space, me, patient_id)
    app = Actor.app(client_id, patient_id, ALL_SCOPES)
    with denied("consent_not_given"):
        space.record.get_document(app, document.id)
    space.consents.grant(me, patient_id, client_id, ["documents.read"])
    assert space.record.get_document(app, document.id).id == document.id
    token_without = Actor.app(client_id, patient_id, {"mesures.read"})
    with denied("outside_app_scopes"):
        space.record.get_document(token_without, document.id)
    with denied("outside_app_scopes"):
        add_note(space, app, patient_id)
    other = open_patient(space, identity(2))
    with denied("not_this_patient"):
        space.record.search(app, other.id)
    explanation = space.access.explain(app, Action.DOCUMENT_READ, patient_id=patient_id)
    assert explanation.allowed
    assert explanation.rule == "app_acts_for_patient"
    space.catalogue.suspend(MINISTER, app_id_of(space, client_id))
    with denied("app_not_referenced"):
        space.record.get_document(app, document.id)
    space.catalogue.reinstate(MINISTER, app_id_of(space, client_id))
    space.consents.revoke(me, patient_id, client_id)
    with denied("consent_not_given"):
        space.record.get_document(app, document.id)
    whos = {e.who for e in space.access.history(me, patient_id)}
    assert "l'application Suivi Poids" in whos


def test_an_app_never_sees_what_the_patient_cannot(space, setup):
    client_id, patient_id = setup
    doctor = register_physicians(space, 1)[0]
    pro = Actor(ActorKind.PROFESSIONAL, doctor)
    hidden = add_note(space, pro, patient_id, b"result", hidden_from_patient=True)
    visible = add_note(space, pro, patient_id, b"report")
    space.consents.grant(Actor.patient(patient_id), patient_id, client_id, ALL_SCOPES)
    app = Actor.app(client_id, patient_id, ALL_SCOPES)
    with denied("beyond_patient_rights"):
        space.record.get_document(app, hidden.id)
    with denied("beyond_patient_rights"):
        space.record.read_content(app, hidden.id)
    found = {d.id for d in space.record.search(app, patient_id).documents}
    assert visible.id in found
    assert hidden.id not in found
    assert space.record.read_content(app, visible.id) == b"report"


def test_an_app_writes_and_reads_measures_and_agenda_within_its_scopes(space, setup, clock):
    client_id, patient_id = setup
    me = Actor.patient(patient_id)
    space.consents.grant(me, patient_id, client_id, ["mesures.read", "mesures.write"])
    app = Actor.app(client_id, patient_id, ALL_SCOPES)
    measure = space.measures.add(app, patient_id, "weight", 72.5, unit="kg")
    assert [m.id for m in space.measures.series(app, patient_id, "weight")] == [measure.id]
    assert [m.id for m in space.measures.series(me, patient_id, "weight")] == [measure.id]
    with denied("outside_app_scopes"):
        space.agenda.events(app, patient_id)
    space.consents.grant(me, patient_id, client_id, ["agenda.read", "agenda.write"])
    event = space.agenda.add(
        app, patient_id, kind="appointment", starts_at=NOW + dt.timedelta(days=3)
    )
    assert [e.id for e in space.agenda.events(app, patient_id)] == [event.id]
    with denied("outside_app_scopes"):  # the new grant replaced the measures' scopes
        space.measures.series(app, patient_id, "weight")
    with denied("outside_app_scopes"):
        space.access.history(app, patient_id)
    with denied("outside_app_scopes"):
        space.consents.revoke(app, patient_id, client_id)


def test_a_representative_grants_for_the_person_they_represent(space, setup):
    client_id, patient_id = setup
    parent = open_patient(space, identity(3))
    space.accounts.add_representative(
        Actor.system("test"), patient_id, parent.id, RepresentationKind.PROTECTED_ADULT
    )
    representative = Actor(ActorKind.REPRESENTATIVE, parent.id, on_behalf_of=patient_id)
    consent = space.consents.grant(representative, patient_id, client_id, ["documents.read"])
    assert consent.by == f"representative:{parent.id}"
    assert space.consents.of(representative, patient_id) == [consent]
    operator = Actor.system("support")
    assert space.consents.of(operator, patient_id) == [consent]
    assert not space.consents.revoke(operator, patient_id, client_id).active
    with pytest.raises(AccessDeniedError):
        space.consents.grant(operator, patient_id, client_id, ["documents.read"])


def test_shredding_a_space_deletes_its_consents(space, setup):
    client_id, patient_id = setup
    space.consents.grant(Actor.patient(patient_id), patient_id, client_id, ["documents.read"])
    space.accounts.shred(Actor.system("test"), patient_id)
    with storage_of(space).read() as tx:
        assert tx.catalogue.consents(patient_id) == []
    assert space.consents.active(patient_id, client_id) is None


def test_reference_app_gives_a_referenced_app_in_one_call(space):
    app = reference_app(space, "bac-a-sable", scopes=["documents.read"], name="Bac à sable")
    assert app.may_act(NOW)
    assert app.scopes == {Scope.DOCUMENTS_READ}
    assert app.redirect_uris == ("http://127.0.0.1/callback",)
    assert [a.client_id for a in space.catalogue.search("bac a sable")] == ["bac-a-sable"]
