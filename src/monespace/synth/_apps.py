"""A referenced app in the demo, so that a vendor can try the OAuth flow at once.

The sample service goes through the whole référencement with synthetic parties (a vendor,
a reviewer, the commission, the minister's office), by the public services, so its entry is
exactly what the workflow gives, audited as such. Its redirect URIs are on the loopback
interface (RFC 8252 §7.3): a vendor runs their client on this machine and receives the code
there.
"""

from __future__ import annotations

from typing import Final

from .._apps import complete_referencement
from .._space import Space
from ..actors import Actor
from ..catalogue import App, Application, Dossier, ExchangeTier, Purpose, Scope
from ..errors import NotFoundError

__all__ = ["DEMO_APP_CLIENT_ID", "DEMO_APP_REDIRECT_URIS", "reference_demo_app"]

#: The client id of the demo's referenced app.
DEMO_APP_CLIENT_ID: Final = "demo-carnet-poids"
#: Where the demo's app receives the authorization code (exact match, loopback only).
DEMO_APP_REDIRECT_URIS: Final = (
    "http://127.0.0.1:8765/callback",
    "http://localhost:8765/callback",
)
#: The scopes the demo patient grants the app when the demo is seeded.
_GRANTED: Final = (Scope.MESURES_READ, Scope.MESURES_WRITE)

_VENDOR = Actor.vendor("demo-vendor")


def _dossier(space: Space) -> Dossier:
    return Dossier(
        publisher="Éditeur de démonstration",
        service="Carnet de poids (démo)",
        category="Suivi du poids",
        purposes={Purpose.PREVENTION},
        exchange_tier=ExchangeTier.MESURES,
        scopes=frozenset(Scope),
        retention="Les mesures sont gardées tant que le compte est ouvert (démonstration).",
        consent_text="Le carnet lit et enregistre vos mesures de poids (démonstration).",
        dpia_reference="AIPD-DEMO-1",
        redirect_uris=DEMO_APP_REDIRECT_URIS,
        evidence={c.id: "démonstration" for c in space.catalogue.referentiel.criteria},
    )


def _application(space: Space) -> Application | None:
    return next(
        (a for a in space.catalogue.applications() if a.client_id == DEMO_APP_CLIENT_ID), None
    )


def reference_demo_app(space: Space, *, patient_id: str | None = None) -> App:
    """The demo's referenced app, taken through the référencement if it is not yet.

    Idempotent: a demo run again (or resumed after an interruption, even in the middle of
    the workflow) continues from where the application stands.

    :param patient_id: a patient who connects the app (measures read and write) when it is
        referenced now, so that their connected apps page shows one.
    :return: the app's catalogue entry.

    .. versionadded:: 0.2
    """
    try:
        return space.catalogue.app(DEMO_APP_CLIENT_ID)
    except NotFoundError:
        pass
    application = _application(space)
    if application is None:
        application = space.catalogue.apply(_VENDOR, _dossier(space), client_id=DEMO_APP_CLIENT_ID)
    app = complete_referencement(space, application, parties="demo")
    if patient_id is not None:
        space.consents.grant(Actor.patient(patient_id), patient_id, app.client_id, _GRANTED)
    return app
