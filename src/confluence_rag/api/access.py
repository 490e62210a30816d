"""Access control for the whole app: with ``CONFLUENCE_RAG_API_TOKEN`` set, nothing but the public
paths answers without it.

The routes check the token themselves too (``deps.require_api_token`` on the /api routers, the
guard in front of /mcp, ``require_login`` on UI pages). This middleware is the default-deny layer
in front of all of them, so a route added later without its own check (a new router, a docs page,
a mounted app) is still closed:

- public: ``/health`` (probes), ``/login`` (the token form), ``/static/*`` (the form's CSS and
  JS) and the API's description (``/openapi.json``, ``/docs``, ``/redoc``): public code, no data;
- ``/api/*`` and ``/mcp``: 401 in the standard error shape unless ``Authorization: Bearer
  <token>``; the UI cookie also counts on GET/HEAD of /api (the live progress stream cannot send
  a header), never for a state change and never for /mcp;
- everything else is a page for people (the UI, an unknown path): without the token (cookie or
  header) it redirects to the token form, which then comes back.

Comparisons are constant-time over fixed-length digests, so neither the content nor the length
of the configured token leaks through timing.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from pydantic import SecretStr
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from confluence_rag.api.deps import UI_TOKEN_COOKIE
from confluence_rag.api.errors import error_response

# The API's description (OpenAPI document and its two viewers) is public: it describes the
# published code and holds no data; calling any operation it lists still needs the token.
PUBLIC_PATHS = frozenset(
    {"/health", "/login", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
PUBLIC_PREFIXES = ("/static/",)
API_PREFIXES = ("/api/", "/mcp")
COOKIE_READABLE = ("/api/",)  # GET/HEAD only
UNAUTHORIZED_MESSAGE = (
    "missing or wrong API token: send 'Authorization: Bearer <CONFLUENCE_RAG_API_TOKEN>'"
)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def token_equals(given: str, expected: SecretStr) -> bool:
    """Constant-time comparison (length included) of a presented token with the configured one."""
    return hmac.compare_digest(_digest(given.strip()), _digest(expected.get_secret_value()))


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path in ("/api", "/mcp/")


class AccessMiddleware:
    """Default-deny token check for every HTTP (and WebSocket) request; see the module docstring."""

    def __init__(self, app: ASGIApp, token: SecretStr | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if is_public(path) or self._authorized(scope, path):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response: Response
        if is_api(path):
            response = error_response(
                401, "unauthorized", UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "Bearer"}
            )
        else:
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{query}" if query else "")
            response = RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
            response.headers["Cache-Control"] = "no-store"
        await response(scope, receive, send)

    def _authorized(self, scope: Scope, path: str) -> bool:
        assert self.token is not None
        authorization = _header(scope, b"authorization")
        if authorization:
            scheme, _, given = authorization.partition(" ")
            return scheme.lower() == "bearer" and token_equals(given, self.token)
        cookie_counts = not is_api(path) or (
            path.startswith(COOKIE_READABLE) and scope.get("method") in ("GET", "HEAD")
        )
        if not cookie_counts:
            return False
        given = _cookie(scope, UI_TOKEN_COOKIE)
        return bool(given) and token_equals(given, self.token)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _cookie(scope: Scope, name: str) -> str:
    # Starlette's own parser: the same value ``request.cookies`` gives the routes behind us.
    return cookie_parser(_header(scope, b"cookie")).get(name, "")
