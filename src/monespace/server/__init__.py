"""The demo HTTP server: a JSON API under ``/api/v1``, its OpenAPI 3.1 document at
``/openapi.json``, a FHIR R4 API under ``/fhir/r4`` (with the ``fhir`` extra), a minimal
server-rendered patient page, and the OAuth 2 authorization server of referenced apps
(``/.well-known/oauth-authorization-server``, ``/oauth/...``).

Needs the ``server`` extra (``pip install 'monespace[server]'``)::

    import monespace
    from monespace.server import create_app, serve

    space = monespace.open("sqlite:///demo.db")
    app = create_app(space)          # any ASGI server; or:
    serve(space, host="127.0.0.1", port=8000)

It is a demonstration, **not an HDS deployment**: its logins are the demo's (carte Vitale
details for patients, a bare RPPS number for professionals), its sessions live in the
process's memory, and it is meant for synthetic data on a developer's machine.

.. versionadded:: 0.1
"""

from ._app import create_app, operations_of
from ._apps import APP_OPERATION_SCOPES
from ._oauth import metadata as oauth_metadata
from ._problems import PROBLEM_MEDIA_TYPE, Problem
from ._routing import RateLimits
from ._run import is_loopback, listen, serve
from ._sessions import RateLimiter, Session, SessionKind, SessionStore

__all__ = [
    "APP_OPERATION_SCOPES",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "RateLimiter",
    "RateLimits",
    "Session",
    "SessionKind",
    "SessionStore",
    "create_app",
    "is_loopback",
    "listen",
    "oauth_metadata",
    "operations_of",
    "serve",
]
