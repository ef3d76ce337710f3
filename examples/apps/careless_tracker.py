"""A careless weight tracker: what the conformance kit is there to catch.

Every shortcut here is a mistake an app makes in real life, and each fails a named
criterion of ``monespace conformance run``:

* it asks for more scopes than it declared, and falls back only when refused
  (``declared-scopes``);
* it sends its access token in the query string first (``no-tokens-in-urls``);
* it retries a 429 or a 503 at once, whatever ``Retry-After`` says (``retry-after``);
* it sends an expired access token again before refreshing (``refresh-on-expiry``);
* it reads the first page of a listing and believes it has everything
  (``paginates-to-the-end``);
* it keeps calling after the patient revoked the consent (``stops-after-revocation``).

It uses plain httpx, as an app in any language would use its HTTP library. Do not copy it:
see ``weight_tracker.py``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

EXTRA_SCOPES = "agenda.read documents.write"


def authorize(http: httpx.Client, env: os._Environ[str], scopes: str) -> tuple[str, str]:
    """Ask for a code (PKCE S256: the server requires it); return the code and verifier."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": env["MONESPACE_CLIENT_ID"],
        "redirect_uri": env["MONESPACE_REDIRECT_URI"],
        "scope": scopes,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    answer = http.get(env["MONESPACE_SANDBOX_AUTHORIZE_URL"] + "?" + urlencode(query))
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    return back.get("code", [""])[0], verifier


def main() -> int:
    """Connect sloppily, then call without care."""
    env = os.environ
    base = env["MONESPACE_BASE_URL"]
    with httpx.Client(base_url=base, follow_redirects=False) as http:
        code, verifier = authorize(http, env, env["MONESPACE_SCOPES"] + " " + EXTRA_SCOPES)
        if not code:  # refused: try again with what was declared
            code, verifier = authorize(http, env, env["MONESPACE_SCOPES"])
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": env["MONESPACE_REDIRECT_URI"],
            "client_id": env["MONESPACE_CLIENT_ID"],
            "code_verifier": verifier,
        }
        tokens = http.post("/oauth/token", data=form).json()
        patient = tokens["patient"]
        documents = f"/api/v1/patients/{patient}/documents"
        measures = f"/api/v1/patients/{patient}/measures"
        # The token in the URL, "because it is simpler".
        http.get(documents, params={"access_token": tokens["access_token"]})
        refused = 0
        for _ in range(10):
            for path, params in ((documents, {}), (measures, {"kind": "weight"})):
                for _attempt in range(3):
                    headers = {"authorization": f"Bearer {tokens['access_token']}"}
                    answer = http.get(path, params=params, headers=headers)
                    if answer.status_code in {429, 503}:
                        continue  # at once, Retry-After or not
                    if answer.status_code == 401 and _attempt < 1:
                        continue  # surely a glitch: the same token again
                    if answer.status_code == 401:
                        form = {
                            "grant_type": "refresh_token",
                            "refresh_token": tokens["refresh_token"],
                            "client_id": env["MONESPACE_CLIENT_ID"],
                        }
                        tokens = http.post("/oauth/token", data=form).json()
                        continue
                    break
                if answer.status_code == 403:
                    refused += 1  # noted, and carrying on
                elif answer.status_code == 200 and path == documents:
                    print(f"read {len(answer.json()['documents'])} documents")  # the first page
            if refused >= 4:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
