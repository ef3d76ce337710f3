"""A referenced app in one call, for tests, sandboxes and demos.

The référencement is a workflow with several parties; a test of an OAuth flow or of an app's
behaviour needs only its outcome. :func:`reference_app` runs every step of it with synthetic
parties (a vendor, a reviewer, the commission, the minister's office), through the public
services, so the result is exactly what the workflow gives, audited as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from ._space import Space
from .actors import Actor
from .catalogue import (
    App,
    Application,
    ApplicationStatus,
    Assessment,
    Dossier,
    ExchangeTier,
    Purpose,
    Scope,
)

__all__ = ["complete_referencement", "reference_app"]


def complete_referencement(
    space: Space, application: Application, *, parties: str, duration: timedelta | None = None
) -> App:
    """Take *application* through what remains of the référencement from where it stands
    (applied, under review or favourable), every criterion met, and return its catalogue
    entry. Resumable: a run interrupted between two steps goes on from the next one.

    :param parties: the prefix of the synthetic reviewer, commission and minister's office
        (``<parties>-reviewer``...: their ids show in the audit trail).
    :param duration: the convention's duration (``Settings.catalogue`` by default).
    """
    reviewer = Actor.authority(f"{parties}-reviewer", "reviewer")
    if application.status is ApplicationStatus.APPLIED:
        application = space.catalogue.start_review(reviewer, application.id)
    if application.status is ApplicationStatus.UNDER_REVIEW:
        criteria = space.catalogue.referentiel.criteria
        space.catalogue.assess(reviewer, application.id, {c.id: Assessment.MET for c in criteria})
        commission = Actor.authority(f"{parties}-commission", "commission")
        application = space.catalogue.opinion(commission, application.id, favourable=True)
    if application.status is ApplicationStatus.FAVOURABLE:
        minister = Actor.authority(f"{parties}-minister", "minister")
        space.catalogue.reference(minister, application.id, duration=duration)
    return space.catalogue.app(application.client_id)


def reference_app(
    space: Space,
    client_id: str,
    *,
    scopes: Iterable[Scope | str] = tuple(Scope),
    redirect_uris: Iterable[str] = ("http://127.0.0.1/callback",),
    name: str | None = None,
    publisher: str = "Éditeur de test",
    category: str = "Test",
    vendor_id: str = "test-vendor",
    duration: timedelta | None = None,
) -> App:
    """Take an app through the whole référencement and return its catalogue entry.

    :param scopes: what its dossier asks and its convention allows (every scope by default;
        the exchange tier is ``mesures``, which allows them all).
    :param redirect_uris: its registered redirect URIs (exact match).
    :param name: the service's name (default: the client id).
    :param duration: the convention's duration (``Settings.catalogue`` by default).
    """
    referentiel = space.catalogue.referentiel
    dossier = Dossier(
        publisher=publisher,
        service=name or client_id,
        category=category,
        purposes={Purpose.PREVENTION},
        exchange_tier=ExchangeTier.MESURES,
        scopes=frozenset(Scope(s) for s in scopes),
        retention="Test",
        consent_text="Consentement de test.",
        dpia_reference="AIPD-TEST",
        redirect_uris=tuple(redirect_uris),
        evidence={c.id: "test" for c in referentiel.criteria},
    )
    application = space.catalogue.apply(Actor.vendor(vendor_id), dossier, client_id=client_id)
    return complete_referencement(space, application, parties="test", duration=duration)
