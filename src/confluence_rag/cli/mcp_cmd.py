"""`confluence-rag mcp`: the MCP server over stdio, for Claude Code, Cursor, Windsurf and others.

It opens the same data dir and database as every other command (Settings from the environment),
so it serves whatever `confluence-rag add` / `crawl` indexed. Jobs run in this process too, so
``rag_sync_source`` makes progress while the client is connected (a stop re-queues them).

stdout carries the protocol: nothing else may print there, so errors and logs go to stderr.
"""

from __future__ import annotations

import asyncio
import logging

import typer

from confluence_rag.cli.errors import handle_errors
from confluence_rag.cli.runtime import load_settings
from confluence_rag.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


async def _serve(settings: Settings) -> None:
    from confluence_rag.mcp.server import run_stdio
    from confluence_rag.services import build_services

    async with build_services(settings) as services:
        services.jobs.start()
        await run_stdio(services)


@handle_errors
def mcp() -> None:
    """Serve the MCP tools over stdio, for Claude Code, Cursor, Windsurf and other MCP clients.

    Register it with: claude mcp add confluence-rag -- confluence-rag mcp
    """
    settings = load_settings()
    # Logs go to stderr (the default stream of logging), never to the protocol's stdout.
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        pass
