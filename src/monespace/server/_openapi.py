"""``/openapi.json``: an OpenAPI 3.1 document built from the operation table.

The paths come from the same :class:`~._routing.Operation` objects the routes are built from,
and the schemas from the same attrs models the bodies are decoded with
(:func:`msgspec.json.schema_components`): the document cannot drift from the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from .._version import __version__
from ._problems import PROBLEM_MEDIA_TYPE, Problem
from ._routing import Auth, Operation, query_name

__all__ = ["OAUTH_SCHEMAS", "oauth_paths", "openapi_document"]

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
        "paths": paths | oauth_paths(),
        "components": {
            "schemas": components | OAUTH_SCHEMAS,
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


# --- the authorization server (RFC 6749, 7009, 7636, 7662, 8414) ------------------------------

_FORM = "application/x-www-form-urlencoded"
_SCOPE_PATTERN = "^[a-z]+\\.(read|write)( [a-z]+\\.(read|write))*$"
_OAUTH_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _OAUTH_REF.format(name=name)}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


#: The schemas of the OAuth endpoints' form bodies and JSON answers. The endpoints parse
#: forms by hand (RFC 6749 asks for ``application/x-www-form-urlencoded``), so these are
#: written here rather than derived from the models of the JSON API.
OAUTH_SCHEMAS: Final[dict[str, Any]] = {
    "OAuthError": {
        "type": "object",
        "description": "An error of the token, revocation or introspection endpoint "
        "(RFC 6749 §5.2).",
        "required": ["error"],
        "properties": {
            "error": _string(
                "invalid_request, invalid_client, invalid_grant, unauthorized_client, "
                "unsupported_grant_type, invalid_scope, unsupported_token_type or slow_down"
            ),
            "error_description": _string("What was wrong, for the developer."),
        },
    },
    "TokenRequest": {
        "type": "object",
        "description": "A code exchanged for tokens (with the PKCE verifier), or a refresh "
        "token for new ones (rotation: the old refresh token stops working).",
        "required": ["grant_type", "client_id"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token"]},
            "client_id": _string("The app's client id (public clients send no secret)."),
            "code": _string("authorization_code: the code sent to the redirect URI."),
            "redirect_uri": _string("authorization_code: the redirect URI of the request."),
            "code_verifier": _string(
                "authorization_code: the PKCE verifier (RFC 7636)",
                minLength=43,
                maxLength=128,
            ),
            "refresh_token": _string("refresh_token: the refresh token."),
            "scope": _string(
                "refresh_token: fewer scopes than granted (optional).", pattern=_SCOPE_PATTERN
            ),
        },
    },
    "TokenResponse": {
        "type": "object",
        "required": [
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "scope",
            "patient",
        ],
        "properties": {
            "access_token": _string("Sent as Authorization: Bearer on the exchange API."),
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer", "description": "Seconds until it expires."},
            "refresh_token": _string("Single use: each refresh returns a new one."),
            "scope": _string("The scopes granted, space-separated."),
            "patient": _string("The id of the patient whose space the token reaches."),
        },
    },
    "TokenOperation": {
        "type": "object",
        "description": "A token to revoke (RFC 7009) or introspect (RFC 7662), by the app "
        "it was issued to.",
        "required": ["client_id", "token"],
        "properties": {
            "client_id": _string("The app's client id."),
            "token": _string("An access or refresh token."),
            "token_type_hint": _string(
                "access_token or refresh_token; revocation refuses any other with "
                "unsupported_token_type (RFC 7009 §2.2.1), introspection ignores it "
                "(RFC 7662 §2.1)."
            ),
        },
    },
    "Introspection": {
        "type": "object",
        "description": "Whether a token is active, and what it allows (RFC 7662 §2.2); "
        'an unknown, expired, revoked or other app\'s token is only {"active": false}.',
        "required": ["active"],
        "properties": {
            "active": {"type": "boolean"},
            "client_id": {"type": "string"},
            "scope": {"type": "string"},
            "token_type": {"type": "string"},
            "sub": {"type": "string"},
            "patient": {"type": "string"},
            "iat": {"type": "integer"},
            "exp": {"type": "integer"},
        },
    },
    "ServerMetadata": {
        "type": "object",
        "description": "The authorization server's metadata (RFC 8414 §2).",
        "required": [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "response_types_supported",
            "code_challenge_methods_supported",
        ],
        "properties": {
            name: {"type": "string"}
            for name in (
                "issuer",
                "authorization_endpoint",
                "token_endpoint",
                "revocation_endpoint",
                "introspection_endpoint",
                "service_documentation",
            )
        }
        | {
            name: {"type": "array", "items": {"type": "string"}}
            for name in (
                "response_types_supported",
                "grant_types_supported",
                "code_challenge_methods_supported",
                "token_endpoint_auth_methods_supported",
                "revocation_endpoint_auth_methods_supported",
                "introspection_endpoint_auth_methods_supported",
                "scopes_supported",
            )
        },
    },
}

_AUTHORIZE_PARAMETERS: Final = (
    ("response_type", {"type": "string", "enum": ["code"]}),
    ("client_id", {"type": "string"}),
    ("redirect_uri", {"type": "string", "description": "Registered, exact match."}),
    ("scope", {"type": "string", "pattern": _SCOPE_PATTERN}),
    ("state", {"type": "string", "maxLength": 512}),
    ("code_challenge", {"type": "string", "description": "BASE64URL(SHA-256(verifier))"}),
    ("code_challenge_method", {"type": "string", "enum": ["S256"]}),
)
_HTML = {"text/html": {"schema": {"type": "string"}}}


def _oauth_post(
    operation_id: str, summary: str, body: str, ok: dict[str, Any], description: str
) -> dict[str, Any]:
    error = {"application/json": {"schema": _ref("OAuthError")}}
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["oauth"],
            "requestBody": {"required": True, "content": {_FORM: {"schema": _ref(body)}}},
            "responses": {
                "200": ok,
                "400": {
                    "description": "A request the server refuses (RFC 6749 §5.2)",
                    "content": error,
                },
                "401": {
                    "description": "invalid_client: an unknown or unfit client",
                    "content": error,
                },
                "429": {
                    "description": "slow_down: too many refusals from this address (Retry-After)",
                    "content": error,
                },
            },
        }
    }


def oauth_paths() -> dict[str, Any]:
    """The paths of the authorization server, as OpenAPI path items."""
    return {
        "/.well-known/oauth-authorization-server": {
            "get": {
                "operationId": "oauthMetadata",
                "summary": "The authorization server's metadata (RFC 8414)",
                "tags": ["oauth"],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": _ref("ServerMetadata")}},
                    }
                },
            }
        },
        "/oauth/authorize": {
            "get": {
                "operationId": "oauthAuthorize",
                "summary": "The consent page of an authorization request (code flow, PKCE S256)",
                "description": "Opened in the patient's browser. Without a session, the login "
                "page (401) first; a client or redirect URI that cannot be trusted gets an error "
                "page (400), never a redirect; other errors go back to the redirect URI (303) "
                "with `error` and `state` (RFC 6749 §4.1.2.1).",
                "tags": ["oauth"],
                "parameters": [
                    {
                        "name": name,
                        "in": "query",
                        "required": name not in ("scope", "state"),
                        "schema": schema,
                    }
                    for name, schema in _AUTHORIZE_PARAMETERS
                ],
                "responses": {
                    "200": {"description": "The consent page", "content": _HTML},
                    "303": {"description": "Back to the app's redirect URI with an error"},
                    "400": {
                        "description": "An untrusted client or redirect URI: an error page",
                        "content": _HTML,
                    },
                    "401": {"description": "Not logged in: the login page", "content": _HTML},
                },
            },
            "post": {
                "operationId": "oauthConsent",
                "summary": "The patient's answer on the consent page",
                "description": "The consent page's form, with the session cookie and its "
                "CSRF token; approved, a code goes to the redirect URI (303), refused, "
                "`error=access_denied` does.",
                "tags": ["oauth"],
                "requestBody": {
                    "required": True,
                    "content": {
                        _FORM: {
                            "schema": {
                                "type": "object",
                                "required": ["client_id", "redirect_uri", "csrf_token", "decision"],
                                "properties": dict(_AUTHORIZE_PARAMETERS)
                                | {
                                    "csrf_token": {"type": "string"},
                                    "decision": {"type": "string", "enum": ["approve", "deny"]},
                                    "patient": _string("A space the person represents (optional)."),
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "303": {
                        "description": "Back to the app's redirect URI, with a code or an error"
                    },
                    "400": {
                        "description": "A request that cannot be checked: an error page",
                        "content": _HTML,
                    },
                    "401": {"description": "Not logged in: the login page", "content": _HTML},
                    "403": {
                        "description": "The CSRF token is missing or wrong: nothing granted",
                        "content": _HTML,
                    },
                },
            },
        },
        "/oauth/token": _oauth_post(
            "oauthToken",
            "Tokens for a code (with its PKCE verifier) or for a refresh token",
            "TokenRequest",
            {
                "description": "The tokens (Cache-Control: no-store)",
                "content": {"application/json": {"schema": _ref("TokenResponse")}},
            },
            "Public clients: the `client_id` in the body, no secret (HTTP Basic with an "
            "empty secret is accepted too). A refresh token used twice ends the whole "
            "family of tokens (reuse detection).",
        ),
        "/oauth/revoke": _oauth_post(
            "oauthRevoke",
            "Revoke an access or refresh token (RFC 7009)",
            "TokenOperation",
            {"description": "Revoked, or unknown (the answer does not tell them apart)"},
            "Revoking a refresh token ends its access tokens too.",
        ),
        "/oauth/introspect": _oauth_post(
            "oauthIntrospect",
            "Whether a token is active, for the app it was issued to (RFC 7662)",
            "TokenOperation",
            {
                "description": "The token's state",
                "content": {"application/json": {"schema": _ref("Introspection")}},
            },
            "Another app's token is only inactive.",
        ),
    }
