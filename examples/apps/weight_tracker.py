"""A well-behaved weight tracker, written with ``monespace.client``.

It connects one patient (authorization code with PKCE S256, only the scopes it declared),
then synchronises: it reads the patient's documents page after page to the last one, reads
their weight series and adds today's weight, and starts again a moment later. The client
refreshes the access token before it expires (and once when the server says it expired
early), waits what ``Retry-After`` says on 429 and 503, and never puts a token in a URL.
When the patient revokes the consent (a 403 "consent not given"), the tracker stops calling
for that patient, revokes its tokens, and ends.

It reads its configuration from the environment the conformance kit sets::

    monespace conformance run -- python examples/apps/weight_tracker.py

(see examples/apps/README.md). Outside the sandbox, the patient's browser goes to the
authorization URL and comes back to the redirect URI; here the sandbox's stand-in for the
browser gives the redirect at once.
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import urlsplit

import httpx

from monespace.client import Client
from monespace.errors import ConsentNotGivenError, InvalidTokenError

#: What this app declared in its référencement dossier, and never more.
SCOPES = ("documents.read", "mesures.read", "mesures.write")
#: Synchronisation passes at most (a real tracker runs until the patient disconnects).
MAX_PASSES = 50


def connect(api: Client, *, client_id: str, redirect_uri: str, browser: str) -> str:
    """Authorize with PKCE; return the patient's id."""
    started = api.start_authorization(client_id=client_id, redirect_uri=redirect_uri, scopes=SCOPES)
    # The sandbox's browser: the same query as the authorization URL, approved at once.
    answer = httpx.get(f"{browser}?{urlsplit(started.url).query}", follow_redirects=False)
    tokens = api.finish_authorization(started, answer.headers["location"])
    return tokens.patient_id


def synchronise(api: Client, patient_id: str) -> None:
    """One pass: every document (to the last page), the weight series, today's weight."""
    documents = sum(1 for _ in api.documents(patient_id))
    weights = api.measures(patient_id, "weight")
    api.add_measure(patient_id, "weight", 70.2)
    print(f"synchronised: {documents} documents, {len(weights)} weights")


def main() -> int:
    """Connect, then synchronise until the patient disconnects the app."""
    env = os.environ
    with Client(env["MONESPACE_BASE_URL"]) as api:
        patient_id = connect(
            api,
            client_id=env["MONESPACE_CLIENT_ID"],
            redirect_uri=env["MONESPACE_REDIRECT_URI"],
            browser=env["MONESPACE_SANDBOX_AUTHORIZE_URL"],
        )
        for _ in range(MAX_PASSES):
            try:
                synchronise(api, patient_id)
            except ConsentNotGivenError:
                print("the patient disconnected the app: stopping")
                api.revoke()
                return 0
            except InvalidTokenError:
                print("the authorization ended: the patient must connect the app again")
                return 0
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
