"""Request body size limit, answered in the standard error shape.

Every request body this API accepts is a small JSON document (a source, a query), so anything
larger than ``MAX_BODY_BYTES`` is refused before it is read into memory: at once when
``Content-Length`` says so, otherwise as soon as the streamed body passes the limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from confluence_rag.api.errors import error_response

MAX_BODY_BYTES = 256 * 1024


def _too_large_message(limit: int) -> str:
    return f"request body is larger than {limit} bytes"


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = error_response(
                413,
                "request_too_large",
                _too_large_message(self.max_bytes),
                {"max_bytes": self.max_bytes},
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Raised inside the endpoint's body read: the HTTP error handler answers.
                    raise StarletteHTTPException(413, _too_large_message(self.max_bytes))
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
