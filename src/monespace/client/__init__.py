"""A typed client of a monespace server's JSON API and OAuth 2 endpoints, over httpx.

:class:`Client` blocks, :class:`AsyncClient` awaits; both drive the same sans-I/O core
(request building, decoding, error mapping, retry and refresh decisions), so they behave
the same. The client needs only the base install (httpx is a dependency of monespace)::

    from monespace.client import Client

    with Client("http://127.0.0.1:8000") as api:
        api.login_patient(nir, vitale_serial, birth_date)
        for document in api.documents(patient_id):
            print(document.title)

Errors are those of :mod:`monespace.errors`: a 404 is a
:class:`~monespace.errors.RemoteNotFoundError` (a :class:`~monespace.errors.NotFoundError`),
a revoked consent a :class:`~monespace.errors.ConsentNotGivenError`, and so on.

.. versionadded:: 0.1
"""

from ._async import AsyncClient
from ._core import IDEMPOTENT_METHODS, Call, RetryBudget, RetryPolicy, path
from ._models import (
    Author,
    CatalogueEntry,
    Code,
    Consent,
    Document,
    DocumentPage,
    Event,
    HistoryEntry,
    InboxPage,
    Measure,
    Professional,
    ServerMetadata,
    Session,
    SessionInfo,
    Thread,
    ThreadCorrespondent,
)
from ._oauth import (
    PKCE,
    AuthorizationRequest,
    TokenHolder,
    TokenSet,
    authorization_url,
    code_challenge,
    new_state,
    parse_redirect,
)
from ._sync import Client

__all__ = [
    "IDEMPOTENT_METHODS",
    "PKCE",
    "AsyncClient",
    "Author",
    "AuthorizationRequest",
    "Call",
    "CatalogueEntry",
    "Client",
    "Code",
    "Consent",
    "Document",
    "DocumentPage",
    "Event",
    "HistoryEntry",
    "InboxPage",
    "Measure",
    "Professional",
    "RetryBudget",
    "RetryPolicy",
    "ServerMetadata",
    "Session",
    "SessionInfo",
    "Thread",
    "ThreadCorrespondent",
    "TokenHolder",
    "TokenSet",
    "authorization_url",
    "code_challenge",
    "new_state",
    "parse_redirect",
    "path",
]
