"""A FHIR client reads and writes a record through the demo server's ``/fhir/r4``.

The script seeds a synthetic population in memory, serves it with uvicorn on a free
loopback port, logs in as the demo patient, and then speaks FHIR only, with fhirpy: the
CapabilityStatement, the patient's documents page by page to the end, their contents as
Binary resources, a weight posted as an Observation and found again by code and date, and
the refusal (an OperationOutcome) of a search of someone else's record.

Run it (needs the ``server`` and ``fhir`` extras, and ``fhirpy``)::

    python examples/fhir_client.py
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import uvicorn
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import BaseFHIRError

import monespace
from monespace.clock import ManualClock
from monespace.server import create_app
from monespace.synth import seed_demo

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@contextmanager
def serving(space: monespace.Space) -> Iterator[str]:
    """The demo server over *space* on 127.0.0.1 and a free port, in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(space), log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def run(count: int = 30, seed: int = 7) -> dict[str, object]:
    """Seed, serve, and go through the FHIR calls; return what was seen."""
    seen: dict[str, object] = {}
    with monespace.open("memory://", clock=ManualClock(NOW)) as space:
        summary = seed_demo(space, count, seed=seed)
        me = summary.login("patient")
        assert me is not None, "the demo population has a patient login"
        other = next(login for login in summary.logins if login.patient_id != me.patient_id)
        with serving(space) as url:
            login = {
                "nir": me.nir,
                "vitale_serial": me.vitale_serial,
                "birth_date": me.birth_date.isoformat(),
            }
            token = httpx.post(f"{url}/api/v1/session/patient", json=login).json()["token"]
            fhir = SyncFHIRClient(f"{url}/fhir/r4", authorization=f"Bearer {token}")

            statement = httpx.get(f"{url}/fhir/r4/metadata").json()
            seen["fhirVersion"] = statement["fhirVersion"]
            seen["served"] = [r["type"] for r in statement["rest"][0]["resource"]]

            documents = fhir.resources("DocumentReference").search(status="current").limit(5)
            everything = documents.fetch_all()  # follows the next links to the end
            seen["documents"] = len(everything)
            contents = []
            for reference in everything[:3]:
                url_of_content = reference["content"][0]["attachment"]["url"]
                binary = fhir.reference(*url_of_content.split("/")).to_resource()
                contents.append((binary["contentType"], len(base64.b64decode(binary["data"]))))
            seen["contents"] = contents

            weight = fhir.resource(
                "Observation",
                status="final",
                code={"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                effectiveDateTime="2026-03-01T08:00:00+01:00",
                valueQuantity={
                    "value": 68.4,
                    "system": "http://unitsofmeasure.org",
                    "code": "kg",
                    "unit": "kg",
                },
            )
            weight.save()
            found = fhir.resources("Observation").search(
                code="http://loinc.org|29463-7", date="2026-03-01"
            )
            seen["weights"] = [o["valueQuantity"]["value"] for o in found.fetch_all()]

            try:
                fhir.resources("DocumentReference").search(patient=other.patient_id).fetch()
                seen["other"] = "read"
            except BaseFHIRError as refusal:
                seen["other"] = type(refusal).__name__
    return seen


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
