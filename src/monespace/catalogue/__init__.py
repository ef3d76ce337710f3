"""The catalogue of referenced services: the référencement of third-party apps (CSP
R1111-37 to R1111-39), the public catalogue, and patients' consents to apps.

Reached as ``space.catalogue`` and ``space.consents``; what an app may then do with a
patient's data is decided by the one policy (:mod:`monespace.policy`).

.. versionadded:: 0.2
"""

from ._mapping import (
    app_from_row,
    app_row,
    application_from_row,
    application_row,
    consent_from_row,
    consent_row,
    dossier_from_json,
    scopes_text,
)
from ._model import (
    CLIENT_ID,
    TIER_SCOPES,
    App,
    Application,
    ApplicationStatus,
    Assessment,
    Consent,
    Convention,
    Criterion,
    Dossier,
    ExchangeTier,
    Level,
    Purpose,
    Referentiel,
    Role,
    Scope,
    check_redirect_uri,
)
from ._rules import (
    DEFAULT_EDITION,
    STEPS,
    CatalogueSettings,
    Step,
    app_of,
    apply_step,
    check_assessments,
    check_grant,
    default_convention,
    expiry_due,
    load_referentiel,
    may_exchange,
    narrowed,
    review_gaps,
)
from ._service import CatalogueService, ConsentService

__all__ = [
    "CLIENT_ID",
    "DEFAULT_EDITION",
    "STEPS",
    "TIER_SCOPES",
    "App",
    "Application",
    "ApplicationStatus",
    "Assessment",
    "CatalogueService",
    "CatalogueSettings",
    "Consent",
    "ConsentService",
    "Convention",
    "Criterion",
    "Dossier",
    "ExchangeTier",
    "Level",
    "Purpose",
    "Referentiel",
    "Role",
    "Scope",
    "Step",
    "app_from_row",
    "app_of",
    "app_row",
    "application_from_row",
    "application_row",
    "apply_step",
    "check_assessments",
    "check_grant",
    "check_redirect_uri",
    "consent_from_row",
    "consent_row",
    "default_convention",
    "dossier_from_json",
    "expiry_due",
    "load_referentiel",
    "may_exchange",
    "narrowed",
    "review_gaps",
    "scopes_text",
]
