"""The OpenAPI document says what the API really answers when something is wrong.

Every error of the JSON API has one shape, ``{"error": {"code", "message", "details"?}}``
(see optria.web.errors). Litestar's generated document would describe a 400 with its own
``{status_code, detail, extra}`` shape and leave the other statuses out, so the document
is finished here before it is served: every 4xx response of every operation refers to the
``Error`` schema, and every operation lists the statuses any request can meet — 400 (a value
that cannot be understood), 401 (not signed in), 403 (role or CSRF token), 404, 409, 413
(body too large), 415, 422 (values that fail a rule) and 429 — besides those its handler declares
(for example 424 ``source_unreachable`` on a browse). The document is the contract the
schemathesis run in tests/web/test_schemathesis.py holds the API to.
"""

from __future__ import annotations

import copy
from typing import Any

from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable reason, e.g. validation_error"},
                "message": {"type": "string", "description": "what went wrong and what to do next (English)"},
                "details": {"description": "field messages or other structured detail, when there are any"},
            },
        },
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
COMMON_STATUSES = {
    "400": "The request could not be understood (a malformed value or parameter).",
    "401": "Not signed in.",
    "403": "The role does not allow this, or the CSRF token is missing.",
    "404": "Not found in the caller's organization.",
    "409": "Conflicts with the current state (a duplicate name, a last administrator, ...).",
    "413": "The request body is too large.",
    "415": "The body is not in a supported media type.",
    "422": "Some values fail a rule; details name the fields.",
    "429": "Too many requests.",
}
# Operations that ask a data source (OPC-UA, PI, SQL) and fail with 424 when it cannot answer.
SOURCE_PATHS = ("/browse", "/mappings/bulk")
SOURCE_FAILED = ("The data source could not answer (code source_unreachable when it cannot be reached at all; "
                 "details.reason gives the connector's reason). Check the source and its connection settings.")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(ERROR_REF)}}}


def with_error_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of the OpenAPI document in which every error response has the ``Error`` shape."""
    doc = copy.deepcopy(schema)
    doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in (doc.get("paths") or {}).items():
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for status in list(responses):
                if str(status)[:1] in ("4", "5"):
                    description = responses[status].get("description") or "Error"
                    responses[status] = _error_response(description)
            if path.startswith(("/api/", "/internal/")):
                for status, description in COMMON_STATUSES.items():
                    responses.setdefault(status, _error_response(description))
            if path.endswith(SOURCE_PATHS):
                responses.setdefault("424", _error_response(SOURCE_FAILED))
    return doc


class ErrorAwareJsonRenderPlugin(JsonRenderPlugin):
    """Serves ``/api/schema/openapi.json`` with the error responses completed (computed once)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._finished: dict[str, Any] | None = None

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        if self._finished is None:
            self._finished = with_error_responses(openapi_schema)
        return self.render_json(request, self._finished)


def api_openapi_config() -> OpenAPIConfig:
    """The document at /api/schema/openapi.json. No HTML viewer is served: viewers load scripts
    from third-party hosts, which the Content-Security-Policy (rightly) refuses."""
    return OpenAPIConfig(title="OPTRIA IQ API", version="0.1.0", path="/api/schema",
                         render_plugins=[ErrorAwareJsonRenderPlugin()])
