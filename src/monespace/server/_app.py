"""The application factory and the ASGI middleware every response passes through."""

from __future__ import annotations

import traceback
from datetime import timedelta
from typing import Any, Final

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._space import Space
from ._api import api_operations
from ._apps_pages import app_page_routes
from ._fhir import fhir_routes
from ._models import Health
from ._oauth import oauth_routes
from ._openapi import openapi_document
from ._page import page_routes
from ._pro_pages import pro_page_routes
from ._problems import SECURITY_HEADERS, ProblemError, not_found, problem_response
from ._routing import LOG, Auth, Call, Operation, RateLimits, Reply, ServerState, endpoint
from ._sessions import RateLimiter, SessionStore

__all__ = ["create_app"]


_SECURITY_HEADERS: Final = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_SECURITY_NAMES: Final = frozenset(k for k, _ in _SECURITY_HEADERS)


class _Edge:
    """Outermost middleware: security headers on every response, and no exception ever
    reaches the client as a stack trace (an unexpected error is a bare 500 problem; the log
    gets the exception's type and traceback, never its message, which may hold data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.get("headers", [])
                present = {k.lower() for k, _ in headers}
                if not present >= _SECURITY_NAMES:
                    extra = [(k, v) for k, v in _SECURITY_HEADERS if k not in present]
                    message["headers"] = [*headers, *extra]
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            LOG.error("unexpected %s\n%s", type(exc).__name__, frames)
            if started:
                raise
            error = ProblemError(
                500, "internal", "Internal error", "The request could not be completed."
            )
            await problem_response(error)(scope, receive, send)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return problem_response(not_found())
    if exc.status_code == 405:
        # Each route serves one method: the path's methods are those of every route whose
        # path matches (Starlette's own Allow names only the first one's).
        methods: set[str] = set()
        for route in request.app.routes:
            match, _ = route.matches({**request.scope, "method": "OPTIONS"})
            if match is not Match.NONE and isinstance(route, Route) and route.methods:
                methods |= route.methods
        allow = ", ".join(sorted(methods)) or (exc.headers or {}).get("Allow", "")
        headers = {"allow": allow}
        return problem_response(
            ProblemError(405, "method-not-allowed", "Method not allowed", headers=headers)
        )
    return problem_response(ProblemError(exc.status_code, "http-error", "Request refused"))


def create_app(
    space: Space,
    *,
    secure_cookies: bool | None = None,
    demo: bool = True,
    session_idle: timedelta = timedelta(minutes=30),
    session_absolute: timedelta = timedelta(hours=12),
    rate_limits: RateLimits | None = None,
    max_body_bytes: int | None = None,
) -> Starlette:
    """The demo server's ASGI application over *space*.

    :param secure_cookies: give the session cookie the ``Secure`` attribute; by default it
        does, except for plain HTTP on a loopback address.
    :param demo: offer the demo logins: the carte Vitale login of patients and the simulated
        Pro Santé Connect of professionals (an RPPS number, no password). Without it neither
        route exists, and there is no setting that brings the simulated professional login
        back: a deployment plugs in a real identity provider instead.
    :param session_idle: a session unused this long ends (30 minutes).
    :param session_absolute: a session ends this long after login (12 hours).
    :param rate_limits: attempts allowed on activation, opposition and logins, per IP and
        per person (:class:`RateLimits`).
    :param max_body_bytes: the largest request body; by default enough for the largest
        document the space accepts, base64-encoded in JSON.
    :return: a Starlette application; its state is ``app.state.monespace``.
    """
    limits = rate_limits or RateLimits()
    window = timedelta(seconds=limits.window_seconds)
    state = ServerState(
        space=space,
        sessions=SessionStore(space, idle=session_idle, absolute=session_absolute),
        limits={
            bucket: RateLimiter(
                space,
                bucket,
                limit=limits.per_ip if bucket.endswith("-ip") else limits.per_person,
                window=window,
            )
            for bucket in (
                "login-ip",
                "login-person",
                "activation-ip",
                "activation-person",
                "lookup-person",
                "oauth-ip",
            )
        },
        secure_cookies=secure_cookies,
        max_body_bytes=max_body_bytes or (space.settings.max_content_bytes * 4 // 3 + 65_536),
        demo=demo,
    )
    operations = operations_of(demo=demo)
    routes: list[BaseRoute] = [
        Route(op.path, endpoint(op, state), methods=[op.method], name=op.operation_id)
        for op in operations
    ]
    routes.extend(pro_page_routes(state))
    routes.extend(page_routes(state))
    routes.extend(fhir_routes(state))
    routes.extend(app_page_routes(state))
    routes.extend(oauth_routes(state))
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_exception},
    )
    app.add_middleware(_Edge)
    app.state.monespace = state
    app.state.operations = operations
    return app


def operations_of(*, demo: bool = True) -> list[Operation]:
    """Every operation of the API, ``/health`` and ``/openapi.json`` included."""
    operations = api_operations(demo=demo)
    document: dict[str, Any] = {}
    encoded: list[bytes] = []

    async def health(_call: Call) -> Reply:
        return Reply(Health())

    async def openapi(_call: Call) -> Reply:
        if not encoded:
            encoded.append(msgspec.json.encode(document))
        return Reply(Response(encoded[0], media_type="application/json"))

    everything = [
        Operation(
            "GET",
            "/health",
            health,
            "health",
            "Liveness check",
            "meta",
            auth=Auth.NONE,
            response=Health,
        ),
        Operation(
            "GET",
            "/openapi.json",
            openapi,
            "openapi",
            "This OpenAPI document",
            "meta",
            auth=Auth.NONE,
            response=dict[str, Any],
        ),
        *operations,
    ]
    document.update(openapi_document(everything))
    return everything
