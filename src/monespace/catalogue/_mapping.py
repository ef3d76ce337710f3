"""Rows <-> model for the catalogue: applications, the catalogue's apps, consents.

Applications and apps are public information about services (no health data): their
dossier and convention are stored as plain JSON, written and read here field by field so
that a stored payload is validated again by the model on the way back.
"""

from __future__ import annotations

import json
from typing import Any

from monespace.errors import ValidationError
from monespace.storage import ApplicationRow, AppRow, ConsentRow, from_db_time, to_db_time

from ._model import App, Application, Consent, Convention, Dossier, Scope

__all__ = [
    "app_from_row",
    "app_row",
    "application_from_row",
    "application_row",
    "consent_from_row",
    "consent_row",
    "dossier_from_json",
    "scopes_text",
]


def scopes_text(scopes: frozenset[Scope] | frozenset[str]) -> str:
    """Scopes as stored and as OAuth writes them: space-separated, sorted."""
    return " ".join(sorted(str(s) for s in scopes))


def _scopes(text: str) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in text.split())


def _dossier(dossier: Dossier) -> dict[str, Any]:
    return {
        "publisher": dossier.publisher,
        "service": dossier.service,
        "category": dossier.category,
        "purposes": sorted(dossier.purposes),
        "exchange_tier": str(dossier.exchange_tier),
        "scopes": sorted(dossier.scopes),
        "retention": dossier.retention,
        "consent_text": dossier.consent_text,
        "dpia_reference": dossier.dpia_reference,
        "redirect_uris": list(dossier.redirect_uris),
        "evidence": dict(dossier.evidence),
    }


def dossier_from_json(raw: dict[str, Any]) -> Dossier:
    """A :class:`Dossier` from its JSON form (a stored payload, or a vendor's file).

    :raises ValidationError: for an unknown field, or a missing or invalid one.
    """
    known = {
        "publisher",
        "service",
        "category",
        "purposes",
        "exchange_tier",
        "scopes",
        "retention",
        "consent_text",
        "dpia_reference",
        "redirect_uris",
        "evidence",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValidationError(f"unknown dossier fields: {', '.join(unknown)}")
    missing = sorted({"publisher", "service", "category", "purposes", "exchange_tier"} - set(raw))
    if missing:
        raise ValidationError(f"missing dossier fields: {', '.join(missing)}")
    try:
        return Dossier(**raw)
    except TypeError as exc:
        raise ValidationError(f"a dossier field has the wrong type: {exc}") from None


def application_row(application: Application) -> ApplicationRow:
    """The row of *application*."""
    convention = application.convention
    payload = {
        "dossier": _dossier(application.dossier),
        "applied_at": to_db_time(application.applied_at),
        "edition": application.edition,
        "assessments": {k: str(v) for k, v in application.assessments.items()},
        "convention": None
        if convention is None
        else {
            "signed_at": to_db_time(convention.signed_at),
            "until": to_db_time(convention.until),
            "data_categories": sorted(convention.data_categories),
            "withdrawal_terms": convention.withdrawal_terms,
        },
    }
    return ApplicationRow(
        id=application.id,
        client_id=application.client_id,
        vendor_id=application.vendor_id,
        status=str(application.status),
        changed_at=application.changed_at,
        payload=json.dumps(payload, ensure_ascii=False, sort_keys=True),
    )


def application_from_row(row: ApplicationRow) -> Application:
    """The application stored in *row*."""
    raw = json.loads(row.payload)
    convention = raw["convention"]
    return Application(
        id=row.id,
        client_id=row.client_id,
        vendor_id=row.vendor_id,
        dossier=dossier_from_json(raw["dossier"]),
        status=row.status,
        applied_at=from_db_time(raw["applied_at"]),
        changed_at=row.changed_at,
        edition=raw["edition"],
        assessments=raw["assessments"],
        convention=None
        if convention is None
        else Convention(
            signed_at=from_db_time(convention["signed_at"]),
            until=from_db_time(convention["until"]),
            data_categories=convention["data_categories"],
            withdrawal_terms=convention["withdrawal_terms"],
        ),
    )


def app_row(app: App, application_id: str) -> AppRow:
    """The catalogue's row of *app*."""
    payload = {
        "redirect_uris": list(app.redirect_uris),
        "scopes": sorted(app.scopes),
        "purposes": sorted(app.purposes),
    }
    return AppRow(
        client_id=app.client_id,
        application_id=application_id,
        name=app.name,
        publisher=app.publisher,
        category=app.category,
        exchange_tier=str(app.exchange_tier),
        status=str(app.status),
        convention_until=app.convention_until,
        payload=json.dumps(payload, sort_keys=True),
    )


def app_from_row(row: AppRow) -> App:
    """The app stored in *row*."""
    raw = json.loads(row.payload)
    return App(
        client_id=row.client_id,
        name=row.name,
        publisher=row.publisher,
        category=row.category,
        exchange_tier=row.exchange_tier,
        redirect_uris=tuple(raw["redirect_uris"]),
        scopes=frozenset(Scope(s) for s in raw["scopes"]),
        status=row.status,
        convention_until=row.convention_until,
        purposes=frozenset(raw.get("purposes", ())),
    )


def consent_row(consent: Consent) -> ConsentRow:
    """The row of *consent*."""
    return ConsentRow(
        patient_id=consent.patient_id,
        client_id=consent.client_id,
        scopes=scopes_text(consent.scopes),
        granted_at=consent.granted_at,
        by=consent.by,
        revoked_at=consent.revoked_at,
    )


def consent_from_row(row: ConsentRow) -> Consent:
    """The consent stored in *row*."""
    return Consent(
        patient_id=row.patient_id,
        client_id=row.client_id,
        scopes=_scopes(row.scopes),
        granted_at=row.granted_at,
        by=row.by,
        revoked_at=row.revoked_at,
    )
