"""The API's routes as :class:`Call` builders, shared by both clients.

Each function takes the method's arguments and returns the :class:`Call` to make; the
clients send it and decode the answer. Bodies are plain JSON: dates and instants in ISO
8601, bytes in base64, as the server's OpenAPI document describes.

.. versionadded:: 0.1
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any, Final

from ..errors import ValidationError
from ._core import Call, path
from ._models import Code

API: Final = "/api/v1"
PATIENT: Final = API + "/patients/{patient_id}"


def _moment(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValidationError("instants must be timezone-aware (got a naive datetime)")
    return value.isoformat()


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def login_patient(nir: str, vitale_serial: str, birth_date: date) -> Call:
    """The demo login with the carte Vitale details (the NIR travels in the body only)."""
    body = {"nir": nir, "vitale_serial": vitale_serial, "birth_date": birth_date.isoformat()}
    return Call("POST", API + "/session/patient", json=body, authenticated=False)


def login_professional(rpps: str) -> Call:
    """The demo's simulated Pro Santé Connect."""
    return Call("POST", API + "/session/professional", json={"rpps": rpps}, authenticated=False)


def session() -> Call:
    """The current session."""
    return Call("GET", API + "/session")


def logout() -> Call:
    """End the session."""
    return Call("DELETE", API + "/session")


def documents_page(patient_id: str, *, category: str | None, offset: int, limit: int) -> Call:
    """One page of a record."""
    params: dict[str, str | int] = {"offset": offset, "limit": limit}
    if category is not None:
        params["category"] = category
    return Call("GET", path(PATIENT + "/documents", patient_id=patient_id), params=params)


def search_page(patient_id: str, criteria: dict[str, Any], *, offset: int, limit: int) -> Call:
    """One page of a search of the record (a POST: the words stay out of the URL)."""
    body = {**_drop_none(criteria), "offset": offset, "limit": limit}
    return Call(
        "POST",
        path(PATIENT + "/documents/search", patient_id=patient_id),
        json=body,
        retry_unsafe=True,  # a read sent as POST (words stay out of URLs): safe twice
    )


def search_criteria(
    *,
    text: str | None,
    category: str | None,
    type_code: str | None,
    author_id: str | None,
    since: datetime | None,
    until: datetime | None,
    include_replaced: bool,
) -> dict[str, Any]:
    """The body of a search, without paging."""
    return {
        "text": text,
        "category": category,
        "type_code": type_code,
        "author_id": author_id,
        "since": _moment(since) if since is not None else None,
        "until": _moment(until) if until is not None else None,
        "include_replaced": include_replaced,
    }


def document(patient_id: str, document_id: str) -> Call:
    """A document's metadata."""
    return Call(
        "GET",
        path(PATIENT + "/documents/{document_id}", patient_id=patient_id, document_id=document_id),
    )


def document_content(patient_id: str, document_id: str) -> Call:
    """A document's bytes."""
    return Call(
        "GET",
        path(
            PATIENT + "/documents/{document_id}/content",
            patient_id=patient_id,
            document_id=document_id,
        ),
    )


def add_document(
    patient_id: str,
    content: bytes,
    *,
    media_type: str,
    type_code: Code | None,
    title: str | None,
    comments: str | None,
) -> Call:
    """Add a document (not retried: a second attempt would add a second document)."""
    body = _drop_none(
        {
            "content": base64.b64encode(content).decode("ascii"),
            "media_type": media_type,
            "type_code": (
                {"code": type_code.code, "system": type_code.system}
                if type_code is not None
                else None
            ),
            "title": title,
            "comments": comments,
        }
    )
    return Call("POST", path(PATIENT + "/documents", patient_id=patient_id), json=body)


def measures(patient_id: str, kind: str, *, since: datetime | None, until: datetime | None) -> Call:
    """A series of measures of one kind."""
    params: dict[str, str] = {"kind": kind}
    if since is not None:
        params["since"] = _moment(since)
    if until is not None:
        params["until"] = _moment(until)
    return Call("GET", path(PATIENT + "/measures", patient_id=patient_id), params=params)


def add_measure(
    patient_id: str,
    kind: str,
    value: float,
    *,
    unit: str | None,
    measured_at: datetime | None,
    second: float | None,
) -> Call:
    """Record a measure (not retried: a second attempt would record it twice)."""
    body = _drop_none(
        {
            "kind": kind,
            "value": value,
            "unit": unit,
            "measured_at": _moment(measured_at) if measured_at is not None else None,
            "second": second,
        }
    )
    return Call("POST", path(PATIENT + "/measures", patient_id=patient_id), json=body)


def events(patient_id: str, *, from_: date | None, until: date | None) -> Call:
    """The agenda's events between two days."""
    params: dict[str, str] = {}
    if from_ is not None:
        params["from"] = from_.isoformat()
    if until is not None:
        params["until"] = until.isoformat()
    return Call("GET", path(PATIENT + "/agenda/events", patient_id=patient_id), params=params)


def add_event(
    patient_id: str,
    *,
    kind: str,
    starts_at: datetime,
    ends_at: datetime | None,
    title: str | None,
    place: str | None,
    status: str,
) -> Call:
    """Add an event to the agenda (not retried)."""
    body = _drop_none(
        {
            "kind": kind,
            "starts_at": _moment(starts_at),
            "ends_at": _moment(ends_at) if ends_at is not None else None,
            "title": title,
            "place": place,
            "status": status,
        }
    )
    return Call("POST", path(PATIENT + "/agenda/events", patient_id=patient_id), json=body)


EVENT: Final = PATIENT + "/agenda/events/{event_id}"


def event(patient_id: str, event_id: str) -> Call:
    """One event of the agenda."""
    return Call("GET", path(EVENT, patient_id=patient_id, event_id=event_id))


def reschedule_event(
    patient_id: str, event_id: str, *, starts_at: datetime, ends_at: datetime | None
) -> Call:
    """Move an event (not retried: each change bumps its sequence)."""
    body = _drop_none(
        {
            "starts_at": _moment(starts_at),
            "ends_at": _moment(ends_at) if ends_at is not None else None,
        }
    )
    return Call(
        "POST",
        path(EVENT + "/reschedule", patient_id=patient_id, event_id=event_id),
        json=body,
    )


def event_change(patient_id: str, event_id: str, change: str) -> Call:
    """Cancel an event (``cancel``) or mark it done (``done``)."""
    return Call("POST", path(EVENT + "/" + change, patient_id=patient_id, event_id=event_id))


def access_history(patient_id: str) -> Call:
    """The access history in plain words."""
    return Call("GET", path(PATIENT + "/access/history", patient_id=patient_id))


def threads_page(patient_id: str, *, archived: bool, offset: int, limit: int) -> Call:
    """One page of a patient's mailbox."""
    return Call(
        "GET",
        path(PATIENT + "/messages", patient_id=patient_id),
        params={"archived": archived, "offset": offset, "limit": limit},
    )


def catalogue(*, text: str | None, category: str | None) -> Call:
    """The public catalogue of referenced services (no authentication)."""
    params = _drop_none({"q": text, "category": category})
    return Call("GET", API + "/catalogue", params=params, authenticated=False)


def consents(patient_id: str) -> Call:
    """The apps a patient connected, current and past."""
    return Call("GET", path(PATIENT + "/consents", patient_id=patient_id))


def narrow_consent(patient_id: str, client_id: str, scopes: list[str]) -> Call:
    """Narrow a consent to fewer scopes."""
    return Call(
        "PATCH",
        path(PATIENT + "/consents/{client_id}", patient_id=patient_id, client_id=client_id),
        json={"scopes": scopes},
    )


def revoke_consent(patient_id: str, client_id: str) -> Call:
    """Withdraw a consent: the app's tokens stop working at once."""
    return Call(
        "DELETE",
        path(PATIENT + "/consents/{client_id}", patient_id=patient_id, client_id=client_id),
    )


def server_metadata() -> Call:
    """The OAuth server's metadata (RFC 8414 section 3)."""
    return Call("GET", "/.well-known/oauth-authorization-server", authenticated=False)


def token(endpoint: str, form: dict[str, str]) -> Call:
    """A token endpoint call (code exchange or refresh). Not retried: a code or a refresh
    token is single use, and a second attempt after a lost answer would only be refused."""
    return Call("POST", endpoint, form=form, authenticated=False)


def revoke(endpoint: str, form: dict[str, str]) -> Call:
    """A revocation (RFC 7009): revoking twice has the effect of once."""
    return Call("POST", endpoint, form=form, authenticated=False, retry_unsafe=True)


def introspect(endpoint: str, form: dict[str, str]) -> Call:
    """An introspection (RFC 7662): a read."""
    return Call("POST", endpoint, form=form, authenticated=False, retry_unsafe=True)
