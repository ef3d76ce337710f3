"""``monespace demo`` references a sample app and prints its client id: a vendor can take
it through the OAuth flow against the demo at once, with the printed redirect URI."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import monespace
from monespace import Actor
from monespace.catalogue import ApplicationStatus
from monespace.cli import main
from monespace.synth import DEMO_APP_CLIENT_ID, DEMO_APP_REDIRECT_URIS, reference_demo_app
from monespace.synth._apps import _VENDOR, _dossier

from .test_server_world import build_world

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from monespace.client import AsyncClient  # noqa: E402
from monespace.server import create_app  # noqa: E402

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def demo(tmp_path, monkeypatch):
    """A demo seeded by the command; its output."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--patients", "8", "--seed", "3", "--no-serve"])
    assert result.exit_code == 0, result.output
    return result.output


def _hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


async def test_the_printed_client_id_goes_through_the_oauth_flow(demo, tmp_path):
    client_id = re.search(r"client id: +(\S+)", demo)[1]
    redirect = re.search(r"redirect URIs: +([^,\s]+)", demo)[1]
    assert client_id == DEMO_APP_CLIENT_ID
    assert redirect == DEMO_APP_REDIRECT_URIS[0]
    assert f"server metadata: {BASE}/.well-known/oauth-authorization-server" in demo
    nir, serial, born = re.search(
        r"a patient:  NIR (\d+)  carte Vitale (\d+)  born (\S+)", demo
    ).groups()
    with monespace.open(f"sqlite:///{tmp_path / 'monespace-demo.db'}") as space:
        app = create_app(space, secure_cookies=False)
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient(BASE, transport=transport) as vendor:
            (listed,) = await vendor.catalogue(text="carnet")
            assert listed.client_id == client_id
            started = await vendor.start_authorization(
                client_id=client_id, redirect_uri=redirect, scopes=["mesures.read"]
            )
            # the patient's browser: log in, answer the consent page
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
                login = {"nir": nir, "vitale_serial": serial, "birth_date": born}
                assert (
                    await browser.post("/api/v1/session/patient", json=login)
                ).status_code == 201
                page = await browser.get(started.url)
                assert "Carnet de poids" in page.text
                fields = _hidden_fields(page.text)
                answer = await browser.post(
                    "/oauth/authorize", data={**fields, "decision": "approve"}
                )
                assert answer.status_code == 303, answer.text
                location = answer.headers["location"]
            assert location.startswith(redirect + "?")
            tokens = await vendor.finish_authorization(started, location)
            assert await vendor.measures(tokens.patient_id, "weight") is not None
        # the demo patient had connected the app when the demo was seeded
        consents = space.consents.of(Actor.patient(tokens.patient_id), tokens.patient_id)
        assert [c.client_id for c in consents] == [client_id]


def test_the_demo_app_is_referenced_once_and_resumes_a_workflow_left_midway(demo):
    again = CliRunner().invoke(main, ["demo", "--no-serve"])
    assert again.exit_code == 0, again.output
    assert f"client id:       {DEMO_APP_CLIENT_ID}" in again.output
    # in a space where the workflow stopped after the application
    world = build_world()
    try:
        space = world.space
        # the first step only, as an interrupted run leaves it
        space.catalogue.apply(_VENDOR, _dossier(space), client_id=DEMO_APP_CLIENT_ID)
        app = reference_demo_app(space, patient_id=world.alice.id)
        assert app.status is ApplicationStatus.REFERENCED
        assert reference_demo_app(space) == app
        assert len(space.catalogue.applications()) == 1
        (consent,) = space.consents.of(Actor.patient(world.alice.id), world.alice.id)
        assert {str(s) for s in consent.scopes} == {"mesures.read", "mesures.write"}
    finally:
        world.space.close()
