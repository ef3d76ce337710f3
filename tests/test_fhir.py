"""FHIR R4 in and out: inspect against the examples' manifest, export, import all or nothing,
and the catalogue of bad inputs."""

from __future__ import annotations

import base64
import contextlib
import copy
import csv
import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import monespace
from monespace.actors import Actor, ActorKind
from monespace.cli import main
from monespace.clock import ManualClock
from monespace.interop.fhir import (
    CONSENT_REFUSED,
    MAX_DEPTH,
    MAX_ENTRIES,
    FhirError,
    export_bundle,
    import_fhir,
    validate,
)
from monespace.record import MEASURE_SPECS, MeasureKind
from monespace.synth import seed_demo

from .helpers import add_note, identity, open_patient, open_space, register_physicians
from .strategies import clean_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fhir"
EXAMPLES = sorted(DATA.glob("*/*.json"))
PDF = b"%PDF-1.4\n%synthetic\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PDSM = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/"
TRE_A05 = "https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire"


def manifest() -> dict[str, dict[str, str]]:
    with (DATA / "MANIFEST.tsv").open(encoding="utf-8") as rows:
        return {row["file"]: row for row in csv.DictReader(rows, delimiter="\t")}


# --- inspect -------------------------------------------------------------------------------


def test_inspect_reads_every_example_as_the_manifest_says():
    expected = manifest()
    assert len(EXAMPLES) == len(expected) == 20
    result = CliRunner().invoke(main, ["fhir", "inspect", "--json", *map(str, EXAMPLES)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == len(EXAMPLES)
    for line in lines:
        row = expected[str(Path(line["file"]).relative_to(DATA))]
        assert line["error"] is None
        assert line["resourceType"] == row["resourceType"]
        assert line["id"] == row["id"]
        assert line["entries"] == (int(row["n_entries"]) if row["n_entries"] else None)
        claims = row["type_or_profile"].split("|") if row["type_or_profile"] else []
        if claims and claims[0].startswith("type="):
            assert line["bundle_type"] == claims.pop(0).removeprefix("type=")
        else:
            assert line["bundle_type"] is None
        assert line["profile"] == claims


def test_inspect_goes_on_after_a_bad_file_and_fails_at_the_end(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    deep = tmp_path / "deep.json"
    deep.write_text('{"resourceType": "Patient", "x": ' + "[" * 5000 + "]" * 5000 + "}")
    r5 = tmp_path / "r5.json"
    r5.write_text(
        json.dumps(
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [],
                "version": "2",
            }
        )
    )
    good = EXAMPLES[0]
    result = CliRunner().invoke(
        main,
        [
            "fhir",
            "inspect",
            "--json",
            str(bad),
            str(deep),
            str(r5),
            str(tmp_path / "no"),
            str(good),
        ],
    )
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["error"] is None for line in lines] == [False, False, False, False, True]
    assert "not JSON" in lines[0]["error"]
    assert "deeper" in lines[1]["error"]
    assert "not a valid FHIR R4 DocumentReference" in lines[2]["error"]
    assert lines[3]["error"].startswith("cannot read")


# --- a space to import into -----------------------------------------------------------------


@pytest.fixture
def world(url):
    with open_space(url) as space:
        patient = open_patient(space)
        other = open_patient(space, identity(2, email="b@example.org"))
        yield space, patient, other


def document_reference(content: bytes, media: str = "application/pdf", **extra) -> dict:
    resource = {
        "resourceType": "DocumentReference",
        "meta": {"profile": [PDSM + "pdsm-comprehensive-document-reference"]},
        "status": "current",
        "type": {"coding": [{"system": TRE_A05, "code": "EXPPAT_2"}]},
        "content": [
            {
                "attachment": {
                    "contentType": media,
                    "data": base64.b64encode(content).decode(),
                    "title": "Mon document",
                }
            }
        ],
    }
    resource.update(extra)
    return resource


def observation(kind: MeasureKind, value: float, second: float | None = None) -> dict:
    spec = MEASURE_SPECS[kind]
    quantity = {"system": "http://unitsofmeasure.org", "code": spec.unit, "unit": spec.unit}
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": spec.code.code}]},
        "effectiveDateTime": "2025-05-04T10:00:00+02:00",
    }
    if second is None:
        resource["valueQuantity"] = {"value": value, **quantity}
    else:
        resource["component"] = [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": value, **quantity},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": second, **quantity},
            },
        ]
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


def counts(space, actor, patient_id) -> tuple[int, int, int]:
    documents = len(list(space.record.documents_of(actor, patient_id)))
    measures = sum(len(space.measures.series(actor, patient_id, kind)) for kind in MeasureKind)
    return documents, measures, len(space.profile.entries(actor, patient_id))


# --- import --------------------------------------------------------------------------------


def test_a_transaction_bundle_imports_documents_measures_and_vaccinations(world):
    space, patient, _ = world
    me = Actor.patient(patient.id)
    binary = {
        "resourceType": "Binary",
        "contentType": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    linked = document_reference(PNG, "image/png")
    linked["content"][0]["attachment"] = {
        "contentType": "image/png",
        "url": "urn:uuid:00000000-0000-0000-0000-000000000000",
    }
    bundle = transaction(
        binary,
        linked,
        document_reference(PDF),
        observation(MeasureKind.WEIGHT, 70),
        observation(MeasureKind.BLOOD_PRESSURE, 125, 82),
        {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"text": "DTP"},
            "patient": {"reference": "Patient/x"},
            "occurrenceDateTime": "2019-02-03",
        },
    )
    report = import_fhir(space, me, patient.id, json.dumps(bundle).encode())
    assert len(report.documents) == 2
    assert {d.media_type for d in report.documents} == {"image/png", "application/pdf"}
    assert space.record.read_content(me, report.documents[0].id) == PNG
    assert [(m.kind, m.value, m.second) for m in report.measures] == [
        (MeasureKind.WEIGHT, 70.0, None),
        (MeasureKind.BLOOD_PRESSURE, 125.0, 82.0),
    ]
    assert report.measures[0].measured_at == datetime(2025, 5, 4, 8, 0, tzinfo=UTC)
    [vaccination] = report.vaccinations
    assert (vaccination.label, vaccination.started) == ("DTP", date(2019, 2, 3))


def test_a_replacement_names_the_document_it_replaces(world):
    space, patient, _ = world
    me = Actor.patient(patient.id)
    first = add_note(space, me, patient.id, b"first")
    exported = export_bundle(space, me, patient.id)
    [reference] = [
        e["resource"]["id"]
        for e in exported["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    ]
    newer = document_reference(
        b"second",
        "text/plain",
        relatesTo=[{"code": "replaces", "target": {"reference": f"DocumentReference/{reference}"}}],
    )
    [document] = import_fhir(space, me, patient.id, transaction(newer)).documents
    assert document.replaces == first.id
    assert space.record.get_document(me, first.id).status == "deprecated"
    with pytest.raises(FhirError) as twice:
        import_fhir(space, me, patient.id, transaction(newer))
    assert twice.value.status == 409
    current = next(iter(space.record.documents_of(me, patient.id)))
    both = [
        document_reference(
            body,
            "text/plain",
            relatesTo=[
                {"code": "replaces", "target": {"reference": f"DocumentReference/{current.id}"}}
            ],
        )
        for body in (b"a", b"b")
    ]
    with pytest.raises(FhirError) as same:
        import_fhir(space, me, patient.id, transaction(*both))
    assert same.value.status == 409
    absent = document_reference(
        b"third",
        "text/plain",
        relatesTo=[{"code": "replaces", "target": {"reference": "DocumentReference/nope"}}],
    )
    with pytest.raises(FhirError) as missing:
        import_fhir(space, me, patient.id, transaction(absent))
    assert missing.value.status == 422


def test_a_document_already_in_the_record_is_a_conflict(world):
    space, patient, _ = world
    me = Actor.patient(patient.id)
    master = {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3.4"}
    import_fhir(space, me, patient.id, document_reference(PDF, masterIdentifier=master))
    again = transaction(
        document_reference(b"other", "text/plain"), document_reference(PDF, masterIdentifier=master)
    )
    with pytest.raises(FhirError) as conflict:
        import_fhir(space, me, patient.id, again)
    assert conflict.value.status == 409
    assert counts(space, me, patient.id) == (1, 0, 0)


def test_all_or_nothing_a_late_failure_rolls_back_what_the_bundle_wrote(world):
    space, patient, _ = world
    me = Actor.patient(patient.id)
    before = counts(space, me, patient.id)
    # Everything reads well; the weight is only found implausible while writing.
    bundle = transaction(
        document_reference(PDF),
        observation(MeasureKind.HEIGHT, 170),
        observation(MeasureKind.WEIGHT, 7500),
    )
    with pytest.raises(FhirError) as refused:
        import_fhir(space, me, patient.id, bundle)
    assert refused.value.status == 422
    assert "plausible" in refused.value.outcome["issue"][0]["diagnostics"]
    assert counts(space, me, patient.id) == before


def test_a_refusal_of_the_policy_is_a_403_and_writes_nothing(world):
    space, patient, other = world
    [rpps] = register_physicians(space, 1)
    stranger = Actor(ActorKind.PROFESSIONAL, rpps)
    me = Actor.patient(patient.id)
    before = counts(space, me, patient.id)
    for actor, target in ((stranger, patient.id), (Actor.patient(other.id), patient.id)):
        with pytest.raises(FhirError) as refused:
            import_fhir(space, actor, target, transaction(observation(MeasureKind.WEIGHT, 70)))
        assert refused.value.status == 403
        assert refused.value.outcome["issue"][0]["diagnostics"] == CONSENT_REFUSED
    assert counts(space, me, patient.id) == before


def test_the_official_iti65_bundle_is_refused_whole(world):
    # Its Binary is an empty ClinicalDocument and its class (11) disagrees with its type
    # (11488-4 is a "compte rendu", class 10): the record refuses it, nothing is written.
    space, patient, _ = world
    me = Actor.patient(patient.id)
    data = (DATA / "fr/pdsm4dmp_Bundle-example-td2-iti65-lot-soumission.json").read_bytes()
    with pytest.raises(FhirError) as refused:
        import_fhir(space, me, patient.id, data)
    assert refused.value.status in (403, 422)
    assert counts(space, me, patient.id) == (0, 0, 0)


def test_the_mesures_example_bundle_imports_its_weight(world):
    space, patient, _ = world
    me = Actor.patient(patient.id)
    report = import_fhir(
        space, me, patient.id, (DATA / "fr/mesures_Bundle-bundle-example.json").read_bytes()
    )
    assert report.devices == 1
    [weight] = report.measures
    assert (weight.kind, weight.value, weight.unit) == (MeasureKind.WEIGHT, 71.0, "kg")


def test_single_resources_import(world):
    space, patient, _ = world
    me = Actor.patient(patient.id)
    bp = (DATA / "fr/mesures_Observation-ExampleMesFrObservationBP001.json").read_bytes()
    [measure] = import_fhir(space, me, patient.id, bp).measures
    assert (measure.value, measure.second) == (107.0, 60.0)
    [document] = import_fhir(space, me, patient.id, document_reference(PDF)).documents
    assert document.type_code.code == "EXPPAT_2"
    immunization = json.loads((DATA / "r4/immunization-example.json").read_bytes())
    [entry] = import_fhir(space, me, patient.id, immunization).vaccinations
    assert entry.code is not None
    assert entry.started == date(2013, 1, 10)


# --- bad input -----------------------------------------------------------------------------


def _bad_inputs() -> dict[str, tuple[object, int, str]]:
    lying = transaction(document_reference(PNG, "application/pdf"))
    absent = transaction(document_reference(PDF))
    absent["entry"][0]["resource"]["content"][0]["attachment"] = {
        "contentType": "application/pdf",
        "url": "urn:uuid:99999999-0000-0000-0000-000000000000",
    }
    profile = document_reference(PDF, meta={"profile": ["http://example.org/my-profile"]})
    wrong_size = document_reference(PDF)
    wrong_size["content"][0]["attachment"]["size"] = len(PDF) + 1
    wrong_hash = document_reference(PDF)
    wrong_hash["content"][0]["attachment"]["hash"] = base64.b64encode(b"\0" * 20).decode()
    wrong_code = document_reference(PDF)
    wrong_code["type"] = {"coding": [{"system": "http://loinc.org", "code": "0000-0"}]}
    r5 = document_reference(PDF)
    r5["context"] = [{"reference": "Encounter/1"}]  # R5: a list of references
    too_many = transaction(*[observation(MeasureKind.WEIGHT, 70)] * (MAX_ENTRIES + 1))
    unknown_measure = observation(MeasureKind.WEIGHT, 70)
    unknown_measure["code"]["coding"][0]["code"] = "4548-4"
    wrong_unit = observation(MeasureKind.WEIGHT, 70)
    wrong_unit["valueQuantity"]["code"] = "lb"
    device = observation(MeasureKind.WEIGHT, 70)
    device["device"] = {"reference": "Device/absent"}
    other_patient = observation(MeasureKind.WEIGHT, 70)
    other_patient["subject"] = {
        "identifier": {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": "279035121518989"}
    }
    return {
        "malformed": (b'{"resourceType": "Bundle",', 400, "not JSON"),
        "not an object": (b"[1, 2]", 400, "not an object"),
        "deep": (
            b'{"resourceType":"Patient","a":'
            + b"[" * (MAX_DEPTH + 1)
            + b"]" * (MAX_DEPTH + 1)
            + b"}",
            400,
            "deeper",
        ),
        "not utf-8": (b'{"resourceType": "Patient", "id": "\xff"}', 400, "not JSON"),
        "other version": (r5, 400, "not a valid FHIR R4 DocumentReference"),
        "unknown type": ({"resourceType": "Frobnicate"}, 400, "not a resource type"),
        "too many entries": (too_many, 400, "at most"),
        "not a transaction": ({**transaction(), "type": "collection"}, 422, "transaction"),
        "unknown profile": (profile, 422, "profile"),
        "wrong type code": (wrong_code, 422, "type code"),
        "lying binary": (lying, 422, "application/pdf"),
        "absent binary": (absent, 422, "absent"),
        "wrong size": (wrong_size, 422, "size"),
        "wrong hash": (wrong_hash, 422, "hash"),
        "absent device": (transaction(device), 422, "absent"),
        "unknown measure": (unknown_measure, 422, "not a code of a measure"),
        "wrong unit": (wrong_unit, 422, "weight is in kg"),
        "another patient": (other_patient, 422, "not the holder"),
        "not imported": (
            json.loads((DATA / "r4/consent-example.json").read_bytes()),
            422,
            "not imported",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_bad_input_is_refused_with_an_operation_outcome(world, case):
    space, patient, _ = world
    me = Actor.patient(patient.id)
    data, status, words = _bad_inputs()[case]
    with pytest.raises(FhirError) as refused:
        import_fhir(space, me, patient.id, data)
    error = refused.value
    assert error.status == status, str(error)
    [issue] = error.outcome["issue"]
    assert words in issue["diagnostics"] + str(error)
    validate(error.outcome)
    assert counts(space, me, patient.id) == (0, 0, 0)


# --- export --------------------------------------------------------------------------------


def test_export_round_trips_into_another_space(world):
    space, patient, other = world
    me = Actor.patient(patient.id)
    add_note(space, me, patient.id, PDF, media_type="application/pdf")
    space.measures.add(me, patient.id, "weight", 70.5)
    space.measures.add(me, patient.id, "blood_pressure", 120, second=80)
    space.profile.add(me, patient.id, "vaccination", "Tétanos", started=date(2020, 1, 2))
    space.profile.add(me, patient.id, "allergy", "Pénicilline")
    space.profile.add(me, patient.id, "intolerance", "Lactose")
    space.profile.add(me, patient.id, "medical_history", "Asthme")
    for bundle_type in ("collection", "searchset"):
        bundle = export_bundle(space, me, patient.id, bundle_type=bundle_type)
        assert bundle["type"] == bundle_type
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    for kind in (
        "Patient",
        "DocumentReference",
        "Binary",
        "Observation",
        "Immunization",
        "AllergyIntolerance",
        "Condition",
        "AuditEvent",
    ):
        assert kind in kinds
    [person] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert person["identifier"][0]["system"] == f"urn:oid:{patient.identity.ins.oid}"
    assert person["identifier"][0]["value"] == patient.identity.ins.matricule.value

    importable = transaction(
        *[
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"]
            in ("DocumentReference", "Binary", "Observation", "Immunization")
        ]
    )
    for entry in importable["entry"]:
        entry["fullUrl"] = f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
    them = Actor.patient(other.id)
    import_fhir(space, them, other.id, importable)
    again = export_bundle(space, them, other.id, inline=True)

    def clinical(b, kind, key):
        return sorted(
            json.dumps(e["resource"][key], sort_keys=True)
            for e in b["entry"]
            if e["resource"]["resourceType"] == kind
        )

    for kind, key in (
        ("Observation", "code"),
        ("Immunization", "vaccineCode"),
        ("DocumentReference", "type"),
    ):
        assert clinical(again, kind, key) == clinical(bundle, kind, key)
    [inline] = [
        e["resource"]
        for e in again["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    ]
    assert base64.b64decode(inline["content"][0]["attachment"]["data"]) == PDF


def test_a_professional_sees_what_the_policy_lets_them_and_a_stranger_nothing(world):
    space, patient, _ = world
    doctor, stranger = register_physicians(space, 2)
    me = Actor.patient(patient.id)
    space.access.authorise(me, patient.id, doctor)
    pro = Actor(ActorKind.PROFESSIONAL, doctor)
    add_note(space, pro, patient.id, b"compte rendu")
    space.profile.add(me, patient.id, "vaccination", "ROR")
    bundle = export_bundle(space, pro, patient.id)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert "DocumentReference" in kinds
    # The other parts are there exactly when the policy lets the professional read them.
    for kind, read in (
        ("Patient", lambda: space.accounts.get_patient(pro, patient.id)),
        ("Immunization", lambda: space.profile.entries(pro, patient.id)),
    ):
        try:
            read()
        except monespace.errors.AccessDeniedError:
            assert kind not in kinds
        else:
            assert kind in kinds
    assert "Practitioner" in kinds
    [practitioner] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner"
    ]
    assert practitioner["identifier"] == [
        {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": f"8{doctor}"}
    ]
    with pytest.raises(monespace.errors.AccessDeniedError):
        export_bundle(space, Actor(ActorKind.PROFESSIONAL, stranger), patient.id)


def test_the_export_of_a_seeded_population_validates():
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with monespace.open("memory://", clock=clock, load_entrypoints=False) as space:
        summary = seed_demo(space, 12, seed=3)
        login = summary.login("patient")
        assert login is not None
        actor = Actor.patient(login.patient_id)
        bundle = export_bundle(space, actor, login.patient_id)
        assert len(bundle["entry"]) > 3
        validate(bundle)


def test_the_cli_exports_and_imports(tmp_path):
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    db = tmp_path / "space.db"
    with monespace.open(f"sqlite:///{db}", clock=clock, load_entrypoints=False) as space:
        login = seed_demo(space, 12, seed=3).login("patient")
    assert login is not None
    who = [
        "--db",
        str(db),
        "--nir",
        login.nir,
        "--vitale",
        login.vitale_serial,
        "--birth-date",
        login.birth_date.isoformat(),
    ]
    runner = CliRunner()
    out = tmp_path / "export.json"
    result = runner.invoke(main, ["fhir", "export", *who, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["resourceType"] == "Bundle"
    good = tmp_path / "weight.json"
    good.write_text(json.dumps(transaction(observation(MeasureKind.WEIGHT, 64))))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = runner.invoke(main, ["fhir", "import", *who, str(bad), str(good)])
    assert result.exit_code == 1
    assert "1 measure(s)" in result.output
    assert '"OperationOutcome"' in result.output


# --- properties ----------------------------------------------------------------------------


@st.composite
def measures(draw):
    kind = draw(st.sampled_from(sorted(MeasureKind)))
    spec = MEASURE_SPECS[kind]
    value = draw(st.floats(spec.low, spec.high, allow_nan=False).map(lambda v: round(v, 2)))
    value = min(max(value, spec.low), spec.high)
    second = None
    if spec.second is not None:
        _, low, high = spec.second
        second = draw(
            st.floats(low, min(high, value) - 1, allow_nan=False)
            .map(lambda v: round(v, 2))
            .filter(lambda v: low <= v < value)
        )
    hours = draw(st.integers(1, 24 * 365 * 30))
    return kind, value, second, hours


@given(st.lists(measures(), min_size=1, max_size=4))
def test_measures_round_trip_through_fhir(items):
    with open_space() as space:
        patient = open_patient(space)
        other = open_patient(space, identity(2, email="b@example.org"))
        me, them = Actor.patient(patient.id), Actor.patient(other.id)
        now = space.clock.now()
        for kind, value, second, hours in items:
            space.measures.add(
                me,
                patient.id,
                kind,
                value,
                second=second,
                measured_at=(now - timedelta(hours=hours)).replace(microsecond=0),
            )
        bundle = export_bundle(space, me, patient.id)
        observations = [
            copy.deepcopy(e["resource"])
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"
        ]
        import_fhir(space, them, other.id, transaction(*observations))

        def series(actor, pid):
            return sorted(
                (m.kind, m.value, m.second, m.measured_at)
                for kind in MeasureKind
                for m in space.measures.series(actor, pid, kind)
            )

        assert series(them, other.id) == series(me, patient.id)


def test_space_transaction_is_all_or_nothing(world):
    space, patient, other = world
    me = Actor.patient(patient.id)
    with pytest.raises(monespace.errors.AccessDeniedError), space.transaction():
        space.measures.add(me, patient.id, "weight", 70)
        space.measures.add(me, other.id, "weight", 70)  # not their space: denied
    assert space.measures.series(me, patient.id, "weight") == []
    with space.transaction():
        space.measures.add(me, patient.id, "weight", 70)
        space.measures.add(me, patient.id, "height", 170)
    assert len(space.measures.series(me, patient.id, "height")) == 1


_TITLES = clean_text(min_size=1, max_size=40).filter(str.strip)


@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=200), _TITLES, st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_documents_round_trip_through_fhir(items):
    with open_space() as space:
        patient = open_patient(space)
        other = open_patient(space, identity(2, email="b@example.org"))
        me, them = Actor.patient(patient.id), Actor.patient(other.id)
        for n, (data, title, inline) in enumerate(items):
            content = PDF + data
            resource = document_reference(content)
            resource["content"][0]["attachment"]["title"] = title
            resource["masterIdentifier"] = {
                "system": "urn:ietf:rfc:3986",
                "value": f"urn:oid:1.2.3.{n}",
            }
            if not inline:
                resource["securityLabel"] = [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                "code": "R",
                            }
                        ]
                    }
                ]
            import_fhir(space, me, patient.id, resource)
        bundle = export_bundle(space, me, patient.id, inline=items[0][2])
        references = [
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] in ("DocumentReference", "Binary")
        ]
        importable = transaction(*references)
        for entry in importable["entry"]:
            entry["fullUrl"] = f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
        import_fhir(space, them, other.id, importable)

        def documents(actor, pid):
            return sorted(
                (d.title, d.unique_id, d.confidentiality, space.record.read_content(actor, d.id))
                for d in space.record.documents_of(actor, pid)
            )

        assert documents(them, other.id) == documents(me, patient.id)


def test_a_failure_caught_inside_a_transaction_still_fails_it(world):
    space, patient, other = world
    me = Actor.patient(patient.id)
    with pytest.raises(monespace.errors.AccessDeniedError), space.transaction():
        space.measures.add(me, patient.id, "weight", 70)
        # What a careless caller does: swallow the failure and go on.
        with contextlib.suppress(Exception):
            space.measures.add(me, other.id, "weight", 70)
    assert space.measures.series(me, patient.id, "weight") == []
    denials = [e for e in space.audit.events(Actor.system("test")) if e.outcome == "denied"]
    assert denials, "the denial is in the audit trail"


def test_the_module_imports_without_the_extra_and_names_it_when_used():
    # A meta path finder that refuses fhir.resources stands for an environment without it.
    script = """
import sys
class NoFhir:
    def find_spec(self, name, path=None, target=None):
        if name == "fhir" or name.startswith("fhir."):
            raise ImportError(name)
sys.meta_path.insert(0, NoFhir())
import monespace.cli
import monespace.interop.fhir as fhir
assert not any(m == "fhir" or m.startswith("fhir.") for m in sys.modules)
try:
    fhir.validate({"resourceType": "Patient"})
except monespace.errors.ConfigurationError as exc:
    print(exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert "pip install 'monespace[fhir]'" in result.stdout
