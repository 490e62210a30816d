"""One JSON error shape for every failure the HTTP API can answer with.

Every error body is ``{"error": {"code", "message", "details"}}``:

- our own errors (``ConfluenceRagError``) answer with their ``status_code`` and ``code``;
- request validation errors answer 400 ``invalid_request`` with one entry per bad field (the
  offending value is never echoed back: it may be a token);
- framework errors (unknown route 404, method not allowed 405, body too large 413, missing API
  token 401) keep their status with a stable code;
- anything else is a bug: 500 ``internal_error``, logged with its traceback, and the client
  learns nothing about the internals.

The last one is a pure ASGI middleware rather than an exception handler: Starlette's handler for
``Exception`` re-raises after answering, which would log every bug twice under uvicorn.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confluence_rag.errors import ConfluenceRagError

logger = logging.getLogger(__name__)

# Stable codes for the framework's own HTTP errors.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    411: "length_required",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}

INTERNAL_MESSAGE = "internal server error; the server log has the details"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The standard error body."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details), status_code=status_code, headers=headers
    )


async def _our_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfluenceRagError)
    if exc.status_code >= 500:
        logger.warning(
            "%s %s failed: %s (%s)", request.method, request.url.path, exc.message, exc.code
        )
    return JSONResponse(exc.to_dict(), status_code=exc.status_code)


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field_name(error.get("loc", ())),
            "message": str(error.get("msg", "invalid value")),
            "type": str(error.get("type", "value_error")),
        }
        for error in exc.errors()
    ]
    if errors:
        first = errors[0]
        message = f"{first['field']}: {first['message']}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
    else:
        message = "the request is not valid"
    return error_response(400, "invalid_request", message, {"errors": errors})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no such route: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; list them all.
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return error_response(exc.status_code, code, message, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers and the catch-all middleware on ``app``."""
    app.add_exception_handler(ConfluenceRagError, _our_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(CatchAllMiddleware)


class CatchAllMiddleware:
    """Turn an unhandled exception into a logged 500 with the standard body and no internals."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                # Headers are out (a stream broke mid-way): all we can do is end it.
                raise
            response = error_response(500, "internal_error", INTERNAL_MESSAGE)
            await response(scope, receive, send)
