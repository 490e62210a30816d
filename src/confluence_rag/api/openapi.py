"""The OpenAPI document, made to say what the API really answers.

FastAPI documents a 422 "validation error" on every route with input, but this API answers 400
with the standard error body (see ``errors.py``). Here every operation's 422 becomes a 400, every
error status refers to the one ``ErrorResponse`` schema, and the ``/api`` routes document the
401 they give without the API token.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorResponse(BaseModel):
    error: ErrorDetail


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": ERROR_REF}}


def rewrite_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``schema`` in place (see the module docstring) and return it."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ErrorDetail"] = ErrorDetail.model_json_schema()
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    error_schema.pop("$defs", None)
    components["ErrorResponse"] = error_schema
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {"description": "Invalid request"})
            if path.startswith("/api/"):
                responses.setdefault("401", {"description": "Missing or wrong API token"})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = _error_content()
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the rewritten document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = rewrite_errors(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
