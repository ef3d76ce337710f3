"""The FHIR R4 REST API of the demo server, under ``/fhir/r4``.

What it serves is one table, :data:`INTERACTIONS`: the routes check requests against it and
``/fhir/r4/metadata`` (the CapabilityStatement) is written from it, so the statement lists
exactly what is implemented. Resources are written and read by :mod:`monespace.interop.fhir`
(the same mapping as the export and the import); the actor is the session's, and the
library's one policy decides every access.

* Reads: ``GET /fhir/r4/{type}/{id}``; searches: ``GET /fhir/r4/{type}?…`` answer a
  ``searchset`` Bundle with ``total`` and ``self``/``next`` links (``_count``, ``_offset``).
* Unknown search parameters are refused with 400 (FHIR's *strict* handling) unless the
  request says ``Prefer: handling=lenient``, when they are ignored and left out of the
  ``self`` link, as FHIR asks.
* Writes: ``POST /fhir/r4`` with a transaction Bundle (PDSm / ITI-65 documents, "Mesures de
  santé" measures), ``POST /fhir/r4/{type}`` with one DocumentReference, Observation,
  Immunization or Appointment; all or nothing.
* Errors are OperationOutcomes with the statuses of the "Mesures de santé" guide: 400
  malformed, 401 no session, 403 "Consent not given, access refused.", 404, 405, 409, 415,
  422. Reads of what does not exist or may not be seen are the same 404.
"""

from __future__ import annotations

import base64
import functools
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

import anyio.to_thread
import attrs
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .._space import Space
from ..actors import Actor
from ..errors import AccessDeniedError, DataShreddedError, MonespaceError, NotFoundError
from ..interop.fhir import (
    APP_SCOPE_FAMILIES,
    CONSENT_REFUSED,
    FhirError,
    ImportReport,
    appointment_resource,
    document_resource,
    fhir_id,
    import_fhir,
    load_json,
    observation_resource,
    patient_resource,
    profile_resource,
    required_app_scope,
    space_id,
    system_oid,
)
from ..record import MEASURE_SPECS, Document, MeasureKind, ProfileSection
from ._oauth import metadata as oauth_metadata
from ._problems import SECURITY_HEADERS, ProblemError
from ._routing import (
    CONSENT_RULES,
    LOG,
    ServerState,
    app_actor_of,
    check_origin,
    read_body,
    session_token,
)
from ._sessions import Session, SessionKind

__all__ = [
    "FHIR_MEDIA_TYPE",
    "FHIR_PREFIX",
    "FHIR_VERSION",
    "INTERACTIONS",
    "capability_statement",
    "fhir_routes",
    "smart_configuration",
]

FHIR_PREFIX: Final = "/fhir/r4"
FHIR_MEDIA_TYPE: Final = "application/fhir+json"
FHIR_VERSION: Final = "4.0.1"
#: Search results per page when ``_count`` is not given, and the most a page holds.
DEFAULT_COUNT: Final = 20
MAX_COUNT: Final = 500
#: The parameters of every search: the page's size and where it starts (the ``next`` link
#: carries ``_offset``).
_PAGING: Final = {"_count": "number", "_offset": "number"}


@attrs.frozen
class Interactions:
    """What the API does with one resource type.

    :param search: the search parameters and their FHIR type (``token``, ``date``,
        ``reference``).
    """

    read: bool = True
    create: bool = False
    search: Mapping[str, str] = attrs.field(factory=dict)


#: Every resource type the API serves and how. Nothing else is routed.
INTERACTIONS: Final[Mapping[str, Interactions]] = {
    "Patient": Interactions(search={"_id": "token"}),
    "DocumentReference": Interactions(
        create=True,
        search={
            "patient": "reference",
            "type": "token",
            "category": "token",
            "date": "date",
            "status": "token",
        },
    ),
    "Observation": Interactions(
        create=True, search={"patient": "reference", "code": "token", "date": "date"}
    ),
    "Immunization": Interactions(create=True, search={"patient": "reference", "date": "date"}),
    "Appointment": Interactions(
        create=True, search={"patient": "reference", "date": "date", "status": "token"}
    ),
    "Binary": Interactions(),
}

#: Where each search parameter looks in a resource (JSON), by resource type.
_PATHS: Final[Mapping[str, Mapping[str, str]]] = {
    "DocumentReference": {"type": "type", "category": "category", "date": "date"},
    "Observation": {"code": "code", "date": "effectiveDateTime"},
    "Immunization": {"date": "occurrenceDateTime"},
    "Appointment": {"date": "start"},
}
_STATUS_PATH: Final = "status"


class _Outcome(Exception):
    """Answer with an OperationOutcome (inside this module)."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code
        self.headers = dict(headers or {})


_ISSUE_CODES: Final = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
}
_NOT_FOUND: Final = "There is no such resource, or you may not access it."
#: A FHIR id (R4 ``id`` datatype).
_FHIR_ID: Final = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


def _encode(value: Any) -> bytes:
    return msgspec.json.encode(value)


def _fhir_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        _encode(body),
        status_code=status,
        media_type=FHIR_MEDIA_TYPE,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def _outcome_response(error: _Outcome) -> Response:
    issue = {
        "severity": "error",
        "code": error.code or _ISSUE_CODES.get(error.status, "exception"),
        "diagnostics": error.diagnostics,
    }
    outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
    return _fhir_response(outcome, error.status, error.headers)


def _from_fhir_error(exc: FhirError) -> _Outcome:
    where = f"{exc.location}: " if exc.location else ""
    return _Outcome(exc.status, f"{where}{exc.diagnostics}")


# --- the context of one request ------------------------------------------------------------


@attrs.define
class _Context:
    """One authenticated request: the session (or the app of an OAuth access token), the
    space, and the base URL of links."""

    space: Space
    session: Session | None
    app: Actor | None
    now: datetime
    base: str
    query: list[tuple[str, str]]
    lenient: bool
    accept: str

    def actor(self, patient_id: str | None = None) -> Actor:
        """The actor of the request on *patient_id*'s space (by default the person's own;
        a professional has none and acts in normal mode). An app always acts as itself,
        for the patient of its token: the policy refuses it any other."""
        if self.app is not None:
            return self.app
        assert self.session is not None
        return self.session.actor_for(patient_id or self.session.person_id, self.now)

    def own_patient(self) -> str | None:
        """The space the request acts on when it names none: a person's own, an app's
        patient; a professional has none."""
        if self.app is not None:
            return self.app.on_behalf_of
        assert self.session is not None
        return self.session.person_id if self.session.kind is SessionKind.PATIENT else None


async def _authenticate(
    request: Request, state: ServerState, *, unsafe: bool
) -> tuple[Session | None, Actor | None]:
    """The session of a request, or the app whose OAuth access token it carries (a bearer
    token that is no session's): 401 for neither."""
    token, from_cookie = session_token(request, state)
    session, app = await anyio.to_thread.run_sync(_identify, state, token, from_cookie)
    if app is not None:
        return None, app
    if session is None:
        raise _Outcome(
            401,
            "Authentication required: log in, or send a valid bearer token.",
            headers={"www-authenticate": 'Bearer realm="monespace"'},
        )
    if unsafe:
        try:
            check_origin(request)
        except ProblemError:
            raise _Outcome(403, "The request came from another site.") from None
        if from_cookie and not session.csrf_matches(request.headers.get("x-csrf-token")):
            raise _Outcome(403, "Send the session's csrf_token in the X-CSRF-Token header.")
    return session, None


def _identify(
    state: ServerState, token: str | None, from_cookie: bool
) -> tuple[Session | None, Actor | None]:
    """The session of *token*, or else the app of a bearer token that is no session's
    (401 ``invalid_token`` if it is no app's either); it reads the database, so it runs in
    a worker thread, both lookups in one."""
    session = state.sessions.get(token)
    if session is None and token is not None and not from_cookie:
        return None, app_actor_of(state, token)
    return session, None


def _lenient(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(part.strip() == "handling=lenient" for part in prefer.split(","))


# --- search parameters ---------------------------------------------------------------------


@attrs.frozen
class _Search:
    """A search, read from the query: the filters, the page, the patient."""

    patient: str | None
    filters: tuple[tuple[str, str], ...]
    count: int
    offset: int
    kept: tuple[tuple[str, str], ...]


def _parse_search(kind: str, ctx: _Context) -> _Search:
    known = {**INTERACTIONS[kind].search, **_PAGING}
    filters: list[tuple[str, str]] = []
    kept: list[tuple[str, str]] = []
    patient: str | None = None
    count, offset = DEFAULT_COUNT, 0
    seen: set[str] = set()
    for name, value in ctx.query:
        if name not in known:
            if ctx.lenient:
                continue
            raise _Outcome(400, f"unknown search parameter {name[:40]!r} for {kind}")
        if name in seen and known[name] != "date":
            raise _Outcome(400, f"search parameter {name!r} given twice")
        seen.add(name)
        if name in _PAGING:
            number = _number(name, value)
            if name == "_count":
                count = min(number, MAX_COUNT)
            else:
                offset = number
            if name == "_offset":
                continue  # the next link sets its own
        elif name == "patient":
            patient = _patient_reference(value)
        else:
            if known[name] == "date":
                _date_range(value)  # refused now rather than while filtering
            filters.append((name, value))
        kept.append((name, value))
    return _Search(patient, tuple(filters), count, offset, tuple(kept))


def _number(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise _Outcome(400, f"{name} is a whole number")
    return int(value)


def _patient_reference(value: str) -> str:
    """The space's id a ``patient`` parameter names (``Patient/ID`` or ``ID``)."""
    reference = value.removeprefix("Patient/")
    if not reference or "," in reference or "/" in reference or len(reference) > 64:
        raise _Outcome(400, "patient names one Patient by its id")
    return space_id(reference)


_PREFIXES: Final = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def _date_range(value: str) -> tuple[str, datetime, datetime]:
    """A date parameter as its prefix and the instants ``[start, end)`` its precision
    covers (a year, a month, a day, or the second given)."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    if prefix not in ("eq", "gt", "lt", "ge", "le"):
        raise _Outcome(400, f"the date prefix {prefix!r} is not supported (eq, gt, lt, ge, le)")
    try:
        if len(text) == 4 and text.isdigit():
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            end = start.replace(year=start.year + 1)
        elif len(text) == 7:
            start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
            end = (start + timedelta(days=32)).replace(day=1)
        elif len(text) == 10:
            start = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            end = start + timedelta(days=1)
        else:
            start = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if start.tzinfo is None:
                raise ValueError(text)
            end = start + timedelta(seconds=1)
    except (ValueError, OverflowError):
        raise _Outcome(400, "a date parameter is a FHIR date or dateTime with a zone") from None
    return prefix, start, end


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _date_matches(resource: Mapping[str, Any], path: str, value: str) -> bool:
    moment = _instant(resource.get(path))
    if moment is None:
        return False
    prefix, start, end = _date_range(value)
    return {
        "eq": start <= moment < end,
        "ge": moment >= start,
        "gt": moment >= end,
        "le": moment < end,
        "lt": moment < start,
    }[prefix]


def _codings(concepts: Any) -> Iterable[Mapping[str, Any]]:
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if isinstance(concept, Mapping):
            yield from concept.get("coding") or ()


def _token_matches(concepts: Any, value: str) -> bool:
    """Whether a CodeableConcept (or a list of them) has a coding matching one of the
    comma-separated tokens ``system|code``, ``|code`` or ``code``; systems compare by OID,
    whether written as a URL, ``urn:oid:`` or an OID."""
    for token in value.split(","):
        system, bar, code = token.rpartition("|")
        for coding in _codings(concepts):
            if coding.get("code") != code:
                continue
            if not bar or (
                system
                and coding.get("system")
                and system_oid(system) == system_oid(str(coding["system"]))
            ):
                return True
            if bar and not system and not coding.get("system"):
                return True
    return False


def _matches(kind: str, resource: Mapping[str, Any], filters: Sequence[tuple[str, str]]) -> bool:
    paths = _PATHS.get(kind, {})
    for name, value in filters:
        if name == "status":
            if resource.get(_STATUS_PATH) not in value.split(","):
                return False
        elif name == "_id":
            if resource.get("id") not in value.split(","):
                return False
        elif INTERACTIONS[kind].search[name] == "date":
            if not _date_matches(resource, paths[name], value):
                return False
        elif not _token_matches(resource.get(paths[name]), value):
            return False
    return True


# --- what each resource type reads ----------------------------------------------------------


def _documents(
    ctx: _Context, patient_id: str, _filters: Sequence[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    actor = ctx.actor(patient_id)
    documents: list[Document] = []
    offset = 0
    while True:
        page = ctx.space.record.search(
            actor, patient_id, include_replaced=True, offset=offset, limit=500
        )
        documents += page.documents
        offset += len(page.documents)
        if not page.documents or offset >= page.total:
            break
    return [document_resource(d, binary_id=fhir_id(d.id)) for d in documents]


def _observations(
    ctx: _Context, patient_id: str, filters: Sequence[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    """The measures as Observations; with ``code`` filters, only the series of the kinds
    whose LOINC code they name are read (the filters still decide on the system)."""
    codes = [
        {token.rpartition("|")[2] for token in value.split(",")}
        for name, value in filters
        if name == "code"
    ]
    kinds = [k for k in MeasureKind if all(MEASURE_SPECS[k].code.code in c for c in codes)]
    actor = ctx.actor(patient_id)
    return [
        observation_resource(measure)
        for kind in kinds
        for measure in ctx.space.measures.series(actor, patient_id, kind)
    ]


def _immunizations(
    ctx: _Context, patient_id: str, _filters: Sequence[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    entries = ctx.space.profile.entries(
        ctx.actor(patient_id), patient_id, ProfileSection.VACCINATION
    )
    return [r for r in map(profile_resource, entries) if r is not None]


def _appointments(
    ctx: _Context, patient_id: str, _filters: Sequence[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    events = ctx.space.agenda.events(ctx.actor(patient_id), patient_id)
    return [appointment_resource(event) for event in events]


_LISTS: Final[
    Mapping[str, Callable[[_Context, str, Sequence[tuple[str, str]]], list[dict[str, Any]]]]
] = {
    "DocumentReference": _documents,
    "Observation": _observations,
    "Immunization": _immunizations,
    "Appointment": _appointments,
}


def _patients(ctx: _Context, search: _Search) -> list[dict[str, Any]]:
    """The people a Patient search names by ``_id`` (or the session's own person), each
    read through the policy; one the session may not read is left out."""
    wanted = [v for name, value in search.filters if name == "_id" for v in value.split(",")]
    ids = [space_id(v) for v in wanted] if wanted else [p for p in [ctx.own_patient()] if p]
    found = []
    for patient_id in dict.fromkeys(ids):
        try:
            person = ctx.space.accounts.get_patient(ctx.actor(patient_id), patient_id)
            found.append(patient_resource(person))
        except (AccessDeniedError, NotFoundError):
            continue
    return found


def _search(kind: str, ctx: _Context) -> dict[str, Any]:
    search = _parse_search(kind, ctx)
    if kind == "Patient":
        matches = _patients(ctx, search)
    else:
        patient_id = search.patient or ctx.own_patient()
        if patient_id is None:
            raise _Outcome(400, f"a professional's search of {kind} names its patient")
        try:
            resources = _LISTS[kind](ctx, patient_id, search.filters)
        except (AccessDeniedError, NotFoundError, DataShreddedError):
            # The same answer whether the person exists or not.
            raise _Outcome(403, CONSENT_REFUSED) from None
        matches = [r for r in resources if _matches(kind, r, search.filters)]
    page = matches[search.offset : search.offset + search.count]
    links = [{"relation": "self", "url": _link(ctx, kind, search, search.offset)}]
    following = search.offset + search.count
    if search.count and following < len(matches):
        links.append({"relation": "next", "url": _link(ctx, kind, search, following)})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "link": links,
        "entry": [
            {
                "fullUrl": f"{ctx.base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page
        ],
    }


def _link(ctx: _Context, kind: str, search: _Search, offset: int) -> str:
    params = [*search.kept, *([("_offset", str(offset))] if offset else [])]
    return f"{ctx.base}/{kind}" + (f"?{urlencode(params)}" if params else "")


def _read(kind: str, identifier: str, ctx: _Context) -> Response:
    """One resource by id; what does not exist and what the session may not see are the
    same 404. DocumentReference and Binary are found by the record wherever they are; the
    others in the session's own space (a professional searches them with ``patient``)."""
    object_id = space_id(identifier)
    try:
        resource = _read_resource(kind, object_id, ctx)
    except AccessDeniedError as exc:
        if ctx.app is not None and exc.rule in CONSENT_RULES:
            # The app may not read this kind at all (its token or the consent): saying so
            # tells nothing of the object.
            raise _Outcome(403, CONSENT_REFUSED) from None
        resource = None
    except (NotFoundError, DataShreddedError):
        resource = None
    if resource is None:
        raise _Outcome(404, _NOT_FOUND)
    if isinstance(resource, Response):
        return resource
    return _fhir_response(resource)


def _read_resource(kind: str, object_id: str, ctx: _Context) -> dict[str, Any] | Response | None:
    record = ctx.space.record
    if kind == "Patient":
        # As the actor on that person's space: a representative reads the person's.
        return patient_resource(ctx.space.accounts.get_patient(ctx.actor(object_id), object_id))
    if kind == "DocumentReference":
        document = record.get_document(ctx.actor(), object_id)
        return document_resource(document, binary_id=fhir_id(document.id))
    if kind == "Binary":
        document = record.get_document(ctx.actor(), object_id)
        content = record.read_content(ctx.actor(), object_id)
        return _binary(document.media_type, document.id, content, ctx)
    own = ctx.own_patient()
    if own is None:
        return None
    if kind == "Appointment":
        return appointment_resource(ctx.space.agenda.get(ctx.actor(own), own, object_id))
    wanted = fhir_id(object_id)
    return next((r for r in _LISTS[kind](ctx, own, ()) if r["id"] == wanted), None)


def _wants_fhir(accept: str) -> bool:
    return any(
        media.split(";")[0].strip() in (FHIR_MEDIA_TYPE, "application/json", "application/*")
        for media in accept.split(",")
    )


def _binary(media_type: str, document_id: str, content: bytes, ctx: _Context) -> Response:
    """A document's content: the bytes with their content type, or a Binary resource when
    the client asks for FHIR JSON (``Accept``), as FHIR's Binary read says."""
    if _wants_fhir(ctx.accept):
        binary = {
            "resourceType": "Binary",
            "id": fhir_id(document_id),
            "contentType": media_type,
            "data": base64.b64encode(content).decode("ascii"),
        }
        return _fhir_response(binary)
    return Response(
        content,
        media_type=media_type,
        headers={
            **SECURITY_HEADERS,
            "content-disposition": f'attachment; filename="document-{fhir_id(document_id)}"',
            "content-security-policy": "sandbox; default-src 'none'",
        },
    )


# --- writes -------------------------------------------------------------------------------


def _target_patient(resource: Mapping[str, Any], ctx: _Context) -> str:
    """The space a write goes to: the one the resources' ``subject`` (or ``patient``)
    references name as ``Patient/ID``, all the same, or else the session's own."""
    named: set[str] = set()
    entries = resource.get("entry") if resource.get("resourceType") == "Bundle" else None
    items = [e.get("resource") for e in entries or () if isinstance(e, Mapping)]
    # A reference to a Patient the bundle carries is the sender's, checked by the import.
    local = {e.get("fullUrl") for e in entries or () if isinstance(e, Mapping)} | {
        f"Patient/{item.get('id')}" for item in items if isinstance(item, Mapping)
    }
    for item in items or [resource]:
        if not isinstance(item, Mapping):
            continue
        for key in ("subject", "patient"):
            holder = item.get(key)
            reference = holder.get("reference") if isinstance(holder, Mapping) else None
            if _names_a_space(reference, local):
                named.add(space_id(str(reference).removeprefix("Patient/")))
        for participant in item.get("participant") or ():
            actor = participant.get("actor") if isinstance(participant, Mapping) else None
            reference = actor.get("reference") if isinstance(actor, Mapping) else None
            if _names_a_space(reference, local):
                named.add(space_id(str(reference).removeprefix("Patient/")))
    if len(named) > 1:
        raise _Outcome(422, "the resources name more than one patient")
    patient_id = next(iter(named), None) or ctx.own_patient()
    if patient_id is None:
        raise _Outcome(422, "a professional's write names its patient (subject Patient/ID)")
    return patient_id


def _names_a_space(reference: Any, local: set[Any]) -> bool:
    return (
        isinstance(reference, str) and reference.startswith("Patient/") and reference not in local
    )


def _import(ctx: _Context, resource: dict[str, Any]) -> ImportReport:
    patient_id = _target_patient(resource, ctx)
    return import_fhir(ctx.space, ctx.actor(patient_id), patient_id, resource)


def _written(report: ImportReport) -> list[dict[str, Any]]:
    """What an import wrote, as resources, in the order written by kind."""
    return [
        *(document_resource(d, binary_id=fhir_id(d.id)) for d in report.documents),
        *(observation_resource(m) for m in report.measures),
        *(r for r in map(profile_resource, report.vaccinations) if r is not None),
        *(appointment_resource(e) for e in report.appointments),
    ]


def _create(kind: str, body: bytes, ctx: _Context) -> Response:
    resource = load_json(body)
    if resource.get("resourceType") != kind:
        raise _Outcome(400, f"the body is not a {kind}")
    [created] = _written(_import(ctx, resource))
    location = f"{ctx.base}/{kind}/{created['id']}"
    return _fhir_response(created, 201, {"location": location})


def _transaction(body: bytes, ctx: _Context) -> Response:
    bundle = load_json(body)
    if bundle.get("resourceType") != "Bundle":
        raise _Outcome(400, "POST to the base takes a transaction Bundle")
    report = _import(ctx, bundle)
    queues: dict[str, list[dict[str, Any]]] = {}
    for resource in _written(report):
        queues.setdefault(resource["resourceType"], []).append(resource)
    created = {device.identifier for device in report.new_devices}
    entries = []
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") or {}
        kind = str(resource.get("resourceType"))
        waiting = queues.get(kind) or []
        if kind == "Device" and _first_identifier(resource) in created:
            # Kept now (the guide's "created only if absent"); devices are not served.
            created.discard(_first_identifier(resource))
            entries.append({"response": {"status": "201 Created"}})
        elif waiting:
            written = waiting.pop(0)
            location = f"{kind}/{written['id']}"
            entries.append({"response": {"status": "201 Created", "location": location}})
        else:
            # Context the import reads and keeps no copy of (the submission set, the
            # patient, a Binary inlined into its document), or a device kept already.
            entries.append({"response": {"status": "200 OK"}})
    return _fhir_response(
        {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    )


def _first_identifier(resource: Mapping[str, Any]) -> str | None:
    for identifier in resource.get("identifier") or ():
        if identifier.get("system") and identifier.get("value"):
            return f"{identifier['system']}|{identifier['value']}"
    return None


# --- the capability statement --------------------------------------------------------------


_OAUTH_URIS: Final = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_SECURITY_SERVICE: Final = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def smart_configuration(issuer: str) -> dict[str, Any]:
    """The SMART App Launch configuration (``.well-known/smart-configuration``) of the
    server at *issuer*: the OAuth endpoints of referenced apps, and the SMART scopes that
    amount to app scopes (``translate_scope_parameter``)."""
    oauth = oauth_metadata(issuer)
    scopes = ["launch/patient", "openid", "offline_access"] + [
        f"patient/{kind}.{action}"
        for kind in APP_SCOPE_FAMILIES
        if kind in INTERACTIONS
        for action in ("read", "write", "rs", "cud")
    ]
    keys = (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "response_types_supported",
        "grant_types_supported",
        "code_challenge_methods_supported",
        "token_endpoint_auth_methods_supported",
    )
    return {key: oauth[key] for key in keys} | {
        "scopes_supported": scopes,
        "capabilities": [
            "launch-standalone",
            "client-public",
            "permission-patient",
            "permission-v1",
            "permission-v2",
        ],
    }


def capability_statement(now: datetime, issuer: str | None = None) -> dict[str, Any]:
    """The CapabilityStatement of the API (JSON), written from :data:`INTERACTIONS`; with
    the *issuer* of the server, its security names the OAuth endpoints of apps as SMART
    on FHIR does (the ``oauth-uris`` extension)."""
    resources = []
    for kind, does in INTERACTIONS.items():
        interactions = [{"code": "read"}]
        if does.search:
            interactions.append({"code": "search-type"})
        if does.create:
            interactions.append({"code": "create"})
        entry: dict[str, Any] = {"type": kind, "interaction": interactions}
        if does.search:
            entry["searchParam"] = [
                {"name": name, "type": kind_of}
                for name, kind_of in {**does.search, **_PAGING}.items()
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.date().isoformat(),
        "kind": "instance",
        "software": {"name": "monespace"},
        "implementation": {"description": "monespace demo server (synthetic data only)"},
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_MEDIA_TYPE, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Unknown search parameters are refused (strict handling) unless the "
                    "request sends Prefer: handling=lenient."
                ),
                "security": _security(issuer),
                "resource": resources,
                "interaction": [{"code": "transaction"}],
            }
        ],
    }


def _security(issuer: str | None) -> dict[str, Any]:
    security: dict[str, Any] = {
        "description": (
            "A demo session: the session cookie (with X-CSRF-Token on writes) or "
            "Authorization: Bearer <session token>; or a referenced app's OAuth access "
            "token (SMART scopes are read as the app scopes they amount to)."
        )
    }
    if issuer is not None:
        security["service"] = [{"coding": [{"system": _SECURITY_SERVICE, "code": "SMART-on-FHIR"}]}]
        security["extension"] = [
            {
                "url": _OAUTH_URIS,
                "extension": [
                    {"url": "authorize", "valueUri": issuer + "/oauth/authorize"},
                    {"url": "token", "valueUri": issuer + "/oauth/token"},
                    {"url": "revoke", "valueUri": issuer + "/oauth/revoke"},
                    {"url": "introspect", "valueUri": issuer + "/oauth/introspect"},
                ],
            }
        ]
    return security


# --- routes ---------------------------------------------------------------------------------

_Work = Callable[["_Context"], Response]


def fhir_routes(state: ServerState) -> list[BaseRoute]:
    """The routes of the FHIR API (not part of the JSON API nor of its OpenAPI)."""
    other = ["PUT", "PATCH", "DELETE"]
    return [
        Route(FHIR_PREFIX + "/metadata", _endpoint(state, "metadata"), methods=["GET"]),
        # Before the instance route, which would read it as a type and an id.
        Route(
            FHIR_PREFIX + "/.well-known/smart-configuration",
            _endpoint(state, "smart"),
            methods=["GET"],
        ),
        Route(FHIR_PREFIX, _endpoint(state, "transaction"), methods=["POST", *other]),
        Route(FHIR_PREFIX + "/{kind}", _endpoint(state, "type"), methods=["GET", "POST", *other]),
        Route(FHIR_PREFIX + "/{kind}/{id}", _endpoint(state, "instance"), methods=["GET", *other]),
    ]


def _endpoint(state: ServerState, level: str) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await _handle(state, level, request)
        except _Outcome as error:
            response = _outcome_response(error)
        except FhirError as exc:
            response = _outcome_response(_from_fhir_error(exc))
        except ProblemError as error:
            problem = error.problem
            response = _outcome_response(
                _Outcome(problem.status, problem.detail or problem.title, headers=error.headers)
            )
        except MonespaceError:
            response = _outcome_response(_Outcome(422, "The request could not be completed."))
        # The route's template, never the path: ids stay out of the log.
        LOG.info(
            "%s %s/%s -> %d (%.1f ms)",
            request.method,
            FHIR_PREFIX,
            level,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    return handle


async def _handle(state: ServerState, level: str, request: Request) -> Response:
    method = request.method
    issuer = str(request.base_url).rstrip("/")
    if level == "metadata":
        return _fhir_response(capability_statement(state.now(), issuer))
    if level == "smart":
        return Response(
            _encode(smart_configuration(issuer)),
            media_type="application/json",
            headers=SECURITY_HEADERS,
        )
    kind = str(request.path_params.get("kind", ""))
    _check_method(level, kind, method)
    unsafe = method != "GET"
    session, app = await _authenticate(request, state, unsafe=unsafe)
    body = b""
    if unsafe:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in (FHIR_MEDIA_TYPE, "application/json"):
            raise _Outcome(415, f"send the body as {FHIR_MEDIA_TYPE}")
        body = await read_body(request, state.max_body_bytes)
    ctx = _Context(
        space=state.space,
        session=session,
        app=app,
        now=state.now(),
        base=str(request.base_url).rstrip("/") + FHIR_PREFIX,
        query=list(request.query_params.multi_items()),
        lenient=_lenient(request),
        accept=request.headers.get("accept", ""),
    )
    if unsafe and ctx.query:
        raise _Outcome(400, "a write takes no query parameters")
    work = _work(level, kind, method, body, request)
    try:
        return await anyio.to_thread.run_sync(work, ctx)
    except FhirError as exc:
        error = _from_fhir_error(exc)
    except _Outcome as exc:
        error = exc
    if app is not None and error.status == 403:
        # RFC 6750: what the app's token or the patient's consent does not cover.
        scope = required_app_scope(kind, write=unsafe) if level != "transaction" else None
        challenge = 'Bearer realm="monespace", error="insufficient_scope"'
        error.headers["www-authenticate"] = challenge + (f', scope="{scope}"' if scope else "")
    raise error


def _check_method(level: str, kind: str, method: str) -> None:
    """404 for a resource type not served, 405 for a method not served on the path."""
    if level != "transaction" and kind not in INTERACTIONS:
        raise _Outcome(404, f"this server has no resource type {kind[:40]!r}")
    does = INTERACTIONS.get(kind)
    if level == "transaction":
        allowed = method == "POST"
    elif level == "type":
        allowed = method == "GET" or (method == "POST" and does is not None and does.create)
    else:
        allowed = method == "GET"
    if not allowed:
        raise _Outcome(
            405, f"{method} is not supported here", headers={"allow": _allow(level, kind)}
        )
    if level == "type" and method == "GET" and does is not None and not does.search:
        raise _Outcome(405, f"{kind} is read by id, not searched", headers={"allow": ""})


def _work(level: str, kind: str, method: str, body: bytes, request: Request) -> _Work:
    """What answers the request, in a worker thread."""
    if level == "transaction":
        return functools.partial(_transaction, body)
    if level == "type":
        if method == "POST":
            return functools.partial(_create, kind, body)
        return functools.partial(_search_response, kind)
    if request.query_params:
        raise _Outcome(400, "a read takes no query parameters")
    identifier = str(request.path_params["id"])
    if not _FHIR_ID.match(identifier):
        raise _Outcome(404, _NOT_FOUND)  # no resource has such an id
    return functools.partial(_read, kind, identifier)


def _search_response(kind: str, ctx: _Context) -> Response:
    return _fhir_response(_search(kind, ctx))


def _allow(level: str, kind: str) -> str:
    if level == "transaction":
        return "POST"
    does = INTERACTIONS.get(kind)
    if level == "type" and does is not None and does.create:
        return "GET, POST"
    return "GET"
