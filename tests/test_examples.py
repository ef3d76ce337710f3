"""The runnable examples of ``examples/`` work as their docstrings say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest

from .helpers import open_space

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_embed_in_a_service():
    """The embedding service enrols people, records and reads their weight, refuses another
    person's space, and publishes an aggregate with its small cells suppressed."""
    pytest.importorskip("starlette")
    example = _load("embed_in_a_service")
    with open_space() as space:
        app = example.create_app(space)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            ids = (await http.post("/people", json={"count": 4, "seed": 1})).json()["ids"]
            for person in ids:
                added = await http.post(
                    f"/people/{person}/weights", headers={"X-Patient": person}, json={"kg": 70}
                )
                assert added.status_code == 201
            mine = await http.get(f"/people/{ids[0]}/weights", headers={"X-Patient": ids[0]})
            assert [m["kg"] for m in mine.json()] == [70]
            other = await http.get(f"/people/{ids[0]}/weights", headers={"X-Patient": ids[1]})
            assert other.status_code == 403
            summary = (await http.get("/study/weights")).json()
    assert summary["k"] == 3
    assert all(c["people"] is None or c["people"] >= 3 for c in summary["cells"])
    assert sum(c["people"] or 0 for c in summary["cells"]) <= 4


def test_a_fhir_client_reads_and_writes_through_the_demo_server():
    """fhirpy, over a real loopback socket: the statement, every document page by page with
    its content, a weight written and found again, someone else's record refused."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("fhirpy")
    seen = _load("fhir_client").run(count=30, seed=7)
    assert seen["fhirVersion"] == "4.0.1"
    assert "DocumentReference" in seen["served"]
    assert seen["documents"] >= 1
    assert all(size > 0 for _, size in seen["contents"])
    assert seen["weights"] == [68.4]
    assert seen["other"] == "ForbiddenError"
