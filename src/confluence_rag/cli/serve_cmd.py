"""`confluence-rag serve`: the HTTP API (and web UI) with uvicorn.

Listening beyond this machine without an API token would let anyone on the network read the
index and add sources with their own URLs, so a non-loopback address requires
``CONFLUENCE_RAG_API_TOKEN``.
"""

from __future__ import annotations

import ipaddress

import typer

from confluence_rag.cli.errors import handle_errors
from confluence_rag.cli.runtime import console, load_settings
from confluence_rag.errors import ConfigurationError
from confluence_rag.settings import Settings

GRACEFUL_SHUTDOWN_SECONDS = 5


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse a non-loopback address without an API token."""
    if not is_loopback(host) and settings.api_token is None:
        raise ConfigurationError(
            f"refusing to listen on {host} without an API token: anyone who can reach it could "
            "read the index and add sources. Set CONFLUENCE_RAG_API_TOKEN (clients then send "
            "'Authorization: Bearer <token>'), or listen on 127.0.0.1."
        )


@handle_errors
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default: settings, 127.0.0.1)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (default 8080)."),
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) and run crawl/sync jobs in this process."""
    settings = load_settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    check_exposure(settings, bind_host)
    import uvicorn

    from confluence_rag.api.app import create_app

    app = create_app(settings)
    console.print(
        f"Serving on http://{bind_host}:{bind_port} (API docs: /docs). Ctrl-C stops.",
        highlight=False,
    )
    uvicorn.run(
        app,
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level.lower(),
        # Open event streams would otherwise hold shutdown until their jobs end.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
