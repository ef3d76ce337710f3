"""The FHIR R4 API of the demo server (``/fhir/r4``): in process with httpx for the rules and
the bad inputs, and over a real loopback socket with clients no one here wrote: fhirpy
(sync and async) and fhirclient (both speak through ``requests``/``aiohttp``, which take no
in-process transport)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monespace import Actor
from monespace.catalogue import Scope
from monespace.interop.fhir import (
    CONSENT_REFUSED,
    fhir_id,
    space_id,
    translate_scope_parameter,
    validate,
)
from monespace.record import MEASURE_SPECS, TRE_A05_TYPE, MeasureKind
from monespace.server._fhir import INTERACTIONS, _date_matches
from monespace.server._sessions import SessionStore

from .test_oauth_server import bearer, reference, tokens
from .test_server_live import running
from .test_server_world import (
    START,
    build_world,
    client,
    create_app,
    login_patient,
    login_professional,
)

pytest.importorskip("fhirpy")
pytest.importorskip("fhirclient")
httpx = pytest.importorskip("httpx")

from fhirclient import client as smart_client  # noqa: E402
from fhirclient.models.bundle import Bundle  # noqa: E402
from fhirclient.models.documentreference import DocumentReference  # noqa: E402
from fhirclient.models.observation import Observation  # noqa: E402
from fhirpy import AsyncFHIRClient, SyncFHIRClient  # noqa: E402
from fhirpy.base.exceptions import (  # noqa: E402
    ForbiddenError,
    OperationOutcome,
    ResourceNotFound,
)

BASE = "/fhir/r4"
FHIR = "application/fhir+json"
TRE_A05 = "https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire"
PDSM = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/"


def run(coroutine):
    return asyncio.run(coroutine)


def weight(value: float, when: str = "2026-02-01T08:00:00+01:00", subject: str | None = None):
    spec = MEASURE_SPECS[MeasureKind.WEIGHT]
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": spec.code.code}]},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "system": "http://unitsofmeasure.org",
            "code": spec.unit,
            "unit": spec.unit,
        },
    }
    if subject:
        resource["subject"] = {"reference": f"Patient/{subject}"}
    return resource


def document(text: bytes = b"Compte rendu\n", **extra) -> dict:
    resource = {
        "resourceType": "DocumentReference",
        "meta": {"profile": [PDSM + "pdsm-comprehensive-document-reference"]},
        "status": "current",
        "type": {"coding": [{"system": TRE_A05, "code": "DOCPAT01"}]},
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "data": base64.b64encode(text).decode(),
                    "title": "Mon document",
                }
            }
        ],
    }
    resource.update(extra)
    return resource


def transaction(*resources: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-0000-0000-{n:012d}",
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
            for n, resource in enumerate(resources)
        ],
    }


@pytest.fixture
def world():
    world = build_world()
    yield world
    world.space.close()


@pytest.fixture
def app(world):
    return create_app(world.space)


# --- metadata --------------------------------------------------------------------------------


def test_the_capability_statement_lists_exactly_what_is_served(app):
    async def go():
        async with client(app) as http:
            return await http.get(f"{BASE}/metadata")

    response = run(go())
    assert response.status_code == 200
    assert response.headers["content-type"] == FHIR
    statement = response.json()
    validate(statement)
    [uris] = statement["rest"][0]["security"]["extension"]
    assert {e["url"]: e["valueUri"] for e in uris["extension"]}["authorize"] == (
        "http://testserver/oauth/authorize"
    )
    assert statement["fhirVersion"] == "4.0.1"
    [rest] = statement["rest"]
    assert [i["code"] for i in rest["interaction"]] == ["transaction"]
    served = {r["type"]: r for r in rest["resource"]}
    assert served.keys() == INTERACTIONS.keys()
    for kind, does in INTERACTIONS.items():
        codes = {i["code"] for i in served[kind]["interaction"]}
        assert ("create" in codes) == does.create
        assert ("search-type" in codes) == bool(does.search)
        params = {p["name"] for p in served[kind].get("searchParam", [])}
        assert params == (set(does.search) | {"_count", "_offset"} if does.search else set())


# --- authentication and the policy -----------------------------------------------------------


def test_no_session_is_a_401_outcome(app, world):
    async def go():
        async with client(app) as http:
            return [
                await http.get(f"{BASE}/DocumentReference"),
                await http.get(f"{BASE}/Patient/{world.alice.id}"),
                await http.post(
                    f"{BASE}/Observation",
                    content=json.dumps(weight(70)),
                    headers={"content-type": FHIR},
                ),
            ]

    for response in run(go()):
        assert response.status_code == 401
        assert response.headers["content-type"] == FHIR
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["issue"][0]["code"] == "login"


def test_another_persons_resources_are_refused_without_saying_whether_they_exist(app, world):
    bob_document = fhir_id(world.documents[world.bob.id][0])

    async def go():
        async with client(app) as http:
            me = await login_patient(http, world.alice)
            search = {}
            for who in (world.bob.id, "AAAAAAAAAAAAAAAAAAAAAA"):
                search[who] = await http.get(
                    f"{BASE}/DocumentReference", params={"patient": who}, headers=me
                )
            reads = [
                await http.get(f"{BASE}/DocumentReference/{bob_document}", headers=me),
                await http.get(f"{BASE}/DocumentReference/AAAAAAAAAAAAAAAAAAAAAA", headers=me),
                await http.get(f"{BASE}/Binary/{bob_document}", headers=me),
                await http.get(f"{BASE}/Patient/{fhir_id(world.bob.id)}", headers=me),
            ]
            patients = await http.get(
                f"{BASE}/Patient", params={"_id": fhir_id(world.bob.id)}, headers=me
            )
            return search, reads, patients

    search, reads, patients = run(go())
    bodies = {r.text for r in search.values()}
    assert len(bodies) == 1
    for response in search.values():
        assert response.status_code == 403
        assert response.json()["issue"][0]["diagnostics"] == CONSENT_REFUSED
    assert {r.status_code for r in reads} == {404}
    assert len({r.text for r in reads}) == 1
    assert patients.json()["total"] == 0


def test_a_professional_is_refused_after_the_patient_revokes_them(app, world):
    async def go():
        async with client(app) as http:
            doctor = await login_professional(http, world.doctor)
            query = {"patient": world.alice.id}
            before = await http.get(f"{BASE}/DocumentReference", params=query, headers=doctor)
            world.space.access.revoke(Actor.patient(world.alice.id), world.alice.id, world.doctor)
            after = await http.get(f"{BASE}/DocumentReference", params=query, headers=doctor)
            unnamed = await http.get(f"{BASE}/DocumentReference", headers=doctor)
            return before, after, unnamed

    before, after, unnamed = run(go())
    assert before.status_code == 200
    assert before.json()["total"] >= 1
    assert after.status_code == 403
    assert after.json()["issue"][0]["diagnostics"] == CONSENT_REFUSED
    assert unnamed.status_code == 400


def test_a_representative_searches_the_childs_space(app, world):
    async def go():
        async with client(app) as http:
            me = await login_patient(http, world.alice)
            return await http.get(
                f"{BASE}/Immunization", params={"patient": f"Patient/{world.child}"}, headers=me
            )

    response = run(go())
    assert response.status_code == 200
    [entry] = response.json()["entry"]
    assert entry["resource"]["vaccineCode"]["text"] == "ROR"


def test_a_cookie_session_writes_only_with_its_csrf_token(app, world):
    async def go():
        async with client(app, https=True) as http:
            login = await http.post("/api/v1/session/patient", json=world.alice.login())
            csrf = login.json()["session"]["csrf_token"]
            body = json.dumps(weight(71)).encode()
            refused = await http.post(
                f"{BASE}/Observation", content=body, headers={"content-type": FHIR}
            )
            accepted = await http.post(
                f"{BASE}/Observation",
                content=body,
                headers={"content-type": FHIR, "x-csrf-token": csrf},
            )
            return refused, accepted

    refused, accepted = run(go())
    assert refused.status_code == 403
    assert accepted.status_code == 201


# --- search ------------------------------------------------------------------------------------


def test_unknown_search_parameters_are_refused_unless_lenient(app, world):
    async def go():
        async with client(app) as http:
            me = await login_patient(http, world.alice)
            strict = await http.get(f"{BASE}/DocumentReference?author=x", headers=me)
            lenient = await http.get(
                f"{BASE}/DocumentReference?author=x",
                headers={**me, "prefer": "handling=lenient"},
            )
            bad_prefix = await http.get(f"{BASE}/DocumentReference?date=sa2026", headers=me)
            bad_date = await http.get(f"{BASE}/DocumentReference?date=ge2026-13", headers=me)
            twice = await http.get(f"{BASE}/Observation?code=a&code=b", headers=me)
            bad_count = await http.get(f"{BASE}/Observation?_count=-1", headers=me)
            return strict, lenient, bad_prefix, bad_date, twice, bad_count

    strict, lenient, *others = run(go())
    assert strict.status_code == 400
    assert "author" in strict.json()["issue"][0]["diagnostics"]
    assert lenient.status_code == 200
    assert lenient.json()["total"] == 2
    assert "author" not in lenient.json()["link"][0]["url"]
    for response in others:
        assert response.status_code == 400, response.text
        assert response.json()["resourceType"] == "OperationOutcome"


def test_document_search_by_type_category_status_and_date(app, world):
    me = Actor.patient(world.alice.id)
    [note, report] = world.documents[world.alice.id]
    world.clock.advance(timedelta(days=40))
    replacement = world.space.record.replace(
        me, note, b"nouvelle version\n", media_type="text/plain"
    )

    async def go():
        async with client(app) as http:
            headers = await login_patient(http, world.alice)

            async def ids(**params):
                response = await http.get(
                    f"{BASE}/DocumentReference", params=params, headers=headers
                )
                assert response.status_code == 200, response.text
                return {e["resource"]["id"] for e in response.json()["entry"]}

            return {
                "all": await ids(),
                "type": await ids(type=f"{TRE_A05}|DOCPAT01"),
                "type-oid": await ids(type=f"urn:oid:{TRE_A05_TYPE}|DOCPAT01"),
                "loinc": await ids(type="11488-4"),
                "current": await ids(status="current"),
                "superseded": await ids(status="superseded"),
                "before": await ids(date=f"lt{(START + timedelta(days=1)).date()}"),
                "on": await ids(date=START.date().isoformat()),
                "after": await ids(date=f"gt{START.date()}"),
                "month": await ids(date=f"ge{(START + timedelta(days=40)).strftime('%Y-%m')}"),
            }

    found = run(go())
    note, report, new = fhir_id(note), fhir_id(report), fhir_id(replacement.id)
    assert found["all"] == {note, report, new}
    assert found["type"] == found["type-oid"] == {note, new}
    assert found["loinc"] == {report}
    assert found["current"] == {report, new}
    assert found["superseded"] == {note}
    assert found["before"] == found["on"] == {note, report}
    assert found["after"] == found["month"] == {new}


@settings(max_examples=40, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    bound=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    precision=st.sampled_from(["year", "month", "day", "second"]),
)
@example(
    moment=datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC),
    bound=datetime(2026, 3, 2, tzinfo=UTC),
    precision="day",
)
def test_date_prefixes_partition_time_around_the_precision_of_the_value(moment, bound, precision):
    """gt/lt exclude the whole range the value's precision covers, ge/le include it, and
    lt + eq + gt cover every instant exactly once."""
    text = {
        "year": f"{bound.year:04d}",
        "month": f"{bound.year:04d}-{bound.month:02d}",
        "day": bound.date().isoformat(),
        "second": bound.replace(microsecond=0).isoformat(),
    }[precision]
    resource = {"date": moment.isoformat()}
    lt, eq, gt = (_date_matches(resource, "date", p + text) for p in ("lt", "eq", "gt"))
    assert [lt, eq, gt].count(True) == 1
    assert _date_matches(resource, "date", "ge" + text) == (eq or gt)
    assert _date_matches(resource, "date", "le" + text) == (eq or lt)


def test_paging_follows_next_links_to_the_end(app, world):
    me = Actor.patient(world.alice.id)
    for n in range(7):
        world.space.measures.add(
            me, world.alice.id, "weight", 60 + n, measured_at=START - timedelta(days=n + 1)
        )

    async def go():
        async with client(app) as http:
            headers = await login_patient(http, world.alice)
            url = f"{BASE}/Observation?code=http://loinc.org|29463-7&_count=3"
            pages = []
            while url:
                response = await http.get(url, headers=headers)
                assert response.status_code == 200
                pages.append(response.json())
                links = pages[-1]["link"]
                url = next((k["url"] for k in links if k["relation"] == "next"), None)
            return pages

    pages = run(go())
    assert [len(p["entry"]) for p in pages] == [3, 3, 2]
    assert {p["total"] for p in pages} == {8}
    ids = [e["resource"]["id"] for p in pages for e in p["entry"]]
    assert len(set(ids)) == 8


# --- reads -------------------------------------------------------------------------------------


def test_binary_read_gives_the_content_with_its_type_or_a_binary_resource(app, world):
    document_id = world.documents[world.alice.id][0]

    async def go():
        async with client(app) as http:
            me = await login_patient(http, world.alice)
            reference = await http.get(
                f"{BASE}/DocumentReference/{fhir_id(document_id)}", headers=me
            )
            url = reference.json()["content"][0]["attachment"]["url"]
            raw = await http.get(f"{BASE}/{url}", headers={**me, "accept": "*/*"})
            resource = await http.get(f"{BASE}/{url}", headers={**me, "accept": FHIR})
            return reference, raw, resource

    reference, raw, resource = run(go())
    assert reference.status_code == 200
    validate(reference.json())
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/plain")
    assert raw.headers["content-disposition"].startswith("attachment")
    assert raw.content.startswith(b"Note personnelle")
    assert resource.json()["contentType"] == "text/plain"
    assert base64.b64decode(resource.json()["data"]) == raw.content


def test_every_resource_served_validates(app, world):
    async def go():
        async with client(app) as http:
            me = await login_patient(http, world.alice)
            bundles = [
                await http.get(f"{BASE}/{kind}", headers=me)
                for kind, does in INTERACTIONS.items()
                if does.search
            ]
            appointment = bundles[-1].json()["entry"][0]["resource"]
            read = await http.get(f"{BASE}/Appointment/{appointment['id']}", headers=me)
            return bundles, read

    bundles, read = run(go())
    for response in bundles:
        assert response.status_code == 200
        validate(response.json())
    assert read.json() == bundles[-1].json()["entry"][0]["resource"]


# --- writes ------------------------------------------------------------------------------------


def test_bad_bodies_are_refused_with_an_outcome_and_nothing_written(app, world):
    me = Actor.patient(world.alice.id)
    before = len(world.space.measures.series(me, world.alice.id, "weight"))
    pounds = weight(150)
    pounds["valueQuantity"] |= {"code": "[lb_av]", "unit": "lb"}
    thousands = transaction(*[weight(70)] * 2500)
    liar = document(b"%PDF-1.4 not really\n")  # declared text/plain: the bytes say PDF
    liar["content"][0]["attachment"]["contentType"] = "image/png"
    documents_before = len(list(world.space.record.documents_of(me, world.alice.id)))

    async def go():
        async with client(app) as http:
            headers = {**(await login_patient(http, world.alice)), "content-type": FHIR}
            post = http.post
            return {
                400: [
                    await post(f"{BASE}/Observation", content=b"{not json", headers=headers),
                    await post(BASE, content=json.dumps(thousands), headers=headers),
                    await post(
                        f"{BASE}/Observation", content=json.dumps(document()), headers=headers
                    ),
                    await post(
                        f"{BASE}/Observation",
                        content=b'{"resourceType": "Observation", "x": '
                        + b"[" * 200
                        + b"]" * 200
                        + b"}",
                        headers=headers,
                    ),
                    await post(BASE, content=json.dumps(weight(70)), headers=headers),
                ],
                415: [
                    await post(
                        f"{BASE}/Observation",
                        content=json.dumps(weight(70)),
                        headers={**headers, "content-type": "text/plain"},
                    )
                ],
                422: [
                    await post(
                        f"{BASE}/Observation", content=json.dumps(weight(900)), headers=headers
                    ),
                    await post(
                        BASE, content=json.dumps(transaction(weight(70), liar)), headers=headers
                    ),
                    await post(
                        BASE,
                        content=json.dumps(transaction(weight(70), pounds)),
                        headers=headers,
                    ),
                ],
                405: [
                    await http.put(f"{BASE}/Observation/x", content=b"{}", headers=headers),
                    await post(f"{BASE}/Binary", content=b"{}", headers=headers),
                ],
                404: [await http.get(f"{BASE}/Medication", headers=headers)],
            }

    for status, responses in run(go()).items():
        for response in responses:
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == FHIR
            assert response.json()["resourceType"] == "OperationOutcome"
    assert len(world.space.measures.series(me, world.alice.id, "weight")) == before
    assert len(list(world.space.record.documents_of(me, world.alice.id))) == documents_before


def test_a_created_observation_is_read_back(app, world):
    async def go():
        async with client(app) as http:
            headers = {**(await login_patient(http, world.alice)), "content-type": FHIR}
            created = await http.post(
                f"{BASE}/Observation", content=json.dumps(weight(68.2)), headers=headers
            )
            found = await http.get(
                f"{BASE}/Observation",
                params={"code": "29463-7", "date": "2026-02-01"},
                headers=headers,
            )
            return created, found

    created, found = run(go())
    assert created.status_code == 201
    body = created.json()
    assert created.headers["location"].endswith(f"/Observation/{body['id']}")
    assert body["valueQuantity"]["value"] == 68.2
    assert [e["resource"] for e in found.json()["entry"]] == [body]


def test_a_documents_transaction_replaces_through_relates_to(app, world):
    me = Actor.patient(world.alice.id)
    [note, _] = world.documents[world.alice.id]
    replacement = document(
        b"version 2\n",
        relatesTo=[
            {"code": "replaces", "target": {"reference": f"DocumentReference/{fhir_id(note)}"}}
        ],
    )
    bundle = transaction(document(b"nouveau\n"), replacement)

    async def go():
        async with client(app) as http:
            headers = {**(await login_patient(http, world.alice)), "content-type": FHIR}
            first = await http.post(BASE, content=json.dumps(bundle), headers=headers)
            again = await http.post(BASE, content=json.dumps(bundle), headers=headers)
            return first, again

    first, again = run(go())
    assert first.status_code == 200, first.text
    response = first.json()
    assert response["type"] == "transaction-response"
    assert [e["response"]["status"] for e in response["entry"]] == ["201 Created"] * 2
    assert world.space.record.get_document(me, note).status != "approved"
    # The same bundle again replaces a document that is no longer current: a conflict, and
    # the new document of the bundle is not written either.
    assert again.status_code == 409
    assert len(list(world.space.record.documents_of(me, world.alice.id))) == 3


def test_a_measures_bundle_with_its_device(app, world):
    device = {
        "resourceType": "Device",
        "id": "balance",
        "meta": {"profile": ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"]},
    }
    measure = weight(72.5) | {
        "device": {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}
    }

    async def go():
        async with client(app) as http:
            headers = {**(await login_patient(http, world.alice)), "content-type": FHIR}
            return await http.post(
                BASE, content=json.dumps(transaction(device, measure)), headers=headers
            )

    response = run(go())
    assert response.status_code == 200, response.text
    statuses = [e["response"] for e in response.json()["entry"]]
    assert statuses[0] == {"status": "200 OK"}
    assert statuses[1]["status"] == "201 Created"
    assert statuses[1]["location"].startswith("Observation/")


def test_an_appointment_is_created_in_the_agenda(app, world):
    appointment = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2026-04-01T08:00:00Z",
        "end": "2026-04-01T08:30:00Z",
        "description": "Dentiste",
        "participant": [
            {"actor": {"reference": f"Patient/{fhir_id(world.alice.id)}"}, "status": "accepted"}
        ],
    }

    async def go():
        async with client(app) as http:
            headers = {**(await login_patient(http, world.alice)), "content-type": FHIR}
            return await http.post(
                f"{BASE}/Appointment", content=json.dumps(appointment), headers=headers
            )

    response = run(go())
    assert response.status_code == 201, response.text
    event_id = response.json()["id"]
    event = world.space.agenda.get(
        Actor.patient(world.alice.id), world.alice.id, space_id(event_id)
    )
    assert event.title == "Dentiste"
    assert event.starts_at == datetime(2026, 4, 1, 8, tzinfo=UTC)


# --- real clients over a real socket ------------------------------------------------------------


@pytest.fixture
def live(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'fhir.db'}")
    me = Actor.patient(world.alice.id)
    for n in range(11):
        world.space.measures.add(
            me, world.alice.id, "weight", 60 + n, measured_at=START - timedelta(days=n + 1)
        )
    with running(create_app(world.space)) as url:
        yield world, url
    world.space.close()


def _session_token(url: str, person) -> str:
    response = httpx.post(f"{url}/api/v1/session/patient", json=person.login())
    assert response.status_code == 201
    return response.json()["token"]


def test_fhirpy_sync_searches_pages_creates_and_is_refused(live):
    world, url = live
    token = _session_token(url, world.alice)
    fhir = SyncFHIRClient(f"{url}{BASE}", authorization=f"Bearer {token}")
    observations = fhir.resources("Observation").search(code="29463-7").limit(4)
    # fhirpy counts with its server's own parameter (_totalMethod), which this API does not
    # know: refused in the default strict handling, ignored when the client asks leniency.
    with pytest.raises(OperationOutcome):
        observations.count()
    lenient = SyncFHIRClient(
        f"{url}{BASE}",
        authorization=f"Bearer {token}",
        extra_headers={"Prefer": "handling=lenient"},
    )
    assert lenient.resources("Observation").search(code="29463-7").count() == 12
    everything = observations.fetch_all()  # follows the next links to the end
    assert len(everything) == len({o.id for o in everything}) == 12
    first_page = observations.fetch()
    assert len(first_page) == 4

    created = fhir.resource("Observation", **weight(66.6))
    created.save()
    assert created.id
    assert fhir.reference("Observation", created.id).to_resource()["valueQuantity"]["value"] == 66.6

    doctor = httpx.post(f"{url}/api/v1/session/professional", json={"rpps": world.doctor})
    as_doctor = SyncFHIRClient(f"{url}{BASE}", authorization=f"Bearer {doctor.json()['token']}")
    alice_documents = as_doctor.resources("DocumentReference").search(patient=world.alice.id)
    assert len(alice_documents.fetch_all()) >= 1
    world.space.access.revoke(Actor.patient(world.alice.id), world.alice.id, world.doctor)
    with pytest.raises(ForbiddenError):
        alice_documents.fetch_all()

    [patient] = fhir.resources("Patient").fetch()
    assert patient.id == fhir_id(world.alice.id)
    with pytest.raises(ResourceNotFound):
        fhir.reference("DocumentReference", fhir_id(world.documents[world.bob.id][0])).to_resource()
    with pytest.raises(OperationOutcome):
        fhir.resources("Observation").search(nonsense="1").fetch()


def test_fhirpy_async_reads_documents_and_their_binaries(live):
    world, url = live
    token = _session_token(url, world.alice)

    async def go():
        fhir = AsyncFHIRClient(f"{url}{BASE}", authorization=f"Bearer {token}")
        documents = await fhir.resources("DocumentReference").search(status="current").fetch_all()
        binaries = []
        for found in documents:
            target = found["content"][0]["attachment"]["url"]
            binaries.append(await fhir.reference(*target.split("/")).to_resource())
        return documents, binaries

    documents, binaries = run(go())
    assert len(documents) == 2
    assert {b["contentType"] for b in binaries} == {"text/plain"}
    assert all(base64.b64decode(b["data"]).endswith(b"\n") for b in binaries)


def test_fhirclient_reads_the_statement_and_searches(live):
    world, url = live
    token = _session_token(url, world.alice)
    smart = smart_client.FHIRClient(
        settings={"app_id": "monespace-tests", "api_base": f"{url}{BASE}/"}
    )
    smart.server.session.headers["Authorization"] = f"Bearer {token}"
    smart.prepare()
    assert smart.server.capabilityStatement.fhirVersion == "4.0.1"
    # fhirclient found the SMART OAuth endpoints in the statement's security.
    assert smart.server.auth.auth_type == "oauth2"
    assert smart.authorize_url.startswith(f"{url}/oauth/authorize?")
    documents = list(
        DocumentReference.where({"status": "current"}).perform_resources_iter(smart.server)
    )
    assert len(documents) == 2
    assert {d.subject.reference for d in documents} == {f"Patient/{fhir_id(world.alice.id)}"}
    pages = list(Observation.where({"code": "29463-7", "_count": "5"}).perform_iter(smart.server))
    assert all(isinstance(page, Bundle) for page in pages)
    assert [len(page.entry) for page in pages] == [5, 5, 2]
    assert {page.total for page in pages} == {12}
    assert [link.relation for link in pages[0].link] == ["self", "next"]
    values = sorted(e.resource.valueQuantity.value for page in pages for e in page.entry)
    assert values == [60 + n for n in range(11)] + [70.5]

    # and writes: one Observation, then a documents transaction at the base
    created = Observation(weight(65.5)).create(smart.server)
    assert created["resourceType"] == "Observation"
    assert created["valueQuantity"]["value"] == 65.5
    response = Bundle(transaction(document(b"par fhirclient\n"))).create(smart.server)
    assert response["type"] == "transaction-response"
    assert response["entry"][0]["response"]["status"] == "201 Created"
    count = Observation.where({"code": "29463-7", "_count": "0"}).perform_iter(smart.server)
    assert next(count).total == 13


def test_a_measure_naming_its_subject_by_the_ins_the_api_gives_is_accepted(app, world):
    async def go():
        async with client(app) as http:
            headers = {**(await login_patient(http, world.alice)), "content-type": FHIR}
            patient = (await http.get(f"{BASE}/Patient", headers=headers)).json()
            [ins] = patient["entry"][0]["resource"]["identifier"]
            subject = {"system": ins["system"], "value": ins["value"]}
            mine = weight(69) | {"subject": {"identifier": subject}}
            someone = weight(69) | {"subject": {"identifier": subject | {"value": world.bob.nir}}}
            return [
                await http.post(f"{BASE}/Observation", content=json.dumps(r), headers=headers)
                for r in (mine, someone)
            ]

    mine, someone = run(go())
    assert mine.status_code == 201, mine.text
    assert someone.status_code == 422


# --- referenced apps with OAuth access tokens ----------------------------------------------------


def test_an_app_reads_and_writes_within_its_token_and_consent(world):
    reference(world.space, "suivi-poids")
    reference(world.space, "autre-appli", scopes=frozenset({Scope.MESURES_READ}), service="Autre")
    app = create_app(world.space, secure_cookies=False)
    bob_document = fhir_id(world.documents[world.bob.id][0])

    async def go():
        async with client(app) as http:
            wide = bearer((await tokens(http, world))["access_token"])
            http.cookies.clear()
            narrow_tokens = await tokens(http, world, scope="mesures.read", client_id="autre-appli")
            narrow = bearer(narrow_tokens["access_token"])
            http.cookies.clear()
            seen = {
                "documents": await http.get(f"{BASE}/DocumentReference", headers=wide),
                "measures": await http.get(f"{BASE}/Observation", headers=wide),
                "agenda": await http.get(f"{BASE}/Appointment", headers=wide),
                "write": await http.post(
                    f"{BASE}/Observation",
                    content=json.dumps(weight(64)),
                    headers={**wide, "content-type": FHIR},
                ),
                "profile": await http.get(f"{BASE}/Immunization", headers=wide),
                "bob": await http.get(
                    f"{BASE}/Observation", params={"patient": world.bob.id}, headers=wide
                ),
                "bob-document": await http.get(
                    f"{BASE}/DocumentReference/{bob_document}", headers=wide
                ),
                "narrow-documents": await http.get(f"{BASE}/DocumentReference", headers=narrow),
                "narrow-measures": await http.get(f"{BASE}/Observation", headers=narrow),
                "narrow-write": await http.post(
                    f"{BASE}/Observation",
                    content=json.dumps(weight(64)),
                    headers={**narrow, "content-type": FHIR},
                ),
                "forged": await http.get(f"{BASE}/Observation", headers=bearer("x" * 43)),
            }
            headers = await login_patient(http, world.alice)
            revoked = await http.delete(
                f"/api/v1/patients/{world.alice.id}/consents/suivi-poids", headers=headers
            )
            assert revoked.status_code == 204
            seen["after-revocation"] = await http.get(f"{BASE}/Observation", headers=wide)
            return seen

    seen = run(go())
    for name in ("documents", "measures", "agenda", "narrow-measures"):
        assert seen[name].status_code == 200, (name, seen[name].text)
    assert seen["documents"].json()["total"] >= 1
    assert seen["write"].status_code == 201
    assert seen["bob-document"].status_code == 404
    challenges = {
        "profile": None,  # no app scope covers the profil médical
        "bob": "mesures.read",
        "narrow-documents": "documents.read",
        "narrow-write": "mesures.write",
        "after-revocation": "mesures.read",
    }
    for name, scope in challenges.items():
        response = seen[name]
        assert response.status_code == 403, (name, response.text)
        assert response.json()["issue"][0]["diagnostics"] == CONSENT_REFUSED
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        if scope:
            assert f'scope="{scope}"' in challenge
    assert seen["forged"].status_code == 401
    assert 'error="invalid_token"' in seen["forged"].headers["www-authenticate"]


def test_an_app_asking_smart_scopes_gets_the_app_scopes_they_amount_to(world):
    reference(world.space, "suivi-poids")
    app = create_app(world.space, secure_cookies=False)
    smart = "launch/patient openid patient/Observation.rs patient/Observation.write"

    async def go():
        async with client(app) as http:
            granted = await tokens(http, world, scope=smart)
            http.cookies.clear()
            headers = bearer(granted["access_token"])
            measures = await http.get(f"{BASE}/Observation", headers=headers)
            documents = await http.get(f"{BASE}/DocumentReference", headers=headers)
            return granted, measures, documents

    granted, measures, documents = run(go())
    assert granted["scope"] == "mesures.read mesures.write"
    assert measures.status_code == 200
    assert documents.status_code == 403


def test_a_device_is_created_only_if_absent(app, world):
    identifier = {"system": "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680", "value": "FE-ED-AB"}
    device = {
        "resourceType": "Device",
        "identifier": [identifier],
        "manufacturer": "OMRONHEALTHCARE",
        "modelNumber": "HEM-9200T",
        "deviceName": [{"name": "Ma balance", "type": "patient-reported-name"}],
    }
    nameless = {"resourceType": "Device", "manufacturer": "Sans numéro"}
    measure = weight(72.5) | {
        "device": {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}
    }

    async def go():
        async with client(app) as http:
            headers = {**(await login_patient(http, world.alice)), "content-type": FHIR}
            answers = []
            for n in range(2):
                bundle = transaction(
                    device, measure | {"effectiveDateTime": f"2026-02-0{n + 1}"}, nameless
                )
                answers.append(await http.post(BASE, content=json.dumps(bundle), headers=headers))
            return answers

    first, second = run(go())
    assert first.status_code == second.status_code == 200, first.text
    assert [e["response"]["status"] for e in first.json()["entry"]] == [
        "201 Created",
        "201 Created",
        "200 OK",
    ]
    assert [e["response"]["status"] for e in second.json()["entry"]] == [
        "200 OK",
        "201 Created",
        "200 OK",
    ]
    [kept] = world.space.measures.devices(Actor.patient(world.alice.id), world.alice.id)
    assert kept.identifier == f"{identifier['system']}|{identifier['value']}"
    assert (kept.manufacturer, kept.model, kept.name) == (
        "OMRONHEALTHCARE",
        "HEM-9200T",
        "Ma balance",
    )


def test_a_representative_reads_the_patient_they_represent_and_odd_ids_are_not_found(app, world):
    async def go():
        async with client(app) as http:
            me = await login_patient(http, world.alice)
            child = await http.get(f"{BASE}/Patient/{fhir_id(world.child)}", headers=me)
            listed = await http.get(
                f"{BASE}/Patient", params={"_id": fhir_id(world.child)}, headers=me
            )
            odd = [
                await http.get(f"{BASE}/DocumentReference/{'a' * 65}", headers=me),
                await http.get(f"{BASE}/DocumentReference/a_b", headers=me),
            ]
            return child, listed, odd

    child, listed, odd = run(go())
    assert child.status_code == 200
    assert child.json()["id"] == fhir_id(world.child)
    assert listed.json()["total"] == 1
    assert {r.status_code for r in odd} == {404}


def test_the_smart_configuration_names_the_oauth_endpoints_and_scopes(app):
    async def go():
        async with client(app) as http:
            return await http.get(f"{BASE}/.well-known/smart-configuration")

    response = run(go())
    assert response.status_code == 200
    configuration = response.json()
    assert configuration["authorization_endpoint"] == "http://testserver/oauth/authorize"
    assert configuration["code_challenge_methods_supported"] == ["S256"]
    assert "patient/Observation.rs" in configuration["scopes_supported"]
    assert translate_scope_parameter(" ".join(configuration["scopes_supported"])).split() == [
        "agenda.read",
        "agenda.write",
        "documents.read",
        "documents.write",
        "mesures.read",
        "mesures.write",
    ]


_PAGED: dict[str, object] = {}


def _paged_world():
    """One world with 30 weights a few days apart, built once for the property below."""
    if not _PAGED:
        world = build_world()
        me = Actor.patient(world.alice.id)
        for n in range(30):
            world.space.measures.add(
                me, world.alice.id, "weight", 50 + n, measured_at=START - timedelta(days=3 * n + 1)
            )
        _PAGED["world"] = world
        _PAGED["app"] = app = create_app(world.space)

        async def login():
            async with client(app) as http:
                return await login_patient(http, world.alice)

        _PAGED["headers"] = run(login())  # once: logins are rate-limited
    return _PAGED["world"], _PAGED["app"], _PAGED["headers"]


@settings(max_examples=25, deadline=None)
@given(
    prefix=st.sampled_from(["", "ge", "gt", "le", "lt"]),
    days_back=st.integers(min_value=0, max_value=100),
    precision=st.sampled_from(["month", "day"]),
    count=st.integers(min_value=1, max_value=12),
)
@example(prefix="gt", days_back=4, precision="day", count=1)
def test_paging_a_date_search_to_the_end_finds_each_match_once(prefix, days_back, precision, count):
    world, app, headers = _paged_world()
    me = Actor.patient(world.alice.id)
    bound = (START - timedelta(days=days_back)).date()
    text = bound.isoformat() if precision == "day" else bound.strftime("%Y-%m")
    start = datetime(bound.year, bound.month, bound.day if precision == "day" else 1, tzinfo=UTC)
    end = (
        start + timedelta(days=1)
        if precision == "day"
        else datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
    )
    wanted = {
        "": lambda t: start <= t < end,
        "ge": lambda t: t >= start,
        "gt": lambda t: t >= end,
        "le": lambda t: t < end,
        "lt": lambda t: t < start,
    }[prefix]
    expected = {
        fhir_id(m.id)
        for m in world.space.measures.series(me, world.alice.id, "weight")
        if wanted(m.measured_at)
    }

    async def go():
        async with client(app) as http:
            url = f"{BASE}/Observation?code=29463-7&date={prefix}{text}&_count={count}"
            found, totals = [], set()
            while url:
                response = await http.get(url, headers=headers)
                assert response.status_code == 200, response.text
                page = response.json()
                assert len(page["entry"]) <= count
                totals.add(page["total"])
                found += [e["resource"]["id"] for e in page["entry"]]
                url = next((k["url"] for k in page["link"] if k["relation"] == "next"), None)
            return found, totals

    found, totals = run(go())
    assert len(found) == len(set(found))
    assert set(found) == expected
    assert totals == {len(expected)}


def test_no_session_is_read_on_the_event_loop(app, world, monkeypatch):
    """A session read hits the database: the API and the FHIR routes do it in a worker
    thread, never on the event loop, where it would stall every other request."""
    threads: list[str] = []
    get = SessionStore.get

    def recording(self, token):
        threads.append(threading.current_thread().name)
        return get(self, token)

    async def go():
        async with client(app) as http:
            headers = await login_patient(http, world.alice)
            http.cookies.clear()
            monkeypatch.setattr(SessionStore, "get", recording)
            event_loop = threading.current_thread().name
            pid = world.alice.id
            answers = [
                await http.get(f"{BASE}/Patient/{fhir_id(pid)}", headers=headers),
                await http.get(f"{BASE}/DocumentReference", headers=headers),
                await http.get(f"/api/v1/patients/{pid}/documents", headers=headers),
                await http.get("/api/v1/session", headers=headers),
            ]
            return event_loop, answers

    event_loop, answers = run(go())
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert len(threads) == len(answers)
    assert event_loop not in threads
