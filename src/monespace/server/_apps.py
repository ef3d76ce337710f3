"""The API of referenced apps: the public catalogue, the patient's consents, and which
operations of the exchange API an app may call with an access token (and the scope each
needs; the policy decides, on the scopes of the token *and* of the patient's consent)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

import attrs

from ..catalogue import App, Consent
from ..errors import NotFoundError
from . import _models as m
from ._problems import not_found
from ._routing import Auth, Call, Operation, Reply

__all__ = ["APP_OPERATION_SCOPES", "app_operations", "open_to_apps"]

_PREFIX = "/api/v1"
_CONSENTS = _PREFIX + "/patients/{patient_id}/consents"

#: The operations an app may call with an access token, and the scope each needs: the
#: exchange APIs of the arrêté of 23 June 2022 (documents, agenda, measures).
APP_OPERATION_SCOPES: Final = MappingProxyType(
    {
        "listDocuments": "documents.read",
        "searchDocuments": "documents.read",
        "getDocument": "documents.read",
        "getDocumentContent": "documents.read",
        "addDocument": "documents.write",
        "listAgendaEvents": "agenda.read",
        "getAgendaEvent": "agenda.read",
        "addAgendaEvent": "agenda.write",
        "rescheduleAgendaEvent": "agenda.write",
        "cancelAgendaEvent": "agenda.write",
        "markAgendaEventDone": "agenda.write",
        "getMeasures": "mesures.read",
        "addMeasure": "mesures.write",
    }
)


def open_to_apps(operations: list[Operation]) -> list[Operation]:
    """*operations* with the scope apps need on those of :data:`APP_OPERATION_SCOPES`."""
    return [
        attrs.evolve(op, app_scope=APP_OPERATION_SCOPES[op.operation_id])
        if op.operation_id in APP_OPERATION_SCOPES
        else op
        for op in operations
    ]


def catalogue_entry_out(app: App) -> m.CatalogueEntryOut:
    """The public view of a referenced app."""
    return m.CatalogueEntryOut(
        client_id=app.client_id,
        name=app.name,
        publisher=app.publisher,
        category=app.category,
        exchange_tier=str(app.exchange_tier),
        scopes=sorted(str(s) for s in app.scopes),
        convention_until=app.convention_until,
    )


async def _catalogue(call: Call) -> Reply:
    query: m.CatalogueQuery = call.query
    apps = await call.run(call.state.space.catalogue.search, text=query.q, category=query.category)
    return Reply([catalogue_entry_out(a) for a in apps])


async def consent_out(call: Call, consent: Consent) -> m.ConsentOut:
    """The patient's view of a consent, with the app's name and publisher."""
    try:
        app = await call.run(call.state.space.catalogue.app, consent.client_id)
        name, publisher = app.name, app.publisher
    except NotFoundError:
        name, publisher = consent.client_id, ""
    return m.ConsentOut(
        client_id=consent.client_id,
        app_name=name,
        publisher=publisher,
        scopes=sorted(str(s) for s in consent.scopes),
        granted_at=consent.granted_at,
        active=consent.active,
        revoked_at=consent.revoked_at,
    )


async def _consents(call: Call) -> Reply:
    pid = call.path["patient_id"]
    consents = await call.run_as(pid, call.state.space.consents.of, pid)
    return Reply([await consent_out(call, c) for c in consents])


async def _narrow(call: Call) -> Reply:
    body: m.ConsentNarrow = call.body
    pid = call.path["patient_id"]
    try:
        consent = await call.run_as(
            pid,
            call.state.space.consents.narrow,
            pid,
            call.path["client_id"],
            body.scopes,
        )
    except NotFoundError:
        raise not_found() from None
    return Reply(await consent_out(call, consent))


async def _revoke(call: Call) -> Reply:
    pid = call.path["patient_id"]
    try:
        await call.run_as(pid, call.state.space.consents.revoke, pid, call.path["client_id"])
    except NotFoundError:
        raise not_found() from None
    return Reply(None, status=204)


def app_operations() -> list[Operation]:
    """The catalogue's and the consents' operations."""
    return [
        Operation(
            "GET",
            _PREFIX + "/catalogue",
            _catalogue,
            "searchCatalogue",
            "The public catalogue of referenced services (no login)",
            "catalogue",
            auth=Auth.NONE,
            query=m.CatalogueQuery,
            response=list[m.CatalogueEntryOut],
            errors=(422,),
        ),
        Operation(
            "GET",
            _CONSENTS,
            _consents,
            "listConsents",
            "The apps the patient connected, and what each may do",
            "catalogue",
            response=list[m.ConsentOut],
            errors=(401, 403, 404),
            deferred_session=True,
        ),
        Operation(
            "PATCH",
            _CONSENTS + "/{client_id}",
            _narrow,
            "narrowConsent",
            "Narrow an app's consent to fewer scopes",
            "catalogue",
            body=m.ConsentNarrow,
            response=m.ConsentOut,
            errors=(401, 403, 404, 409, 415, 422),
        ),
        Operation(
            "DELETE",
            _CONSENTS + "/{client_id}",
            _revoke,
            "revokeConsent",
            "Disconnect an app: its tokens stop working at once",
            "catalogue",
            status=204,
            errors=(401, 403, 404, 409),
        ),
    ]
