"""The MCP server (official MCP Python SDK, ``mcp`` 2.x) and its two transports.

    server = create_mcp_server(services)          # or a callable returning the services
    await server.run_stdio_async()                 # `confluence-rag mcp` (see cli/mcp_cmd.py)
    mount_mcp(app)                                 # streamable HTTP at /mcp of the FastAPI app

The tools live in ``tools.py``; this module only builds the server and wires transports.

Streamable HTTP needs its session manager running for as long as the app serves, and Starlette
does not run the lifespan of a mounted sub-app. So ``mount_mcp`` adds a plain route and wraps
the app's own lifespan: the app's services open first, then the MCP session manager; on
shutdown the sessions end before the services close.

The ``/api`` routes check the API token with a dependency, which a raw ASGI route does not go
through, so ``mount_mcp`` checks the same token itself (constant time, same 401 wording). A
middleware of the API layer in front of it does no harm: it simply runs first.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from confluence_rag import __version__
from confluence_rag.mcp.tools import ServicesProvider, register_tools
from confluence_rag.services import Services
from confluence_rag.settings import Settings

SERVER_NAME = "confluence-rag"
MCP_PATH = "/mcp"
INSTRUCTIONS = (
    "Search a Confluence knowledge base. Start with rag_get_available_sources, then "
    "rag_search_knowledge_base (or rag_search_code_examples for code); open a hit in full with "
    "rag_read_full_page(page_id=...). Cite the page URL when you answer."
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _log_level(settings: Settings | None) -> LogLevel:
    level = (settings.log_level if settings else "INFO").upper()
    allowed = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    return cast(LogLevel, level if level in allowed else "INFO")


def create_mcp_server(
    services: Services | ServicesProvider, *, settings: Settings | None = None
) -> MCPServer:
    """An MCP server whose tools run on ``services``.

    Pass the services themselves (stdio, tests) or a callable returning them (an HTTP app
    whose lifespan opens the services after the routes are built). ``settings`` (default: the
    services') only set the SDK's log level.
    """
    provider: ServicesProvider
    if isinstance(services, Services):
        ready = services
        provider = lambda: ready  # noqa: E731 - a one-line closure is the clearest form
        settings = settings or services.settings
    else:
        provider = services
    server: MCPServer = MCPServer(
        SERVER_NAME,
        title="Confluence knowledge base",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=_log_level(settings),
    )
    register_tools(server, provider)
    return server


class _TokenGuard:
    """Refuse requests without ``Authorization: Bearer <token>`` when a token is configured."""

    def __init__(self, app: ASGIApp, token: Callable[[], SecretStr | None]) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        expected = self.token()
        if scope["type"] == "http" and expected is not None and not _authorized(scope, expected):
            response = JSONResponse(
                {
                    "error": {
                        "code": "unauthorized",
                        "message": "missing or wrong API token: send 'Authorization: Bearer "
                        "<CONFLUENCE_RAG_API_TOKEN>'",
                        "details": {},
                    }
                },
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Sessions:
    """Routes to the session manager of the running lifespan; 503 outside one."""

    def __init__(self) -> None:
        self.current: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.current is None:
            response = JSONResponse(
                {
                    "error": {
                        "code": "unavailable",
                        "message": "the MCP endpoint is not running (app lifespan not started)",
                        "details": {},
                    }
                },
                status_code=503,
            )
            await response(scope, receive, send)
            return
        await self.current(scope, receive, send)


def _authorized(scope: Scope, expected: SecretStr) -> bool:
    header = b""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            header = value
            break
    scheme, _, given = header.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.get_secret_value().encode()
    )


def _transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection while no token guards the endpoint.

    Without a token, ``serve`` only listens on loopback, so only loopback Host/Origin headers are
    legitimate: a web page that rebinds its name to 127.0.0.1 is refused. With a token, a
    rebinding page cannot send it, and the server may sit behind any host name.
    """
    if settings.api_token is not None:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def mount_mcp(
    app: Starlette,
    services: Services | ServicesProvider | None = None,
    *,
    settings: Settings | None = None,
    path: str = MCP_PATH,
) -> MCPServer:
    """Serve MCP over streamable HTTP at ``path`` of ``app`` (FastAPI or Starlette).

    ``services`` defaults to ``app.state.services`` (what ``create_app``'s lifespan opens),
    looked up on each call; ``settings`` default to ``app.state.settings``. Call it once per
    app, after the app is built: it wraps the app's lifespan to run the MCP session manager
    inside it. A second call on the same app returns the server already mounted.
    """
    mounted: MCPServer | None = getattr(app.state, "mcp_server", None)
    if mounted is not None:
        # Already served here (e.g. by create_app): one session manager per app.
        return mounted
    if settings is None:
        settings = cast(Settings, app.state.settings)

    def from_app() -> Services:
        current: Services | None = getattr(app.state, "services", None)
        if current is None:
            raise RuntimeError("the app's services are not started (lifespan did not run)")
        return current

    server = create_mcp_server(services if services is not None else from_app, settings=settings)
    security = _transport_security(settings)
    sessions = _Sessions()

    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(host: Any) -> AsyncIterator[Any]:
        async with original(host) as state:
            # A session manager runs once; each lifespan (a restart, a second test client)
            # gets a fresh one. Building the SDK's Starlette app is how a new one is made; we
            # route to the manager ourselves instead of serving that app.
            server.streamable_http_app(streamable_http_path=path, transport_security=security)
            manager = server.session_manager
            async with manager.run():
                sessions.current = StreamableHTTPASGIApp(manager)
                try:
                    yield state
                finally:
                    sessions.current = None

    app.router.lifespan_context = lifespan
    token = settings.api_token
    app.router.routes.append(Route(path, endpoint=_TokenGuard(sessions, lambda: token)))
    app.state.mcp_server = server
    return server


async def run_stdio(services: Services) -> None:
    """Serve the tools over stdin/stdout until the client closes the stream."""
    await create_mcp_server(services).run_stdio_async()
