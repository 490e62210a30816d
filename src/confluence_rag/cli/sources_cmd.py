"""`confluence-rag add`, `sources` and `delete`: manage sources from the terminal."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

import typer
from rich.table import Table

from confluence_rag.cli.errors import handle_errors
from confluence_rag.cli.jobs_cmd import SOURCE_HELP, run_job_in_foreground
from confluence_rag.cli.progress_view import report_outcome
from confluence_rag.cli.runtime import console, load_settings, resolve_source, run
from confluence_rag.errors import InvalidInput
from confluence_rag.presenters import SourceOut, source_out
from confluence_rag.records import JobRecord


def register(app: typer.Typer) -> None:
    app.command("add")(add)
    app.command("sources")(sources)
    app.command("delete")(delete)


@handle_errors
def add(
    site: Annotated[
        str, typer.Argument(help="Confluence site URL, e.g. https://acme.atlassian.net")
    ],
    space: Annotated[
        list[str],
        typer.Option("--space", "-s", help="Space key; repeat for several spaces in one source."),
    ],
    email: str | None = typer.Option(
        None, "--email", envvar="CONFLUENCE_EMAIL", help="Account email (Cloud only)."
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="CONFLUENCE_API_TOKEN",
        help="Cloud API token or Data Center personal access token (prefer the env variable: "
        "a flag is visible in the process list).",
        show_default=False,
    ),
    flavour: Literal["cloud", "datacenter"] | None = typer.Option(
        None, help="cloud or datacenter (default: cloud for *.atlassian.net, else datacenter)."
    ),
    knowledge_type: str = typer.Option("technical", help="Knowledge type recorded on the source."),
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag recorded on the source; repeatable.")
    ] = None,
    max_pages: int | None = typer.Option(None, min=1, help="Stop after N pages (for trials)."),
    sync_every: float | None = typer.Option(
        None, min=0, help="Automatic sync period in hours (0: manual only; default from settings)."
    ),
    no_crawl: bool = typer.Option(False, "--no-crawl", help="Only add; crawl later."),
) -> None:
    """Add a Confluence site + spaces as a source (credentials are checked first), then crawl it.

    The token is stored encrypted; it is never printed, logged or returned by the API.
    """
    if not token:
        raise InvalidInput("an API token is required: set CONFLUENCE_API_TOKEN or pass --token")
    from confluence_rag.ingest.sources import NewSource
    from confluence_rag.services import build_services

    settings = load_settings()
    new = NewSource(
        confluence_url=site,
        api_token=token,
        space_keys=tuple(space),
        user_email=email,
        flavour=flavour,
        knowledge_type=knowledge_type,
        tags=tuple(tag or ()),
        max_pages=max_pages,
        sync_frequency_hours=sync_every,
    )

    async def main() -> JobRecord | None:
        async with build_services(settings) as services:
            # Queue nothing yet: the crawl is started below, in the foreground.
            record, _ = await services.sources.add(new, start=False)
            console.print(
                f"[green]Added[/] {record.id}: {', '.join(record.space_keys)} on {record.site_url}",
                highlight=False,
            )
            if no_crawl:
                console.print(f"Crawl it with: confluence-rag crawl '{record.id}'")
                return None
            return await run_job_in_foreground(services, record.id, "crawl")

    job = run(main)
    if job is not None:
        report_outcome(job, console)


@handle_errors
def sources(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the API's fields)."),
) -> None:
    """List sources with their spaces, sync state, page and chunk counts."""
    from confluence_rag.services import build_services

    settings = load_settings()

    async def main() -> list[SourceOut]:
        async with build_services(settings) as services:
            return [
                source_out(record, active_job=await services.active_job(record.id))
                for record in await services.sources.list()
            ]

    described = run(main)
    if as_json:
        payload = {
            "sources": [item.model_dump(mode="json") for item in described],
            "count": len(described),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    if not described:
        console.print("No sources yet. Add one with: confluence-rag add SITE --space KEY")
        return
    table = Table(title="Sources")
    for column in ("Source", "Spaces", "Status", "Pages", "Chunks", "Last sync", "Next sync"):
        table.add_column(column, overflow="fold")
    for item in described:
        status = item.status + (f": {item.sync_error}" if item.sync_error else "")
        table.add_row(
            item.source_id,
            ", ".join(item.spaces),
            status,
            _count(item.total_pages),
            _count(item.total_chunks),
            _when(item.last_sync_at),
            "paused" if item.paused else _when(item.next_sync_at),
        )
    console.print(table)


@handle_errors
def delete(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a source: its pages, chunks, code examples and stored credentials."""
    from confluence_rag.services import build_services

    settings = load_settings()

    async def find() -> str:
        async with build_services(settings) as services:
            return (await resolve_source(services, source)).id

    source_id = run(find)
    if not yes and not typer.confirm(f"Delete {source_id} and everything indexed from it?"):
        raise InvalidInput("not deleted (confirm, or pass --yes)")

    async def remove() -> None:
        async with build_services(settings) as services:
            await services.sources.delete(source_id)

    run(remove)
    console.print(f"[green]Deleted[/] {source_id}", highlight=False)


def _count(value: int) -> str:
    return f"{value:,}"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")
