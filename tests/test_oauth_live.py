"""The whole OAuth 2 flow over a real loopback socket (uvicorn in a thread), driven by a
client nobody here wrote: authlib's httpx ``OAuth2Client`` with PKCE S256. The browser part
(login, consent page) is a plain httpx client posting the demo's forms."""

from __future__ import annotations

import re
import warnings
from urllib.parse import urlsplit

import httpx
import pytest

from monespace import Actor
from monespace.catalogue import Scope

from .test_oauth_server import reference
from .test_server_live import running
from .test_server_world import build_world, create_app

with warnings.catch_warnings():
    # authlib 1.9 announces, on import, a move of its httpx integration to "httpx2".
    warnings.simplefilter("ignore", DeprecationWarning)
    oauth2 = pytest.importorskip("authlib.integrations.httpx_client")
from authlib.common.security import generate_token

REDIRECT = "http://127.0.0.1/cb"
SCOPES = "mesures.read mesures.write"


@pytest.fixture
def live(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'oauth.db'}")
    reference(world.space, "suivi-poids")
    app = create_app(world.space)  # automatic cookies: not Secure on loopback
    with running(app) as base_url:
        yield world, base_url
    world.space.close()


def _consent(base_url: str, world, authorization_url: str) -> str:
    """What a browser does: log in, see the consent page, approve; the redirect's URL."""
    split = urlsplit(authorization_url)
    target = f"{split.path}?{split.query}"
    with httpx.Client(base_url=base_url) as browser:
        login = browser.post("/login", data={**world.alice.login(), "next": target})
        assert login.status_code == 303
        assert login.headers["location"] == target
        page = browser.get(login.headers["location"])
        assert page.status_code == 200
        assert "Suivi Poids" in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        fields = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
        answer = browser.post("/oauth/authorize", data={**fields, "decision": "approve"})
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]


def test_authlib_runs_the_code_flow_with_pkce_refresh_revocation_and_introspection(live):
    world, base_url = live
    pid = world.alice.id
    meta = httpx.get(base_url + "/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == base_url
    client = oauth2.OAuth2Client(
        client_id="suivi-poids",
        scope=SCOPES,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    with client:
        verifier = generate_token(64)
        url, state = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier
        )
        assert "code_challenge=" in url
        assert "code_challenge_method=S256" in url
        callback = _consent(base_url, world, url)
        assert callback.startswith(REDIRECT + "?")
        token = client.fetch_token(
            meta["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        assert token["patient"] == pid
        assert token["scope"] == SCOPES
        measures = f"{base_url}/api/v1/patients/{pid}/measures"
        added = client.post(measures, json={"kind": "weight", "value": 68.2})
        assert added.status_code == 201, added.text
        read = client.get(measures, params={"kind": "weight"})
        assert 68.2 in [m["value"] for m in read.json()]
        # Not within the scopes granted: refused, with the RFC 6750 challenge.
        documents = client.get(f"{base_url}/api/v1/patients/{pid}/documents")
        assert documents.status_code == 403
        assert 'error="insufficient_scope"' in documents.headers["www-authenticate"]

        introspection = meta["introspection_endpoint"]
        first_refresh = token["refresh_token"]
        renewed = client.refresh_token(meta["token_endpoint"])
        assert renewed["refresh_token"] != first_refresh
        assert client.get(measures, params={"kind": "weight"}).status_code == 200

        seen = client.introspect_token(introspection, token=renewed["access_token"])
        assert seen.json()["active"] is True
        assert seen.json()["scope"] == SCOPES

        # The patient disconnects the app: its next call is refused, its token inactive.
        world.space.consents.revoke(Actor.patient(pid), pid, "suivi-poids")
        gone = client.get(measures, params={"kind": "weight"})
        assert gone.status_code == 403
        assert gone.json()["title"] == "Consent not given"
        seen = client.introspect_token(introspection, token=renewed["access_token"])
        assert seen.json() == {"active": False}

        revoked = client.revoke_token(meta["revocation_endpoint"], token=renewed["refresh_token"])
        assert revoked.status_code == 200
        again = httpx.post(
            meta["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": renewed["refresh_token"],
                "client_id": "suivi-poids",
            },
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
    assert set(world.space.catalogue.app("suivi-poids").scopes) == set(Scope)
