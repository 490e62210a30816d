"""`confluence-rag search "query"`: search the index from the terminal."""

from __future__ import annotations

import html
import json
import re
from typing import Annotated

import typer
from rich.text import Text

from confluence_rag.cli.errors import handle_errors
from confluence_rag.cli.runtime import console, load_settings, run
from confluence_rag.presenters import Retriever, SearchHitOut, SearchResponse, hit_out
from confluence_rag.records import SearchFilters
from confluence_rag.search.models import SearchMode
from confluence_rag.search.validation import MAX_LIMIT, checked_query

_MARK = re.compile(r"<mark>(.*?)</mark>", re.DOTALL)


def register(app: typer.Typer) -> None:
    app.command("search")(search)


def snippet_text(snippet_html: str) -> Text:
    """The search service's escaped snippet with <mark> highlights, as styled terminal text."""
    text = Text()
    position = 0
    for match in _MARK.finditer(snippet_html):
        text.append(html.unescape(snippet_html[position : match.start()]))
        text.append(html.unescape(match.group(1)), style="bold yellow")
        position = match.end()
    text.append(html.unescape(snippet_html[position:]))
    return text


def print_hits(hits: list[SearchHitOut]) -> None:
    if not hits:
        console.print("No results.")
        return
    for rank, hit in enumerate(hits, start=1):
        head = Text(f"{rank}. ", style="bold")
        head.append(hit.title, style="bold cyan")
        head.append(f"  [{hit.space_key}] score {hit.score:.3f} ({hit.match_type})", style="dim")
        if hit.weak:
            head.append("  weak match", style="yellow")
        console.print(head)
        console.print(Text(f"   {hit.breadcrumb}", style="dim"))
        console.print(Text("   ").append(snippet_text(hit.snippet_html)))
        console.print(Text(f"   {hit.url}", style="underline blue"))


@handle_errors
def search(
    query: str = typer.Argument(..., help="What to look for, in plain words."),
    space: Annotated[
        list[str] | None, typer.Option("--space", "-s", help="Only these spaces; repeatable.")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="Only pages with this label.")
    ] = None,
    source: str | None = typer.Option(None, "--source", help="Only this source id."),
    limit: int = typer.Option(10, min=1, max=MAX_LIMIT, help="Results to show."),
    mode: Annotated[
        SearchMode, typer.Option(help="chunks (best passages) or pages (one per page).")
    ] = "pages",
    retriever: Annotated[
        Retriever, typer.Option(help="Both retrievers fused, or one alone.")
    ] = "hybrid",
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the API's fields)."),
) -> None:
    """Search the indexed pages (hybrid keyword + semantic): one result per page, best first."""
    from confluence_rag.services import build_services

    query = checked_query(query)  # before loading anything: a bad query fails fast
    settings = load_settings()
    wanted = SearchFilters(source_id=source, spaces=tuple(space or ()), labels=tuple(label or ()))

    async def main() -> list[SearchHitOut]:
        async with build_services(settings) as services:
            hits = await services.search.search(
                query,
                filters=await services.filters.check(wanted),
                limit=limit,
                mode=mode,
                retriever=retriever,
            )
            return [hit_out(hit) for hit in hits]

    hits = run(main)
    if as_json:
        response = SearchResponse(
            query=query, mode=mode, retriever=retriever, results=hits, count=len(hits)
        )
        typer.echo(json.dumps(response.model_dump(mode="json"), indent=2))
        return
    print_hits(hits)
