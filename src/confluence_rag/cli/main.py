"""The `confluence-rag` command. Each command group lives in its own module; this one wires them
and turns ConfluenceRagError into a clear message and exit code (never a stack trace)."""

from __future__ import annotations

import typer

from confluence_rag import __version__
from confluence_rag.cli import (
    demo_cmd,
    doctor_cmd,
    emulator_cmd,
    jobs_cmd,
    mcp_cmd,
    search_cmd,
    serve_cmd,
    sources_cmd,
    worker_cmd,
)

app = typer.Typer(
    name="confluence-rag",
    help="A Confluence knowledge base for people and AI assistants.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"confluence-rag {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Crawl Confluence spaces into a searchable index; search it from the CLI, HTTP, web or MCP."""


# Order here is the order `--help` lists them: the everyday flow first.
sources_cmd.register(app)  # add, sources, delete
jobs_cmd.register(app)  # crawl, sync
search_cmd.register(app)
serve_cmd.register(app)
worker_cmd.register(app)
mcp_cmd.register(app)
emulator_cmd.register(app)
demo_cmd.register(app)
doctor_cmd.register(app)
