"""Benchmark of FHIR R4 out: the export of a record, and the search of the FHIR API.

Run ``python benchmarks/bench_fhir.py`` (about a minute; ``--quick`` for a noisier run,
``--json PATH`` to keep the figures). Figures, on a 1,000-document record on an SQLite file:

- resources exported per second by ``monespace.interop.fhir.export_bundle`` (reading every
  document and its content through the policy, decrypting, mapping to PDSm, validating each
  resource with ``fhir.resources``) versus building the same ``fhir.resources`` objects from
  the plain dicts of an export already made (the validation alone, no storage, no
  decryption);
- DocumentReferences per second through the demo server's ``GET /fhir/r4/DocumentReference``
  (pages of 100, in process through httpx's ASGI transport: session, query, policy,
  mapping, JSON) versus the same mapping called directly on the library's own search
  (``space.record.search`` then ``document_resource``, no HTTP).

The database lives in a temporary directory (``--dir`` to choose the disk), removed at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

import monespace
from _common import Figure, Report, compare, describe_machine, parser, print_machine
from _common import print_table as show
from monespace import Actor, ActorKind
from monespace.access import Professional
from monespace.accounts import Contact, PatientIdentity
from monespace.clock import ManualClock
from monespace.crypto import MasterKey, StaticKeyProvider
from monespace.identity import INS, INS_NIR_TEST_OID, NIR, INSTraits
from monespace.interop.fhir import FHIR_MODELS, document_resource, export_bundle, fhir_id
from monespace.record import TRE_A05_TYPE, Code
from monespace.server import create_app

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
BORN = dt.date(1980, 5, 4)
OPERATOR = Actor.system("bench")
DOCUMENTS = 1000
PAGE = 100


def _open(work: Path) -> tuple[monespace.Space, str, dict[str, str]]:
    """A space with one activated person holding DOCUMENTS documents, and their login."""
    space = monespace.open(
        f"sqlite:///{work}/fhir.db",
        clock=ManualClock(NOW),
        key_provider=StaticKeyProvider(MasterKey.generate()),
        load_entrypoints=False,
    )
    nir = NIR.build("F", 80, 5, "75", "056", 11)
    traits = INSTraits(birth_name="BENCH", first_given_name="ALEX", birth_date=BORN, sex="F")
    identity = PatientIdentity(
        INS(nir, INS_NIR_TEST_OID, traits),
        Contact(email="bench@example.org"),
        vitale_serial="1000000011",
    )
    patient = space.accounts.register_patient(OPERATOR, identity)
    space.accounts.invite(OPERATOR, patient.id)
    code = space.accounts.issue_code(OPERATOR, patient.id, send=False)
    space.accounts.activate(nir=nir.value, code=code, vitale_serial="1000000011", birth_date=BORN)
    me = Actor.patient(patient.id)
    for n in range(DOCUMENTS):
        space.record.add_document(
            me,
            patient.id,
            f"Note {n}\n".encode(),
            media_type="text/plain",
            type_code=Code("DOCPAT01", TRE_A05_TYPE),
            title=f"Note {n}",
        )
    login = {"nir": nir.value, "vitale_serial": "1000000011", "birth_date": BORN.isoformat()}
    return space, patient.id, login


def bench_export(space: monespace.Space, patient_id: str, seconds: float, repeat: int) -> Figure:
    # Exported by the treating doctor: the access history is the holder's to read, so the
    # export holds the same resources each time (the holder's own export would grow with
    # the audit lines each export adds).
    doctor = "10003456786"
    space.access.register_professional(
        OPERATOR, Professional(doctor, "10", "Dr Claire Martin", specialty="SM26")
    )
    space.access.declare_treating_doctor(Actor.patient(patient_id), patient_id, doctor)
    me = Actor(ActorKind.PROFESSIONAL, doctor)
    exported = export_bundle(space, me, patient_id)
    resources = [entry["resource"] for entry in exported["entry"]]
    fhir = importlib.import_module(FHIR_MODELS)
    classes = [fhir.get_fhir_model_class(r["resourceType"]) for r in resources]

    def ours(n: int) -> None:
        for _ in range(n):
            export_bundle(space, me, patient_id)

    def raw(n: int) -> None:
        for _ in range(n):
            for model, resource in zip(classes, resources, strict=True):
                model.model_validate(resource)

    value, baseline = compare(
        ours,
        raw,
        seconds=seconds,
        repeat=repeat,
        per_unit=len(resources),
        baseline_per_unit=len(resources),
    )
    return Figure(
        f"FHIR export ({DOCUMENTS:,} documents)",
        "resources/s",
        value,
        baseline,
        "fhir.resources objects built from the export's plain dicts",
        note=f"{len(resources)} resources per export by the treating doctor (documents, Binaries)",
    )


def bench_api_search(
    space: monespace.Space, patient_id: str, login: dict[str, str], seconds: float, repeat: int
) -> Figure:
    me = Actor.patient(patient_id)
    loop = asyncio.new_event_loop()
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(space)), base_url="https://testserver"
    )
    pages = DOCUMENTS // PAGE
    try:
        login_response = loop.run_until_complete(http.post("/api/v1/session/patient", json=login))
        token = login_response.json()["token"]
        headers = {"authorization": f"Bearer {token}", "accept": "application/fhir+json"}

        async def page_of(offset: int) -> None:
            response = await http.get(
                f"/fhir/r4/DocumentReference?_count={PAGE}&_offset={offset}", headers=headers
            )
            assert response.status_code == 200
            assert len(response.json()["entry"]) == PAGE

        def ours(n: int) -> None:
            for i in range(n):
                loop.run_until_complete(page_of((i % pages) * PAGE))

        def direct(n: int) -> None:
            for i in range(n):
                offset = (i % pages) * PAGE
                page = space.record.search(me, patient_id, offset=offset, limit=PAGE)
                [document_resource(d, binary_id=fhir_id(d.id)) for d in page.documents]

        value, baseline = compare(
            ours, direct, seconds=seconds, repeat=repeat, per_unit=PAGE, baseline_per_unit=PAGE
        )
    finally:
        loop.run_until_complete(http.aclose())
        loop.close()
    return Figure(
        f"FHIR API search (pages of {PAGE})",
        "resources/s",
        value,
        baseline,
        "space.record.search + document_resource, no HTTP",
    )


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    seconds, repeat = (0.3, 3) if args.quick else (1.0, 5)
    work = Path(tempfile.mkdtemp(prefix="monespace-bench-", dir=args.dir))
    machine = describe_machine(
        work.parent, packages=("monespace", "fhir.resources", "starlette", "httpx")
    )
    report = Report(
        script="benchmarks/bench_fhir.py",
        mode="quick" if args.quick else "full",
        machine=machine,
        parameters={
            "seconds_per_repeat": seconds,
            "repeats": repeat,
            "documents": DOCUMENTS,
            "page": PAGE,
        },
    )
    print(f"monespace FHIR benchmark ({report.mode} run, {report.started})\n")
    print_machine(machine)
    print(file=sys.stderr)
    started = time.perf_counter()
    try:
        space, patient_id, login = _open(work)
        with space:
            report.figures = [
                bench_export(space, patient_id, seconds, repeat),
                bench_api_search(space, patient_id, login, seconds, repeat),
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    show(report.figures, title="monespace against raw baselines", markdown=args.markdown)
    print(f"\nmeasured in {time.perf_counter() - started:.0f} s")
    report.save(args.json)


if __name__ == "__main__":
    main()
