"""``/openapi.json``: an OpenAPI 3.1 document built from the operation table.

The paths come from the same :class:`~._routing.Operation` objects the routes are built from,
and the schemas from the same attrs models the bodies are decoded with
(:func:`msgspec.json.schema_components`): the document cannot drift from the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from .._version import __version__
from ._problems import PROBLEM_MEDIA_TYPE, Problem
from ._routing import Auth, Operation, query_name

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{name}"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No content",
    400: "Malformed request (not JSON, or a proof of identity refused)",
    401: "Not logged in, or the session expired or was revoked",
    403: "A cross-site request, a missing CSRF token, or (for an app) consent not given",
    404: "No such resource, or not accessible to the caller (the two are not told apart)",
    409: "Not possible in the space's current state",
    413: "The body is too large",
    415: "The body is not JSON",
    422: "The body or the query does not satisfy the schema or a domain rule",
    429: "Too many attempts; see Retry-After",
}
_PATTERNS = {"rpps": "^[0-9]{11}$"}
_ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$"

#: What each scope lets an app do (the exchange APIs of the arrêté of 23 June 2022).
APP_SCOPE_TEXT = {
    "documents.read": "Read the documents of the record the patient can see",
    "documents.write": "Add documents to the record",
    "agenda.read": "Read the agenda",
    "agenda.write": "Add and change events of the agenda",
    "mesures.read": "Read health measures",
    "mesures.write": "Record health measures",
}

DESCRIPTION = (
    "The JSON API of the monespace demo server, a reference implementation of a national "
    "personal health space in the style of France's Mon espace santé.\n\n"
    "**A demo, not an HDS deployment**: synthetic data only. The patient login with the "
    "carte Vitale details and the professional login with a bare RPPS number (simulated Pro "
    "Santé Connect, no password) exist only in demo mode.\n\n"
    "Errors are `application/problem+json` documents (RFC 9457). Sessions: send the token "
    "as `Authorization: Bearer`, or use the HttpOnly cookie with the session's CSRF token "
    "in `X-CSRF-Token` for changes. Referenced apps send an OAuth 2 access token as "
    "`Authorization: Bearer` on the operations that list an `oauth2` scope."
)


def openapi_document(operations: Sequence[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of *operations*."""
    types: list[Any] = [Problem]
    for op in operations:
        types.extend(t for t in (op.body, op.query, op.response) if t is not None)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = {_key(t): s for t, s in zip(types, schemas, strict=True)}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schema_of, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "monespace demo server",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "monespace_session"},
                "oauth2": {
                    "type": "oauth2",
                    "description": "Referenced apps: authorization code with PKCE (S256), "
                    "public clients. Metadata at /.well-known/oauth-authorization-server.",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": "/oauth/authorize",
                            "tokenUrl": "/oauth/token",
                            "refreshUrl": "/oauth/token",
                            "scopes": APP_SCOPE_TEXT,
                        }
                    },
                },
            },
        },
    }


def _key(value: Any) -> str:
    return repr(value)


def _operation(
    op: Operation, schema_of: dict[str, Any], components: dict[str, Any]
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        doc["description"] = op.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": _PATTERNS.get(name, _ID_PATTERN)},
        }
        for name in op.path_params
    ]
    if op.query is not None:
        query = components[op.query.__name__]
        required = set(query.get("required", ()))
        for name, schema in query["properties"].items():
            parameters.append(
                {
                    "name": query_name(name),
                    "in": "query",
                    "required": name in required,
                    "schema": schema,
                }
            )
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_of[_key(op.body)]}},
        }
    responses: dict[str, Any] = {}
    success: dict[str, Any] = {"description": _STATUS_TEXT[op.status]}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": schema_of[_key(op.response)]}}
    elif op.response_media_type is not None:
        success["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    responses[str(op.status)] = success
    problem = {PROBLEM_MEDIA_TYPE: {"schema": schema_of[_key(Problem)]}}
    for status in sorted(set(op.errors) | _implied(op)):
        responses[str(status)] = {"description": _STATUS_TEXT[status], "content": problem}
    doc["responses"] = responses
    if op.auth is not Auth.NONE:
        doc["security"] = [{"bearer": []}, {"cookie": []}]
        if op.app_scope is not None:
            doc["security"].append({"oauth2": [op.app_scope]})
    return doc


def _implied(op: Operation) -> set[int]:
    """The problems every operation of its kind may answer, whatever its handler does:
    a body that is not JSON at all is refused with 400 before any handler runs."""
    implied = {400} if op.body is not None else set()
    if op.app_scope is not None:
        implied |= {401, 403}  # an invalid token; consent not given
    return implied
