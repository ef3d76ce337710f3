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
from .catalogue import App, Assessment, Dossier, ExchangeTier, Purpose, Scope

__all__ = ["reference_app"]

#: The synthetic parties of :func:`reference_app` (their ids show in the audit trail).
_REVIEWER = Actor.authority("test-reviewer", "reviewer")
_COMMISSION = Actor.authority("test-commission", "commission")
_MINISTER = Actor.authority("test-minister", "minister")


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
    space.catalogue.start_review(_REVIEWER, application.id)
    findings = {c.id: Assessment.MET for c in referentiel.criteria}
    space.catalogue.assess(_REVIEWER, application.id, findings)
    space.catalogue.opinion(_COMMISSION, application.id, favourable=True)
    space.catalogue.reference(_MINISTER, application.id, duration=duration)
    return space.catalogue.app(client_id)
