"""`confluence-rag crawl SOURCE` and `confluence-rag sync SOURCE`: run a job in the foreground.

The job is the same persisted job the API runs (same progress id, resumable), executed by this
process's job runner while a progress bar follows it. If a job is already queued or running for
the source (a server started it, or a crawl was interrupted), the command follows that one
instead of failing: it is what the person wants to see finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from confluence_rag.cli.errors import handle_errors
from confluence_rag.cli.progress_view import follow_job, report_outcome
from confluence_rag.cli.runtime import console, load_settings, resolve_source, run
from confluence_rag.errors import JobAlreadyRunning
from confluence_rag.records import JobRecord

if TYPE_CHECKING:
    from confluence_rag.services import Services

SOURCE_HELP = "Source id (see `confluence-rag sources`), or a space key that names one source."


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl)
    app.command("sync")(sync)


async def run_job_in_foreground(services: Services, source_id: str, kind: str) -> JobRecord:
    """Queue (or join) the source's job, run it here with a progress bar, return its end state."""
    try:
        job = await services.jobs.submit(source_id, kind)
        console.print(f"{kind.capitalize()} of {source_id} started (progress id {job.id})")
    except JobAlreadyRunning as running:
        job = await services.jobs.get(running.job_id)
        console.print(
            f"A {job.kind} of {source_id} is already {job.status} (progress id {job.id}); "
            "following it."
        )
    services.jobs.start()
    return await follow_job(services, job.id, console)


def _run(source: str, kind: str) -> None:
    from confluence_rag.services import build_services

    settings = load_settings()

    async def main() -> JobRecord:
        async with build_services(settings) as services:
            record = await resolve_source(services, source)
            return await run_job_in_foreground(services, record.id, kind)

    report_outcome(run(main), console)


@handle_errors
def crawl(source: str = typer.Argument(..., help=SOURCE_HELP)) -> None:
    """Crawl a source in full now, with a progress bar (Ctrl-C cancels; stored pages are kept).

    Pages already stored at the same version are skipped, so a crawl resumes cheaply.
    """
    _run(source, "crawl")


@handle_errors
def sync(source: str = typer.Argument(..., help=SOURCE_HELP)) -> None:
    """Sync a source now: re-index changed pages and drop deleted ones, with a progress bar."""
    _run(source, "sync")
