"""The emulator's ASGI app: ``create_emulator_app(config)``.

Routes live under ``/wiki`` for Cloud (v1 ``/wiki/rest/api`` and v2 ``/wiki/api/v2``) and at
the root for Data Center (v1 only). One middleware does what Confluence's edge does before a
route runs, in this order: the test's gates (`gates.py`), added latency, fault injection
(`faults.py`), authentication (Cloud: HTTP Basic email:api-token; Data Center: Bearer PAT;
anything else is 401), and the request log that tests read. Errors are rendered in
Confluence's shape (`shapes.error_body`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from confluence_rag.emulator import routes_read, routes_v2, routes_write
from confluence_rag.emulator.config import DEFAULT_LIMIT, V2_MAX_LIMIT, EmulatorConfig
from confluence_rag.emulator.context import json_response
from confluence_rag.emulator.errors import ConfluenceApiError
from confluence_rag.emulator.faults import FaultDecision
from confluence_rag.emulator.records import User
from confluence_rag.emulator.shapes import error_body
from confluence_rag.emulator.state import EmulatorState, RequestRecord

# listings whose cost grows with limit x body (the 504 budget looks only at these)
LISTINGS = ("/content/search", "/rest/api/search", "/rest/api/content", "/child/page", "/pages")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def create_emulator_app(config: EmulatorConfig, state: EmulatorState | None = None) -> Starlette:
    """Build the app; ``app.state.emulator`` is the live EmulatorState tests drive."""
    state = state if state is not None else EmulatorState(config)
    v1 = [
        *routes_read.ROUTES,
        Route("/rest/api/content", routes_read.CONTENT_LIST, methods=["GET"]),
        Route("/rest/api/content", routes_write.create_content, methods=["POST"]),
        Route("/rest/api/content/{id}", routes_read.CONTENT_BY_ID, methods=["GET"]),
        Route("/rest/api/content/{id}", routes_write.update_content, methods=["PUT"]),
        Route("/rest/api/content/{id}", routes_write.delete_content, methods=["DELETE"]),
        Route("/rest/api/content/{id}/label", routes_write.add_labels, methods=["POST"]),
    ]
    routes: list[Route | Mount]
    if config.flavour == "cloud":
        routes = [Mount("/wiki", routes=[*v1, *routes_v2.ROUTES])]
    else:
        routes = list(v1)
    app = Starlette(
        routes=routes,
        exception_handlers={
            ConfluenceApiError: _api_error,
            HTTPException: _http_error,
        },
    )
    app.state.emulator = state
    app.add_middleware(_EdgeMiddleware, state=state)
    return app


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConfluenceApiError)
    return json_response(error_body(exc.status, exc.message, exc.reason), exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "null for uri: " + str(request.url) if exc.status_code == 404 else exc.detail
    reason = "Not Found" if exc.status_code == 404 else "Method Not Allowed"
    return json_response(error_body(exc.status_code, message, reason), exc.status_code)


class _EdgeMiddleware:
    """Latency, faults, authentication and the request log, before any route runs."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        status = {"code": 0}
        user: User | None = None
        decision = FaultDecision()
        recorded = False

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                state.record_request(
                    RequestRecord(
                        method=scope["method"],
                        path=path,
                        query=query,
                        status=status["code"],
                        account_id=user.account_id if user else None,
                        fault=decision.kind,
                    )
                )

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                record()  # before the client can see the response, so tests read a full log
            await send(message)

        try:
            # a held request waits before anything else, so faults and latency apply after it
            await state.gates.pass_through(scope["method"], path, query)
            decision = state.faults.decide(path, body_limit=self._body_limit(path, params))
            delay = state.config.latency_ms / 1000.0 + decision.latency_s
            if delay:
                await asyncio.sleep(delay)
            user = self._authenticate(scope)
            if decision.kind is not None and decision.kind != "drop":
                await _fault_response(decision)(scope, receive, tracking_send)
            elif user is None:
                await self._unauthorized()(scope, receive, tracking_send)
            else:
                scope["emulator.user"] = user
                if decision.kind == "drop":

                    def before_send(code: int) -> None:
                        status["code"] = code
                        record()

                    await self._dropped(scope, receive, tracking_send, before_send)
                else:
                    await self.app(scope, receive, tracking_send)
        finally:
            record()

    def _body_limit(self, path: str, params: dict[str, str]) -> int | None:
        """The effective limit of a listing that returns bodies (what makes a gateway time out);
        None for anything else, including one page by id."""
        if not path.endswith(LISTINGS):
            return None
        try:
            requested = int(params.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            return None
        if "body-format" in params and "/api/v2/" in path:
            return min(requested, V2_MAX_LIMIT)
        expand = [e.strip().removeprefix("content.") for e in params.get("expand", "").split(",")]
        if any(e == "body" or e.startswith("body.") for e in expand):
            return min(requested, self.state.config.limit_caps.body)
        return None

    def _authenticate(self, scope: Scope) -> User | None:
        header = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if self.state.config.flavour == "cloud":
            if scheme.lower() != "basic":
                return None
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            email, sep, token = decoded.partition(":")
            return self.state.authenticate("basic", email, token) if sep else None
        if scheme.lower() != "bearer":
            return None
        return self.state.authenticate("bearer", credentials)

    def _unauthorized(self) -> Response:
        cloud = self.state.config.flavour == "cloud"
        challenge = 'Basic realm="Confluence"' if cloud else 'Bearer realm="Confluence"'
        body = error_body(401, "Client must be authenticated to access this resource.",
                          "Unauthorized")  # fmt: skip
        return json_response(body, 401, {"WWW-Authenticate": challenge})

    async def _dropped(
        self, scope: Scope, receive: Receive, send: Send, before_send: Callable[[int], None]
    ) -> None:
        """Send the headers and half the body, then stop: the server closes the connection
        mid-response, as a proxy or a crashing node does."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start is None:
            return
        body = b"".join(chunks)
        before_send(start["status"])
        await send(start)
        await send({"type": "http.response.body", "body": body[: len(body) // 2],
                    "more_body": True})  # fmt: skip
        # returning without the final body message makes the server close the connection


def _fault_response(decision: FaultDecision) -> Response:
    rule = decision.rule
    assert rule is not None and decision.kind is not None
    if rule.retry_after_date:
        moment = datetime.now(UTC) + timedelta(seconds=max(1, rule.retry_after))
        retry_after = format_datetime(moment, usegmt=True)
    else:
        retry_after = str(rule.retry_after)
    kind = decision.kind
    if kind == "429":
        reset = (datetime.now(UTC) + timedelta(seconds=max(1, rule.retry_after))).isoformat()
        headers = {
            "Retry-After": retry_after,
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
            "X-RateLimit-NearLimit": "true",
            "RateLimit-Reason": "confluence-quota-global-based",
        }
        body = error_body(429, "Rate limit exceeded.", "Too Many Requests")
        return json_response(body, 429, headers)
    if kind == "503":
        body = error_body(503, "Service is temporarily unavailable.", "Service Unavailable")
        return json_response(body, 503, {"Retry-After": retry_after})
    if kind == "500":
        body = error_body(500, "java.lang.RuntimeException: Unexpected error",
                          "Internal Server Error")  # fmt: skip
        return json_response(body, 500)
    if kind == "ratelimit403":
        body = error_body(403, "Rate limit exceeded", "Forbidden")
        return json_response(body, 403, {"Retry-After": retry_after})
    # 504 comes from the gateway in front of Confluence: an HTML page, not JSON
    return HTMLResponse(
        "<html><head><title>504 Gateway Time-out</title></head>"
        "<body><h1>504 Gateway Time-out</h1></body></html>",
        status_code=504,
    )
